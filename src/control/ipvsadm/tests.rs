//! Grammar tests: every legality rule and message, option order, `-p` with
//! and without a value, IPv6 forms, defaults.

use super::names::Table;
use super::parse::*;
use crate::control::proto::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The names these tests know (a fixed table: no test asks a name server).
fn names() -> Table {
    Table {
        hosts: vec![
            ("web".into(), "10.0.0.1".parse().unwrap()),
            ("backend".into(), "10.1.0.1".parse().unwrap()),
        ],
        services: vec![
            ("http".into(), 80, "tcp"),
            ("www".into(), 80, "tcp"),
            ("https".into(), 443, "tcp"),
            ("domain".into(), 53, "tcp"),
            ("domain".into(), 53, "udp"),
            ("ntp".into(), 123, "udp"),
        ],
    }
}

fn parse(a: &[String]) -> Result<Invocation, ParseError> {
    parse_with(a, &names())
}

fn ok(s: &str) -> Invocation {
    parse(&args(s)).unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

fn cmd(s: &str) -> Command {
    ok(s).command
}

/// Asserts the message and exit code of a refused command line.
fn err(s: &str, code: i32, message: &str) {
    match parse(&args(s)) {
        Ok(i) => panic!("{s}: parsed as {i:?}"),
        Err(e) => {
            assert_eq!(e.message, message, "{s}");
            assert_eq!(e.code, code, "{s}");
        }
    }
}

fn fail(s: &str, message: &str) {
    err(s, EXIT_FAIL, message)
}

const TRYHELP: &str = "Try `rvsadm -h' or 'rvsadm --help' for more information.";

fn key(p: Protocol, a: &str, port: u16) -> ServiceKey {
    ServiceKey {
        protocol: p,
        address: a.parse().unwrap(),
        port,
        fwmark: 0,
    }
}

fn spec(p: Protocol, a: &str, port: u16, sched: &str) -> ServiceSpec {
    ServiceSpec {
        protocol: p,
        address: a.parse().unwrap(),
        port,
        fwmark: 0,
        scheduler: sched.into(),
        flags: vec![],
        persistent: None,
        ops: false,
    }
}

fn dest(a: &str, port: u16, forward: Forward, weight: u32) -> DestSpec {
    DestSpec {
        address: a.parse().unwrap(),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

#[test]
fn no_arguments_lists_everything() {
    assert_eq!(
        cmd(""),
        Command::List(ListCmd::Services {
            service: None,
            format: Format::default()
        })
    );
    let i = ok("--sock /tmp/x --json");
    assert_eq!(i.sock.as_deref(), Some(std::path::Path::new("/tmp/x")));
    assert!(i.json);
}

#[test]
fn command_must_come_first() {
    let f = Format {
        numeric: true,
        ..Format::default()
    };
    let all = Command::List(ListCmd::Services {
        service: None,
        format: f,
    });
    assert_eq!(cmd("-Ln"), all);
    assert_eq!(cmd("-L -n"), all);
    assert_eq!(cmd("-l -n"), all);
    assert_eq!(cmd("--list --numeric"), all);
    err("-n -L", EXIT_USAGE, TRYHELP);
    err("-t 10.0.0.1:80 -A", EXIT_USAGE, TRYHELP);
    err("list", EXIT_USAGE, TRYHELP);
    err("--bogus", EXIT_USAGE, TRYHELP);
    fail("-L -A", "invalid option `-A'");
    fail("-L -h", "invalid option `-h'");
    fail("-A -t 10.0.0.1:80 --list", "invalid option `--list'");
}

#[test]
fn popt_errors_exit_255() {
    err("-L --bogus", EXIT_USAGE, "--bogus: unknown option");
    err("-Lq", EXIT_USAGE, "-Lq: unknown option");
    err("-A -t", EXIT_USAGE, "-t: missing argument");
    err(
        "-L --stats=1",
        EXIT_USAGE,
        "--stats: option does not take an argument",
    );
}

#[test]
fn help_and_version() {
    assert_eq!(cmd("-h"), Command::Help);
    assert_eq!(cmd("--help -L whatever"), Command::Help);
    assert_eq!(cmd("-v"), Command::Version);
    assert_eq!(cmd("--version"), Command::Version);
}

#[test]
fn add_service_defaults_and_long_forms() {
    let want = Command::AddService(spec(Protocol::Tcp, "10.0.0.1", 80, "wlc"));
    assert_eq!(cmd("-A -t 10.0.0.1:80"), want);
    assert_eq!(cmd("--add-service --tcp-service 10.0.0.1:80"), want);
    assert_eq!(cmd("--add-service --tcp-service=10.0.0.1:80"), want);
    assert_eq!(cmd("-At10.0.0.1:80"), want);
    assert_eq!(cmd("-At 10.0.0.1:80"), want);
    let mut s = spec(Protocol::Udp, "10.0.0.1", 53, "rr");
    s.ops = true;
    assert_eq!(
        cmd("-A -u 10.0.0.1:53 -s rr -o"),
        Command::AddService(s.clone())
    );
    assert_eq!(
        cmd("-A --udp-service 10.0.0.1:53 --scheduler rr --ops"),
        Command::AddService(s.clone())
    );
    // Option order does not matter after the command.
    assert_eq!(cmd("-A -o -s rr -u 10.0.0.1:53"), Command::AddService(s));
    assert_eq!(
        cmd("-E -t 10.0.0.1:80 -s sed"),
        Command::EditService(spec(Protocol::Tcp, "10.0.0.1", 80, "sed"))
    );
    assert_eq!(
        cmd("-D -t 10.0.0.1:80"),
        Command::DeleteService(key(Protocol::Tcp, "10.0.0.1", 80))
    );
}

#[test]
fn persistent_with_and_without_value() {
    let p = |timeout, netmask| {
        let mut s = spec(Protocol::Tcp, "10.0.0.1", 80, "wlc");
        s.persistent = Some(Persistence {
            timeout,
            netmask,
            mask: None,
        });
        Command::AddService(s)
    };
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p"), p(360, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p -s wlc"), p(360, 32));
    assert_eq!(cmd("-A -p -t 10.0.0.1:80"), p(360, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p 60"), p(60, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p60"), p(60, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 --persistent=60"), p(60, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 --persistent 60"), p(60, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p 2678400"), p(2678400, 32));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -p 600 -M 255.255.255.0"), p(600, 24));
    assert_eq!(cmd("-A -t 10.0.0.1:80 -M 255.255.0.0 -p"), p(360, 16));
    // -M without -p is accepted and has no effect.
    assert_eq!(
        cmd("-A -t 10.0.0.1:80 -M 255.255.0.0"),
        Command::AddService(spec(Protocol::Tcp, "10.0.0.1", 80, "wlc"))
    );
    fail(
        "-A -t 10.0.0.1:80 -p 0",
        "invalid timeout value `0' specified",
    );
    fail(
        "-A -t 10.0.0.1:80 -p 2678401",
        "invalid timeout value `2678401' specified",
    );
    fail(
        "-A -t 10.0.0.1:80 -p rr",
        "invalid timeout value `rr' specified",
    );
    fail(
        "-A -t 10.0.0.1:80 -p -M 10.0.0.256",
        "illegal virtual server persistent mask specified",
    );
    fail(
        "-A -M 64/x -t [2001:db8::1]:80 -p",
        "illegal virtual server persistent mask specified",
    );
    fail(
        "-A -t [2001:db8::1]:80 -p -M 0",
        "illegal ipv6 netmask specified",
    );
}

/// `-M` as ipvsadm reads it: where it stands, with the family known so
/// far; any IPv4 mask (the kernel keeps `255.0.255.0` and `0.0.0.24`).
#[test]
fn masks_are_read_where_they_stand() {
    let mask = |line: &str| match parse(&args(line)).unwrap().command {
        Command::AddService(s) => s
            .persistent
            .map(|p| (p.netmask, p.mask.map(|m| m.to_string()))),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        mask("-A -t 10.0.0.1:80 -p -M 255.255.255.0"),
        Some((24, None))
    );
    assert_eq!(
        mask("-A -t 10.0.0.1:80 -p -M 255.0.255.0"),
        Some((8, Some("255.0.255.0".into())))
    );
    assert_eq!(
        mask("-A -t 10.0.0.1:80 -p -M 24"),
        Some((0, Some("0.0.0.24".into())))
    );
    assert_eq!(mask("-A -t [2001:db8::1]:80 -p -M 64"), Some((64, None)));
    // Before the IPv6 service: read as IPv4, and the service keeps the
    // host mask, as the kernel's listing shows.
    assert_eq!(mask("-A -M 64 -t [2001:db8::1]:80 -p"), Some((128, None)));
    assert_eq!(mask("-A -f 1 -6 -p -M 64"), Some((64, None)));
    assert_eq!(mask("-A -f 1 -p -M 64"), Some((0, Some("0.0.0.64".into()))));
}

#[test]
fn fwmark_services_and_mark_rules() {
    let inv = |line: &str| parse(&args(line)).unwrap().command;
    let Command::AddService(s) = inv("-A -f 1 -s rr") else {
        panic!()
    };
    assert_eq!(
        (s.fwmark, s.address, s.port),
        (1, "0.0.0.0".parse().unwrap(), 0)
    );
    let Command::AddService(s) = inv("-A -f 4294967295 -6") else {
        panic!()
    };
    assert_eq!((s.fwmark, s.address), (u32::MAX, "::".parse().unwrap()));
    // Real servers keep their port, 0 when none, whatever the method.
    for (line, port) in [
        ("-a -f 1 -r 10.1.0.1 -g", 0),
        ("-a -f 1 -r 10.1.0.1:443 -g", 443),
        ("-a -f 1 -r 10.1.0.1 -m", 0),
        ("-a -f 1 -r 10.1.0.1:8080 -i", 8080),
    ] {
        let Command::AddDest(k, d) = inv(line) else {
            panic!()
        };
        assert_eq!((k.fwmark, d.port), (1, port), "{line}");
    }
    fail("-A -f 0", "invalid fwmark value `0' specified");
    fail("-A -6 -f 1", "-6 used before -f\n");
    let Command::AddMark(m) = inv("--add-mark -t 10.0.0.0/24:80-89 -f 7") else {
        panic!()
    };
    assert_eq!(m.mark, 7);
    assert_eq!(m.matches.prefix, Some(24));
    assert_eq!(m.matches.ports, Some([80, 89]));
    let Command::DeleteMark(m) = inv("--delete-mark -u [2001:db8::1]:53") else {
        panic!()
    };
    assert_eq!(m.protocol, Protocol::Udp);
    assert!(matches!(inv("--marks"), Command::Marks));
    fail("--add-mark -t 10.0.0.1:80", "--add-mark needs -f MARK");
    fail("--delete-mark -f 1", "invalid option `-f'");
    fail("--add-mark -f 1", "a mark rule needs -t or -u");
    fail(
        "--add-mark -t 10.0.0.1:99999 -f 1",
        "illegal mark target `10.0.0.1:99999' specified (ADDRESS[/PREFIX][:PORT[-PORT]], IPv6 in [])",
    );
    fail("--add-mark -t 10.0.0.1 -f 1 -s rr", "invalid option `-s'");
}

#[test]
fn zero_port_needs_persistence() {
    fail(
        "-A -t 10.0.0.1",
        "Zero port specified for non-persistent service",
    );
    fail(
        "-E -t 10.0.0.1:0",
        "Zero port specified for non-persistent service",
    );
    let mut s = spec(Protocol::Tcp, "10.0.0.1", 0, "wlc");
    s.persistent = Some(Persistence {
        timeout: 360,
        netmask: 32,
        mask: None,
    });
    assert_eq!(cmd("-A -t 10.0.0.1 -p"), Command::AddService(s));
}

#[test]
fn ipv6_forms() {
    let mut s = spec(Protocol::Tcp, "2001:db8::1", 443, "mh");
    s.flags = vec![SchedFlag::MhFallback, SchedFlag::MhPort];
    s.persistent = Some(Persistence {
        timeout: 100,
        netmask: 64,
        mask: None,
    });
    assert_eq!(
        cmd("-A -t [2001:db8::1]:443 -s mh -b mh-port,mh-fallback -p 100 -M 64"),
        Command::AddService(s)
    );
    let mut s = spec(Protocol::Udp, "2001:db8::1", 0, "wlc");
    s.persistent = Some(Persistence {
        timeout: 360,
        netmask: 128,
        mask: None,
    });
    assert_eq!(cmd("-A -u 2001:db8::1 -p"), Command::AddService(s));
    fail(
        "-A -t [2001:db8::1]:443 -p -M 0",
        "illegal ipv6 netmask specified",
    );
    fail(
        "-A -t [2001:db8::1]:443 -p -M 129",
        "illegal ipv6 netmask specified",
    );
    fail(
        "-A -t [2001:db8::1] -p",
        "illegal virtual server address[:port] specified",
    );
    assert_eq!(
        cmd("-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m"),
        Command::AddDest(
            key(Protocol::Tcp, "2001:db8::1", 80),
            dest("2001:db8::10", 8080, Forward::Masq, 1)
        )
    );
    assert_eq!(
        cmd("-L -n -t [2001:db8::1]:80"),
        Command::List(ListCmd::Services {
            service: Some(key(Protocol::Tcp, "2001:db8::1", 80)),
            format: Format {
                numeric: true,
                ..Format::default()
            }
        })
    );
}

#[test]
fn bad_addresses() {
    for a in [
        "80",
        "10.0.0.1:99999",
        "nohost:80",
        "10.0.0.1:",
        "[::1]80",
        "10.0.0.256:80",
        "[::1]:nosuch",
    ] {
        fail(
            &format!("-A -t {a}"),
            "illegal virtual server address[:port] specified",
        );
    }
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1:x",
        "illegal real server address[:port] specified",
    );
}

