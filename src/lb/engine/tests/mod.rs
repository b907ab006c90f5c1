//! Engine tests: packets through one or two engines with injected time.
//! This file holds the fixtures (a test scheduler, packets, rules); the
//! tests are in the files named for what they cover.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::decide::{flag_bits, transitions};
use super::*;
use crate::lb::conntable::flag;
use crate::lb::dest::{DestConfig, FwdMethod};
use crate::lb::rules::{Rules, Settings};
use crate::lb::sched::{DestSet, FlowKey, SchedFlags, Scheduler};
use crate::lb::service::{Netmask, Protocol, ServiceConfig, ServiceKey};
use crate::lb::tcp_state::{next_state, StateDir, TcpFlags};

/// Round robin over available servers (weight > 0, not overloaded), in list
/// order: enough to drive the engine until the real schedulers land.
struct TestRr {
    next: usize,
}

impl Scheduler for TestRr {
    fn name(&self) -> &'static str {
        "rr"
    }
    fn update(&mut self, _dests: &dyn DestSet) {}
    fn schedule(&mut self, d: &dyn DestSet, _key: &FlowKey, _now: Timestamp) -> Option<usize> {
        let n = d.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if d.weight(i) > 0 && !d.overloaded(i) {
                self.next = i + 1;
                return Some(i);
            }
        }
        None
    }
}

fn factory(_name: &str, _flags: SchedFlags) -> Option<Box<dyn Scheduler>> {
    Some(Box::new(TestRr { next: 0 }))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const VIP: &str = "192.168.1.100";
const RS1: &str = "10.0.0.1";
const RS2: &str = "10.0.0.2";

fn tkey() -> ServiceKey {
    ServiceKey::new(Protocol::Tcp, ip(VIP), 80)
}

fn client(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(172, 16, 0, n))
}

fn tcp_in(c: IpAddr, cport: u16, flags: u8) -> PacketMeta {
    PacketMeta {
        proto: Protocol::Tcp,
        src: c,
        sport: cport,
        dst: ip(VIP),
        dport: 80,
        tcp_flags: TcpFlags(flags),
        dir: Direction::In,
        len: 60,
    }
}

/// A UDP datagram from client `c` to the VIP's port 53.
fn udp_in(c: IpAddr, cport: u16, len: u32) -> PacketMeta {
    PacketMeta {
        proto: Protocol::Udp,
        src: c,
        sport: cport,
        dst: ip(VIP),
        dport: 53,
        tcp_flags: TcpFlags(0),
        dir: Direction::In,
        len,
    }
}

fn tcp_out(rs: IpAddr, rport: u16, c: IpAddr, cport: u16, flags: u8) -> PacketMeta {
    PacketMeta {
        proto: Protocol::Tcp,
        src: rs,
        sport: rport,
        dst: c,
        dport: cport,
        tcp_flags: TcpFlags(flags),
        dir: Direction::Out,
        len: 1500,
    }
}

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN | TcpFlags::ACK;
const RST: u8 = TcpFlags::RST;
const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;

fn fwd(v: Verdict) -> Forward {
    match v {
        Verdict::Forward(f) => f,
        Verdict::Drop(r) => panic!("dropped: {r:?}"),
        Verdict::Refuse => panic!("refused"),
    }
}

fn state(v: Verdict) -> &'static str {
    fwd(v).state.name()
}

/// Rules with one TCP service on VIP:80 and the given real servers (added in
/// order, so the last one is at index 0).
fn rules_with(svc: ServiceConfig, dests: &[DestConfig]) -> Rules {
    let mut r = Rules::new(2);
    let key = svc.key;
    r.add_service(svc).unwrap();
    for d in dests {
        r.add_dest(&key, *d).unwrap();
    }
    r
}

fn engine(r: &Rules, cap: usize) -> Engine {
    Engine::with_factory(
        0,
        cap,
        r.snapshot(),
        Arc::new(TemplateTable::default()),
        Timestamp::ZERO,
        factory,
    )
}

fn counts(r: &Rules, key: &ServiceKey, addr: &str) -> (u32, u32, u32) {
    let (_, _, dests) = r.service(key).unwrap();
    let d = dests.iter().find(|d| d.cfg.addr == ip(addr)).unwrap();
    (
        d.shared.active(),
        d.shared.inactive(),
        d.shared.persistent(),
    )
}

fn nat_rules() -> Rules {
    rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80).with_scheduler("rr"),
        &[
            DestConfig::new(ip(RS1), 8080).masq(),
            DestConfig::new(ip(RS2), 8080).masq(),
        ],
    )
}

mod burst;
mod conns;
mod counts;
mod fwmark;
mod layout;
mod persist;
