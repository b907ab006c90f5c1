//! Host and service names, looked up as ipvsadm looks them up through
//! glibc: hosts by name (IPv4 only, like `gethostbyname`) and by address
//! (like `gethostbyaddr`), ports by service name and back for the
//! service's protocol (like `getservbyname`/`getservbyport`). So
//! `/etc/hosts`, `/etc/services`, nsswitch and DNS all apply.
//!
//! [`System`] asks glibc on helper threads and waits at most [`BUDGET`]
//! in all per run on host names, and as long on service names: a dead name
//! server makes a listing print numbers and an unresolved name fail,
//! instead of hanging rvsadm. Answers are cached for the run. [`Table`] answers from fixed lists (tests); [`Numeric`] never
//! answers (`-n`).

use dns_lookup::{getaddrinfo, getnameinfo, AddrInfoHints};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one run may wait on host lookups in all (and on service
/// lookups).
pub const BUDGET: Duration = Duration::from_secs(2);

/// What ipvsadm asks the resolver. `proto` is the services database's
/// protocol name: `tcp`, `udp` or `sctp`.
pub trait Names {
    /// The first IPv4 address of a host name.
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// The port of a service name.
    fn port(&self, name: &str, proto: &'static str) -> Option<u16>;
    /// The host name of an address.
    fn host_name(&self, addr: IpAddr) -> Option<String>;
    /// The service name of a port.
    fn service_name(&self, port: u16, proto: &'static str) -> Option<String>;
}

/// No names at all: what `-n` prints.
pub struct Numeric;

impl Names for Numeric {
    fn host_v4(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn port(&self, _: &str, _: &'static str) -> Option<u16> {
        None
    }
    fn host_name(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_name(&self, _: u16, _: &'static str) -> Option<String> {
        None
    }
}

/// Fixed lists, first match wins both ways (as in `/etc/hosts`).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub hosts: Vec<(String, IpAddr)>,
    /// (name, port, protocol).
    pub services: Vec<(String, u16, &'static str)>,
}

impl Names for Table {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|(n, a)| match a {
            IpAddr::V4(v4) if n.eq_ignore_ascii_case(name) => Some(*v4),
            _ => None,
        })
    }
    fn port(&self, name: &str, proto: &'static str) -> Option<u16> {
        self.services
            .iter()
            .find(|(n, _, p)| n == name && *p == proto)
            .map(|s| s.1)
    }
    fn host_name(&self, addr: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|(_, a)| *a == addr)
            .map(|h| h.0.clone())
    }
    fn service_name(&self, port: u16, proto: &'static str) -> Option<String> {
        self.services
            .iter()
            .find(|(_, p, pr)| *p == port && *pr == proto)
            .map(|s| s.0.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    HostV4(String),
    Port(String, &'static str),
    HostName(IpAddr),
    ServiceName(u16, &'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Addr(Ipv4Addr),
    Port(u16),
    Name(String),
}

type Job = (Query, mpsc::SyncSender<Option<Answer>>);

impl Query {
    /// Host lookups and service lookups wait in separate lanes: a dead name
    /// server must not cost the service names, which come from a file.
    fn lane(&self) -> usize {
        match self {
            Query::HostV4(_) | Query::HostName(_) => 0,
            Query::Port(..) | Query::ServiceName(..) => 1,
        }
    }
}

/// A helper thread and what is left of its budget.
struct Lane {
    left: Duration,
    helper: Option<mpsc::Sender<Job>>,
}

struct State {
    cache: HashMap<Query, Option<Answer>>,
    lanes: [Lane; 2],
}

/// glibc's resolver behind helper threads, time budgets and a cache.
pub struct System {
    lookup: fn(&Query) -> Option<Answer>,
    state: Mutex<State>,
}

impl System {
    /// Lookups through `lookup` (glibc's: [`glibc`]), waiting at most
    /// `budget` in all on host names and as long on service names.
    pub fn new(budget: Duration, lookup: fn(&Query) -> Option<Answer>) -> System {
        let lane = || Lane {
            left: budget,
            helper: None,
        };
        System {
            lookup,
            state: Mutex::new(State {
                cache: HashMap::new(),
                lanes: [lane(), lane()],
            }),
        }
    }

    fn ask(&self, q: Query) -> Option<Answer> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = st.cache.get(&q) {
            return a.clone();
        }
        let lane = &mut st.lanes[q.lane()];
        if lane.left.is_zero() {
            return None;
        }
        if lane.helper.is_none() {
            // One thread per lane, asked in turn: glibc's lookups block and
            // cannot be cancelled, so a stuck one is left behind, not
            // waited for.
            let (tx, rx) = mpsc::channel::<Job>();
            let lookup = self.lookup;
            let spawned = std::thread::Builder::new()
                .name("rvsadm-names".into())
                .spawn(move || {
                    for (q, reply) in rx {
                        let _ = reply.send(lookup(&q));
                    }
                });
            if spawned.is_err() {
                lane.left = Duration::ZERO;
                return None;
            }
            lane.helper = Some(tx);
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let sent = lane
            .helper
            .as_ref()
            .is_some_and(|h| h.send((q.clone(), reply)).is_ok());
        let start = Instant::now();
        let got = if sent {
            answer.recv_timeout(lane.left).ok()
        } else {
            None
        };
        lane.left = lane.left.saturating_sub(start.elapsed());
        match got {
            Some(a) => {
                st.cache.insert(q, a.clone());
                a
            }
            None => {
                // Out of time: every later lookup in this lane answers at
                // once.
                lane.left = Duration::ZERO;
                None
            }
        }
    }
}

impl Names for System {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        match self.ask(Query::HostV4(name.into()))? {
            Answer::Addr(a) => Some(a),
            _ => None,
        }
    }
    fn port(&self, name: &str, proto: &'static str) -> Option<u16> {
        match self.ask(Query::Port(name.into(), proto))? {
            Answer::Port(p) => Some(p),
            _ => None,
        }
    }
    fn host_name(&self, addr: IpAddr) -> Option<String> {
        match self.ask(Query::HostName(addr))? {
            Answer::Name(n) => Some(n),
            _ => None,
        }
    }
    fn service_name(&self, port: u16, proto: &'static str) -> Option<String> {
        match self.ask(Query::ServiceName(port, proto))? {
            Answer::Name(n) => Some(n),
            _ => None,
        }
    }
}

/// The process's resolver: glibc's, with [`BUDGET`].
pub fn system() -> &'static System {
    static SYSTEM: OnceLock<System> = OnceLock::new();
    SYSTEM.get_or_init(|| System::new(BUDGET, glibc))
}

fn ip_proto(proto: &str) -> i32 {
    match proto {
        "udp" => libc::IPPROTO_UDP,
        "sctp" => libc::IPPROTO_SCTP,
        _ => libc::IPPROTO_TCP,
    }
}

/// True for what `gethostbyname` answers without asking anyone: strings of
/// digits and dots not ending in a dot (an address or nothing), and, as an
/// IPv4 lookup, anything with a colon. getaddrinfo would ask DNS about them.
fn never_a_v4_host(name: &str) -> bool {
    name.is_empty()
        || name.contains(':')
        || (name.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !name.ends_with('.'))
}

/// True for what getaddrinfo takes as a port number itself (what `strtoul`
/// reads whole, and nothing): `getservbyname` would find no such name.
fn never_a_service(name: &str) -> bool {
    let t = name.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    name.is_empty() || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The lookups themselves, through glibc (blocking).
pub fn glibc(q: &Query) -> Option<Answer> {
    match q {
        Query::HostV4(name) => {
            if never_a_v4_host(name) {
                return None;
            }
            let hints = AddrInfoHints {
                flags: 0,
                address: libc::AF_INET,
                socktype: libc::SOCK_STREAM,
                protocol: 0,
            };
            getaddrinfo(Some(name), None, Some(hints))
                .ok()?
                .filter_map(Result::ok)
                .find_map(|ai| match ai.sockaddr.ip() {
                    IpAddr::V4(a) => Some(Answer::Addr(a)),
                    IpAddr::V6(_) => None,
                })
        }
        Query::Port(name, proto) => {
            if never_a_service(name) {
                return None;
            }
            let hints = AddrInfoHints {
                flags: 0,
                address: libc::AF_INET,
                socktype: 0,
                protocol: ip_proto(proto),
            };
            getaddrinfo(None, Some(name), Some(hints))
                .ok()?
                .filter_map(Result::ok)
                .map(|ai| Answer::Port(ai.sockaddr.port()))
                .next()
        }
        Query::HostName(addr) => {
            let flags = libc::NI_NAMEREQD | libc::NI_NUMERICSERV;
            let (host, _) = getnameinfo(&SocketAddr::new(*addr, 0), flags).ok()?;
            Some(Answer::Name(host))
        }
        Query::ServiceName(port, proto) => {
            // getnameinfo asks the services database for "udp" with
            // NI_DGRAM and for "tcp" otherwise, and prints the number
            // when it finds nothing.
            if *proto == "sctp" {
                return None;
            }
            let mut flags = libc::NI_NUMERICHOST;
            if *proto == "udp" {
                flags |= libc::NI_DGRAM;
            }
            let sock = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), *port);
            let (_, service) = getnameinfo(&sock, flags).ok()?;
            (service != port.to_string()).then_some(Answer::Name(service))
        }
    }
}

/// The services database's name of a protocol.
pub fn proto_name(p: crate::control::proto::Protocol) -> &'static str {
    match p {
        crate::control::proto::Protocol::Tcp => "tcp",
        crate::control::proto::Protocol::Udp => "udp",
    }
}

/// ipvsadm's longest `host:port` (its buffer holds 59 bytes and the NUL).
const MAX_NAME: usize = 59;

/// An address as glibc's `inet_ntop` writes it: as Rust does, except that
/// IPv6 with six zero words first (and a seventh that is not) ends in
/// dotted IPv4 (`::1.2.3.4`, where Rust writes `::102:304`).
pub fn ntop(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(a) if a.segments()[..6] == [0; 6] && a.segments()[6] != 0 => {
            let o = a.octets();
            format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15])
        }
        _ => addr.to_string(),
    }
}