#[test]
fn host_and_service_names() {
    let svc = |p, a, port| key(p, a, port);
    assert_eq!(
        cmd("-D -t web:http"),
        Command::DeleteService(svc(Protocol::Tcp, "10.0.0.1", 80))
    );
    assert_eq!(
        cmd("-D -u web:domain"),
        Command::DeleteService(svc(Protocol::Udp, "10.0.0.1", 53))
    );
    assert_eq!(
        cmd("-D -u 10.0.0.1:ntp"),
        Command::DeleteService(svc(Protocol::Udp, "10.0.0.1", 123))
    );
    // Per protocol: ntp is UDP only, http TCP only.
    for bad in [
        "-D -t 10.0.0.1:ntp",
        "-D -u 10.0.0.1:http",
        "-D -t nohost:80",
    ] {
        fail(bad, "illegal virtual server address[:port] specified");
    }
    // -r reads a port name for the protocol of the service before it.
    assert_eq!(
        cmd("-a -t web:www -r backend:https -m"),
        Command::AddDest(
            svc(Protocol::Tcp, "10.0.0.1", 80),
            dest("10.1.0.1", 443, Forward::Masq, 1)
        )
    );
    assert_eq!(
        cmd("-d -u web:domain -r backend:ntp"),
        Command::DeleteDest(
            svc(Protocol::Udp, "10.0.0.1", 53),
            DestKey {
                address: "10.1.0.1".parse().unwrap(),
                port: 123
            }
        )
    );
    fail(
        "-a -r backend:https -t web:www -m",
        "illegal real server address[:port] specified",
    );
    fail(
        "-a -t web:www -r nohost:80 -m",
        "illegal real server address[:port] specified",
    );
    // inet_aton's forms, and brackets that drop the port.
    assert_eq!(
        cmd("-D -t 10.1:80"),
        Command::DeleteService(svc(Protocol::Tcp, "10.0.0.1", 80))
    );
    assert_eq!(
        cmd("-D -t 0x0a.0.0.1:80"),
        Command::DeleteService(svc(Protocol::Tcp, "10.0.0.1", 80))
    );
    assert_eq!(
        cmd("-D -t 167772161:80"),
        Command::DeleteService(svc(Protocol::Tcp, "10.0.0.1", 80))
    );
    assert_eq!(
        cmd("-D -t [web]:80"),
        Command::DeleteService(svc(Protocol::Tcp, "10.0.0.1", 0))
    );
    fail(
        "-A -t [10.0.0.1]:80",
        "Zero port specified for non-persistent service",
    );
}

