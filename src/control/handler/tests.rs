use super::*;
use crate::control::ipvsadm::restore::parse_restore;
use proto::{DestSpec, Forward, ServiceSpec};

#[derive(Default)]
struct Fake {
    published: Vec<u64>,
}

impl Runtime for Fake {
    fn publish(&mut self, snap: Arc<Snapshot>) {
        self.published.push(snap.version);
    }
    fn connections(&self) -> ConnIter {
        let conn = |i: u16| proto::ConnEntry {
            protocol: proto::ConnProtocol::Udp,
            expire: 60,
            state: "UDP".into(),
            client: std::net::SocketAddr::new([10, 0, 0, 1].into(), i),
            virtual_addr: "192.0.2.1:53".parse().unwrap(),
            destination: "10.0.0.9:53".parse().unwrap(),
            template: false,
        };
        Box::new((1..=3).map(conn))
    }
    fn ports(&self) -> Vec<proto::PortInfo> {
        Vec::new()
    }
    fn lcores(&self) -> Vec<proto::LcoreInfo> {
        Vec::new()
    }
    fn counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    fn conn_tab_size(&self) -> u32 {
        4096
    }
}

fn handler() -> RulesHandler<Fake> {
    RulesHandler::new(Rules::new(2), Fake::default())
}

fn svc(addr: &str, port: u16, sched: &str) -> ServiceSpec {
    ServiceSpec {
        protocol: proto::Protocol::Tcp,
        address: addr.parse().unwrap(),
        port,
        fwmark: 0,
        scheduler: sched.into(),
        flags: vec![],
        persistent: None,
        ops: false,
    }
}

fn dest(addr: &str, port: u16, forward: Forward, weight: u32) -> DestSpec {
    DestSpec {
        address: addr.parse().unwrap(),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn err(r: Response) -> String {
    match r {
        Response::Error { message, .. } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn service_and_dest_lifecycle_with_ipvsadm_errors() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "rr");
    assert_eq!(
        h.handle(Request::AddService { service: s.clone() }),
        Response::Ok
    );
    assert_eq!(
        err(h.handle(Request::AddService { service: s.clone() })),
        "Service already exists"
    );
    let mut bad = s.clone();
    bad.port = 81;
    bad.scheduler = "nope".into();
    assert_eq!(
        err(h.handle(Request::AddService { service: bad })),
        "Scheduler or persistence engine not found"
    );
    let d = dest("10.0.0.1", 8080, Forward::Masq, 1);
    assert_eq!(
        h.handle(Request::AddDest {
            service: s.key(),
            dest: d
        }),
        Response::Ok
    );
    assert_eq!(
        err(h.handle(Request::AddDest {
            service: s.key(),
            dest: d
        })),
        "Destination already exists"
    );
    let missing = svc("192.0.2.9", 80, "rr").key();
    assert_eq!(
        err(h.handle(Request::AddDest {
            service: missing,
            dest: d
        })),
        "Service not defined"
    );
    assert_eq!(
        err(h.handle(Request::DeleteService { service: missing })),
        "No such service"
    );
    let Response::Services { services } = h.handle(Request::ListServices { service: None }) else {
        panic!()
    };
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].dests[0].spec, d);
    // Every successful change published a snapshot; failures did not.
    assert_eq!(h.runtime.published.len(), 2);
    assert_eq!(
        h.handle(Request::DeleteDest {
            service: s.key(),
            dest: d.key()
        }),
        Response::Ok
    );
    assert_eq!(
        err(h.handle(Request::DeleteDest {
            service: s.key(),
            dest: d.key()
        })),
        "No such destination"
    );
    assert_eq!(h.handle(Request::Clear), Response::Ok);
    assert_eq!(h.runtime.published.len(), 4);
}

#[test]
fn dr_and_tunnel_real_servers_take_the_virtual_port() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "wlc");
    h.handle(Request::AddService { service: s.clone() });
    h.handle(Request::AddDest {
        service: s.key(),
        dest: dest("10.0.0.2", 8080, Forward::Route, 2),
    });
    let Response::Rules { rules } = h.handle(Request::Save) else {
        panic!()
    };
    assert_eq!(rules.services[0].dests[0].port, 80);
}

#[test]
fn persistence_netmask_round_trips() {
    let mut h = handler();
    let mut s = svc("192.0.2.1", 0, "rr");
    s.persistent = Some(proto::Persistence {
        timeout: 300,
        netmask: 24,
        mask: None,
    });
    assert_eq!(
        h.handle(Request::AddService { service: s.clone() }),
        Response::Ok
    );
    let mut s6 = svc("2001:db8::1", 443, "sh");
    s6.flags = vec![proto::SchedFlag::ShPort];
    s6.persistent = Some(proto::Persistence {
        timeout: 60,
        netmask: 128,
        mask: None,
    });
    assert_eq!(
        h.handle(Request::AddService {
            service: s6.clone()
        }),
        Response::Ok
    );
    let Response::Rules { rules } = h.handle(Request::Save) else {
        panic!()
    };
    assert_eq!(rules.services[0].service, s);
    assert_eq!(rules.services[1].service, s6);
}

