//! Golden tests of every rvsadm output format, from a rich in-memory rule
//! set answered by a fake transport. `UPDATE_GOLDEN=1` rewrites the files
//! (then review the diff by hand against docs/reference).

use rvs::control::client::{ClientError, Transport};
use rvs::control::handler::{NoDataPlane, RulesHandler};
use rvs::control::ipvsadm::names::Table;
use rvs::control::ipvsadm::restore::parse_restore;
use rvs::control::ipvsadm::save::save;
use rvs::control::ipvsadm::{execute_with, parse_with};
use rvs::control::proto::*;
use rvs::control::server::Handler;
use rvs::lb::rules::Rules;
use std::path::PathBuf;

fn stats(base: u64) -> Stats {
    Stats {
        conns: base,
        inpkts: base * 10,
        outpkts: base * 9,
        inbytes: base * 1000,
        outbytes: base * 100_000,
    }
}

fn rate(base: u64) -> Rates {
    Rates {
        cps: base,
        inpps: base * 10,
        outpps: base * 1000,
        inbps: base * 100_000,
        outbps: base * 1_000_000,
    }
}

fn d(addr: &str, port: u16, forward: Forward, weight: u32, act: u32, inact: u32) -> DestEntry {
    DestEntry {
        spec: DestSpec {
            address: addr.parse().unwrap(),
            port,
            forward,
            weight,
            u_threshold: 0,
            l_threshold: 0,
        },
        active_conns: act,
        inactive_conns: inact,
        persist_conns: act / 2,
        stats: Stats::default(),
        rate: Rates::default(),
    }
}

fn s(protocol: Protocol, addr: &str, port: u16, sched: &str) -> ServiceEntry {
    ServiceEntry {
        spec: ServiceSpec {
            protocol,
            address: addr.parse().unwrap(),
            port,
            fwmark: 0,
            scheduler: sched.into(),
            flags: vec![],
            persistent: None,
            ops: false,
        },
        stats: Stats::default(),
        rate: Rates::default(),
        dests: vec![],
    }
}

/// Services in a deliberately unsorted order (as a daemon might keep them).
fn services() -> Vec<ServiceEntry> {
    let mut v6 = s(Protocol::Tcp, "2001:db8::1", 443, "mh");
    v6.spec.flags = vec![SchedFlag::MhPort, SchedFlag::MhFallback];
    v6.spec.persistent = Some(Persistence {
        timeout: 100,
        netmask: 64,
        mask: None,
    });
    v6.dests = vec![
        d("2001:db8::11", 443, Forward::Route, 0, 0, 4),
        d("2001:db8::10", 443, Forward::Route, 5, 1, 2),
    ];
    v6.stats = stats(42);
    v6.rate = rate(1);

    let mut sh = s(Protocol::Tcp, "192.168.1.100", 443, "sh");
    sh.spec.flags = vec![SchedFlag::ShFallback, SchedFlag::ShPort];
    let mut gue = d(
        "10.0.0.3",
        443,
        Forward::Tunnel {
            kind: TunnelType::Gue,
            port: Some(6080),
            csum: TunnelCsum::Nocsum,
        },
        2,
        7,
        1,
    );
    gue.stats = stats(100_000_000);
    gue.rate = rate(1_000_000);
    let mut gre = d(
        "10.0.0.4",
        443,
        Forward::Tunnel {
            kind: TunnelType::Gre,
            port: None,
            csum: TunnelCsum::Csum,
        },
        3,
        0,
        0,
    );
    gre.stats = stats(1_500_000_000);
    let mut gue_r = d(
        "10.0.0.7",
        443,
        Forward::Tunnel {
            kind: TunnelType::Gue,
            port: Some(5555),
            csum: TunnelCsum::Remcsum,
        },
        1,
        0,
        0,
    );
    gue_r.stats = stats(123_456_789_012);
    let ipip = d("10.0.0.5", 443, Forward::IPIP, 4, 10, 20);
    let mut route = d("10.0.0.6", 443, Forward::Route, 65535, 1234567, 7654321);
    route.spec.u_threshold = 100;
    route.spec.l_threshold = 50;
    sh.dests = vec![route, ipip, gue_r, gre, gue];
    sh.stats = stats(99_999_999);
    sh.rate = rate(99);

    let mut web = s(Protocol::Tcp, "192.168.1.100", 80, "wlc");
    let mut a = d("10.0.0.1", 80, Forward::Masq, 1, 3, 12);
    a.stats = stats(12345);
    a.rate = rate(3);
    let mut b = d("10.0.0.2", 8080, Forward::Masq, 2, 0, 0);
    b.spec.u_threshold = 2000;
    b.stats = stats(250_000_000_000);
    b.rate = rate(123_456_789);
    web.dests = vec![b, a];
    web.stats = stats(123_456_789_012_345);
    web.rate = rate(12);

    let mut dns = s(Protocol::Udp, "192.168.1.100", 53, "rr");
    dns.spec.persistent = Some(Persistence {
        timeout: 360,
        netmask: 24,
        mask: None,
    });
    let mut sip = s(Protocol::Udp, "192.168.1.100", 5060, "wlc");
    sip.spec.ops = true;
    sip.dests = vec![d("10.0.0.9", 5060, Forward::Route, 1, 0, 3)];
    let mut any = s(Protocol::Tcp, "10.0.0.1", 0, "wlc");
    any.spec.persistent = Some(Persistence {
        timeout: 3600,
        netmask: 0,
        mask: None,
    });
    any.dests = vec![d("10.1.0.1", 0, Forward::Route, 1, 0, 0)];
    let v6udp = s(Protocol::Udp, "2001:db8::1", 53, "dh");

    vec![v6, sh, web, dns, v6udp, sip, any]
}