#[test]
fn system_names_from_the_files() {
    // glibc's own lookups, with names every machine has in /etc/hosts and
    // /etc/services (answered from the files, never by a name server).
    let a = args("-a -t localhost:http -r localhost:https -m");
    assert_eq!(
        super::parse::parse(&a).unwrap().command,
        Command::AddDest(
            key(Protocol::Tcp, "127.0.0.1", 80),
            dest("127.0.0.1", 443, Forward::Masq, 1)
        )
    );
    let a = args("-D -u localhost:domain");
    assert_eq!(
        super::parse::parse(&a).unwrap().command,
        Command::DeleteService(key(Protocol::Udp, "127.0.0.1", 53))
    );
}

#[test]
fn sched_flags() {
    let mut s = spec(Protocol::Tcp, "10.0.0.1", 443, "sh");
    s.flags = vec![SchedFlag::ShFallback, SchedFlag::ShPort];
    assert_eq!(
        cmd("-A -t 10.0.0.1:443 -s sh -b sh-port,sh-fallback"),
        Command::AddService(s.clone())
    );
    // Flags are read with the final scheduler, wherever -s is.
    assert_eq!(
        cmd("-A -b sh-fallback,sh-port -t 10.0.0.1:443 -s sh"),
        Command::AddService(s.clone())
    );
    assert_eq!(
        cmd("-A -t 10.0.0.1:443 -s sh -b flag-1,flag-2"),
        Command::AddService(s)
    );
    fail(
        "-A -t 10.0.0.1:443 -b sh-port",
        "incompatible scheduler flag `sh-port'",
    );
    fail(
        "-A -t 10.0.0.1:443 -s sh -b mh-port",
        "incompatible scheduler flag `mh-port'",
    );
    fail(
        "-A -t 10.0.0.1:443 -s sh -b bogus",
        "invalid scheduler flag `bogus'",
    );
    fail(
        "-A -t 10.0.0.1:443 -s rr -b flag-1",
        "rvs: scheduler flag `flag-1' is not supported with the 'rr' scheduler",
    );
    // Checked before legality, like ipvsadm.
    fail("-D -t 10.0.0.1:443 -b x", "invalid scheduler flag `x'");
    fail(
        "-D -t 10.0.0.1:443 -s sh -b sh-port",
        "Illegal 'scheduler' option with the 'delete-service' command",
    );
}

