//! `-L` output, byte for byte as ipvsadm 1.31 prints it: host and service
//! names from [`Names`] ([`super::names::Numeric`] for `-n`).

use super::addr::v4_mask;
use super::names::{addr_port_name, cut, proto_name, Names};
use super::order;
use super::parse::Format;
use crate::control::proto::{
    DestEntry, Forward, Persistence, SchedFlag, ServiceEntry, ServiceSpec, TunnelCsum, TunnelType,
    VersionInfo,
};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

/// A number in a 9-wide stats column (ipvsadm's `print_largenum`): exact
/// with `--exact`, else scaled to K/M/G/T once it no longer fits.
pub fn largenum(out: &mut String, n: u64, exact: bool) {
    if exact {
        let len = n.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{n:>w$}");
        return;
    }
    let _ = match n {
        0..=99_999_999 => write!(out, "{n:>9}"),
        100_000_000..=999_999_999 => write!(out, "{:>8}K", n / 1_000),
        1_000_000_000..=99_999_999_999 => write!(out, "{:>8}M", n / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => write!(out, "{:>8}G", n / 1_000_000_000),
        _ => write!(out, "{:>8}T", n / 1_000_000_000_000),
    };
}

/// The service's name column: `TCP  10.0.0.1:80`, IPv4 cut to 33 bytes.
pub fn service_name(spec: &ServiceSpec, names: &dyn Names) -> String {
    if spec.fwmark != 0 {
        // As the C `%d` prints it.
        let v6 = if spec.address.is_ipv6() { " IPv6" } else { "" };
        return format!("FWM  {}{v6}", spec.fwmark as i32);
    }
    let mut s = format!(
        "{:<4} {}",
        spec.protocol.name(),
        addr_port_name(
            names,
            spec.address,
            spec.port,
            Some(proto_name(spec.protocol))
        )
    );
    if spec.address.is_ipv4() {
        cut(&mut s, 33);
    }
    s
}

/// A real server's column, IPv4 cut to 28 bytes; named for the service's
/// protocol.
fn dest_name(s: &ServiceSpec, d: &DestEntry, names: &dyn Names) -> String {
    let mut n = addr_port_name(
        names,
        d.spec.address,
        d.spec.port,
        // A fwmark service has no protocol (0 from the kernel): numbers.
        (s.fwmark == 0).then(|| proto_name(s.protocol)),
    );
    // ipvsadm cuts by the service's family.
    if s.address.is_ipv4() {
        cut(&mut n, 28);
    }
    n
}

/// Scheduler flags as ipvsadm prints them (`sh-fallback,sh-port`).
pub fn sched_flags(flags: &[SchedFlag]) -> String {
    let mut f = flags.to_vec();
    f.sort();
    f.dedup();
    f.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
}

/// Forward column name.
pub fn forward_name(f: &Forward) -> &'static str {
    match f {
        Forward::Masq => "Masq",
        Forward::Route => "Route",
        Forward::Tunnel { .. } => "Tunnel",
    }
}

fn csum_short(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::Nocsum => "-c",
        TunnelCsum::Csum => "+c",
        TunnelCsum::Remcsum => "r+c",
    }
}

/// The `--tun-info` column: `ipip`, `gue:6080:-c`, `gre:+c`, or `n/a`.
pub fn tun_info(f: &Forward) -> String {
    match f {
        Forward::Tunnel {
            kind: TunnelType::Ipip,
            ..
        } => "ipip".into(),
        Forward::Tunnel {
            kind: TunnelType::Gue,
            port,
            csum,
        } => format!("gue:{}:{}", port.unwrap_or(0), csum_short(*csum)),
        Forward::Tunnel {
            kind: TunnelType::Gre,
            csum,
            ..
        } => format!("gre:{}", csum_short(*csum)),
        _ => "n/a".into(),
    }
}

/// The persistence mask as ipvsadm prints it, or `None` for a host mask.
pub fn mask_text(address: IpAddr, p: &Persistence) -> Option<String> {
    match (address, p.mask) {
        (IpAddr::V4(_), Some(m)) => (m != Ipv4Addr::BROADCAST).then(|| m.to_string()),
        (IpAddr::V4(_), None) if p.netmask < 32 => Some(v4_mask(p.netmask).to_string()),
        (IpAddr::V6(_), _) if p.netmask < 128 => Some(p.netmask.to_string()),
        _ => None,
    }
}

fn title(out: &mut String, f: &Format) {
    if f.stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
    } else if f.rate {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        );
    } else if f.thresholds {
        let _ = writeln!(
            out,
            "{:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        );
    } else if f.persistent_conn {
        let _ = writeln!(
            out,
            "{:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn"
        );
    } else if f.tun_info {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        );
    } else {
        out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
    }
}

