//! The kernel twins' addresses: what rvsd puts on each twin (the port's
//! own addresses, and with `announce` the VIPs of its services as host
//! routes) and what it reads back (the VIPs the twin owns, for
//! `vips = "twin"`). The frames themselves move in
//! `dataplane::twin`; this is the part without DPDK.
//!
//! rvsd only ever takes off the twin what it put there: addresses an
//! operator, keepalived or a routing daemon added stay.

pub mod netlink;

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::net::IpCidr;

/// One twin's address bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct TwinAddrs {
    /// The port's own addresses, when the twin is to have them.
    pub own: Vec<IpCidr>,
    /// Put the VIPs on the twin (`announce`).
    pub announce: bool,
    /// What rvsd added and has not taken off yet.
    ours: BTreeSet<IpCidr>,
}

/// The changes that bring a twin to what rvsd wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<IpCidr>,
    pub remove: Vec<IpCidr>,
}

impl TwinAddrs {
    pub fn new(own: Vec<IpCidr>, announce: bool) -> Self {
        TwinAddrs {
            own,
            announce,
            ours: BTreeSet::new(),
        }
    }

    /// What rvsd wants on the twin, given the VIPs of the services.
    fn wanted(&self, vips: &[IpAddr]) -> BTreeSet<IpCidr> {
        let mut w: BTreeSet<IpCidr> = self.own.iter().copied().collect();
        if self.announce {
            // An own address that is also a VIP keeps its prefix.
            w.extend(
                vips.iter()
                    .filter(|v| !self.own.iter().any(|c| c.addr() == **v))
                    .map(|v| IpCidr::host(*v)),
            );
        }
        w
    }

    /// The changes from `present` (the twin's addresses now) to what rvsd
    /// wants for `vips`: missing ones added, ones rvsd added and wants no
    /// more removed. Nothing else is touched.
    pub fn plan(&self, vips: &[IpAddr], present: &[IpCidr]) -> Plan {
        let want = self.wanted(vips);
        let has = |c: &IpCidr| present.iter().any(|p| p.addr() == c.addr());
        Plan {
            add: want.iter().filter(|c| !has(c)).copied().collect(),
            remove: self
                .ours
                .iter()
                .filter(|c| !want.contains(c) && has(c))
                .copied()
                .collect(),
        }
    }

    /// The plan for stopping: take off every VIP rvsd put there (a routing
    /// daemon withdraws them); the own addresses go with the interface.
    pub fn plan_stop(&self, present: &[IpCidr]) -> Plan {
        let mut p = self.plan(&[], present);
        p.add.clear();
        p
    }

    /// Record that `c` was added (true) or removed (false) by rvsd.
    pub fn done(&mut self, c: IpCidr, added: bool) {
        if added {
            self.ours.insert(c);
        } else {
            self.ours.remove(&c);
        }
    }

    /// True when rvsd announced a VIP it has not withdrawn.
    pub fn has_announced(&self) -> bool {
        self.ours.iter().any(|c| !self.own.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> IpCidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn apply(t: &mut TwinAddrs, p: &Plan, present: &mut Vec<IpCidr>) {
        for a in &p.add {
            present.push(*a);
            t.done(*a, true);
        }
        for r in &p.remove {
            present.retain(|x| x != r);
            t.done(*r, false);
        }
    }

    #[test]
    fn own_addresses_then_vips_come_and_go() {
        let mut t = TwinAddrs::new(vec![c("10.0.0.2/24"), c("2001:db8::2/64")], true);
        // The kernel's link-local and an operator's address are never ours.
        let mut present = vec![c("fe80::1/64"), c("192.0.2.7/32")];
        let p = t.plan(&[ip("10.0.0.100")], &present);
        assert_eq!(
            p.add,
            vec![c("10.0.0.2/24"), c("10.0.0.100/32"), c("2001:db8::2/64")]
        );
        assert!(p.remove.is_empty());
        apply(&mut t, &p, &mut present);
        assert!(t.has_announced());
        assert_eq!(t.plan(&[ip("10.0.0.100")], &present), Plan::default());
        // The service goes: its VIP is withdrawn, the rest stays.
        let p = t.plan(&[ip("2001:db8::100")], &present);
        assert_eq!(p.add, vec![c("2001:db8::100/128")]);
        assert_eq!(p.remove, vec![c("10.0.0.100/32")]);
        apply(&mut t, &p, &mut present);
        // Stopping takes off the VIPs only.
        let p = t.plan_stop(&present);
        assert_eq!(
            p,
            Plan {
                add: vec![],
                remove: vec![c("2001:db8::100/128")]
            }
        );
        apply(&mut t, &p, &mut present);
        assert!(!t.has_announced());
        assert!(present.contains(&c("192.0.2.7/32")) && present.contains(&c("fe80::1/64")));
    }

    #[test]
    fn without_announce_vips_are_left_to_others() {
        let mut t = TwinAddrs::new(vec![c("10.0.0.2/24")], false);
        // keepalived put the VIP there: rvsd neither adds nor removes it.
        let mut present = vec![c("10.0.0.100/32")];
        let p = t.plan(&[ip("10.0.0.100")], &present);
        assert_eq!(p.add, vec![c("10.0.0.2/24")]);
        apply(&mut t, &p, &mut present);
        assert_eq!(t.plan(&[], &present), Plan::default());
        assert_eq!(t.plan_stop(&present), Plan::default());
    }

    #[test]
    fn an_address_taken_off_by_someone_else_is_put_back() {
        let mut t = TwinAddrs::new(vec![c("10.0.0.2/24")], false);
        let mut present = vec![];
        let p = t.plan(&[], &present);
        apply(&mut t, &p, &mut present);
        present.clear();
        assert_eq!(t.plan(&[], &present).add, vec![c("10.0.0.2/24")]);
    }
}
