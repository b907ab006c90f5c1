//! From argv to a checked [`Invocation`], in ipvsadm's order of checks so
//! that the same mistake gets the same message and exit code.

use super::addr::{parse_host_port, parse_number, parse_v4_netmask, parse_v6_netmask};
use super::legality::{self, class_of, Cmd, Seen};
use super::names::{self, Names};
use super::options::{Opt, Token, TokenError, Tokens};
use crate::control::proto::{
    DestKey, DestSpec, Forward, MarkMatch, MarkSpec, Persistence, Protocol, SchedFlag, ServiceKey,
    ServiceSpec, Timeouts, TunnelCsum, TunnelType,
};
use std::net::IpAddr;
use std::path::PathBuf;

/// ipvsadm's default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// ipvsadm's default persistence timeout (seconds).
pub const DEFAULT_PERSISTENCE: u32 = 360;
/// Longest timeout ipvsadm accepts: 31 days.
pub const MAX_TIMEOUT: u64 = 86400 * 31;

/// Exit code of ipvsadm's `fail()`.
pub const EXIT_FAIL: i32 = 2;
/// Exit code of ipvsadm's usage errors and failed kernel calls (`-1`).
pub const EXIT_USAGE: i32 = 255;

/// Listing format flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub nosort: bool,
    pub exact: bool,
    pub tun_info: bool,
}

/// What `-L` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCmd {
    /// All services (with the version header), or one (without).
    Services {
        service: Option<ServiceKey>,
        format: Format,
    },
    /// `-c`.
    Connections(Format),
    /// `--timeout`.
    Timeout,
    /// `--daemon` (rvs has no sync daemon: prints nothing).
    Daemon,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddService(ServiceSpec),
    EditService(ServiceSpec),
    DeleteService(ServiceKey),
    AddDest(ServiceKey, DestSpec),
    EditDest(ServiceKey, DestSpec),
    DeleteDest(ServiceKey, DestKey),
    Clear,
    List(ListCmd),
    Zero(Option<ServiceKey>),
    Set(Timeouts),
    Save(Format),
    Restore,
    Help,
    Version,
    Ports,
    Lcores,
    Counters,
    /// `--add-mark -t|-u TARGET -f MARK`.
    AddMark(MarkSpec),
    /// `--delete-mark -t|-u TARGET`.
    DeleteMark(MarkMatch),
    /// `--marks`.
    Marks,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// `--sock PATH`.
    pub sock: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
}

/// A command line that must not be run: print `message` (if not empty) on
/// stderr and exit with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub code: i32,
}

impl ParseError {
    fn fail(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            code: EXIT_FAIL,
        }
    }
    fn usage(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }
}

/// The program name used in messages.
pub const PROGRAM: &str = "rvsadm";

fn tryhelp() -> ParseError {
    ParseError::usage(format!(
        "Try `{PROGRAM} -h' or '{PROGRAM} --help' for more information."
    ))
}

enum First {
    Cmd(Cmd),
    Other(Command),
}

#[derive(Default)]
struct State {
    seen: Seen,
    protocol: Option<Protocol>,
    sctp: bool,
    fwmark: Option<u32>,
    svc_addr: Option<IpAddr>,
    svc_port: u16,
    scheduler: Option<String>,
    persistent: Option<u32>,
    netmask: Option<MaskArg>,
    dest_addr: Option<IpAddr>,
    dest_port: Option<u16>,
    forward: Option<char>,
    weight: Option<u32>,
    u_threshold: u32,
    l_threshold: u32,
    ops: bool,
    pe: Option<String>,
    sched_flags: Option<String>,
    tun_type: TunnelType,
    tun_port: Option<u16>,
    tun_csum: TunnelCsum,
    format: Format,
    leftovers: Vec<String>,
}

impl State {
    /// The services database's protocol of the service given so far.
    fn service_db(&self) -> Option<&'static str> {
        match self.protocol {
            _ if self.sctp => Some("sctp"),
            Some(p) => Some(names::proto_name(p)),
            None => None,
        }
    }
}

/// Parses a command line (without the program name), looking names up
/// through glibc ([`names::system`]).
pub fn parse(args: &[String]) -> Result<Invocation, ParseError> {
    parse_with(args, names::system())
}

