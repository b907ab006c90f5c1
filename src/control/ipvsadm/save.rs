//! `-S` output: the rule set as ipvsadm commands, which `-R` reads back.
//! Like `ipvsadm -S` plus `-x`/`-y` when a real server has thresholds
//! (ipvsadm does not save them; rvs's restore accepts them). Host and
//! service names from [`Names`] ([`Numeric`] for `-n`), never cut.

use super::list::{mask_text, sched_flags};
use super::names::{addr_port_name, proto_name, Names, Numeric};
use super::order;
use crate::control::proto::{
    DestSpec, Forward, Protocol, RuleSet, ServiceSpec, TunnelCsum, TunnelType,
};
use std::fmt::Write;

fn service_opt(s: &ServiceSpec, names: &dyn Names) -> String {
    if s.fwmark != 0 {
        let v6 = if s.address.is_ipv6() { " -6" } else { "" };
        return format!("-f {}{v6}", s.fwmark as i32);
    }
    let flag = match s.protocol {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
    };
    let name = addr_port_name(names, s.address, s.port, Some(proto_name(s.protocol)));
    format!("{flag} {name}")
}

fn csum_opt(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::Nocsum => "--tun-nocsum",
        TunnelCsum::Csum => "--tun-csum",
        TunnelCsum::Remcsum => "--tun-remcsum",
    }
}

/// The `-A` line of a service.
pub fn service_line(s: &ServiceSpec, names: &dyn Names) -> String {
    let mut out = format!("-A {} -s {}", service_opt(s, names), s.scheduler);
    if let Some(p) = s.persistent {
        let _ = write!(out, " -p {}", p.timeout);
        if let Some(m) = mask_text(s.address, &p) {
            let _ = write!(out, " -M {m}");
        }
    }
    if s.ops {
        out.push_str(" -o");
    }
    if !s.flags.is_empty() {
        let _ = write!(out, " -b {}", sched_flags(&s.flags));
    }
    out
}

/// The `-a` line of a real server.
pub fn dest_line(s: &ServiceSpec, d: &DestSpec, names: &dyn Names) -> String {
    let fwd = match d.forward {
        Forward::Masq => "-m",
        Forward::Route => "-g",
        Forward::Tunnel { .. } => "-i",
    };
    let mut out = format!(
        "-a {} -r {} {fwd} -w {}",
        service_opt(s, names),
        addr_port_name(
            names,
            d.address,
            d.port,
            (s.fwmark == 0).then(|| proto_name(s.protocol))
        ),
        d.weight
    );
    if let Forward::Tunnel { kind, port, csum } = d.forward {
        let _ = write!(out, " --tun-type {}", kind.name());
        match kind {
            TunnelType::Ipip => {}
            TunnelType::Gue => {
                let _ = write!(out, " --tun-port {} {}", port.unwrap_or(0), csum_opt(csum));
            }
            TunnelType::Gre => {
                let _ = write!(out, " {}", csum_opt(csum));
            }
        }
    }
    if d.u_threshold != 0 || d.l_threshold != 0 {
        let _ = write!(out, " -x {} -y {}", d.u_threshold, d.l_threshold);
    }
    out
}

/// The whole rule set, numeric (`-S -n`), services sorted like ipvsadm
/// and real servers by address and port.
pub fn save(rules: &RuleSet) -> String {
    save_with(rules, &Numeric)
}

/// [`save`] with names from `names`.
pub fn save_with(rules: &RuleSet, names: &dyn Names) -> String {
    let mut services: Vec<_> = rules.services.iter().collect();
    order::qsort(&mut services, |a, b| {
        order::services(&a.service.key(), &b.service.key())
    });
    // Mark rules first: rvs's, not ipvsadm's (which has none to save).
    let mut out: String = rules.marks.iter().map(super::marks::save_line).collect();
    for s in services {
        out.push_str(&service_line(&s.service, names));
        out.push('\n');
        // Saved oldest first; the kernel lists them newest first, and
        // that is the order ipvsadm sorts.
        let mut dests: Vec<_> = s.dests.iter().rev().collect();
        order::qsort(&mut dests, |a, b| order::dests(a, b));
        for d in dests {
            out.push_str(&dest_line(&s.service, d, names));
            out.push('\n');
        }
    }
    out
}