/// `host:service` as ipvsadm prints it: each part a name where one is
/// found, else the number (always for `proto` None: the `IP` of a fwmark
/// template); IPv6 in brackets; cut to 59 bytes.
pub fn addr_port_name(
    names: &dyn Names,
    addr: IpAddr,
    port: u16,
    proto: Option<&'static str>,
) -> String {
    let host = names.host_name(addr).unwrap_or_else(|| ntop(addr));
    let service = proto
        .and_then(|p| names.service_name(port, p))
        .unwrap_or_else(|| port.to_string());
    let mut s = match addr {
        IpAddr::V4(_) => format!("{host}:{service}"),
        IpAddr::V6(_) => format!("[{host}]:{service}"),
    };
    cut(&mut s, MAX_NAME);
    s
}

/// Cuts `s` to at most `n` bytes (at a character boundary, should a name
/// not be ASCII).
pub fn cut(s: &mut String, n: usize) {
    if s.len() > n {
        let mut i = n;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_answers_from_the_files() {
        // Only names every test machine has in /etc/hosts and
        // /etc/services: nothing here may go to a name server.
        assert_eq!(
            glibc(&Query::HostV4("localhost".into())),
            Some(Answer::Addr(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            glibc(&Query::Port("http".into(), "tcp")),
            Some(Answer::Port(80))
        );
        assert_eq!(
            glibc(&Query::Port("https".into(), "tcp")),
            Some(Answer::Port(443))
        );
        assert_eq!(
            glibc(&Query::Port("domain".into(), "udp")),
            Some(Answer::Port(53))
        );
        assert_eq!(glibc(&Query::Port("nosuchservice".into(), "tcp")), None);
        assert_eq!(
            glibc(&Query::ServiceName(80, "tcp")),
            Some(Answer::Name("http".into()))
        );
        assert_eq!(
            glibc(&Query::ServiceName(53, "udp")),
            Some(Answer::Name("domain".into()))
        );
        assert_eq!(glibc(&Query::ServiceName(0, "tcp")), None);
        assert_eq!(
            glibc(&Query::HostName(Ipv4Addr::LOCALHOST.into())),
            Some(Answer::Name("localhost".into()))
        );
    }

    #[test]
    fn numbers_are_never_looked_up() {
        // getaddrinfo would read these itself (99999 as port 34463, "" as
        // no port) or ask DNS; gethostbyname and getservbyname do neither.
        for s in ["", "80", "99999", " 5", "-1", "+2"] {
            assert_eq!(glibc(&Query::Port(s.into(), "tcp")), None, "{s:?}");
        }
        for s in ["", "10.0.0.256", "1.2.3.4.5", "fe80:", "a:b"] {
            assert_eq!(glibc(&Query::HostV4(s.into())), None, "{s:?}");
        }
    }

    fn slow(q: &Query) -> Option<Answer> {
        match q {
            Query::HostName(a) if a.is_loopback() => Some(Answer::Name("fast".into())),
            Query::HostName(_) | Query::HostV4(_) => {
                std::thread::sleep(Duration::from_secs(30));
                None
            }
            _ => Some(Answer::Name("file".into())),
        }
    }

    #[test]
    fn a_stuck_resolver_costs_the_budget_once() {
        let s = System::new(Duration::from_millis(300), slow);
        let lo = IpAddr::from(Ipv4Addr::LOCALHOST);
        assert_eq!(s.host_name(lo).as_deref(), Some("fast"));
        let t = Instant::now();
        assert_eq!(s.host_name(Ipv4Addr::BROADCAST.into()), None);
        assert_eq!(s.host_v4("stuck"), None);
        assert_eq!(s.host_name("10.0.0.1".parse().unwrap()), None);
        // Cached before the budget ran out; nothing asked after.
        assert_eq!(s.host_name(lo).as_deref(), Some("fast"));
        // What the first lookup took came off the budget already.
        let spent = t.elapsed();
        assert!(spent >= Duration::from_millis(150), "{spent:?}");
        assert!(spent < Duration::from_secs(5), "{spent:?}");
        // Service names have a lane and a budget of their own.
        assert_eq!(s.service_name(80, "tcp").as_deref(), Some("file"));
    }

    #[test]
    fn addresses_print_as_inet_ntop_prints_them() {
        for (a, want) in [
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0:1.2.3.4", "::1.2.3.4"),
            ("::1", "::1"),
            ("::", "::"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::1:0:0:0", "::1:0:0:0"),
            ("1::102:304", "1::102:304"),
            ("2001:db8::1", "2001:db8::1"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(ntop(a.parse().unwrap()), want, "{a}");
        }
    }

    #[test]
    fn names_are_cut_like_ipvsadm() {
        let t = Table {
            hosts: vec![("h".repeat(70), "10.0.0.1".parse().unwrap())],
            services: vec![("http".into(), 80, "tcp")],
        };
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(addr_port_name(&t, v4, 80, Some("tcp")).len(), 59);
        assert_eq!(addr_port_name(&t, v4, 80, Some("udp")).len(), 59);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            addr_port_name(&t, v6, 80, Some("tcp")),
            "[2001:db8::1]:http"
        );
        assert_eq!(addr_port_name(&t, v6, 80, Some("udp")), "[2001:db8::1]:80");
        assert_eq!(addr_port_name(&Numeric, v4, 80, Some("tcp")), "10.0.0.1:80");
        assert_eq!(addr_port_name(&t, v6, 80, None), "[2001:db8::1]:80");
    }
}
