//! Synthetic client traffic for throughput tests: N flows (client address and
//! port) toward a VIP, as TCP openings, established-flow segments, whole
//! connection lifecycles or UDP, written as a pcap capture that a packet
//! generator (`dpdk-testpmd` replaying it with `net_pcap`, or `rvsgen send`)
//! sends. [`pcap`] reads and writes the captures, [`Pacer`] spreads a
//! target packet rate over time for `rvsgen send`.

use std::io;
use std::net::Ipv4Addr;

use crate::rng::XorShift;
use crate::wire::checksum;

mod pace;
mod pcap;

pub use pace::Pacer;
pub use pcap::{PcapReader, PcapWriter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// One TCP SYN per flow, every flow a new client: new connections.
    Syn,
    /// A SYN per flow, then `rounds` ACK segments per flow in random order:
    /// established-flow traffic once the SYNs have gone by.
    Established { rounds: u32 },
    /// SYN, ACK, data, FIN, ACK per flow, flows interleaved: connections are
    /// created and closed (and later expire).
    Lifecycle,
    /// `rounds` UDP datagrams per flow in random order.
    Udp { rounds: u32 },
}

#[derive(Clone, Debug)]
pub struct FlowSpec {
    pub flows: u32,
    /// Flows per client address (client ports 1024 ..); 1 = every flow a new client.
    pub ports_per_client: u32,
    pub client_base: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub vport: u16,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Frame length without the FCS (60 = a 64-byte frame on the wire).
    pub frame_len: usize,
    pub seed: u64,
}

impl FlowSpec {
    /// Flow `k`'s client address and port.
    pub fn client(&self, k: u32) -> (Ipv4Addr, u16) {
        let ppc = self.ports_per_client.max(1);
        let ip = u32::from(self.client_base).wrapping_add(k / ppc);
        (Ipv4Addr::from(ip), 1024 + (k % ppc) as u16)
    }
}

const ETH: usize = 14;
const IP: usize = 20;

/// A TCP segment of flow `k` with `flags`, padded to the frame length.
pub fn tcp_frame(
    spec: &FlowSpec,
    k: u32,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: usize,
) -> Vec<u8> {
    let (src, sport) = spec.client(k);
    let l4 = 20 + payload;
    let len = (ETH + IP + l4).max(spec.frame_len);
    let mut f = vec![0u8; len];
    eth_ip(&mut f, spec, src, 6, l4, k as u16);
    let t = &mut f[ETH + IP..ETH + IP + l4];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&spec.vport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    for (i, b) in t[20..].iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    l4_checksum(&mut f, src, spec.vip, 6, l4, 16);
    f
}

/// A UDP datagram of flow `k` carrying `payload` bytes.
pub fn udp_frame(spec: &FlowSpec, k: u32, payload: usize) -> Vec<u8> {
    let (src, sport) = spec.client(k);
    let l4 = 8 + payload;
    let len = (ETH + IP + l4).max(spec.frame_len);
    let mut f = vec![0u8; len];
    eth_ip(&mut f, spec, src, 17, l4, k as u16);
    let u = &mut f[ETH + IP..ETH + IP + l4];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&spec.vport.to_be_bytes());
    u[4..6].copy_from_slice(&(l4 as u16).to_be_bytes());
    for (i, b) in u[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7);
    }
    l4_checksum(&mut f, src, spec.vip, 17, l4, 6);
    f
}

fn eth_ip(f: &mut [u8], spec: &FlowSpec, src: Ipv4Addr, proto: u8, l4: usize, id: u16) {
    f[0..6].copy_from_slice(&spec.dst_mac);
    f[6..12].copy_from_slice(&spec.src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[ETH..ETH + IP];
    let total = (IP + l4) as u16;
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&spec.vip.octets());
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
}

