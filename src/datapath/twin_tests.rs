//! What goes to a port's kernel twin ([`Outcome::Kernel`]) and what stays
//! rvsd's, and VIP ownership that follows the twin's addresses.

use std::net::IpAddr;
use std::sync::Arc;

use super::fuzzkit::{datapath_with_twin, vip, CLI_MAC};
use super::*;
use crate::wire::buf::VecBuf;

use super::tests::{eth, PEER};

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0, 0];
    ip.extend_from_slice(&[if dst[0] >= 224 { 255 } else { 64 }, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = crate::wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    ip
}

fn ipv6(src: &str, dst: &str, next: u8, l4: &[u8]) -> Vec<u8> {
    let (s, d): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next, 255]);
    ip.extend_from_slice(&s.octets());
    ip.extend_from_slice(&d.octets());
    ip.extend_from_slice(l4);
    ip
}

fn arp(op: u16, spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&PEER);
    a.extend_from_slice(&spa);
    a.extend_from_slice(&if op == 2 { CLI_MAC.0 } else { [0; 6] });
    a.extend_from_slice(&tpa);
    a
}

fn syn(dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&4000u16.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 0x50;
    t[13] = 0x02;
    t
}

fn echo() -> Vec<u8> {
    let mut e = vec![8, 0, 0, 0, 0, 1, 0, 1];
    let c = crate::wire::checksum::checksum(&e);
    e[2..4].copy_from_slice(&c.to_be_bytes());
    e
}

const OWN: [u8; 4] = [10, 0, 0, 254];
const VIP: [u8; 4] = [10, 0, 0, 100];
const CLIENT: [u8; 4] = [10, 0, 0, 1];

/// (description, frame, outcome with a twin, outcome without).
fn cases() -> Vec<(&'static str, Vec<u8>, Outcome, Outcome)> {
    let k = Outcome::Kernel;
    let tx0 = Outcome::Tx(PortIndex(0));
    let drop = Outcome::Drop;
    vec![
        (
            "ARP request for the own address: the kernel answers",
            eth([0xff; 6], 0x0806, &arp(1, CLIENT, OWN)),
            k,
            tx0,
        ),
        (
            "ARP request for a VIP: rvsd answers",
            eth([0xff; 6], 0x0806, &arp(1, CLIENT, VIP)),
            tx0,
            tx0,
        ),
        (
            "ARP reply to us: learned, and the kernel learns too",
            eth(CLI_MAC.0, 0x0806, &arp(2, CLIENT, OWN)),
            k,
            drop(DropReason::ArpHandled),
        ),
        (
            "ARP request for someone else",
            eth([0xff; 6], 0x0806, &arp(1, CLIENT, [10, 0, 0, 77])),
            drop(DropReason::ArpNotOurs),
            drop(DropReason::ArpNotOurs),
        ),
        (
            "ping to the own address: the kernel answers",
            eth(CLI_MAC.0, 0x0800, &ipv4(CLIENT, OWN, 1, &echo())),
            k,
            tx0,
        ),
        (
            "ping to a VIP: rvsd answers",
            eth(CLI_MAC.0, 0x0800, &ipv4(CLIENT, VIP, 1, &echo())),
            tx0,
            tx0,
        ),
        (
            "BGP (TCP 179) to the own address",
            eth(CLI_MAC.0, 0x0800, &ipv4(CLIENT, OWN, 6, &syn(179))),
            k,
            drop(DropReason::Local),
        ),
        (
            "a new connection to a VIP is balanced, never the kernel's",
            eth(CLI_MAC.0, 0x0800, &ipv4(CLIENT, VIP, 6, &syn(80))),
            Outcome::Tx(PortIndex(1)),
            Outcome::Tx(PortIndex(1)),
        ),
        (
            "VRRP advertisement (224.0.0.18, protocol 112)",
            eth(
                [1, 0, 0x5e, 0, 0, 0x12],
                0x0800,
                &ipv4(CLIENT, [224, 0, 0, 18], 112, &[0x31, 1, 100, 1, 0, 1, 0, 0]),
            ),
            k,
            drop(DropReason::NotForUs),
        ),
        (
            "LLDP",
            eth([1, 0x80, 0xc2, 0, 0, 0x0e], 0x88cc, &[0; 46]),
            k,
            drop(DropReason::NotForUs),
        ),
        (
            "another protocol to our MAC (IPX)",
            eth(CLI_MAC.0, 0x8137, &[0; 30]),
            k,
            drop(DropReason::NotIp),
        ),
        (
            "a router advertisement",
            eth(
                [0x33, 0x33, 0, 0, 0, 1],
                0x86dd,
                &ipv6(
                    "fe80::1",
                    "ff02::1",
                    58,
                    &[134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ),
            ),
            k,
            drop(DropReason::Icmpv6Control),
        ),
        (
            "OSPFv3 hello to ff02::5 (not ICMPv6)",
            eth(
                [0x33, 0x33, 0, 0, 0, 5],
                0x86dd,
                &ipv6(
                    "fe80::1",
                    "ff02::5",
                    89,
                    &[3, 1, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                ),
            ),
            k,
            drop(DropReason::MartianDestination),
        ),
        (
            "unicast to another MAC (promiscuous port)",
            eth([2, 9, 9, 9, 9, 9], 0x0800, &ipv4(CLIENT, OWN, 6, &syn(179))),
            drop(DropReason::NotForUs),
            drop(DropReason::NotForUs),
        ),
    ]
}

#[test]
fn the_kernel_gets_the_host_s_traffic_and_nothing_balanced() {
    for twin in [true, false] {
        let mut b = datapath_with_twin(twin);
        for (desc, f, with, without) in cases() {
            // The v6 cases need the twin's own IPv6 addresses.
            if !twin && f[12..14] == [0x86, 0xdd] {
                continue;
            }
            let mut buf = VecBuf::from_frame(&f);
            let got = b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO);
            let want = if twin { with } else { without };
            assert_eq!(got, want, "{desc} (twin: {twin})");
            if got == Outcome::Kernel {
                assert_eq!(buf.data(), &f[..], "{desc}: the kernel gets it untouched");
            }
        }
    }
}

#[test]
fn neighbour_replies_are_learned_before_the_kernel_gets_them() {
    let mut b = datapath_with_twin(true);
    let f = eth(CLI_MAC.0, 0x0806, &arp(2, CLIENT, OWN));
    let mut buf = VecBuf::from_frame(&f);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Kernel
    );
    assert_eq!(b.learned.len(), 1);
    assert_eq!(b.learned[0].ip, IpAddr::from(CLIENT));
}