fn service(out: &mut String, s: &ServiceEntry, f: &Format, names: &dyn Names) {
    let name = service_name(&s.spec, names);
    if f.stats {
        let _ = write!(out, "{name:<33}");
        for n in [
            s.stats.conns,
            s.stats.inpkts,
            s.stats.outpkts,
            s.stats.inbytes,
            s.stats.outbytes,
        ] {
            largenum(out, n, f.exact);
        }
    } else if f.rate {
        let _ = write!(out, "{name:<33}");
        for n in [
            s.rate.cps,
            s.rate.inpps,
            s.rate.outpps,
            s.rate.inbps,
            s.rate.outbps,
        ] {
            largenum(out, n, f.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", s.spec.scheduler);
        if !s.spec.flags.is_empty() {
            let _ = write!(out, " ({})", sched_flags(&s.spec.flags));
        }
        if let Some(p) = s.spec.persistent {
            let _ = write!(out, " persistent {}", p.timeout);
            if let Some(m) = mask_text(s.spec.address, &p) {
                let _ = write!(out, " mask {m}");
            }
        }
        if s.spec.ops {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let mut dests: Vec<&DestEntry> = s.dests.iter().collect();
    if !f.nosort {
        order::qsort(&mut dests, |a, b| order::dests(&a.spec, &b.spec));
    }
    for d in dests {
        let dn = dest_name(&s.spec, d, names);
        if f.stats {
            let _ = write!(out, "  -> {dn:<28}");
            for n in [
                d.stats.conns,
                d.stats.inpkts,
                d.stats.outpkts,
                d.stats.inbytes,
                d.stats.outbytes,
            ] {
                largenum(out, n, f.exact);
            }
            out.push('\n');
        } else if f.rate {
            // ipvsadm prints the first three real-server rates unscaled.
            let _ = write!(
                out,
                "  -> {dn:<28} {:>8} {:>8} {:>8}",
                d.rate.cps, d.rate.inpps, d.rate.outpps
            );
            largenum(out, d.rate.inbps, f.exact);
            largenum(out, d.rate.outbps, f.exact);
            out.push('\n');
        } else if f.thresholds {
            let _ = writeln!(
                out,
                "  -> {dn:<28} {:<10} {:<10} {:<10} {:<10}",
                d.spec.u_threshold, d.spec.l_threshold, d.active_conns, d.inactive_conns
            );
        } else if f.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dn:<28} {:<9} {:<11} {:<10} {:<10}",
                d.spec.weight, d.persist_conns, d.active_conns, d.inactive_conns
            );
        } else if f.tun_info {
            let _ = writeln!(
                out,
                "  -> {dn:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                forward_name(&d.spec.forward),
                tun_info(&d.spec.forward),
                d.spec.weight,
                d.active_conns,
                d.inactive_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dn:<28} {:<7} {:<6} {:<10} {:<10}",
                forward_name(&d.spec.forward),
                d.spec.weight,
                d.active_conns,
                d.inactive_conns
            );
        }
    }
}

/// Sorts services like ipvsadm ([`order`]).
pub fn sort_services(services: &mut Vec<ServiceEntry>) {
    order::qsort(services, |a, b| {
        order::services(&a.spec.key(), &b.spec.key())
    });
}

/// `-L` of everything: the version header, the title, every service.
pub fn list_all(
    version: &VersionInfo,
    services: &[ServiceEntry],
    f: &Format,
    names: &dyn Names,
) -> String {
    let mut out = format!(
        "IP Virtual Server version {} (size={})\n",
        version.ipvs, version.conn_tab_size
    );
    let mut v = services.to_vec();
    if !f.nosort {
        sort_services(&mut v);
    }
    title(&mut out, f);
    for s in &v {
        service(&mut out, s, f, names);
    }
    out
}

/// `-L -t ...`: the title and the one service, no version header.
pub fn list_one(s: &ServiceEntry, f: &Format, names: &dyn Names) -> String {
    let mut out = String::new();
    title(&mut out, f);
    service(&mut out, s, f, names);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: u64, exact: bool) -> String {
        let mut s = String::new();
        largenum(&mut s, n, exact);
        s
    }

    #[test]
    fn largenum_thresholds() {
        assert_eq!(num(0, false), "        0");
        assert_eq!(num(99_999_999, false), " 99999999");
        assert_eq!(num(100_000_000, false), "  100000K");
        assert_eq!(num(999_999_999, false), "  999999K");
        assert_eq!(num(1_000_000_000, false), "    1000M");
        assert_eq!(num(99_999_999_999, false), "   99999M");
        assert_eq!(num(100_000_000_000, false), "     100G");
        assert_eq!(num(99_999_999_999_999, false), "   99999G");
        assert_eq!(num(100_000_000_000_000, false), "     100T");
        assert_eq!(num(u64::MAX, false), "18446744T");
        assert_eq!(num(5, true), "        5");
        assert_eq!(num(12_345_678, true), " 12345678");
        assert_eq!(num(123_456_789, true), " 123456789");
        assert_eq!(num(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn tunnel_info_column() {
        assert_eq!(tun_info(&Forward::Masq), "n/a");
        assert_eq!(tun_info(&Forward::IPIP), "ipip");
        assert_eq!(
            tun_info(&Forward::Tunnel {
                kind: TunnelType::Gue,
                port: Some(6080),
                csum: TunnelCsum::Remcsum
            }),
            "gue:6080:r+c"
        );
        assert_eq!(
            tun_info(&Forward::Tunnel {
                kind: TunnelType::Gre,
                port: None,
                csum: TunnelCsum::Csum
            }),
            "gre:+c"
        );
    }
}