fn conns() -> Vec<ConnEntry> {
    let c = |p, expire, state: &str, cl: &str, v: &str, d: &str, template| ConnEntry {
        protocol: p,
        expire,
        state: state.into(),
        client: cl.parse().unwrap(),
        virtual_addr: v.parse().unwrap(),
        destination: d.parse().unwrap(),
        template,
    };
    vec![
        c(
            ConnProtocol::Tcp,
            899,
            "ESTABLISHED",
            "10.0.0.2:51234",
            "192.168.1.100:80",
            "10.0.0.1:80",
            false,
        ),
        c(
            ConnProtocol::Tcp,
            5,
            "SYN_RECV",
            "172.16.254.253:65535",
            "192.168.1.100:443",
            "10.0.0.3:443",
            false,
        ),
        c(
            ConnProtocol::Udp,
            300,
            "UDP",
            "10.9.8.7:5353",
            "192.168.1.100:53",
            "10.0.0.9:53",
            false,
        ),
        c(
            ConnProtocol::Tcp,
            359,
            "NONE",
            "10.0.0.0:0",
            "10.0.0.1:0",
            "10.1.0.1:0",
            true,
        ),
        c(
            ConnProtocol::Tcp,
            6000,
            "TIME_WAIT",
            "[2001:db8::99]:40000",
            "[2001:db8::1]:443",
            "[2001:db8::10]:443",
            false,
        ),
    ]
}

struct Fake;

impl Transport for Fake {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        Ok(match req {
            Request::Version => Response::Version {
                version: VersionInfo {
                    rvs: "0.1.0".into(),
                    ipvs: "1.2.1".into(),
                    conn_tab_size: 4096,
                    protocol: 1,
                },
            },
            Request::ListServices { service: None } => Response::Services {
                services: services(),
            },
            Request::ListServices { service: Some(k) } => Response::Services {
                services: services()
                    .into_iter()
                    .filter(|s| s.spec.key() == *k)
                    .collect(),
            },
            Request::ListConnections => Response::Connections {
                connections: conns(),
            },
            Request::GetTimeouts => Response::Timeouts {
                timeouts: Timeouts {
                    tcp: 900,
                    tcpfin: 120,
                    udp: 300,
                },
            },
            Request::Save => Response::Rules { rules: rules() },
            _ => Response::error("unexpected"),
        })
    }
}

fn rules() -> RuleSet {
    RuleSet {
        marks: vec![],
        services: services()
            .into_iter()
            .map(|s| ServiceRules {
                service: s.spec,
                dests: s.dests.into_iter().map(|d| d.spec).collect(),
            })
            .collect(),
    }
}

/// Host and service names for the listings without `-n` (a fixed table:
/// no test asks a name server). Long ones show where ipvsadm cuts.
fn names() -> Table {
    let h = |n: &str, a: &str| (n.to_string(), a.parse().unwrap());
    Table {
        hosts: vec![
            h("vip.example.com", "192.168.1.100"),
            h("web-one.backends.example.net", "10.0.0.1"),
            h("web2", "10.0.0.2"),
            h("a-rather-long-real-server-name.example.com", "10.0.0.3"),
            h("v6.example.com", "2001:db8::1"),
            h(
                "a-very-long-ipv6-real-server-name.example.com",
                "2001:db8::10",
            ),
            h(&format!("{}.example", "x".repeat(52)), "2001:db8::11"),
        ],
        services: vec![
            ("http".into(), 80, "tcp"),
            ("https".into(), 443, "tcp"),
            ("http-alt".into(), 8080, "tcp"),
            ("domain".into(), 53, "udp"),
            ("sip".into(), 5060, "udp"),
        ],
    }
}