#[test]
fn ops_only_for_udp() {
    fail(
        "-A -t 10.0.0.1:80 -o",
        "One-Packet Scheduling is only for UDP virtual services",
    );
}

#[test]
fn real_server_defaults_and_forwarding() {
    let k = key(Protocol::Tcp, "10.0.0.1", 80);
    // DR by default, weight 1, port forced to the virtual port.
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 10.1.0.1"),
        Command::AddDest(k, dest("10.1.0.1", 80, Forward::Route, 1))
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 10.1.0.1:8080"),
        Command::AddDest(k, dest("10.1.0.1", 80, Forward::Route, 1))
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -i"),
        Command::AddDest(k, dest("10.1.0.1", 80, Forward::IPIP, 1))
    );
    // NAT keeps the port; without one it takes the virtual port.
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 0"),
        Command::AddDest(k, dest("10.1.0.1", 8080, Forward::Masq, 0))
    );
    assert_eq!(
        cmd("--add-server --tcp-service 10.0.0.1:80 --real-server 10.1.0.1 --masquerading --weight 7"),
        Command::AddDest(k, dest("10.1.0.1", 80, Forward::Masq, 7))
    );
    let mut d = dest("10.1.0.1", 80, Forward::Route, 3);
    d.u_threshold = 100;
    d.l_threshold = 50;
    assert_eq!(
        cmd("-e -t 10.0.0.1:80 -r 10.1.0.1 -g -w 3 -x 100 -y 50"),
        Command::EditDest(k, d)
    );
    assert_eq!(
        cmd("-e -t 10.0.0.1:80 -r 10.1.0.1 --gatewaying --weight 3 --u-threshold 100 --l-threshold 50"),
        Command::EditDest(k, d)
    );
    // Delete keeps the given port whatever the method.
    assert_eq!(
        cmd("-d -t 10.0.0.1:80 -r 10.1.0.1:8080"),
        Command::DeleteDest(
            k,
            DestKey {
                address: "10.1.0.1".parse().unwrap(),
                port: 8080
            }
        )
    );
    assert_eq!(
        cmd("-d -t 10.0.0.1:80 -r 10.1.0.1"),
        Command::DeleteDest(
            k,
            DestKey {
                address: "10.1.0.1".parse().unwrap(),
                port: 80
            }
        )
    );
    // The kernel's weights are C ints.
    assert!(matches!(
        cmd("-a -t 10.0.0.1:80 -r 10.1.0.1 -w 2147483647"),
        Command::AddDest(_, d) if d.weight == 2147483647
    ));
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1 -w 2147483648",
        "illegal weight specified",
    );
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1 -w -1",
        "illegal weight specified",
    );
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1 -x 2147483648",
        "illegal u_threshold specified",
    );
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1 -y z",
        "illegal l_threshold specified",
    );
    fail(
        "-a -t 10.0.0.1:80 -r 10.1.0.1 -m -g",
        "multiple 'forwarding-method' options specified",
    );
    fail(
        "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m",
        "Different address family is allowed only for tunneling servers",
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:80 -r 2001:db8::2 -i"),
        Command::AddDest(k, dest("2001:db8::2", 80, Forward::IPIP, 1))
    );
}

