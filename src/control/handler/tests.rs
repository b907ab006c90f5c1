use super::*;
use crate::control::ipvsadm::restore;
use proto::{DestSpec, Forward, ServiceSpec};

#[derive(Default)]
struct Fake {
    published: Vec<u64>,
}

impl Runtime for Fake {
    fn publish(&mut self, snap: Arc<Snapshot>) {
        self.published.push(snap.version);
    }
    fn connections(&self) -> Vec<proto::ConnEntry> {
        Vec::new()
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
        Response::Error { message } => message,
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

#[test]
fn restore_is_all_or_nothing() {
    let mut h = handler();
    let s = svc("192.0.2.1", 80, "rr");
    h.handle(Request::AddService { service: s.clone() });
    let before = h.handle(Request::Save);
    let published = h.runtime.published.len();
    let text = "-A -t 192.0.2.2:80 -s wlc\n-a -t 192.0.2.2:80 -r 10.0.0.1:80 -m\n\
                -A -t 192.0.2.3:80 -s nosuch\n";
    let set = restore_set(text);
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

/// A rule set from ipvsadm-save text, through rvsadm's own restore parser.
fn restore_set(text: &str) -> proto::RuleSet {
    restore::restore(text, proto::RuleSet::default())
        .expect("restore text parses")
        .0
}
