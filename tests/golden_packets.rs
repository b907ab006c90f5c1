//! Golden packet fixtures (Katran style): every case of
//! tests/fixtures/packets.py — input frame, expected verdict, expected
//! output frame, all built by scapy independently of rvs's packet code —
//! run through the datapath in order, against one datapath.

use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;

use rvs::datapath::{Datapath, Forwarding, Outcome};
use rvs::ids::PortIndex;
use rvs::lb::dest::{DestConfig, FwdMethod, TunCsum, TunType};
use rvs::lb::engine::Engine;
use rvs::lb::persist::TemplateTable;
use rvs::lb::rules::Rules;
use rvs::lb::service::{Protocol, ServiceConfig, ServiceKey};
use rvs::lb::time::Timestamp;
use rvs::net::{Iface, IpCidr, NeighConfig, NeighTable, NetConfig, RouteTable};
use rvs::wire::buf::{PacketBuf, VecBuf};
use rvs::wire::EthernetAddress;
use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

fn fixtures() -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/packets.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .output()
        .expect("Debian's python3 with scapy (./scripts/deps installs python3-scapy)");
    assert!(
        out.status.success(),
        "fixture generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("fixtures are JSON")
}

fn mac(s: &str) -> EthernetAddress {
    s.parse().unwrap()
}

fn ip(v: &Value) -> IpAddr {
    v.as_str().unwrap().parse().unwrap()
}

/// Port names to indexes, in the world's order.
fn port_index(world: &Value, name: &str) -> u16 {
    world["ports"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name}")) as u16
}

fn build(world: &Value) -> Datapath<VecBuf> {
    let mut rules = Rules::new(1);
    for s in world["services"].as_array().unwrap() {
        let proto = if s["proto"] == "tcp" {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let vip = ip(&s["vip"]);
        let port = s["port"].as_u64().unwrap() as u16;
        rules
            .add_service(
                ServiceConfig::new(proto, vip, port).with_scheduler(s["sched"].as_str().unwrap()),
            )
            .unwrap();
        for d in s["dests"].as_array().unwrap() {
            let fwd = match d["fwd"].as_str().unwrap() {
                "masq" => FwdMethod::Masq,
                "route" => FwdMethod::Route,
                t => FwdMethod::Tunnel {
                    tun_type: match t {
                        "ipip" => TunType::Ipip,
                        "gre" => TunType::Gre,
                        other => panic!("tunnel {other}"),
                    },
                    port: 0,
                    csum: TunCsum::NoCsum,
                },
            };
            let dc =
                DestConfig::new(ip(&d["addr"]), d["port"].as_u64().unwrap() as u16).with_fwd(fwd);
            rules
                .add_dest(&ServiceKey::new(proto, vip, port), dc)
                .unwrap();
        }
    }
    let mut net = NetConfig::new();
    let mut vip_ports = Vec::new();
    for (i, p) in world["ports"].as_array().unwrap().iter().enumerate() {
        // The world's one MTU on every port.
        let mut iface = Iface::new(i as u16, mac(p["mac"].as_str().unwrap()))
            .with_mtu(world["mtu"].as_u64().unwrap() as u16);
        for a in p["addresses"].as_array().unwrap() {
            iface.add_addr(a.as_str().unwrap().parse::<IpCidr>().unwrap());
        }
        net.set(iface);
        if p["name"] == "client" {
            vip_ports.push(PortIndex(i as u16));
        }
    }
    let mut routes = RouteTable::from_config(&net);
    for r in world["routes"].as_array().unwrap() {
        let port = port_index(world, r["port"].as_str().unwrap());
        routes.set_default(ip(&r["via"]), port).unwrap();
    }
    let mut neigh = NeighTable::new(NeighConfig::default());
    for (addr, m) in world["neighbors"].as_object().unwrap() {
        let a: IpAddr = addr.parse().unwrap();
        let port = routes
            .lookup(&a)
            .expect("neighbour on a connected network")
            .port;
        neigh.add_static(port, a, mac(m.as_str().unwrap()));
    }
    let engine = Engine::new(
        0,
        1 << 16,
        rules.snapshot(),
        Arc::new(TemplateTable::new(16)),
        Timestamp::ZERO,
    );
    Datapath::new(Forwarding {
        engine,
        net,
        vip_ports,
        routes: Arc::new(routes),
        neigh: neigh.snapshot(),
        ip_id_start: world["ipid_start"].as_u64().unwrap() as u16,
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// scapy's dissection of a frame, for failure messages.
fn show(frame: &[u8]) -> String {
    let h: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let code = format!("from scapy.all import Ether; Ether(bytes.fromhex('{h}')).show2()");
    Command::new(PYTHON)
        .args(["-c", &code])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn golden_packets() {
    let fx = fixtures();
    let world = &fx["world"];
    let mut bal = build(world);
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "the fixture table is complete");
    let mut failures = Vec::new();
    for c in cases {
        let desc = c["desc"].as_str().unwrap();
        let in_port = port_index(world, c["port"].as_str().unwrap());
        let input = hex(c["input"].as_str().unwrap());
        let mut buf = VecBuf::from_frame(&input);
        let now = Timestamp::from_millis(c["time_ms"].as_u64().unwrap());
        let action = bal.process_one(PortIndex(in_port), &mut buf, now);
        match c["verdict"].as_str().unwrap() {
            "tx" => {
                let want_port = port_index(world, c["out_port"].as_str().unwrap());
                if action != Outcome::Tx(PortIndex(want_port)) {
                    failures.push(format!(
                        "{desc}: expected tx on {want_port}, got {action:?}"
                    ));
                    continue;
                }
                let want = hex(c["output"].as_str().unwrap());
                if buf.data() != want.as_slice() {
                    failures.push(format!(
                        "{desc}: output differs\n--- expected\n{}--- got\n{}",
                        show(&want),
                        show(buf.data())
                    ));
                }
            }
            "drop" => {
                let want = c["reason"].as_str().unwrap();
                match action {
                    Outcome::Drop(d) if d.name() == want => {}
                    other => failures.push(format!("{desc}: expected drop {want}, got {other:?}")),
                }
            }
            v => panic!("unknown verdict {v}"),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
