//! The option table and a popt-like tokenizer: short options cluster
//! (`-Ln`, `-t10.0.0.1:80`), long options take `--opt value` or
//! `--opt=value`, `-p`/`--persistent` takes an optional value (the next
//! argument unless it starts with `-`), `--` ends options, and anything else
//! is a plain argument.

/// Every option rvsadm knows: ipvsadm's commands and options plus rvs's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    // Commands.
    AddService,
    EditService,
    DeleteService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    // rvs commands.
    Ports,
    Lcores,
    Counters,
    AddMark,
    DeleteMark,
    Marks,
    // Options.
    TcpService,
    UdpService,
    SctpService,
    FwmarkService,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    // rvs options.
    Sock,
    Json,
}

/// Whether an option takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    None,
    Required,
    Optional,
}

struct Def {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
    opt: Opt,
}

const fn d(long: &'static str, short: Option<char>, arg: Arg, opt: Opt) -> Def {
    Def {
        long,
        short,
        arg,
        opt,
    }
}

use Arg::{None as N, Optional as O, Required as R};

const TABLE: &[Def] = &[
    d("add-service", Some('A'), N, Opt::AddService),
    d("edit-service", Some('E'), N, Opt::EditService),
    d("delete-service", Some('D'), N, Opt::DeleteService),
    d("clear", Some('C'), N, Opt::Clear),
    d("list", Some('L'), N, Opt::List),
    d("list", Some('l'), N, Opt::List),
    d("zero", Some('Z'), N, Opt::Zero),
    d("add-server", Some('a'), N, Opt::AddServer),
    d("edit-server", Some('e'), N, Opt::EditServer),
    d("delete-server", Some('d'), N, Opt::DeleteServer),
    d("set", None, N, Opt::Set),
    d("help", Some('h'), N, Opt::Help),
    d("version", Some('v'), N, Opt::Version),
    d("restore", Some('R'), N, Opt::Restore),
    d("save", Some('S'), N, Opt::Save),
    d("start-daemon", None, R, Opt::StartDaemon),
    d("stop-daemon", None, R, Opt::StopDaemon),
    d("ports", None, N, Opt::Ports),
    d("lcores", None, N, Opt::Lcores),
    d("counters", None, N, Opt::Counters),
    d("add-mark", None, N, Opt::AddMark),
    d("delete-mark", None, N, Opt::DeleteMark),
    d("marks", None, N, Opt::Marks),
    d("tcp-service", Some('t'), R, Opt::TcpService),
    d("udp-service", Some('u'), R, Opt::UdpService),
    d("sctp-service", None, R, Opt::SctpService),
    d("fwmark-service", Some('f'), R, Opt::FwmarkService),
    d("scheduler", Some('s'), R, Opt::Scheduler),
    d("persistent", Some('p'), O, Opt::Persistent),
    d("netmask", Some('M'), R, Opt::Netmask),
    d("real-server", Some('r'), R, Opt::RealServer),
    d("masquerading", Some('m'), N, Opt::Masquerading),
    d("ipip", Some('i'), N, Opt::Ipip),
    d("gatewaying", Some('g'), N, Opt::Gatewaying),
    d("weight", Some('w'), R, Opt::Weight),
    d("u-threshold", Some('x'), R, Opt::UThreshold),
    d("l-threshold", Some('y'), R, Opt::LThreshold),
    d("numeric", Some('n'), N, Opt::Numeric),
    d("connection", Some('c'), N, Opt::Connection),
    d("mcast-interface", None, R, Opt::McastInterface),
    d("syncid", None, R, Opt::SyncId),
    d("timeout", None, N, Opt::Timeout),
    d("daemon", None, N, Opt::Daemon),
    d("stats", None, N, Opt::Stats),
    d("rate", None, N, Opt::Rate),
    d("thresholds", None, N, Opt::Thresholds),
    d("persistent-conn", None, N, Opt::PersistentConn),
    d("nosort", None, N, Opt::NoSort),
    d("sort", None, N, Opt::Sort),
    d("exact", Some('X'), N, Opt::Exact),
    d("ipv6", Some('6'), N, Opt::Ipv6),
    d("ops", Some('o'), N, Opt::Ops),
    d("pe", None, R, Opt::Pe),
    d("sched-flags", Some('b'), R, Opt::SchedFlags),
    d("mcast-group", None, R, Opt::McastGroup),
    d("mcast-port", None, R, Opt::McastPort),
    d("mcast-ttl", None, R, Opt::McastTtl),
    d("sync-maxlen", None, R, Opt::SyncMaxlen),
    d("tun-info", None, N, Opt::TunInfo),
    d("tun-type", None, R, Opt::TunType),
    d("tun-port", None, R, Opt::TunPort),
    d("tun-nocsum", None, N, Opt::TunNocsum),
    d("tun-csum", None, N, Opt::TunCsum),
    d("tun-remcsum", None, N, Opt::TunRemcsum),
    d("sock", None, R, Opt::Sock),
    d("json", None, N, Opt::Json),
];