#[test]
fn tunnel_options() {
    let k = key(Protocol::Tcp, "10.0.0.1", 443);
    let gue = |csum| Forward::Tunnel {
        kind: TunnelType::Gue,
        port: Some(6080),
        csum,
    };
    assert_eq!(
        cmd("-a -t 10.0.0.1:443 -r 10.0.0.3 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum"),
        Command::AddDest(k, dest("10.0.0.3", 443, gue(TunnelCsum::Nocsum), 2))
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gue --tun-port 6080"),
        Command::AddDest(k, dest("10.0.0.3", 443, gue(TunnelCsum::Nocsum), 1))
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
        Command::AddDest(k, dest("10.0.0.3", 443, gue(TunnelCsum::Remcsum), 1))
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gre --tun-csum"),
        Command::AddDest(
            k,
            dest(
                "10.0.0.3",
                443,
                Forward::Tunnel {
                    kind: TunnelType::Gre,
                    port: None,
                    csum: TunnelCsum::Csum
                },
                1
            )
        )
    );
    assert_eq!(
        cmd("-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type ipip"),
        Command::AddDest(k, dest("10.0.0.3", 443, Forward::IPIP, 1))
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -m --tun-type gue --tun-port 1",
        "Tunnel options conflict with forward method",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 --tun-csum",
        "Tunnel options conflict with forward method",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gue",
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-port 6080",
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-csum",
        "Illegal 'tun-csum' option with the 'ipip' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gre --tun-port 1",
        "Illegal 'tun-port' option with the 'gre' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gre --tun-remcsum",
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gue --tun-port 1 --tun-remcsum --tun-csum",
        "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type vxlan",
        "illegal tunnel type specified",
    );
    fail(
        "-a -t 10.0.0.1:443 -r 10.0.0.3 -i --tun-type gue --tun-port 0",
        "illegal tunnel port specified",
    );
    fail(
        "-A -t 10.0.0.1:443 --tun-type gue",
        "Illegal 'tun-type' option with the 'add-service' command",
    );
}

