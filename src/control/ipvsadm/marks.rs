//! rvs's mark table on the command line: what iptables' MARK target is to
//! kernel IPVS, written the way ipvsadm writes services.
//!
//! ```text
//! rvsadm --add-mark    -t|-u ADDRESS[/PREFIX][:PORT[-PORT]] -f MARK
//! rvsadm --delete-mark -t|-u ADDRESS[/PREFIX][:PORT[-PORT]]
//! rvsadm --marks                      (the table, as --add-mark lines read)
//! ```
//!
//! IPv6 in brackets, the prefix inside them: `[2001:db8::/64]:443`. No
//! prefix: the one address; no port: every port. `-S` writes the rules
//! as `--add-mark` lines before the services, and `-R` reads them back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::control::proto::{MarkMatch, MarkSpec, Protocol};

/// `ADDRESS[/PREFIX][:PORT[-PORT]]` (IPv6: `[ADDRESS[/PREFIX]][:PORT[-PORT]]`).
pub fn parse_target(protocol: Protocol, s: &str) -> Option<MarkMatch> {
    let (net, ports) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ports = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (inside, ports)
    } else {
        match s.split_once(':') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        }
    };
    let (addr, prefix) = match net.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (net, None),
    };
    let address: IpAddr = if s.starts_with('[') {
        IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?)
    } else {
        IpAddr::V4(addr.parse::<Ipv4Addr>().ok()?)
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => None,
        Some(p) => Some(digits(p)?.try_into().ok().filter(|&n: &u8| n <= max)?),
    };
    let ports = match ports {
        None => None,
        Some(p) => {
            let (lo, hi) = match p.split_once('-') {
                Some((lo, hi)) => (port(lo)?, port(hi)?),
                None => (port(p)?, port(p)?),
            };
            if lo > hi {
                return None;
            }
            // Port 0 is every port, as for ipvsadm's port-0 services.
            ((lo, hi) != (0, 0) && (lo, hi) != (0, u16::MAX)).then_some([lo, hi])
        }
    };
    Some(MarkMatch {
        protocol,
        address,
        prefix: prefix.filter(|&p| p != max),
        ports,
    })
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 5 {
        return None;
    }
    s.parse().ok()
}

fn port(s: &str) -> Option<u16> {
    digits(s)?.try_into().ok()
}

/// A rule's match as `-t`/`-u` takes it.
pub fn target(m: &MarkMatch) -> String {
    let net = match m.prefix {
        Some(p) => format!("{}/{p}", m.address),
        None => m.address.to_string(),
    };
    let host = match m.address {
        IpAddr::V4(_) => net,
        IpAddr::V6(_) => format!("[{net}]"),
    };
    match m.ports {
        None => host,
        Some([lo, hi]) if lo == hi => format!("{host}:{lo}"),
        Some([lo, hi]) => format!("{host}:{lo}-{hi}"),
    }
}

fn proto_opt(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
    }
}

/// A rule as an `-S` line.
pub fn save_line(m: &MarkSpec) -> String {
    format!(
        "--add-mark {} {} -f {}\n",
        proto_opt(m.matches.protocol),
        target(&m.matches),
        m.mark
    )
}

/// `--marks`: the rules in the order they were added.
pub fn list(marks: &[MarkSpec]) -> String {
    let mut out = String::from("Prot Destination                                 Mark\n");
    for m in marks {
        out.push_str(&format!(
            "{:<4} {:<42} {}\n",
            m.matches.protocol.name(),
            target(&m.matches),
            m.mark
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<String> {
        parse_target(Protocol::Tcp, s).map(|m| target(&m))
    }

    #[test]
    fn targets_read_and_write_back() {
        for s in [
            "10.0.0.1",
            "10.0.0.1:80",
            "10.0.0.0/24:8000-8099",
            "10.0.0.0/8",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            "[2001:db8::/48]:1-1023",
            "0.0.0.0/0:53",
        ] {
            assert_eq!(t(s).as_deref(), Some(s), "{s}");
        }
        // Host prefixes and every-port ranges are the defaults.
        assert_eq!(t("10.0.0.1/32:0").as_deref(), Some("10.0.0.1"));
        assert_eq!(t("[::1/128]:0-65535").as_deref(), Some("[::1]"));
        for bad in [
            "",
            "10.0.0.1:",
            "10.0.0.1:65536",
            "10.0.0.1:90-80",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "10.0.0.1:-5",
            "2001:db8::1",
            "[10.0.0.1]:80",
            "[2001:db8::1]80",
            "[2001:db8::1/129]",
            "host.example:80",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn listing_and_save_lines() {
        let m = MarkSpec {
            matches: parse_target(Protocol::Udp, "[2001:db8::/64]:53").unwrap(),
            mark: 7,
        };
        assert_eq!(save_line(&m), "--add-mark -u [2001:db8::/64]:53 -f 7\n");
        assert_eq!(
            list(&[m]),
            "Prot Destination                                 Mark\n\
             UDP  [2001:db8::/64]:53                         7\n"
        );
    }
}
