//! Addresses as ipvsadm reads and prints them: `host[:port]`, IPv6 in
//! brackets when a port follows, numeric only (no name lookups).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses `addr`, `addr:port`, `v6addr` or `[v6addr]:port`. Returns the
/// address and the port if one was given. All-digit strings are rejected
/// (ipvsadm would otherwise read `80` as an address).
pub fn parse_host_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        let a: Ipv6Addr = host.parse().ok()?;
        return Some((IpAddr::V6(a), Some(parse_port(port)?)));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(a), None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p)?)),
        None => (s, None),
    };
    let a: Ipv4Addr = host.parse().ok()?;
    Some((IpAddr::V4(a), port))
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

fn parse_port(s: &str) -> Option<u16> {
    parse_number(s, 0, 65535).map(|n| n as u16)
}

/// An IPv4 persistence mask in dotted form, as a prefix length. Masks that
/// are not contiguous are refused (the kernel would accept them; rvs keeps
/// masks as prefixes).
pub fn parse_v4_netmask(s: &str) -> Option<u8> {
    let a: Ipv4Addr = s.parse().ok()?;
    let m = u32::from(a);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// An IPv6 persistence mask: a prefix length 1..=128.
pub fn parse_v6_netmask(s: &str) -> Option<u8> {
    parse_number(s, 1, 128).map(|n| n as u8)
}

/// The dotted form of an IPv4 prefix length.
pub fn v4_mask(prefix: u8) -> Ipv4Addr {
    let p = u32::from(prefix.min(32));
    Ipv4Addr::from(if p == 0 { 0 } else { u32::MAX << (32 - p) })
}

/// `addr:port`, IPv6 in brackets (ipvsadm's numeric form).
pub fn addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(parse_host_port("10.0.0.1:80"), Some((v4, Some(80))));
        assert_eq!(parse_host_port("10.0.0.1"), Some((v4, None)));
        assert_eq!(parse_host_port("10.0.0.1:0"), Some((v4, Some(0))));
        assert_eq!(parse_host_port("[2001:db8::1]:443"), Some((v6, Some(443))));
        assert_eq!(parse_host_port("2001:db8::1"), Some((v6, None)));
        for bad in [
            "",
            "80",
            "10.0.0.1:",
            "10.0.0.1:65536",
            "10.0.0.1:http",
            "[2001:db8::1]",
            "[2001:db8::1]80",
            "[10.0.0.1]:80",
            "host.example:80",
            "10.0.0:80",
        ] {
            assert_eq!(parse_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_v4_netmask("255.255.255.0"), Some(24));
        assert_eq!(parse_v4_netmask("255.255.255.255"), Some(32));
        assert_eq!(parse_v4_netmask("0.0.0.0"), Some(0));
        assert_eq!(parse_v4_netmask("255.0.255.0"), None);
        assert_eq!(parse_v4_netmask("24"), None);
        assert_eq!(parse_v6_netmask("64"), Some(64));
        assert_eq!(parse_v6_netmask("0"), None);
        assert_eq!(parse_v6_netmask("129"), None);
        for p in 0..=32u8 {
            assert_eq!(parse_v4_netmask(&v4_mask(p).to_string()), Some(p));
        }
    }

    #[test]
    fn printing() {
        assert_eq!(addr_port("10.0.0.1".parse().unwrap(), 80), "10.0.0.1:80");
        assert_eq!(addr_port("::1".parse().unwrap(), 53), "[::1]:53");
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