/// One item of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An option, its value if any, and the argument it came from (for
    /// messages).
    Opt {
        opt: Opt,
        value: Option<String>,
        text: String,
    },
    /// A plain argument.
    Arg(String),
}

/// A command-line item that is not a valid option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Unknown option (the argument as given).
    Unknown(String),
    /// An option that needs a value got none.
    MissingArg(String),
    /// A value given to an option that takes none (`--list=x`).
    UnexpectedValue(String),
}

impl TokenError {
    /// popt's wording: `<option>: <problem>`.
    pub fn message(&self) -> String {
        match self {
            TokenError::Unknown(t) => format!("{t}: unknown option"),
            TokenError::MissingArg(t) => format!("{t}: missing argument"),
            TokenError::UnexpectedValue(t) => format!("{t}: option does not take an argument"),
        }
    }
}

/// Lazily tokenizes `args` (without the program name). Errors come in
/// order, so options before a bad one are seen first, as with popt.
pub struct Tokens<'a> {
    args: &'a [String],
    pos: usize,
    /// Inside a short-option cluster: (argument index, byte offset of the
    /// next option character).
    cluster: Option<(usize, usize)>,
    done_opts: bool,
}

impl<'a> Tokens<'a> {
    pub fn new(args: &'a [String]) -> Tokens<'a> {
        Tokens {
            args,
            pos: 0,
            cluster: None,
            done_opts: false,
        }
    }

    fn next_is_value(&self) -> bool {
        self.args.get(self.pos).is_some_and(|a| !a.starts_with('-'))
    }
}

fn by_long(name: &str) -> Option<&'static Def> {
    TABLE.iter().find(|d| d.long == name)
}

fn by_short(c: char) -> Option<&'static Def> {
    TABLE.iter().find(|d| d.short == Some(c))
}