#[test]
fn vips_are_answered_only_while_the_twin_has_them() {
    let mut b = datapath_with_twin(true);
    let owners =
        |set: &[IpAddr]| Arc::new(VipOwners(vec![Some(set.iter().copied().collect()), None]));
    b = b.with_vip_owners(owners(&[]), None);
    let ask = eth([0xff; 6], 0x0806, &arp(1, CLIENT, VIP));
    let mut buf = VecBuf::from_frame(&ask);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Drop(DropReason::ArpNotOurs),
        "not on the twin: another director owns it"
    );
    // Still balanced when it comes (a router may send it anyway).
    let mut buf = VecBuf::from_frame(&eth(CLI_MAC.0, 0x0800, &ipv4(CLIENT, VIP, 6, &syn(80))));
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Tx(PortIndex(1))
    );
    // keepalived puts it on the twin: answered, and announced once.
    b.set_vip_owners(owners(&[vip()]));
    let mut buf = VecBuf::from_frame(&ask);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Tx(PortIndex(0))
    );
    let mut out = Vec::new();
    let mut tally = crate::drops::Tally::default();
    b.tick(
        Timestamp(5),
        |_| Some(VecBuf::new(2048, 128)),
        &mut out,
        &mut tally,
    );
    let garps: Vec<_> = out
        .iter()
        .filter(|(p, f)| *p == PortIndex(0) && f.data()[12..14] == [8, 6])
        .collect();
    assert_eq!(garps.len(), 1, "one gratuitous ARP for the VIP");
    assert_eq!(&garps[0].1.data()[28..32], &VIP);
    assert_eq!(&garps[0].1.data()[6..12], &CLI_MAC.0);
    // It leaves the twin: no longer answered.
    b.set_vip_owners(owners(&[]));
    let mut buf = VecBuf::from_frame(&ask);
    assert_eq!(
        b.process_one(PortIndex(0), &mut buf, Timestamp::ZERO),
        Outcome::Drop(DropReason::ArpNotOurs)
    );
}