#[test]
fn missing_required_options() {
    for (c, name) in [
        ("-A", "add-service"),
        ("-E", "edit-service"),
        ("-D", "delete-service"),
        ("-a", "add-server"),
        ("-e", "edit-server"),
        ("-d", "delete-server"),
    ] {
        fail(
            c,
            &format!("You need to supply the 'service-address' option for the '{name}' command"),
        );
    }
    for (c, name) in [
        ("-a", "add-server"),
        ("-e", "edit-server"),
        ("-d", "delete-server"),
    ] {
        fail(
            &format!("{c} -t 10.0.0.1:80"),
            &format!("You need to supply the 'real-server' option for the '{name}' command"),
        );
    }
}

/// Every option class that is illegal with a command gets the message, in
/// table order (the lowest class wins).
#[test]
fn illegal_options_per_command() {
    let cases: &[(&str, &str, &str)] = &[
        ("-A -t 10.0.0.1:80 -n", "numeric", "add-service"),
        ("-A -t 10.0.0.1:80 -c", "connection", "add-service"),
        (
            "-A -t 10.0.0.1:80 -r 10.1.0.1",
            "real-server",
            "add-service",
        ),
        ("-A -t 10.0.0.1:80 -m", "forwarding-method", "add-service"),
        ("-A -t 10.0.0.1:80 -w 1", "weight", "add-service"),
        ("-A -t 10.0.0.1:80 -x 1", "u-threshold", "add-service"),
        ("-A -t 10.0.0.1:80 -y 1", "l-threshold", "add-service"),
        ("-A -t 10.0.0.1:80 --stats", "stats", "add-service"),
        ("-A -t 10.0.0.1:80 --rate", "rate", "add-service"),
        ("-A -t 10.0.0.1:80 --exact", "exact", "add-service"),
        ("-A -t 10.0.0.1:80 --nosort", "nosort", "add-service"),
        ("-A -t 10.0.0.1:80 --timeout", "timeout", "add-service"),
        ("-A -t 10.0.0.1:80 --daemon", "daemon", "add-service"),
        (
            "-A -t 10.0.0.1:80 --thresholds",
            "thresholds",
            "add-service",
        ),
        (
            "-A -t 10.0.0.1:80 --persistent-conn",
            "persistent-conn",
            "add-service",
        ),
        ("-A -t 10.0.0.1:80 --tun-info", "tun-info", "add-service"),
        ("-A -t 10.0.0.1:80 --syncid 1", "syncid", "add-service"),
        (
            "-A -t 10.0.0.1:80 --mcast-interface eth0",
            "mcast-interface",
            "add-service",
        ),
        (
            "-A -t 10.0.0.1:80 --mcast-group 224.0.0.81",
            "mcast-group",
            "add-service",
        ),
        (
            "-A -t 10.0.0.1:80 --mcast-port 1",
            "mcast-port",
            "add-service",
        ),
        (
            "-A -t 10.0.0.1:80 --mcast-ttl 1",
            "mcast-ttl",
            "add-service",
        ),
        (
            "-A -t 10.0.0.1:80 --sync-maxlen 100",
            "sync-maxlen",
            "add-service",
        ),
        ("-E -t 10.0.0.1:80 -w 1", "weight", "edit-service"),
        ("-D -t 10.0.0.1:80 -s rr", "scheduler", "delete-service"),
        ("-D -t 10.0.0.1:80 -p", "persistent", "delete-service"),
        (
            "-D -t 10.0.0.1:80 -M 255.0.0.0",
            "netmask",
            "delete-service",
        ),
        ("-D -t 10.0.0.1:80 -o", "ops", "delete-service"),
        ("-D -t 10.0.0.1:80 --pe sip", "pe", "delete-service"),
        ("-C -t 10.0.0.1:80", "service-address", "flush"),
        ("-C -n", "numeric", "flush"),
        ("-L -s rr", "scheduler", "list"),
        ("-L -r 10.1.0.1", "real-server", "list"),
        ("-L -o", "ops", "list"),
        ("-L --tun-type gue", "tun-type", "list"),
        (
            "-a -t 10.0.0.1:80 -r 10.1.0.1 -s rr",
            "scheduler",
            "add-server",
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.1.0.1 -p",
            "persistent",
            "add-server",
        ),
        ("-a -t 10.0.0.1:80 -r 10.1.0.1 -n", "numeric", "add-server"),
        (
            "-a -t 10.0.0.1:80 -r 10.1.0.1 --tun-info",
            "tun-info",
            "add-server",
        ),
        ("-e -t 10.0.0.1:80 -r 10.1.0.1 -o", "ops", "edit-server"),
        (
            "-d -t 10.0.0.1:80 -r 10.1.0.1 -m",
            "forwarding-method",
            "delete-server",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.1.0.1 -w 2",
            "weight",
            "delete-server",
        ),
        (
            "-d -t 10.0.0.1:80 -r 10.1.0.1 --tun-type gue",
            "tun-type",
            "delete-server",
        ),
        ("--set 1 2 3 -n", "numeric", "set"),
        ("-R -n", "numeric", "restore"),
        ("-S -c", "connection", "save"),
        ("-S --stats", "stats", "save"),
        ("-S -t 10.0.0.1:80", "service-address", "save"),
        ("-Z -n", "numeric", "zero"),
        ("-Z -t 10.0.0.1:80 -s rr", "scheduler", "zero"),
        ("--start-daemon master -n", "numeric", "start-daemon"),
        (
            "--stop-daemon master --mcast-interface eth0",
            "mcast-interface",
            "stop-daemon",
        ),
    ];
    for (line, opt, command) in cases {
        fail(
            line,
            &format!("Illegal '{opt}' option with the '{command}' command"),
        );
    }
    // Table order: numeric (0) is reported before weight (8).
    fail(
        "-A -w 1 -n -t 10.0.0.1:80",
        "Illegal 'numeric' option with the 'add-service' command",
    );
    // An illegal option is reported before a missing one of higher class.
    fail(
        "-a -n",
        "Illegal 'numeric' option with the 'add-server' command",
    );
}

