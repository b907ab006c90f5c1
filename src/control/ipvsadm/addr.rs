//! Addresses as ipvsadm reads and prints them: `host[:port]`, IPv6 in
//! brackets when a port follows, IPv4 in any form `inet_aton` takes, host
//! and service names through [`Names`].

use super::names::Names;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an address with an optional port as ipvsadm's `parse_service`
/// does: `v6addr`, `[v6addr]:port`, else `host[:port]` split at the last
/// colon, the host an IPv4 address (`inet_aton`) or a name, the port a
/// number or a service name of `proto` (none: `-r` before `-t`/`-u`).
/// All-digit strings are refused (ipvsadm would read `80` as an address).
/// Brackets around anything but IPv6 are dropped, with what follows them:
/// `[10.0.0.1]:80` is 10.0.0.1 without a port, as in ipvsadm.
pub fn parse_host_port(
    s: &str,
    proto: Option<&'static str>,
    names: &dyn Names,
) -> Option<(IpAddr, Option<u16>)> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut s = s;
    let mut v6_port = None;
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        v6_port = Some(after.strip_prefix(':')?);
        s = inner;
    }
    let port = |p: &str| {
        parse_number(p, 0, 65535)
            .map(|n| n as u16)
            .or_else(|| names.port(p, proto?))
    };
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return match v6_port {
            Some(p) => Some((IpAddr::V6(a), Some(port(p)?))),
            None => Some((IpAddr::V6(a), None)),
        };
    }
    let (host, p) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let a = inet_aton(host).or_else(|| names.host_v4(host))?;
    match p {
        Some(p) => Some((IpAddr::V4(a), Some(port(p)?))),
        None => Some((IpAddr::V4(a), None)),
    }
}

/// An IPv4 address as glibc's `inet_aton` reads it: one to four parts
/// separated by dots, each decimal, octal (`0` first) or hex (`0x` first),
/// the last filling the bytes left (`10.9` is 10.0.0.9, `167772161` is
/// 10.0.0.1), and anything after white space ignored (`"10.0.0.1 x"`).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u32> = Vec::with_capacity(4);
    let mut i = 0;
    loop {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        // strtoul with base 0: a 0x prefix needs a hex digit after it.
        let (radix, start) = match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'0', Some(b'x' | b'X'), Some(c)) if c.is_ascii_hexdigit() => (16, i + 2),
            (b'0', _, _) => (8, i),
            _ => (10, i),
        };
        let mut end = start;
        let mut val: u64 = 0;
        while let Some(d) = b.get(end).and_then(|&c| (c as char).to_digit(radix)) {
            val = val
                .saturating_mul(u64::from(radix))
                .saturating_add(u64::from(d));
            end += 1;
        }
        let val = u32::try_from(val).ok()?;
        i = end;
        if b.get(i) == Some(&b'.') {
            if parts.len() > 2 || val > 0xff {
                return None;
            }
            parts.push(val);
            i += 1;
        } else {
            parts.push(val);
            break;
        }
    }
    // The end, or white space and whatever follows it.
    if let Some(&c) = b.get(i) {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
            return None;
        }
    }
    let last = parts.pop()?;
    let room = 32 - 8 * parts.len() as u32;
    if room < 32 && last >> room != 0 {
        return None;
    }
    let head = parts
        .iter()
        .enumerate()
        .fold(0u32, |acc, (k, &p)| acc | p << (24 - 8 * k));
    Some(Ipv4Addr::from(head | last))
}

/// A decimal number in `min..=max`, read as ipvsadm's `string_to_number`
/// reads it with C's `strtol`: white space before it and a sign allowed,
/// nothing after the digits (`" 5"` is 5, `"5 "` is refused, `"-0"` is 0).
pub fn parse_number(s: &str, min: u64, max: u64) -> Option<u64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    if negative {
        // Every minimum here is 0 or more: only -0 can be in range.
        return (n == 0 && min == 0).then_some(0);
    }
    (min..=max).contains(&n).then_some(n)
}

/// An IPv4 persistence mask, as ipvsadm's `parse_netmask` reads it (any
/// `inet_aton` form, or a host name): any mask, contiguous or not, as the
/// kernel keeps it (`-M 24` is 0.0.0.24).
pub fn parse_v4_netmask(s: &str, names: &dyn Names) -> Option<Ipv4Addr> {
    inet_aton(s).or_else(|| names.host_v4(s))
}