fn changes(text: &str) -> Vec<Request> {
    parse_restore(text).expect("restore text parses").requests
}

fn transaction(text: &str) -> Request {
    Request::Transaction {
        changes: changes(text),
    }
}

#[test]
fn a_transaction_is_all_or_nothing_and_names_the_refused_change() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "rr");
    h.handle(Request::AddService { service: s.clone() });
    let before = h.handle(Request::Save);
    let published = h.runtime.published.len();
    let text = "-A -t 192.0.2.2:80 -s wlc\n-a -t 192.0.2.2:80 -r 10.0.0.1:80 -m\n\
                -A -t 192.0.2.3:80 -s nosuch\n";
    assert_eq!(
        h.handle(transaction(text)),
        Response::refused(2, "Scheduler or persistence engine not found")
    );
    // A change that only fails on what an earlier one did.
    let text = "-A -t 192.0.2.2:80 -s wlc\n-D -t 192.0.2.2:80\n-a -t 192.0.2.2:80 -r 10.0.0.1:80\n";
    assert_eq!(
        h.handle(transaction(text)),
        Response::refused(2, "Service not defined")
    );
    // Only rule changes belong in one.
    let r = h.handle(Request::Transaction {
        changes: vec![Request::Clear, Request::Save],
    });
    assert_eq!(
        r,
        Response::refused(1, "rvsd: save cannot be part of a transaction")
    );
    let r = h.handle(Request::Transaction {
        changes: vec![Request::Transaction { changes: vec![] }],
    });
    assert!(
        matches!(
            r,
            Response::Error {
                change: Some(0),
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(h.handle(Request::Save), before, "nothing changed");
    assert_eq!(h.runtime.published.len(), published, "nothing published");
}

/// Issue 15: `-R` used to read the rules, edit them, and send the whole set
/// back, undoing a change another client made and saw acknowledged in
/// between. A transaction applies to the rules as they are when it runs.
#[test]
fn a_transaction_keeps_a_change_acknowledged_before_it() {
    let mut h = handler();
    let a = svc("192.0.2.1", 80, "rr");
    h.handle(Request::AddService { service: a.clone() });
    // rvsadm -R reads its input; meanwhile another client adds a service
    // and a real server, and is told ok.
    let b = svc("192.0.2.2", 80, "wlc");
    assert_eq!(
        h.handle(Request::AddService { service: b.clone() }),
        Response::Ok
    );
    let bd = dest("10.0.0.7", 80, Forward::Masq, 1);
    assert_eq!(
        h.handle(Request::AddDest {
            service: b.key(),
            dest: bd
        }),
        Response::Ok
    );
    // Then the restore arrives.
    let text = "-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m\n-A -u 192.0.2.3:53 -s rr\n--set 100 0 0\n";
    assert_eq!(h.handle(transaction(text)), Response::Ok);
    let Response::Rules { rules } = h.handle(Request::Save) else {
        panic!()
    };
    let keys: Vec<_> = rules.services.iter().map(|s| s.service.key()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.contains(&b.key()), "the acknowledged -A survived");
    let b_rules = rules.services.iter().find(|s| s.service.key() == b.key());
    assert_eq!(b_rules.unwrap().dests, vec![bd], "and its -a too");
    assert_eq!(rules.services[0].dests.len(), 1);
    assert_eq!(
        h.handle(Request::GetTimeouts),
        Response::Timeouts {
            timeouts: proto::Timeouts {
                tcp: 100,
                tcpfin: 120,
                udp: 300
            }
        }
    );
}

/// Each change in a transaction of its own answers and changes exactly as
/// the same request alone: the draft checks what the rules check.
#[test]
fn a_change_in_a_transaction_is_the_change_alone() {
    let script = "-A -t 192.0.2.1:80 -s rr\n-A -t 192.0.2.1:80 -s wlc\n-E -t 192.0.2.1:80 -s sh -b sh-port\n\
                  -E -t 192.0.2.9:80 -s rr\n-a -t 192.0.2.1:80 -r 10.0.0.1:8080 -m -w 3\n\
                  -a -t 192.0.2.1:80 -r 10.0.0.1:8080 -m\n-a -t 192.0.2.1:80 -r 10.0.0.2 -g\n\
                  -a -t 192.0.2.1:80 -r 10.0.0.3 -i --tun-type gue --tun-port 6080\n\
                  -e -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 0\n-e -t 192.0.2.1:80 -r 10.0.0.9:80 -g\n\
                  -d -t 192.0.2.1:80 -r 10.0.0.1:8080\n-d -t 192.0.2.1:80 -r 10.0.0.1:8080\n\
                  -a -t 192.0.2.5:80 -r 10.0.0.1:80\n-e -t 192.0.2.5:80 -r 10.0.0.1:80\n\
                  -d -t 192.0.2.5:80 -r 10.0.0.1:80\n-A -u [2001:db8::1]:53 -s rr -p 60 -M 64\n\
                  -A -t 192.0.2.7:0 -s rr -p\n-D -u [2001:db8::1]:53\n-D -u [2001:db8::1]:53\n\
                  --set 10 20 30\n-C\n-A -t 192.0.2.1:80 -s rr\n";
    let (mut alone, mut batched) = (handler(), handler());
    for (i, c) in changes(script).into_iter().enumerate() {
        let direct = alone.handle(c.clone());
        let tx = batched.handle(Request::Transaction {
            changes: vec![c.clone()],
        });
        match (&direct, &tx) {
            (Response::Ok, Response::Ok) => {}
            (Response::Error { message: a, .. }, Response::Error { message: b, change }) => {
                assert_eq!(a, b, "change {i}: {c:?}");
                assert_eq!(*change, Some(0));
            }
            _ => panic!("change {i}: {c:?}: alone {direct:?}, in a transaction {tx:?}"),
        }
        assert_eq!(
            alone.handle(Request::Save),
            batched.handle(Request::Save),
            "after change {i}: {c:?}"
        );
        assert_eq!(
            alone.handle(Request::GetTimeouts),
            batched.handle(Request::GetTimeouts)
        );
    }
}

#[test]
fn restore_is_all_or_nothing() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "rr");
    h.handle(Request::AddService { service: s.clone() });
    let before = h.handle(Request::Save);
    let published = h.runtime.published.len();
    let mut set = restore_set("-A -t 192.0.2.2:80 -s wlc\n-a -t 192.0.2.2:80 -r 10.0.0.1:80 -m\n");
    let mut bad = svc("192.0.2.3", 80, "nosuch");
    bad.port = 80;
    set.services.push(proto::ServiceRules {
        service: bad,
        dests: vec![],
    });
    let e = err(h.handle(Request::Restore {
        rules: set,
        timeouts: None,
    }));
    assert!(
        e.contains("Scheduler or persistence engine not found"),
        "{e}"
    );
    assert_eq!(h.handle(Request::Save), before, "nothing changed");
    assert_eq!(h.runtime.published.len(), published, "nothing published");
}