fn run(cmdline: &str) -> String {
    let args: Vec<String> = cmdline.split_whitespace().map(String::from).collect();
    let names = names();
    let inv = parse_with(&args, &names).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = execute_with(
        &inv,
        &mut Fake,
        &names,
        &mut std::io::empty(),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{cmdline}: {}", String::from_utf8_lossy(&err));
    String::from_utf8(out).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 to create)", path.display()));
    assert_eq!(actual, want, "output differs from {}", path.display());
}

#[test]
fn list_default() {
    golden("list", &run("-Ln"));
}

#[test]
fn list_names() {
    // Without -n: names where found, cut where ipvsadm cuts them.
    let out = run("-L");
    golden("list_names", &out);
    assert_eq!(run("-l"), out);
    assert_eq!(run(""), out);
    golden("list_names_stats", &run("-L --stats"));
    golden("list_one_names", &run("-L -t vip.example.com:https"));
    golden("conns_names", &run("-Lc"));
}

#[test]
fn list_nosort() {
    golden("list_nosort", &run("-Ln --nosort"));
}

#[test]
fn list_one_service() {
    golden("list_one", &run("-Ln -t 192.168.1.100:443"));
    golden(
        "list_one_v6_stats",
        &run("-Ln --stats -t [2001:db8::1]:443"),
    );
}

#[test]
fn list_stats() {
    golden("list_stats", &run("-Ln --stats"));
    golden("list_stats_exact", &run("-Ln --stats --exact"));
    // --stats wins over everything else.
    assert_eq!(run("-Ln --stats --rate --thresholds"), run("-Ln --stats"));
}

#[test]
fn list_rate() {
    golden("list_rate", &run("-Ln --rate"));
    golden("list_rate_exact", &run("-Ln --rate --exact"));
}

#[test]
fn list_thresholds() {
    golden("list_thresholds", &run("-Ln --thresholds"));
}

#[test]
fn list_persistent_conn() {
    golden("list_persistent_conn", &run("-Ln --persistent-conn"));
}

#[test]
fn list_tun_info() {
    golden("list_tun_info", &run("-Ln --tun-info"));
}

#[test]
fn list_connections() {
    golden("conns", &run("-Lnc"));
    golden("conns_persistent", &run("-L -n -c --persistent-conn"));
}

#[test]
fn list_timeout() {
    golden("timeout", &run("-L --timeout"));
}

#[test]
fn save_format() {
    golden("save", &run("-Sn"));
    golden("save_names", &run("-S"));
}

#[test]
fn save_restore_save_is_identity() {
    let text = save(&rules());
    // Restored the way rvsd restores: -R's transaction on empty rules.
    let changes = parse_restore(&text).unwrap().requests;
    assert!(!changes
        .iter()
        .any(|c| matches!(c, Request::SetTimeouts { .. })));
    let mut daemon = RulesHandler::new(Rules::new(1), NoDataPlane);
    assert_eq!(
        daemon.handle(Request::Transaction { changes }),
        Response::Ok
    );
    let Response::Rules { rules: restored } = daemon.handle(Request::Save) else {
        panic!("save")
    };
    assert_eq!(save(&restored), text);
    // Real servers come back with everything saved (thresholds included).
    let mut a: Vec<_> = rules().services.into_iter().flat_map(|s| s.dests).collect();
    let mut b: Vec<_> = restored
        .services
        .into_iter()
        .flat_map(|s| s.dests)
        .collect();
    a.sort_by_key(|d| (d.address, d.port));
    b.sort_by_key(|d| (d.address, d.port));
    assert_eq!(a, b);
}

#[test]
fn json_listing_is_the_protocol_payload() {
    let out = run("-Ln --json");
    let v: Vec<ServiceEntry> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), services().len());
    // Sorted like the text listing (ipvsadm's order: 192.168.x before 10.x).
    assert_eq!(v[0].spec.address.to_string(), "192.168.1.100");
    let t: Timeouts = serde_json::from_str(&run("-L --timeout --json")).unwrap();
    assert_eq!(t.tcp, 900);
    let r: RuleSet = serde_json::from_str(&run("-S --json")).unwrap();
    assert_eq!(r, rules());
}

#[test]
fn docs_examples_decode() {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/control.md"))
            .unwrap();
    let (mut reqs, mut resps) = (0, 0);
    for line in doc.lines() {
        if line.starts_with("{\"v\":1,\"op\"") {
            let r = decode_request(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            // What we encode decodes to the same request.
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
            reqs += 1;
        } else if line.starts_with("{\"v\":1,\"result\"") {
            decode_response(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            resps += 1;
        }
    }
    assert_eq!(reqs, 28, "one example per request form");
    assert_eq!(resps, 13, "one example per response (and a refused change)");
}