/// An IPv6 persistence mask: a prefix length 1..=128, read with C's `atoi`
/// as ipvsadm reads it (digits up to the first other character, `64/x` is
/// 64; the `long` result cut to an `int`).
pub fn parse_v6_netmask(s: &str) -> Option<u8> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for d in rest.bytes().take_while(u8::is_ascii_digit) {
        // strtol stops at LONG_MAX/LONG_MIN.
        n = n.saturating_mul(10).saturating_add(if negative {
            -i64::from(d - b'0')
        } else {
            i64::from(d - b'0')
        });
    }
    let m = n as i32 as u32;
    (1..=128).contains(&m).then_some(m as u8)
}

/// The dotted form of an IPv4 prefix length.
pub fn v4_mask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::control::ipvsadm::names::{Numeric, Table};

    fn table() -> Table {
        Table {
            hosts: vec![
                ("web".into(), "10.0.0.1".parse().unwrap()),
                ("six".into(), "2001:db8::1".parse().unwrap()),
                ("mask".into(), "255.255.0.0".parse().unwrap()),
            ],
            services: vec![("http".into(), 80, "tcp"), ("domain".into(), 53, "udp")],
        }
    }

    fn hp(s: &str, proto: Option<&'static str>) -> Option<(IpAddr, Option<u16>)> {
        parse_host_port(s, proto, &table())
    }

    #[test]
    fn host_port_forms() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let tcp = Some("tcp");
        assert_eq!(hp("10.0.0.1:80", tcp), Some((v4, Some(80))));
        assert_eq!(hp("10.0.0.1", tcp), Some((v4, None)));
        assert_eq!(hp("10.0.0.1:0", tcp), Some((v4, Some(0))));
        assert_eq!(hp("[2001:db8::1]:443", tcp), Some((v6, Some(443))));
        assert_eq!(hp("2001:db8::1", tcp), Some((v6, None)));
        // Names, for the protocol asked.
        assert_eq!(hp("web:http", tcp), Some((v4, Some(80))));
        assert_eq!(hp("WEB:80", tcp), Some((v4, Some(80))));
        assert_eq!(hp("web", None), Some((v4, None)));
        assert_eq!(hp("10.0.0.1:domain", Some("udp")), Some((v4, Some(53))));
        assert_eq!(hp("[2001:db8::1]:http", tcp), Some((v6, Some(80))));
        // inet_aton's forms.
        assert_eq!(
            hp("10.1:80", tcp),
            Some(("10.0.0.1".parse().unwrap(), Some(80)))
        );
        assert_eq!(hp("167772161:80", tcp), Some((v4, Some(80))));
        assert_eq!(hp("0x0a.0.0.1:80", tcp), Some((v4, Some(80))));
        assert_eq!(hp("012.0.0.1:80", tcp), Some((v4, Some(80))));
        assert_eq!(hp("10.0.0.1 junk:80", tcp), Some((v4, Some(80))));
        // Brackets around an IPv4 address or a name: the port goes with them.
        assert_eq!(hp("[10.0.0.1]:80", tcp), Some((v4, None)));
        assert_eq!(hp("[web]:", tcp), Some((v4, None)));
        assert_eq!(hp("[10.0.0.1:81]:80", tcp), Some((v4, Some(81))));
        for (bad, proto) in [
            ("", tcp),
            ("80", tcp),
            ("167772161", tcp),
            ("10.0.0.1:", tcp),
            ("10.0.0.1:65536", tcp),
            ("10.0.0.1:nosuch", tcp),
            ("10.0.0.1:http", Some("udp")),
            ("10.0.0.1:http", None),
            ("six:80", tcp),
            ("[2001:db8::1]", tcp),
            ("[2001:db8::1]:", tcp),
            ("[2001:db8::1]80", tcp),
            ("[10.0.0.1]", tcp),
            ("host.example:80", tcp),
            ("10.0.0.256:80", tcp),
            ("08.0.0.1:80", tcp),
            ("10.0.0.1.:80", tcp),
        ] {
            assert_eq!(hp(bad, proto), None, "{bad}");
        }
        assert_eq!(parse_host_port("web:80", tcp, &Numeric), None);
    }

    #[test]
    fn inet_aton_forms() {
        let a = |s: &str| inet_aton(s).map(|a| a.to_string());
        for (s, want) in [
            ("10.0.0.1", "10.0.0.1"),
            ("10.9", "10.0.0.9"),
            ("10.1.9", "10.1.0.9"),
            ("10.65535", "10.0.255.255"),
            ("10.1.65535", "10.1.255.255"),
            ("167772161", "10.0.0.1"),
            ("4294967295", "255.255.255.255"),
            ("0x0a.0.0.1", "10.0.0.1"),
            ("0XA.0.0.1", "10.0.0.1"),
            ("010.9.0.5", "8.9.0.5"),
            ("0", "0.0.0.0"),
            ("00", "0.0.0.0"),
            ("0xffffffff", "255.255.255.255"),
            ("1.2.3.4 anything", "1.2.3.4"),
            ("1.2.3.4\t", "1.2.3.4"),
        ] {
            assert_eq!(a(s).as_deref(), Some(want), "{s}");
        }
        for s in [
            "",
            " 1.2.3.4",
            "1.2.3.4x",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.256.0.1",
            "1.2.256.1",
            "1.2.3.256",
            "10.16777216",
            "10.1.65536",
            "4294967296",
            "08",
            "09.1.1.1",
            "0x",
            "0xg",
            "1..2",
            "1.",
            ".1",
            "+1",
            "-1",
            "1.2.3.4.",
            "99999999999999999999999",
        ] {
            assert_eq!(a(s), None, "{s:?}");
        }
    }

    #[test]
    fn netmasks() {
        let t = table();
        let m4 = |s: &str| parse_v4_netmask(s, &t).map(|m| m.to_string());
        let some = |s: &str| Some(s.to_string());
        assert_eq!(m4("255.255.255.0"), some("255.255.255.0"));
        assert_eq!(m4("255.255.255.255"), some("255.255.255.255"));
        assert_eq!(m4("0.0.0.0"), some("0.0.0.0"));
        // The kernel keeps any mask; a bare number is inet_aton's.
        assert_eq!(m4("255.0.255.0"), some("255.0.255.0"));
        assert_eq!(m4("24"), some("0.0.0.24"));
        assert_eq!(m4("0xffffff00"), some("255.255.255.0"));
        assert_eq!(m4("255.255.65280"), some("255.255.255.0"));
        assert_eq!(m4("mask"), some("255.255.0.0"));
        assert_eq!(m4("web"), some("10.0.0.1"));
        assert_eq!(m4("nosuch"), None);
        assert_eq!(parse_v6_netmask("64"), Some(64));
        assert_eq!(parse_v6_netmask(" +64/x"), Some(64));
        assert_eq!(parse_v6_netmask("128"), Some(128));
        assert_eq!(parse_v6_netmask("0"), None);
        assert_eq!(parse_v6_netmask("x64"), None);
        assert_eq!(parse_v6_netmask("129"), None);
        assert_eq!(parse_v6_netmask("-1"), None);
        // atoi's long cut to an int: 2^32 + 64 is 64, and so is 64 - 2^32.
        assert_eq!(parse_v6_netmask("4294967360"), Some(64));
        assert_eq!(parse_v6_netmask("-4294967232"), Some(64));
        assert_eq!(parse_v6_netmask("99999999999999999999999"), None);
        for p in 0..=32u8 {
            assert_eq!(m4(&v4_mask(p).to_string()), Some(v4_mask(p).to_string()));
        }
    }

    #[test]
    fn printing() {
        assert_eq!(parse_number("65535", 0, 65535), Some(65535));
        assert_eq!(parse_number("-1", 0, 65535), None);
        assert_eq!(parse_number("1x", 0, 65535), None);
        assert_eq!(parse_number(" \t5", 0, 65535), Some(5));
        assert_eq!(parse_number("5 ", 0, 65535), None);
        assert_eq!(parse_number("+7", 0, 65535), Some(7));
        assert_eq!(parse_number("-0", 0, 65535), Some(0));
        assert_eq!(parse_number("-0", 1, 65535), None);
        assert_eq!(parse_number("- 1", 0, 65535), None);
        assert_eq!(parse_number("", 0, 65535), None);
        assert_eq!(parse_number(" ", 0, 65535), None);
        assert_eq!(parse_number("99999999999999999999999", 0, 65535), None);
    }
}
