//! A packet without a connection: find its service, consult the
//! persistence templates when the service is persistent, schedule a real
//! server and insert the connection. When no real server can take it, the
//! verdict is [`Verdict::Refuse`] (the kernel's `ip_vs_schedule` returning
//! no connection with `ignored == 0`, then `ip_vs_leave`); the cases the
//! kernel drops silently (a TCP segment that is not a SYN, no room for the
//! connection) are drops.

use super::decide::after;
use super::types::bump;
use super::{ConnState, DropReason, Engine, Forward, PacketMeta, Prepared, Verdict};
use crate::lb::conntable::{flag, hash_key, NewConn, Tuple};
use crate::lb::dest::real_port;
use crate::lb::persist::{Lookup, Template, TemplateKey};
use crate::lb::sched::{FlowKey, SchedFlags, Scheduler};
use crate::lb::service::Protocol;
use crate::lb::tcp_state::{StateDir, TcpState, INITIAL_TIMEOUT_SECS};
use crate::lb::time::Timestamp;

/// Creates scheduler instances by name ([`sched::new`](crate::lb::sched::new) by default).
pub type SchedFactory = fn(&str, SchedFlags) -> Option<Box<dyn Scheduler>>;

pub(super) struct LocalService {
    pub(super) id: u64,
    pub(super) sched_name: String,
    pub(super) flags: SchedFlags,
    pub(super) sched: Option<Box<dyn Scheduler>>,
    /// Slab slot of each of the snapshot service's real servers.
    pub(super) slots: Vec<u32>,
}

/// A mark as the kernel writes it in a template's address: in the first
/// 32 bits, network order.
fn mark_addr(mark: u32, v6: bool) -> std::net::IpAddr {
    if v6 {
        std::net::Ipv6Addr::from((mark as u128) << 96).into()
    } else {
        std::net::Ipv4Addr::from(mark).into()
    }
}