#[test]
fn restore_keeps_unchanged_real_servers_state() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "rr");
    h.handle(Request::AddService { service: s.clone() });
    h.handle(Request::AddDest {
        service: s.key(),
        dest: dest("10.0.0.1", 80, Forward::Masq, 1),
    });
    h.handle(Request::AddDest {
        service: s.key(),
        dest: dest("10.0.0.2", 80, Forward::Masq, 1),
    });
    let id_of = |h: &RulesHandler<Fake>, addr: &str| {
        let (_, _, ds) = h.rules.service(&service_key(&s.key())).unwrap();
        ds.iter()
            .find(|d| d.cfg.addr == addr.parse::<IpAddr>().unwrap())
            .map(|d| d.shared.id)
    };
    let (id1, id2) = (id_of(&h, "10.0.0.1"), id_of(&h, "10.0.0.2"));
    let text = "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m -w 1\n\
                -a -t 192.0.2.1:80 -r 10.0.0.3:80 -m -w 5\n-A -u 192.0.2.1:53 -s sh\n";
    assert_eq!(
        h.handle(Request::Restore {
            rules: restore_set(text),
            timeouts: None
        }),
        Response::Ok
    );
    assert_eq!(
        id_of(&h, "10.0.0.1"),
        id1,
        "an unchanged real server keeps its state"
    );
    assert_eq!(id_of(&h, "10.0.0.2"), None);
    assert!(id_of(&h, "10.0.0.3").is_some());
    let _ = id2;
    let Response::Rules { rules } = h.handle(Request::Save) else {
        panic!()
    };
    assert_eq!(rules.services.len(), 2);
    assert_eq!(rules.services[0].dests.len(), 2);
}

#[test]
fn timeouts_set_and_get() {
    let mut h = handler();
    let t = proto::Timeouts {
        tcp: 100,
        tcpfin: 0,
        udp: 30,
    };
    assert_eq!(h.handle(Request::SetTimeouts { timeouts: t }), Response::Ok);
    assert_eq!(
        h.handle(Request::GetTimeouts),
        Response::Timeouts {
            timeouts: proto::Timeouts {
                tcp: 100,
                tcpfin: 120,
                udp: 30
            }
        }
    );
}