#[test]
fn list_variants_and_conflicts() {
    let f = |g: fn(&mut Format)| {
        let mut x = Format::default();
        g(&mut x);
        x
    };
    assert_eq!(
        cmd("-L -n --stats --exact"),
        Command::List(ListCmd::Services {
            service: None,
            format: f(|x| {
                x.numeric = true;
                x.stats = true;
                x.exact = true
            })
        })
    );
    assert_eq!(
        cmd("-Lnc --persistent-conn"),
        Command::List(ListCmd::Connections(f(|x| {
            x.numeric = true;
            x.persistent_conn = true
        })))
    );
    assert_eq!(cmd("-L --timeout"), Command::List(ListCmd::Timeout));
    assert_eq!(cmd("-L --daemon"), Command::List(ListCmd::Daemon));
    assert_eq!(
        cmd("-L --rate --thresholds --persistent-conn --nosort --tun-info --sort"),
        Command::List(ListCmd::Services {
            service: None,
            format: f(|x| {
                x.rate = true;
                x.thresholds = true;
                x.persistent_conn = true;
                x.nosort = true;
                x.tun_info = true
            })
        })
    );
    fail(
        "-L -c -t 10.0.0.1:80",
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    );
    fail(
        "-L --timeout --daemon",
        "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
    );
    fail(
        "-L -t 10.0.0.1:80 --timeout",
        "The option 'timeout' conflicts with the 'service-address' option in the 'list' command",
    );
    for bad in [
        "-L -c --stats",
        "-L -c --rate",
        "-L -c --thresholds",
        "-L --timeout --stats",
        "-L --daemon --rate",
        "-L --timeout --persistent-conn",
        "-L --daemon --persistent-conn",
    ] {
        fail(bad, "options conflicts in the list command");
    }
    fail("-L -n -n", "multiple 'numeric' options specified");
    fail(
        "-L -t 10.0.0.1:80 -u 10.0.0.1:80",
        "multiple 'service-address' options specified",
    );
    fail("-L foo", "unexpected argument foo");
}