impl Engine {
    /// No connection: schedule a new one if the packet may open one, or
    /// refuse it when no real server can take it.
    pub(super) fn new_conn(&mut self, pkt: &PacketMeta, p: &Prepared, now: Timestamp) -> Verdict {
        let snap = &*self.snap;
        let Some(si) = snap.find(pkt.proto, pkt.dst, pkt.dport) else {
            return Verdict::Drop(DropReason::NoService);
        };
        if pkt.proto == Protocol::Tcp && !pkt.tcp_flags.opens() {
            return Verdict::Drop(DropReason::NotSyn);
        }
        let svc = &snap.services[si];
        let ls = &mut self.svcs[si];
        let Some(sc) = ls.sched.as_mut() else {
            return Verdict::Drop(DropReason::NoScheduler);
        };
        let fk = FlowKey {
            src: pkt.src,
            sport: pkt.sport,
            dst: pkt.dst,
            dport: pkt.dport,
        };
        let slab = &self.slab;
        let (slot, tpl) = match svc.cfg.persistence {
            None => match sc.schedule(svc, &fk, now) {
                Some(pos) if pos < ls.slots.len() => (ls.slots[pos], None),
                _ => return Verdict::Refuse,
            },
            Some(pers) => {
                let key = match svc.cfg.key.fwmark {
                    0 => TemplateKey {
                        proto: Some(pkt.proto),
                        caddr: svc.cfg.netmask().apply(pkt.src),
                        vaddr: pkt.dst,
                        vport: if svc.cfg.key.port == 0 { 0 } else { pkt.dport },
                    },
                    // Every port and protocol with the mark: one template.
                    mark => TemplateKey {
                        proto: None,
                        caddr: svc.cfg.netmask().apply(pkt.src),
                        vaddr: mark_addr(mark, pkt.dst.is_ipv6()),
                        vport: 0,
                    },
                };
                let timeout = pers.timeout as u64 * 1000;
                let eqt = self.settings.expire_quiescent_template;
                let valid = |t: &Template| {
                    t.dest.available()
                        && !(eqt && t.dest.weight() == 0)
                        && matches!(slab.by_id.get(&t.dest.id), Some(&s) if slab.hot[s as usize].live)
                };
                match self.templates.lookup(key, now, timeout, valid) {
                    Lookup::Found(t) => match slab.by_id.get(&t.dest.id) {
                        Some(&s) => (s, Some(t)),
                        None => return Verdict::Refuse,
                    },
                    Lookup::Vacant(v) => match sc.schedule(svc, &fk, now) {
                        Some(pos) if pos < ls.slots.len() => {
                            let t = v.insert(svc.dests[pos].shared.clone(), now, timeout);
                            (ls.slots[pos], Some(t))
                        }
                        _ => return Verdict::Refuse,
                    },
                }
            }
        };
        let (Some(cd), Some(d)) = (
            self.slab.cold[slot as usize].as_ref(),
            self.slab.hot.get(slot as usize),
        ) else {
            return Verdict::Refuse;
        };
        let lc = self.lcore;
        // A persistent port-zero or fwmark service: the connection keeps
        // the packet's port whatever the real server's (the kernel's
        // ip_vs_sched_persist, for a port other than the service's 0).
        let keep_vport = tpl.is_some() && svc.cfg.key.port == 0 && pkt.dport != 0;
        let rport = if keep_vport {
            pkt.dport
        } else {
            real_port(d.port, pkt.dport)
        };
        if pkt.proto == Protocol::Udp && svc.cfg.ops {
            // One-packet scheduling: forwarded, no connection kept.
            for st in [&cd.shared.stats, &cd.svc.stats] {
                st.lcore(lc).conn();
                st.lcore(lc).packet_in(pkt.len);
            }
            return Verdict::Forward(Forward {
                new: true,
                ..Forward::from_dest(None, slot, d, pkt.dst, pkt.dport, rport, ConnState::Udp)
            });
        }
        let masq = d.fwd.is_masq();
        let out_key = masq.then(|| {
            let t = &p.tuple;
            let k = Tuple {
                src: d.addr,
                dst: t.src,
                sport: rport,
                dport: t.sport,
                udp: t.udp,
                v6: t.v6,
            };
            (hash_key(&k, true), k)
        });
        let out_hash = out_key.as_ref().map(|(h, _)| *h);
        // The real server cannot hold two connections with one 4-tuple: an
        // older NAT connection with this reply key (the client reused its
        // port toward another VIP served by the same real server) is over.
        // Left in place it could take the new connection's replies (the
        // kernel avoids that by finding the newest connection first).
        if let Some((h, k)) = &out_key {
            if let Some(j) = self.table.find(*h, k, true, &self.slab) {
                self.expire_now(j);
            }
        }
        let mut flags = flag::INACTIVE;
        if !masq {
            flags |= flag::NOOUTPUT;
        }
        if tpl.is_some() {
            flags |= flag::CONTROLLED;
        }
        let n = NewConn {
            tuple: p.tuple,
            dest: slot,
            rport,
            expires: after(now, INITIAL_TIMEOUT_SECS as u64 * 1000),
            state: TcpState::None as u8,
            flags,
        };
        let i = match self.table.insert(n, p.hash, out_hash) {
            Ok(i) => i,
            Err(_) if self.settings.evict_embryonic && self.evict_embryonic() => {
                match self.table.insert(n, p.hash, out_hash) {
                    Ok(i) => i,
                    Err(_) => return Verdict::Drop(DropReason::TableFull),
                }
            }
            Err(_) => return Verdict::Drop(DropReason::TableFull),
        };
        if !p.tuple.udp {
            if self.embryonic.len() == self.embryonic.capacity() {
                self.embryonic.pop_front();
            }
            self.embryonic.push_back(i);
        }
        let Some(d) = self.slab.cold[slot as usize].as_mut() else {
            return Verdict::Drop(DropReason::NoDest);
        };
        d.refs += 1;
        d.shared.bind_conn(false);
        d.shared.stats.lcore(lc).conn();
        d.svc.stats.lcore(lc).conn();
        if let Some(t) = &tpl {
            t.control();
        }
        self.tpl[i as usize] = tpl;
        bump(&self.counters.created);
        match self.existing(i, pkt, StateDir::Input, now) {
            Some(Verdict::Forward(f)) => Verdict::Forward(Forward { new: true, ..f }),
            Some(v) => v,
            None => Verdict::Drop(DropReason::DestRemoved),
        }
    }
}
