//! A test-only [`DestSet`]: a plain vector in kernel list order.

use std::net::{IpAddr, Ipv4Addr};

use super::{DestSet, FlowKey, SchedFlags};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDest {
    pub addr: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub overloaded: bool,
}

impl TestDest {
    /// Server number `n` (address 10.0.(n/256).(n%256), port 80).
    pub fn new(n: u32, weight: u32) -> Self {
        TestDest {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)),
            port: 80,
            weight,
            active: 0,
            inactive: 0,
            overloaded: false,
        }
    }

    pub fn conns(mut self, active: u32, inactive: u32) -> Self {
        self.active = active;
        self.inactive = inactive;
        self
    }
}

/// Index 0 is the list head (the most recently added server).
#[derive(Clone, Debug, Default)]
pub struct TestSet(pub Vec<TestDest>);

impl TestSet {
    /// Servers numbered 1.. with these weights, in this list order.
    pub fn weights(w: &[u32]) -> Self {
        TestSet(
            w.iter()
                .enumerate()
                .map(|(i, &w)| TestDest::new(i as u32 + 1, w))
                .collect(),
        )
    }

    /// What `ipvsadm -a` does: insert at the list head.
    pub fn push_front(&mut self, d: TestDest) {
        self.0.insert(0, d);
    }

    pub fn position(&self, addr: IpAddr) -> Option<usize> {
        self.0.iter().position(|d| d.addr == addr)
    }
}

impl DestSet for TestSet {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn addr(&self, i: usize) -> IpAddr {
        self.0[i].addr
    }
    fn port(&self, i: usize) -> u16 {
        self.0[i].port
    }
    fn weight(&self, i: usize) -> u32 {
        self.0[i].weight
    }
    fn active(&self, i: usize) -> u32 {
        self.0[i].active
    }
    fn inactive(&self, i: usize) -> u32 {
        self.0[i].inactive
    }
    fn overloaded(&self, i: usize) -> bool {
        self.0[i].overloaded
    }
}

/// A flow from client number `n` (source 192.168.x.y or, above 2^16, a
/// spread over 100.64.0.0/10) to 10.255.0.1:80.
pub fn key(n: u32) -> FlowKey {
    key_from(Ipv4Addr::from(0xC0A8_0000u32.wrapping_add(n)), 40000)
}

pub fn key_from(src: Ipv4Addr, sport: u16) -> FlowKey {
    FlowKey {
        src: IpAddr::V4(src),
        sport,
        dst: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        dport: 80,
    }
}

/// A flow to destination address `dst` (for dh, lblc, lblcr).
pub fn key_to(dst: Ipv4Addr) -> FlowKey {
    FlowKey {
        src: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
        sport: 40000,
        dst: IpAddr::V4(dst),
        dport: 80,
    }
}

/// A simple deterministic generator for test inputs (SplitMix64).
pub struct Gen(pub u64);

impl Gen {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random client flow (random source address and port).
    pub fn flow(&mut self) -> FlowKey {
        let r = self.next_u64();
        key_from(Ipv4Addr::from(r as u32), (r >> 32) as u16)
    }
}

pub fn all_flags() -> [SchedFlags; 4] {
    [
        SchedFlags {
            fallback: false,
            port: false,
        },
        SchedFlags {
            fallback: true,
            port: false,
        },
        SchedFlags {
            fallback: false,
            port: true,
        },
        SchedFlags {
            fallback: true,
            port: true,
        },
    ]
}