#[test]
fn set_zero_save_restore_clear() {
    assert_eq!(
        cmd("--set 900 0 300"),
        Command::Set(Timeouts {
            tcp: 900,
            tcpfin: 0,
            udp: 300
        })
    );
    fail("--set 900 120", "--set option requires 3 timeout values");
    fail("--set 900 120 300 5", "unexpected argument 5");
    fail("--set 900 x 300", "invalid timeout value `x' specified");
    fail(
        "--set 900 1 2678401",
        "invalid timeout value `2678401' specified",
    );
    assert_eq!(cmd("-Z"), Command::Zero(None));
    assert_eq!(
        cmd("--zero -u 10.0.0.1:53"),
        Command::Zero(Some(key(Protocol::Udp, "10.0.0.1", 53)))
    );
    assert!(matches!(cmd("-S"), Command::Save(_)));
    assert!(matches!(
        cmd("-Sn"),
        Command::Save(Format { numeric: true, .. })
    ));
    assert!(matches!(cmd("--save --numeric"), Command::Save(_)));
    assert_eq!(cmd("-R"), Command::Restore);
    assert_eq!(cmd("--restore"), Command::Restore);
    assert_eq!(cmd("-C"), Command::Clear);
    assert_eq!(cmd("--clear"), Command::Clear);
    fail("-C extra", "unexpected argument extra");
}

#[test]
fn unsupported_features_are_parsed_then_refused() {
    fail("-A -f x", "invalid fwmark value `x' specified");
    fail(
        "-A -f 1 -r 10.1.0.1",
        "Illegal 'real-server' option with the 'add-service' command",
    );
    fail(
        "-A --sctp-service 10.0.0.1:80",
        "rvs: SCTP services are not supported",
    );
    fail(
        "-A -t 10.0.0.1:80 -p --pe sip",
        "rvs: persistence engines (--pe) are not supported",
    );
    fail(
        "--start-daemon master --syncid 3",
        "rvs: the connection synchronization daemon is not supported",
    );
    fail(
        "--start-daemon primary",
        "illegal start-daemon parameter specified",
    );
    fail("--stop-daemon x", "illegal start_daemon specified");
    fail(
        "-A -t 10.0.0.1:80 --mcast-group 10.0.0.1",
        "invalid IPv4 mcast-group `10.0.0.1'",
    );
}

#[test]
fn rvs_options_anywhere_after_the_command() {
    let i = ok("-L --sock /run/x.sock -n --json");
    assert_eq!(i.sock.as_deref(), Some(std::path::Path::new("/run/x.sock")));
    assert!(i.json);
    let i = ok("-A --sock=/s -t 10.0.0.1:80");
    assert_eq!(i.sock.as_deref(), Some(std::path::Path::new("/s")));
    err("--sock /s -L", EXIT_USAGE, TRYHELP);
    assert_eq!(cmd("--ports"), Command::Ports);
    assert_eq!(cmd("--lcores --sock /s"), Command::Lcores);
    assert_eq!(cmd("--counters --json"), Command::Counters);
    fail(
        "--counters -n",
        "rvs: this command takes no options besides --sock and --json",
    );
}
