//! The order ipvsadm lists services and real servers in: glibc's `qsort`
//! (a stable top-down merge sort) with libipvs's comparisons, which take
//! differences of unsigned fields as a C `int`. Such a difference changes
//! sign when the operands are 2^31 or more apart, so `192.168.0.1` sorts
//! before `10.0.0.1` and mark 4294967295 before mark 1. Reproducing the
//! algorithm too, not only the comparison, gives the same order even where
//! the comparison is not transitive, for the same input order (real
//! servers come newest first from rvsd as from the kernel; services come
//! in the order added, the kernel's in its hash table's order).

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::control::proto::{DestEntry, DestSpec, ServiceKey};

/// `a - b` of two unsigned C fields, as the `int` libipvs keeps it.
fn c_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// An address as the four 32-bit words of a `union nf_inet_addr` (IPv4
/// in the first).
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// The address comparison: four words if the first operand is IPv6, else
/// the first word only.
fn addr_diff(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if a.is_ipv6() { 4 } else { 1 };
    (0..n)
        .map(|i| c_diff(wa[i], wb[i]))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

fn family(a: IpAddr) -> u32 {
    // AF_INET, AF_INET6
    if a.is_ipv4() {
        2
    } else {
        10
    }
}

/// libipvs's service comparison (fwmark, family, protocol, address, port).
pub fn services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    let r = c_diff(a.fwmark, b.fwmark);
    if r != 0 {
        return r;
    }
    let r = c_diff(family(a.address), family(b.address));
    if r != 0 {
        return r;
    }
    if a.fwmark != 0 {
        // A fwmark service has no protocol, address or port to compare.
        return 0;
    }
    let r = c_diff(a.protocol.number() as u32, b.protocol.number() as u32);
    if r != 0 {
        return r;
    }
    let r = addr_diff(a.address, b.address);
    if r != 0 {
        return r;
    }
    c_diff(a.port as u32, b.port as u32)
}

/// libipvs's real-server comparison (address, port).
pub fn dests(a: &DestSpec, b: &DestSpec) -> i32 {
    let r = addr_diff(a.address, b.address);
    if r != 0 {
        return r;
    }
    c_diff(a.port as u32, b.port as u32)
}

/// Real servers of a listing, in ipvsadm's order.
pub fn sort_dests(v: &mut Vec<DestEntry>) {
    qsort(v, |a, b| dests(&a.spec, &b.spec));
}

/// glibc's merge sort: halves of `n / 2` and the rest, each sorted, then
/// merged taking from the first while `cmp <= 0`.
pub fn qsort<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> i32 + Copy) {
    if v.len() <= 1 {
        return;
    }
    let mut second = v.split_off(v.len() / 2);
    qsort(v, cmp);
    qsort(&mut second, cmp);
    let first = std::mem::take(v);
    v.reserve(first.len() + second.len());
    let mut a = first.into_iter().peekable();
    let mut b = second.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => cmp(x, y).cmp(&0) != Ordering::Greater,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { a.next() } else { b.next() };
        v.extend(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::{Forward, Protocol};

    fn key(p: Protocol, a: &str, port: u16) -> ServiceKey {
        ServiceKey {
            protocol: p,
            address: a.parse().unwrap(),
            port,
            fwmark: 0,
        }
    }

    fn sorted(mut v: Vec<ServiceKey>) -> Vec<String> {
        qsort(&mut v, services);
        v.iter()
            .map(|k| match k.fwmark {
                0 => format!("{:?} {}:{}", k.protocol, k.address, k.port),
                m => format!("FWM {}", m as i32),
            })
            .collect()
    }

    #[test]
    fn services_as_the_kernel_listed_them() {
        // What ipvsadm 1.31 printed over Linux 6.1 (tests/conformance).
        let v = vec![
            key(Protocol::Udp, "10.0.0.9", 53),
            key(Protocol::Tcp, "10.0.0.10", 80),
            key(Protocol::Tcp, "10.0.0.9", 80),
            key(Protocol::Tcp, "10.0.0.9", 8080),
            key(Protocol::Tcp, "9.255.255.255", 80),
            key(Protocol::Tcp, "192.168.0.1", 80),
            key(Protocol::Tcp, "2001:db8::2", 80),
            key(Protocol::Tcp, "2001:db8::1", 443),
            key(Protocol::Udp, "2001:db8::1", 53),
            key(Protocol::Tcp, "::ffff:10.0.0.1", 80),
            ServiceKey::fwmark(4294967295, false),
            ServiceKey::fwmark(1, true),
            ServiceKey::fwmark(1, false),
        ];
        assert_eq!(
            sorted(v),
            [
                "FWM -1",
                "Tcp 192.168.0.1:80",
                "Tcp 9.255.255.255:80",
                "Tcp 10.0.0.9:80",
                "Tcp 10.0.0.9:8080",
                "Tcp 10.0.0.10:80",
                "Udp 10.0.0.9:53",
                "Tcp ::ffff:10.0.0.1:80",
                "Tcp 2001:db8::1:443",
                "Tcp 2001:db8::2:80",
                "Udp 2001:db8::1:53",
                "FWM 1",
                "FWM 1",
            ]
        );
    }

    #[test]
    fn real_servers_as_the_kernel_listed_them() {
        let d = |a: &str, port| DestSpec {
            address: a.parse().unwrap(),
            port,
            forward: Forward::Masq,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        // Newest first, as the kernel and rvsd give them.
        let mut v = vec![
            d("2001:db8::1:0:0:11", 443),
            d("2001:db8:ffff::1", 443),
            d("2001:db8::11", 443),
        ];
        qsort(&mut v, dests);
        let got: Vec<String> = v.iter().map(|d| d.address.to_string()).collect();
        assert_eq!(
            got,
            ["2001:db8:ffff::1", "2001:db8::11", "2001:db8::1:0:0:11"]
        );
    }

    #[test]
    fn merge_sort_is_stable_and_sorts() {
        let mut v: Vec<(u32, usize)> = (0..100).map(|i| ((i * 37 % 11) as u32, i)).collect();
        qsort(&mut v, |a, b| c_diff(a.0, b.0));
        for w in v.windows(2) {
            assert!(w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1));
        }
    }
}