fn l4_checksum(f: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: usize, at: usize) {
    let seg = &mut f[ETH + IP..ETH + IP + l4];
    let ph = checksum::pseudo_header_v4(&src, &dst, crate::wire::IpProtocol(proto), l4 as u16);
    let mut c = checksum::combine(&[ph, checksum::data(seg)]);
    c = !c;
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Every frame of the pattern, in send order, to `emit`.
pub fn generate(
    spec: &FlowSpec,
    pattern: Pattern,
    mut emit: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut rng = XorShift::new(spec.seed | 1);
    let mut n = 0u64;
    let mut order: Vec<u32> = (0..spec.flows).collect();
    let shuffle = |order: &mut Vec<u32>, rng: &mut XorShift| {
        for i in (1..order.len()).rev() {
            let j = rng.below(i + 1);
            order.swap(i, j);
        }
    };
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    match pattern {
        Pattern::Syn => {
            for k in 0..spec.flows {
                emit(&tcp_frame(spec, k, SYN, 1000, 0, 0))?;
                n += 1;
            }
        }
        Pattern::Established { rounds } => {
            for k in 0..spec.flows {
                emit(&tcp_frame(spec, k, SYN, 1000, 0, 0))?;
                n += 1;
            }
            for r in 0..rounds {
                shuffle(&mut order, &mut rng);
                for &k in &order {
                    emit(&tcp_frame(spec, k, ACK, 1001 + r, 5001, 0))?;
                    n += 1;
                }
            }
        }
        Pattern::Lifecycle => {
            // Interleave: step s of every flow before step s+1 of any.
            for (step, flags) in [(0u32, SYN), (1, ACK), (2, PSH_ACK), (3, FIN_ACK), (4, ACK)] {
                shuffle(&mut order, &mut rng);
                for &k in &order {
                    let payload = if step == 2 { 6 } else { 0 };
                    let seq = if step == 0 {
                        1000
                    } else if step <= 2 {
                        1001
                    } else {
                        1007
                    };
                    let ack = if step == 0 {
                        0
                    } else {
                        5001 + (step == 4) as u32
                    };
                    emit(&tcp_frame(spec, k, flags, seq, ack, payload))?;
                    n += 1;
                }
            }
        }
        Pattern::Udp { rounds } => {
            for _ in 0..rounds.max(1) {
                shuffle(&mut order, &mut rng);
                for &k in &order {
                    emit(&udp_frame(spec, k, 18))?;
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse::parse_frame;

    fn spec(flows: u32) -> FlowSpec {
        FlowSpec {
            flows,
            ports_per_client: 4,
            client_base: Ipv4Addr::new(172, 16, 0, 1),
            vip: Ipv4Addr::new(10, 0, 0, 100),
            vport: 80,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            frame_len: 60,
            seed: 7,
        }
    }

    #[test]
    fn frames_parse_with_valid_checksums() {
        let s = spec(10);
        for f in [
            tcp_frame(&s, 5, 0x02, 1, 0, 0),
            tcp_frame(&s, 9, 0x18, 1, 1, 6),
            udp_frame(&s, 3, 18),
        ] {
            assert_eq!(f.len(), 60.max(f.len()));
            let h = parse_frame(&f).unwrap();
            assert_eq!(h.dst, std::net::IpAddr::V4(s.vip));
            let l3 = &f[14..14 + h.l3_len as usize];
            assert_eq!(checksum::checksum(&l3[..20]), 0, "IPv4 header checksum");
            let l4 = &l3[20..];
            let ph = checksum::pseudo_header_v4(
                &Ipv4Addr::new(l3[12], l3[13], l3[14], l3[15]),
                &s.vip,
                crate::wire::IpProtocol(l3[9]),
                l4.len() as u16,
            );
            assert_eq!(
                !checksum::combine(&[ph, checksum::data(l4)]),
                0,
                "L4 checksum"
            );
        }
        assert_eq!(s.client(5), (Ipv4Addr::new(172, 16, 0, 2), 1025));
    }

    #[test]
    fn patterns_have_the_expected_counts() {
        let s = spec(100);
        let count = |p| generate(&s, p, |_| Ok(())).unwrap();
        assert_eq!(count(Pattern::Syn), 100);
        assert_eq!(count(Pattern::Established { rounds: 3 }), 400);
        assert_eq!(count(Pattern::Lifecycle), 500);
        assert_eq!(count(Pattern::Udp { rounds: 2 }), 200);
    }
}
