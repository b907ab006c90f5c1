//! Frame builders for the forwarding tests, on wire's `Repr` emitters (full
//! checksum computation), so that expected frames are computed
//! independently of the incremental rewrites under test.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::lb::dest::FwdMethod;
use crate::lb::engine::{ConnState, Forward};
use crate::wire::{checksum, ipv4, ipv6, tcp, udp, EtherType, EthernetAddress, IpProtocol};

use super::Env;

pub const CLIENT_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x01]);
pub const LB_IN_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x02]);
pub const LB_OUT_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x03]);
pub const RS_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x04]);

pub const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
pub const LOCAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

pub fn env(ip_id: &Cell<u16>, mtu: u16) -> Env<'_> {
    Env {
        local_v4: LOCAL4,
        local_v6: LOCAL6,
        reply_v4: LOCAL4,
        reply_v6: LOCAL6,
        src_mac: LB_OUT_MAC,
        dst_mac: RS_MAC,
        mtu,
        refragment: false,
        ip_id,
    }
}

pub fn fwd(method: FwdMethod, daddr: IpAddr, dport: u16, vaddr: IpAddr, vport: u16) -> Forward {
    Forward {
        conn: Some(1),
        new: true,
        dest: 0,
        fwd: method,
        daddr,
        dport,
        vaddr,
        vport,
        state: ConnState::Udp,
    }
}

pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse().unwrap())
}

pub fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().unwrap())
}

/// A TCP or UDP packet description.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub dst_mac: EthernetAddress,
    pub src_mac: EthernetAddress,
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: IpProtocol,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub ident: u16,
    pub flow: u32,
    /// IPv4 UDP sent without checksum.
    pub udp_zero: bool,
    pub payload: Vec<u8>,
}

impl Pkt {
    pub fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Pkt {
        Pkt {
            dst_mac: LB_IN_MAC,
            src_mac: CLIENT_MAC,
            vlan: None,
            src,
            dst,
            proto: IpProtocol::TCP,
            sport,
            dport,
            ttl: 64,
            tos: 0,
            df: true,
            ident: 0x4242,
            flow: 0,
            udp_zero: false,
            payload: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        }
    }

    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Pkt {
        Pkt {
            proto: IpProtocol::UDP,
            df: false,
            payload: b"\x12\x34\x01\x00\x00\x01dns?".to_vec(),
            ..Pkt::tcp(src, sport, dst, dport)
        }
    }

    pub fn with(mut self, f: impl FnOnce(&mut Pkt)) -> Pkt {
        f(&mut self);
        self
    }

    /// The IP datagram.
    pub fn datagram(&self) -> Vec<u8> {
        let l4_len = match self.proto {
            IpProtocol::TCP => 20 + self.payload.len(),
            _ => 8 + self.payload.len(),
        };
        let mut l4 = vec![0u8; l4_len];
        match self.proto {
            IpProtocol::TCP => {
                l4[20..].copy_from_slice(&self.payload);
                tcp::Repr {
                    src_port: self.sport,
                    dst_port: self.dport,
                    seq_number: 0x0102_0304,
                    ack_number: 0x0a0b_0c0d,
                    flags: tcp::Flags::ACK,
                    window_len: 29200,
                    urgent_at: 0,
                    payload_len: self.payload.len(),
                }
                .emit(
                    &mut tcp::Packet::new_unchecked(&mut l4[..]),
                    &self.src,
                    &self.dst,
                )
                .unwrap();
            }
            _ => {
                l4[8..].copy_from_slice(&self.payload);
                udp::Repr {
                    src_port: self.sport,
                    dst_port: self.dport,
                    payload_len: self.payload.len(),
                }
                .emit(
                    &mut udp::Packet::new_unchecked(&mut l4[..]),
                    &self.src,
                    &self.dst,
                )
                .unwrap();
                if self.udp_zero {
                    l4[6..8].copy_from_slice(&[0, 0]);
                }
            }
        }
        ip_datagram(self, self.proto, &l4)
    }

    /// The Ethernet frame.
    pub fn frame(&self) -> Vec<u8> {
        let d = self.datagram();
        framed(self.dst_mac, self.src_mac, self.vlan, &d)
    }
}

/// Wraps `l4` in an IP header with `p`'s addresses and IP fields.
pub fn ip_datagram(p: &Pkt, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let r = ipv4::Repr {
                src_addr: s,
                dst_addr: d,
                protocol: proto,
                payload_len: l4.len(),
                ttl: p.ttl,
                tos: p.tos,
                ident: p.ident,
                dont_frag: p.df,
                more_frags: false,
                frag_offset: 0,
            };
            let mut v = vec![0u8; r.buffer_len()];
            r.emit(&mut ipv4::Packet::new_unchecked(&mut v[..]))
                .unwrap();
            v[20..].copy_from_slice(l4);
            v
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let r = ipv6::Repr {
                src_addr: s,
                dst_addr: d,
                next_header: proto,
                payload_len: l4.len(),
                hop_limit: p.ttl,
                traffic_class: p.tos,
                flow_label: p.flow,
            };
            let mut v = vec![0u8; r.buffer_len()];
            r.emit(&mut ipv6::Packet::new_unchecked(&mut v[..]))
                .unwrap();
            v[40..].copy_from_slice(l4);
            v
        }
        _ => panic!("mixed families"),
    }
}

/// An Ethernet (+ 802.1Q) frame around an IP datagram.
pub fn framed(
    dst: EthernetAddress,
    src: EthernetAddress,
    vlan: Option<u16>,
    datagram: &[u8],
) -> Vec<u8> {
    let et = if datagram[0] >> 4 == 6 {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some(tci) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&et.0.to_be_bytes());
    f.extend_from_slice(datagram);
    f
}

/// An ICMP (IPv4) or ICMPv6 error message from `outer.src` to `outer.dst`
/// (the protocol, ports and payload of `outer` are ignored) quoting
/// `quote`, with the 4 bytes after the checksum = `rest`.
pub fn icmp_error(outer: &Pkt, ty: u8, code: u8, rest: u32, quote: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(quote);
    let (proto, c) = match (outer.src, outer.dst) {
        (IpAddr::V4(_), _) => (IpProtocol::ICMP, checksum::checksum(&m)),
        _ => {
            let ph =
                checksum::pseudo_header(&outer.src, &outer.dst, IpProtocol::ICMPV6, m.len() as u32);
            (
                IpProtocol::ICMPV6,
                !checksum::combine(&[ph, checksum::data(&m)]),
            )
        }
    };
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let d = ip_datagram(outer, proto, &m);
    framed(outer.dst_mac, outer.src_mac, outer.vlan, &d)
}