/// [`parse`], with host and service names looked up in `names`.
pub fn parse_with(args: &[String], names: &dyn Names) -> Result<Invocation, ParseError> {
    let only_rvs_opts = {
        let mut it = Tokens::new(args);
        it.all(|t| {
            matches!(
                t,
                Ok(Token::Opt {
                    opt: Opt::Sock | Opt::Json,
                    ..
                })
            )
        })
    };
    let mut tokens = Tokens::new(args);
    let mut inv = Invocation {
        command: Command::List(ListCmd::Services {
            service: None,
            format: Format::default(),
        }),
        sock: None,
        json: false,
    };
    if only_rvs_opts {
        // No command at all (only rvs's own options): list everything.
        for t in tokens {
            match t {
                Ok(Token::Opt {
                    opt: Opt::Sock,
                    value,
                    ..
                }) => inv.sock = value.map(PathBuf::from),
                _ => inv.json = true,
            }
        }
        return Ok(inv);
    }

    let first = match tokens.next() {
        Some(Ok(Token::Opt { opt, value, .. })) => match opt {
            Opt::AddService => First::Cmd(Cmd::AddService),
            Opt::EditService => First::Cmd(Cmd::EditService),
            Opt::DeleteService => First::Cmd(Cmd::DeleteService),
            Opt::Clear => First::Cmd(Cmd::Flush),
            Opt::List => First::Cmd(Cmd::List),
            Opt::Zero => First::Cmd(Cmd::Zero),
            Opt::AddServer => First::Cmd(Cmd::AddServer),
            Opt::EditServer => First::Cmd(Cmd::EditServer),
            Opt::DeleteServer => First::Cmd(Cmd::DeleteServer),
            Opt::Set => First::Cmd(Cmd::Set),
            Opt::Restore => First::Cmd(Cmd::Restore),
            Opt::Save => First::Cmd(Cmd::Save),
            Opt::StartDaemon | Opt::StopDaemon => {
                let v = value.unwrap_or_default();
                if v != "master" && v != "backup" {
                    return Err(ParseError::fail(if opt == Opt::StartDaemon {
                        "illegal start-daemon parameter specified"
                    } else {
                        "illegal start_daemon specified"
                    }));
                }
                First::Cmd(if opt == Opt::StartDaemon {
                    Cmd::StartDaemon
                } else {
                    Cmd::StopDaemon
                })
            }
            Opt::Help => return Ok(with(inv, Command::Help)),
            Opt::Version => return Ok(with(inv, Command::Version)),
            Opt::Ports => First::Other(Command::Ports),
            Opt::Lcores => First::Other(Command::Lcores),
            Opt::Counters => First::Other(Command::Counters),
            Opt::Marks => First::Other(Command::Marks),
            Opt::AddMark | Opt::DeleteMark => {
                return parse_mark_command(opt == Opt::AddMark, tokens, inv)
            }
            _ => return Err(tryhelp()),
        },
        _ => return Err(tryhelp()),
    };

    let mut st = State::default();
    for tok in tokens {
        let (opt, value, text) = match tok {
            Err(e) => return Err(token_error(e)),
            Ok(Token::Arg(a)) => {
                st.leftovers.push(a);
                continue;
            }
            Ok(Token::Opt { opt, value, text }) => (opt, value, text),
        };
        let v = value.unwrap_or_default();
        match opt {
            Opt::Sock => {
                inv.sock = Some(PathBuf::from(v));
                continue;
            }
            Opt::Json => {
                inv.json = true;
                continue;
            }
            Opt::Sort => continue,
            Opt::Ipv6 => {
                if st.fwmark.is_none() {
                    return Err(ParseError::fail("-6 used before -f\n"));
                }
                st.svc_addr = Some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
                continue;
            }
            _ => {}
        }
        let Some(class) = class_of(opt) else {
            // A second command, -h or -v after the command.
            return Err(ParseError::fail(format!("invalid option `{text}'")));
        };
        st.seen.set(class).map_err(ParseError::fail)?;
        match opt {
            Opt::TcpService | Opt::UdpService | Opt::SctpService => {
                st.protocol = Some(if opt == Opt::UdpService {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                });
                st.sctp = opt == Opt::SctpService;
                let (a, p) = parse_host_port(&v, st.service_db(), names).ok_or_else(|| {
                    ParseError::fail("illegal virtual server address[:port] specified")
                })?;
                st.svc_addr = Some(a);
                st.svc_port = p.unwrap_or(0);
            }
            Opt::FwmarkService => {
                st.fwmark = Some(parse_fwmark(&v)?);
                st.protocol = Some(Protocol::Tcp);
                st.svc_addr = Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            }
            Opt::Scheduler => st.scheduler = Some(v),
            Opt::Persistent => {
                st.persistent = Some(match value_or_none(&v) {
                    None => DEFAULT_PERSISTENCE,
                    Some(s) => parse_timeout(s, 1)?,
                })
            }
            // Read with the family of the service given so far, as
            // ipvsadm reads it: IPv4 unless a -t/-u [v6] or -6 came before.
            Opt::Netmask => {
                st.netmask = Some(if matches!(st.svc_addr, Some(IpAddr::V6(_))) {
                    MaskArg::V6(
                        parse_v6_netmask(&v)
                            .ok_or_else(|| ParseError::fail("illegal ipv6 netmask specified"))?,
                    )
                } else {
                    MaskArg::V4(parse_v4_netmask(&v, names).ok_or_else(|| {
                        ParseError::fail("illegal virtual server persistent mask specified")
                    })?)
                })
            }
            Opt::RealServer => {
                // A port name is read for the protocol of the service given
                // so far: before -t/-u there is none (ipvsadm's copy of its
                // service has protocol 0 then).
                let (a, p) = parse_host_port(&v, st.service_db(), names).ok_or_else(|| {
                    ParseError::fail("illegal real server address[:port] specified")
                })?;
                st.dest_addr = Some(a);
                st.dest_port = p;
            }
            Opt::Masquerading => st.forward = Some('m'),
            Opt::Ipip => st.forward = Some('i'),
            Opt::Gatewaying => st.forward = Some('g'),
            Opt::Weight => {
                st.weight = Some(
                    parse_number(&v, 0, crate::lb::dest::MAX_WEIGHT as u64)
                        .ok_or_else(|| ParseError::fail("illegal weight specified"))?
                        as u32,
                )
            }
            Opt::UThreshold => {
                st.u_threshold = parse_number(&v, 0, i32::MAX as u64)
                    .ok_or_else(|| ParseError::fail("illegal u_threshold specified"))?
                    as u32
            }
            Opt::LThreshold => {
                st.l_threshold = parse_number(&v, 0, i32::MAX as u64)
                    .ok_or_else(|| ParseError::fail("illegal l_threshold specified"))?
                    as u32
            }
            Opt::Numeric => st.format.numeric = true,
            Opt::Stats => st.format.stats = true,
            Opt::Rate => st.format.rate = true,
            Opt::Thresholds => st.format.thresholds = true,
            Opt::PersistentConn => st.format.persistent_conn = true,
            Opt::NoSort => st.format.nosort = true,
            Opt::Exact => st.format.exact = true,
            Opt::TunInfo => st.format.tun_info = true,
            Opt::Connection | Opt::Timeout | Opt::Daemon | Opt::McastInterface => {}
            Opt::SyncId => {
                parse_number(&v, 0, 255)
                    .ok_or_else(|| ParseError::fail("illegal syncid specified"))?;
            }
            Opt::McastGroup => check_mcast_group(&v)?,
            Opt::McastPort => {
                parse_number(&v, 1, 65535)
                    .ok_or_else(|| ParseError::fail("illegal mcast-port specified"))?;
            }
            Opt::McastTtl => {
                parse_number(&v, 1, 255)
                    .ok_or_else(|| ParseError::fail("illegal mcast-ttl specified"))?;
            }
            Opt::SyncMaxlen => {
                parse_number(&v, 1, 65535 - 20 - 8)
                    .ok_or_else(|| ParseError::fail("illegal sync-maxlen specified"))?;
            }
            Opt::Ops => st.ops = true,
            Opt::Pe => st.pe = Some(v),
            Opt::SchedFlags => st.sched_flags = Some(v),
            Opt::TunType => {
                st.tun_type = match v.as_str() {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return Err(ParseError::fail("illegal tunnel type specified")),
                }
            }
            Opt::TunPort => {
                st.tun_port = Some(
                    parse_number(&v, 1, 65535)
                        .ok_or_else(|| ParseError::fail("illegal tunnel port specified"))?
                        as u16,
                )
            }
            Opt::TunNocsum => st.tun_csum = TunnelCsum::Nocsum,
            Opt::TunCsum => st.tun_csum = TunnelCsum::Csum,
            Opt::TunRemcsum => st.tun_csum = TunnelCsum::Remcsum,
            _ => unreachable!("classed options are all handled"),
        }
    }

    let cmd = match first {
        First::Cmd(c) => c,
        First::Other(command) => {
            if let Some(a) = st.leftovers.first() {
                return Err(ParseError::fail(format!("unexpected argument {a}")));
            }
            if st.seen != Seen::default() {
                return Err(ParseError::fail(
                    "rvs: this command takes no options besides --sock and --json",
                ));
            }
            return Ok(with(inv, command));
        }
    };

    let mut leftovers = st.leftovers.clone().into_iter();
    let mut timeouts = Timeouts::default();
    if cmd == Cmd::Set {
        match (leftovers.next(), leftovers.next(), leftovers.next()) {
            (Some(a), Some(b), Some(c)) => {
                timeouts = Timeouts {
                    tcp: parse_timeout(&a, 0)?,
                    tcpfin: parse_timeout(&b, 0)?,
                    udp: parse_timeout(&c, 0)?,
                }
            }
            _ => return Err(ParseError::fail("--set option requires 3 timeout values")),
        }
    }
    if let Some(a) = leftovers.next() {
        return Err(ParseError::fail(format!("unexpected argument {a}")));
    }

    // ipvsadm takes an empty -s as no -s (the kernel would find no "").
    let scheduler = st
        .scheduler
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SCHEDULER.to_string());
    let flags = match &st.sched_flags {
        Some(f) => parse_sched_flags(&scheduler, f)?,
        None => Vec::new(),
    };

    legality::check(cmd, st.seen).map_err(ParseError::fail)?;

    let is_v6 = matches!(st.svc_addr, Some(IpAddr::V6(_)));
    if matches!(cmd, Cmd::AddService | Cmd::EditService) {
        if st.fwmark.is_none() && st.svc_port == 0 && st.persistent.is_none() {
            return Err(ParseError::fail(
                "Zero port specified for non-persistent service",
            ));
        }
        if st.ops && st.fwmark.is_none() && (st.protocol != Some(Protocol::Udp) || st.sctp) {
            return Err(ParseError::fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
    }

    let forward = match st.forward.unwrap_or('g') {
        'm' => Forward::Masq,
        'i' => Forward::Tunnel {
            kind: st.tun_type,
            port: if st.tun_type == TunnelType::Gue {
                st.tun_port
            } else {
                None
            },
            csum: st.tun_csum,
        },
        _ => Forward::Route,
    };
    if matches!(cmd, Cmd::AddServer | Cmd::EditServer) {
        let dest_v6 = matches!(st.dest_addr, Some(IpAddr::V6(_)));
        if dest_v6 != is_v6 && !matches!(forward, Forward::Tunnel { .. }) {
            return Err(ParseError::fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let any_tun = (29..=33).any(|c| st.seen.has(c));
        if any_tun && !matches!(forward, Forward::Tunnel { .. }) {
            return Err(ParseError::fail(
                "Tunnel options conflict with forward method",
            ));
        }
        legality::check_tunnel(st.tun_type, st.seen).map_err(ParseError::fail)?;
    }

    let f = st.format;
    if cmd == Cmd::List {
        let s = &st.seen;
        let (conn, timeout, daemon) = (s.has(1), s.has(12), s.has(13));
        if ((conn || timeout || daemon) && (f.stats || f.rate || f.thresholds))
            || ((timeout || daemon) && f.persistent_conn)
        {
            return Err(ParseError::fail("options conflicts in the list command"));
        }
    }

    // What ipvsadm supports and rvs does not.
    if st.seen.has(2) && st.sctp {
        return Err(ParseError::fail("rvs: SCTP services are not supported"));
    }
    if st.pe.is_some() {
        return Err(ParseError::fail(
            "rvs: persistence engines (--pe) are not supported",
        ));
    }
    if matches!(cmd, Cmd::StartDaemon | Cmd::StopDaemon) {
        return Err(ParseError::fail(
            "rvs: the connection synchronization daemon is not supported",
        ));
    }

    let key = st.svc_addr.map(|address| ServiceKey {
        protocol: st.protocol.unwrap_or(Protocol::Tcp),
        address,
        port: st.svc_port,
        fwmark: st.fwmark.unwrap_or(0),
    });
    let spec = |k: ServiceKey| ServiceSpec {
        protocol: k.protocol,
        address: k.address,
        port: k.port,
        fwmark: k.fwmark,
        scheduler: scheduler.clone(),
        flags: flags.clone(),
        persistent: st
            .persistent
            .map(|timeout| persistence(timeout, is_v6, st.netmask)),
        ops: st.ops,
    };
    let dest = |k: ServiceKey| {
        let port = match forward {
            // A fwmark service's real servers keep the port given (0: the
            // packet's own), whatever the method.
            _ if k.fwmark != 0 => st.dest_port.unwrap_or(0),
            Forward::Masq => st.dest_port.unwrap_or(k.port),
            _ => k.port,
        };
        DestSpec {
            address: st.dest_addr.expect("legality requires -r"),
            port,
            forward,
            weight: st.weight.unwrap_or(1),
            u_threshold: st.u_threshold,
            l_threshold: st.l_threshold,
        }
    };
    let need = || key.expect("legality requires a service");
    let command = match cmd {
        Cmd::AddService => Command::AddService(spec(need())),
        Cmd::EditService => Command::EditService(spec(need())),
        Cmd::DeleteService => Command::DeleteService(need()),
        Cmd::AddServer => Command::AddDest(need(), dest(need())),
        Cmd::EditServer => Command::EditDest(need(), dest(need())),
        Cmd::DeleteServer => Command::DeleteDest(
            need(),
            DestKey {
                address: st.dest_addr.expect("legality requires -r"),
                port: st.dest_port.unwrap_or(need().port),
            },
        ),
        Cmd::Flush => Command::Clear,
        Cmd::Zero => Command::Zero(key),
        Cmd::Set => Command::Set(timeouts),
        Cmd::Save => Command::Save(f),
        Cmd::Restore => Command::Restore,
        Cmd::List => Command::List(if st.seen.has(1) {
            ListCmd::Connections(f)
        } else if st.seen.has(12) {
            ListCmd::Timeout
        } else if st.seen.has(13) {
            ListCmd::Daemon
        } else {
            ListCmd::Services {
                service: key,
                format: f,
            }
        }),
        Cmd::StartDaemon | Cmd::StopDaemon => unreachable!("rejected above"),
    };
    Ok(with(inv, command))
}

/// `-M` as read where it stood.
#[derive(Debug, Clone, Copy)]
enum MaskArg {
    V4(std::net::Ipv4Addr),
    V6(u8),
}

/// `-p` with the `-M` given. An IPv4 mask on an IPv6 service (a `-M` before
/// the `-t [v6]`) is the host mask, as the kernel ends up with.
fn persistence(timeout: u32, v6: bool, mask: Option<MaskArg>) -> Persistence {
    match (v6, mask) {
        (true, Some(MaskArg::V6(n))) => Persistence::prefix(timeout, n),
        (true, _) => Persistence::prefix(timeout, 128),
        (false, Some(MaskArg::V4(m))) => Persistence::v4(timeout, m),
        (false, _) => Persistence::prefix(timeout, 32),
    }
}

/// `--add-mark -t|-u TARGET -f MARK` and `--delete-mark -t|-u TARGET`
/// (with `--sock`, `--json`): rvs's own commands, so their own grammar.
fn parse_mark_command(
    add: bool,
    tokens: Tokens<'_>,
    mut inv: Invocation,
) -> Result<Invocation, ParseError> {
    let mut target: Option<MarkMatch> = None;
    let mut mark: Option<u32> = None;
    for tok in tokens {
        let (opt, value, text) = match tok {
            Err(e) => return Err(token_error(e)),
            Ok(Token::Arg(a)) => return Err(ParseError::fail(format!("unexpected argument {a}"))),
            Ok(Token::Opt { opt, value, text }) => (opt, value, text),
        };
        let v = value.unwrap_or_default();
        match opt {
            Opt::Sock => inv.sock = Some(PathBuf::from(v)),
            Opt::Json => inv.json = true,
            Opt::TcpService | Opt::UdpService if target.is_none() => {
                let p = if opt == Opt::UdpService {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                target = Some(super::marks::parse_target(p, &v).ok_or_else(|| {
                    ParseError::fail(format!(
                        "illegal mark target `{v}' specified (ADDRESS[/PREFIX][:PORT[-PORT]], IPv6 in [])"
                    ))
                })?);
            }
            Opt::FwmarkService if add && mark.is_none() => mark = Some(parse_fwmark(&v)?),
            _ => return Err(ParseError::fail(format!("invalid option `{text}'"))),
        }
    }
    let Some(matches) = target else {
        return Err(ParseError::fail("a mark rule needs -t or -u"));
    };
    let command = if add {
        let Some(mark) = mark else {
            return Err(ParseError::fail("--add-mark needs -f MARK"));
        };
        Command::AddMark(MarkSpec { matches, mark })
    } else {
        Command::DeleteMark(matches)
    };
    Ok(with(inv, command))
}

/// `-f MARK`: 1 ..= 4294967295, read as ipvsadm reads it.
fn parse_fwmark(v: &str) -> Result<u32, ParseError> {
    parse_number(v.trim_start(), 1, u32::MAX as u64)
        .map(|m| m as u32)
        .ok_or_else(|| ParseError::fail(format!("invalid fwmark value `{v}' specified")))
}

fn with(mut inv: Invocation, command: Command) -> Invocation {
    inv.command = command;
    inv
}

fn value_or_none(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

fn token_error(e: TokenError) -> ParseError {
    ParseError::usage(e.message())
}

fn parse_timeout(s: &str, min: u64) -> Result<u32, ParseError> {
    parse_number(s, min, MAX_TIMEOUT)
        .map(|n| n as u32)
        .ok_or_else(|| ParseError::fail(format!("invalid timeout value `{s}' specified")))
}

fn check_mcast_group(v: &str) -> Result<(), ParseError> {
    if v.contains(':') {
        match v.parse::<std::net::Ipv6Addr>() {
            Ok(a) if a.is_multicast() => Ok(()),
            _ => Err(ParseError::fail(format!("invalid IPv6 mcast-group `{v}'"))),
        }
    } else {
        match v.parse::<std::net::Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(()),
            _ => Err(ParseError::fail(format!("invalid IPv4 mcast-group `{v}'"))),
        }
    }
}

/// `-b flag[,flag]` for `sched`. `flag-1`/`flag-2` are the generic names of
/// the fallback/port flags of sh and mh.
pub fn parse_sched_flags(sched: &str, arg: &str) -> Result<Vec<SchedFlag>, ParseError> {
    let mut out = Vec::new();
    // As strtok splits it: empty pieces are skipped, and none at all is no
    // flag (ipvsadm accepts `-b ""`).
    for flag in arg.split(',').filter(|p| !p.is_empty()) {
        let f = match flag {
            "sh-fallback" | "sh-port" if sched != "sh" => {
                return Err(ParseError::fail(format!(
                    "incompatible scheduler flag `{flag}'"
                )))
            }
            "mh-fallback" | "mh-port" if sched != "mh" => {
                return Err(ParseError::fail(format!(
                    "incompatible scheduler flag `{flag}'"
                )))
            }
            "sh-fallback" => SchedFlag::ShFallback,
            "sh-port" => SchedFlag::ShPort,
            "mh-fallback" => SchedFlag::MhFallback,
            "mh-port" => SchedFlag::MhPort,
            "flag-1" if sched == "sh" => SchedFlag::ShFallback,
            "flag-2" if sched == "sh" => SchedFlag::ShPort,
            "flag-1" if sched == "mh" => SchedFlag::MhFallback,
            "flag-2" if sched == "mh" => SchedFlag::MhPort,
            "flag-1" | "flag-2" | "flag-3" => {
                return Err(ParseError::fail(format!(
                    "rvs: scheduler flag `{flag}' is not supported with the '{sched}' scheduler"
                )))
            }
            _ => return Err(ParseError::fail(format!("invalid scheduler flag `{flag}'"))),
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out.sort();
    Ok(out)
}