impl Iterator for Tokens<'_> {
    type Item = Result<Token, TokenError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((idx, off)) = self.cluster {
            let arg = &self.args[idx];
            let c = arg[off..].chars().next().expect("cluster offset in range");
            let rest_off = off + c.len_utf8();
            self.cluster = if rest_off < arg.len() {
                Some((idx, rest_off))
            } else {
                None
            };
            let Some(def) = by_short(c) else {
                self.cluster = None;
                return Some(Err(TokenError::Unknown(arg.clone())));
            };
            let text = format!("-{c}");
            let value = match def.arg {
                Arg::None => None,
                Arg::Required | Arg::Optional if rest_off < arg.len() => {
                    self.cluster = None;
                    Some(arg[rest_off..].to_string())
                }
                Arg::Required => match self.args.get(self.pos) {
                    Some(v) => {
                        self.pos += 1;
                        Some(v.clone())
                    }
                    None => return Some(Err(TokenError::MissingArg(text))),
                },
                Arg::Optional => {
                    if self.next_is_value() {
                        self.pos += 1;
                        Some(self.args[self.pos - 1].clone())
                    } else {
                        None
                    }
                }
            };
            return Some(Ok(Token::Opt {
                opt: def.opt,
                value,
                text,
            }));
        }

        let idx = self.pos;
        let arg = self.args.get(idx)?;
        self.pos += 1;
        if self.done_opts || arg == "-" || !arg.starts_with('-') {
            return Some(Ok(Token::Arg(arg.clone())));
        }
        if arg == "--" {
            self.done_opts = true;
            return self.next();
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(def) = by_long(name) else {
                return Some(Err(TokenError::Unknown(arg.clone())));
            };
            let text = format!("--{name}");
            let value = match (def.arg, inline) {
                (Arg::None, Some(_)) => return Some(Err(TokenError::UnexpectedValue(text))),
                (Arg::None, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => match self.args.get(self.pos) {
                    Some(v) => {
                        self.pos += 1;
                        Some(v.clone())
                    }
                    None => return Some(Err(TokenError::MissingArg(text))),
                },
                (Arg::Optional, None) => {
                    if self.next_is_value() {
                        self.pos += 1;
                        Some(self.args[self.pos - 1].clone())
                    } else {
                        None
                    }
                }
            };
            return Some(Ok(Token::Opt {
                opt: def.opt,
                value,
                text,
            }));
        }
        // Short option cluster.
        self.cluster = Some((idx, 1));
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Result<Token, TokenError>> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        Tokens::new(&v).collect()
    }

    fn o(opt: Opt, value: Option<&str>, text: &str) -> Result<Token, TokenError> {
        Ok(Token::Opt {
            opt,
            value: value.map(String::from),
            text: text.into(),
        })
    }

    #[test]
    fn clusters_and_values() {
        assert_eq!(
            toks("-Lnc"),
            vec![
                o(Opt::List, None, "-L"),
                o(Opt::Numeric, None, "-n"),
                o(Opt::Connection, None, "-c")
            ]
        );
        assert_eq!(
            toks("-At10.0.0.1:80 -s rr"),
            vec![
                o(Opt::AddService, None, "-A"),
                o(Opt::TcpService, Some("10.0.0.1:80"), "-t"),
                o(Opt::Scheduler, Some("rr"), "-s")
            ]
        );
        assert_eq!(
            toks("--scheduler=wrr --weight 3"),
            vec![
                o(Opt::Scheduler, Some("wrr"), "--scheduler"),
                o(Opt::Weight, Some("3"), "--weight")
            ]
        );
    }

    #[test]
    fn optional_persistent_value() {
        assert_eq!(toks("-p 300"), vec![o(Opt::Persistent, Some("300"), "-p")]);
        assert_eq!(toks("-p300"), vec![o(Opt::Persistent, Some("300"), "-p")]);
        assert_eq!(
            toks("-p -s rr"),
            vec![
                o(Opt::Persistent, None, "-p"),
                o(Opt::Scheduler, Some("rr"), "-s")
            ]
        );
        assert_eq!(toks("-p"), vec![o(Opt::Persistent, None, "-p")]);
        assert_eq!(
            toks("--persistent=50"),
            vec![o(Opt::Persistent, Some("50"), "--persistent")]
        );
        assert_eq!(
            toks("--persistent 50"),
            vec![o(Opt::Persistent, Some("50"), "--persistent")]
        );
    }

    #[test]
    fn errors_and_args() {
        assert_eq!(
            toks("--bogus"),
            vec![Err(TokenError::Unknown("--bogus".into()))]
        );
        assert_eq!(
            toks("-Lq"),
            vec![
                o(Opt::List, None, "-L"),
                Err(TokenError::Unknown("-Lq".into()))
            ]
        );
        assert_eq!(toks("-t"), vec![Err(TokenError::MissingArg("-t".into()))]);
        assert_eq!(
            toks("--list=1"),
            vec![Err(TokenError::UnexpectedValue("--list".into()))]
        );
        assert_eq!(
            toks("--set 1 2 -- -3"),
            vec![
                o(Opt::Set, None, "--set"),
                Ok(Token::Arg("1".into())),
                Ok(Token::Arg("2".into())),
                Ok(Token::Arg("-3".into()))
            ]
        );
        assert_eq!(
            TokenError::Unknown("--x".into()).message(),
            "--x: unknown option"
        );
        // A required value may start with '-'.
        assert_eq!(toks("-s -x"), vec![o(Opt::Scheduler, Some("-x"), "-s")]);
    }
}