#[test]
fn latency_without_measurement_is_an_error() {
    let mut h = handler();
    assert!(err(h.handle(Request::Latency { reset: true })).contains("--latency"));
}

/// A rule set from ipvsadm-save text: what a fresh daemon saves after it.
fn restore_set(text: &str) -> proto::RuleSet {
    let mut h = handler();
    assert_eq!(h.handle(transaction(text)), Response::Ok);
    match h.handle(Request::Save) {
        Response::Rules { rules } => rules,
        other => panic!("{other:?}"),
    }
}

#[test]
fn connections_stream_from_the_runtime() {
    let mut h = handler();
    let streamed: Vec<_> = Handler::connections(&mut h).unwrap().collect();
    assert_eq!(streamed.len(), 3);
    assert_eq!(
        h.handle(Request::ListConnections),
        Response::Connections {
            connections: streamed
        }
    );
}

fn mark_spec(
    addr: &str,
    prefix: Option<u8>,
    ports: Option<[u16; 2]>,
    mark: u32,
) -> proto::MarkSpec {
    proto::MarkSpec {
        matches: proto::MarkMatch {
            protocol: proto::Protocol::Tcp,
            address: addr.parse().unwrap(),
            prefix,
            ports,
        },
        mark,
    }
}

#[test]
fn fwmark_services_and_mark_rules_round_trip() {
    let mut h = handler();
    let mut f = svc("0.0.0.0", 0, "rr");
    f.fwmark = 1;
    f.persistent = Some(proto::Persistence {
        timeout: 300,
        // Not read when the mask is there; answered as its leading ones.
        netmask: 8,
        mask: Some("255.0.255.0".parse().unwrap()),
    });
    assert_eq!(
        h.handle(Request::AddService { service: f.clone() }),
        Response::Ok
    );
    assert_eq!(
        err(h.handle(Request::AddService { service: f.clone() })),
        "Service already exists"
    );
    // The same mark in IPv6 is another service.
    let mut f6 = svc("::", 0, "wlc");
    f6.fwmark = 1;
    assert_eq!(
        h.handle(Request::AddService {
            service: f6.clone()
        }),
        Response::Ok
    );
    assert_eq!(
        h.handle(Request::AddDest {
            service: f.key(),
            dest: dest("10.0.0.1", 0, Forward::Route, 1),
        }),
        Response::Ok
    );
    let web = mark_spec("192.0.2.1", None, Some([80, 80]), 1);
    let tls = mark_spec("192.0.2.0", Some(24), Some([443, 443]), 1);
    for m in [web, tls] {
        assert_eq!(h.handle(Request::AddMark { mark: m }), Response::Ok);
    }
    assert_eq!(
        err(h.handle(Request::AddMark { mark: web })),
        "Mark rule already exists"
    );
    let Response::Marks { marks } = h.handle(Request::ListMarks) else {
        panic!()
    };
    assert_eq!(marks, vec![web, tls]);
    // The snapshot sees the marked address as a VIP and the network whole.
    let snap = h.rules.snapshot();
    assert_eq!(
        snap.vip_addrs().collect::<Vec<_>>(),
        vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(snap.vip_nets().count(), 1);

    // Save, clear (services and marks), restore: the same again.
    let Response::Rules { rules } = h.handle(Request::Save) else {
        panic!()
    };
    assert_eq!(rules.marks, vec![web, tls]);
    assert_eq!(rules.services[0].service, f);
    assert_eq!(
        rules.services[0].dests[0].port, 0,
        "a fwmark real server keeps its port"
    );
    assert_eq!(h.handle(Request::Clear), Response::Ok);
    let Response::Marks { marks } = h.handle(Request::ListMarks) else {
        panic!()
    };
    assert!(marks.is_empty());
    assert_eq!(
        h.handle(Request::Restore {
            rules: rules.clone(),
            timeouts: None
        }),
        Response::Ok
    );
    let Response::Rules { rules: again } = h.handle(Request::Save) else {
        panic!()
    };
    assert_eq!(again, rules);

    // In a transaction, a refused mark refuses it all.
    let r = h.handle(Request::Transaction {
        changes: vec![
            Request::DeleteMark { mark: web.matches },
            Request::AddMark { mark: tls },
        ],
    });
    assert_eq!(err(r.clone()), "Mark rule already exists");
    assert!(matches!(
        r,
        Response::Error {
            change: Some(1),
            ..
        }
    ));
    assert_eq!(
        h.handle(Request::Transaction {
            changes: vec![Request::DeleteMark { mark: web.matches }],
        }),
        Response::Ok
    );
    assert_eq!(
        err(h.handle(Request::DeleteMark { mark: web.matches })),
        "No such mark rule"
    );
}
