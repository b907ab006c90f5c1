//! VLAN sub-interfaces at the datapath's edges: which interface a frame
//! that came in on a port belongs to, and the tag a frame leaving on an
//! interface must carry.
//!
//! As Linux's 802.1Q driver: a tag with VLAN id 0 carries a priority only
//! (the frame is the port's, untagged); frames leave with the VLAN id and
//! priority 0 (Linux's default egress map) unless they keep the tag they
//! came with. Only customer tags (TPID 0x8100) name a VLAN: an 802.1ad
//! service tag or a second tag is a VLAN no port here carries.

use super::iface::Ingress;
use super::NetConfig;
use crate::ids::PortIndex;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::Headers;
use crate::wire::{ethernet, vlan, EtherType};

/// Where the TPID (or the ethertype, untagged) sits in a frame.
const TYPE_AT: usize = ethernet::field::ETHERTYPE.start;
/// The two MACs before it.
const MACS: usize = ethernet::field::SOURCE.end;

/// The interface of a parsed frame that came in on `port`.
#[inline]
pub fn ingress(net: &NetConfig, port: PortIndex, frame: &[u8], h: &Headers) -> Ingress {
    match h.vlan {
        None => net.ingress(port, None, false),
        Some(tci) => {
            let tpid = frame.get(TYPE_AT..TYPE_AT + 2);
            if tpid != Some(&EtherType::VLAN.0.to_be_bytes()[..]) {
                return Ingress::Unknown;
            }
            net.ingress(port, Some(tci), h.vlan_inner.is_some())
        }
    }
}

/// Makes an Ethernet frame carry VLAN `vid` (`None`: untagged): a tag is
/// added, removed or given the new VLAN id; a tag already naming `vid`
/// stays as it is. False, unchanged, when there is no headroom for a tag
/// or the frame is too short to hold one.
pub fn retag<B: PacketBuf>(buf: &mut B, vid: Option<u16>) -> bool {
    let d = buf.data();
    let Some(ty) = d.get(TYPE_AT..TYPE_AT + 2) else {
        return false;
    };
    let tagged = EtherType(u16::from_be_bytes([ty[0], ty[1]])).is_vlan();
    match (tagged, vid) {
        (false, None) => true,
        (true, Some(v)) => {
            let Some(tci) = d.get(TYPE_AT + 2..TYPE_AT + vlan::HEADER_LEN) else {
                return false;
            };
            if u16::from_be_bytes([tci[0], tci[1]]) & 0x0fff != v {
                let d = buf.data_mut();
                d[TYPE_AT..TYPE_AT + 2].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
                d[TYPE_AT + 2..TYPE_AT + 4].copy_from_slice(&(v & 0x0fff).to_be_bytes());
            }
            true
        }
        (true, None) => {
            if d.len() < TYPE_AT + vlan::HEADER_LEN + 2 {
                return false;
            }
            buf.data_mut().copy_within(..MACS, vlan::HEADER_LEN);
            buf.adj(vlan::HEADER_LEN)
        }
        (false, Some(v)) => {
            if buf.prepend(vlan::HEADER_LEN).is_none() {
                return false;
            }
            let d = buf.data_mut();
            d.copy_within(vlan::HEADER_LEN..vlan::HEADER_LEN + MACS, 0);
            d[TYPE_AT..TYPE_AT + 2].copy_from_slice(&EtherType::VLAN.0.to_be_bytes());
            d[TYPE_AT + 2..TYPE_AT + 4].copy_from_slice(&(v & 0x0fff).to_be_bytes());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Iface;
    use crate::wire::buf::VecBuf;
    use crate::wire::parse::parse_frame;
    use crate::wire::EthernetAddress;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);

    /// Port 0 untagged; port 1 with VLANs 10 (interface 2) and 20
    /// (interface 3) and no addresses of its own; port 4 untagged with
    /// addresses and VLAN 30 (interface 5).
    fn net() -> NetConfig {
        let a = |s: &str| s.parse().unwrap();
        NetConfig::new()
            .with(Iface::new(0, MAC).with_addr(a("10.0.0.1/24")))
            .with(Iface::new(1, MAC))
            .with(
                Iface::new(2, MAC)
                    .on_vlan(1, 10)
                    .with_addr(a("10.0.10.1/24")),
            )
            .with(
                Iface::new(3, MAC)
                    .on_vlan(1, 20)
                    .with_addr(a("10.0.20.1/24")),
            )
            .with(Iface::new(4, MAC).with_addr(a("10.0.4.1/24")))
            .with(Iface::new(5, MAC).on_vlan(4, 30))
    }

    /// An untagged UDP frame, then the same with `tags` (TPID, TCI) pushed.
    fn frame(tags: &[(u16, u16)]) -> Vec<u8> {
        let mut f = crate::lb::forward::testutil::Pkt::udp(
            "192.0.2.1".parse().unwrap(),
            1000,
            "10.0.0.100".parse().unwrap(),
            53,
        )
        .frame();
        for (tpid, tci) in tags.iter().rev() {
            let mut t = tpid.to_be_bytes().to_vec();
            t.extend_from_slice(&tci.to_be_bytes());
            f.splice(12..12, t);
        }
        f
    }

    fn judge(port: u16, tags: &[(u16, u16)]) -> Ingress {
        let f = frame(tags);
        let h = parse_frame(&f).unwrap();
        ingress(&net(), PortIndex(port), &f, &h)
    }

    #[test]
    fn frames_find_their_interface() {
        use Ingress::{Iface as I, Unknown};
        let q = 0x8100;
        assert_eq!(judge(0, &[]), I(PortIndex(0)));
        assert_eq!(judge(1, &[(q, 10)]), I(PortIndex(2)));
        assert_eq!(
            judge(1, &[(q, 0xe014)]),
            I(PortIndex(3)),
            "priority bits ignored"
        );
        assert_eq!(judge(1, &[]), Unknown, "a VLAN-only port drops untagged");
        assert_eq!(judge(1, &[(q, 0)]), Unknown, "priority-tagged is untagged");
        assert_eq!(judge(1, &[(q, 30)]), Unknown, "VLAN 30 is port 4's");
        assert_eq!(judge(4, &[(q, 30)]), I(PortIndex(5)));
        assert_eq!(
            judge(4, &[]),
            I(PortIndex(4)),
            "addresses of its own: untagged too"
        );
        assert_eq!(judge(0, &[(q, 0x6000)]), I(PortIndex(0)));
        assert_eq!(judge(0, &[(q, 7)]), Unknown);
        assert_eq!(judge(1, &[(0x88a8, 10)]), Unknown, "a service tag");
        assert_eq!(judge(1, &[(q, 10), (q, 20)]), Unknown, "two tags");
        assert_eq!(judge(0, &[(q, 0), (q, 0)]), Unknown);
    }

    #[test]
    fn links() {
        let n = net();
        assert!(n.has_vlans());
        assert_eq!(n.link(PortIndex(3)), (PortIndex(1), Some(20)));
        assert_eq!(n.link(PortIndex(4)), (PortIndex(4), None));
        assert!(!NetConfig::new().with(Iface::new(0, MAC)).has_vlans());
        // Replacing an interface forgets its old VLAN.
        let mut n = net();
        n.set(Iface::new(3, MAC));
        assert_eq!(judge_in(&n, 1, 20), Ingress::Unknown);
    }

    fn judge_in(n: &NetConfig, port: u16, vid: u16) -> Ingress {
        let f = frame(&[(0x8100, vid)]);
        let h = parse_frame(&f).unwrap();
        ingress(n, PortIndex(port), &f, &h)
    }

    #[test]
    fn retagging() {
        let untagged = frame(&[]);
        let t10 = frame(&[(0x8100, 10)]);
        let t20 = frame(&[(0x8100, 20)]);
        let prio = frame(&[(0x8100, 0xa00a)]);
        let cases: [(&Vec<u8>, Option<u16>, &Vec<u8>); 6] = [
            (&untagged, None, &untagged),
            (&untagged, Some(10), &t10),
            (&t10, None, &untagged),
            (&t10, Some(20), &t20),
            (&prio, Some(10), &prio),
            (&frame(&[(0x8100, 0x2000)]), None, &untagged),
        ];
        for (i, (from, vid, want)) in cases.into_iter().enumerate() {
            let mut b = VecBuf::from_frame(from);
            assert!(retag(&mut b, vid), "case {i}");
            assert_eq!(b.data(), &want[..], "case {i}");
        }
        // No headroom: no tag, the frame unchanged.
        let mut b = VecBuf::with_frame(&untagged, 2, 0);
        assert!(!retag(&mut b, Some(10)));
        assert_eq!(b.data(), &untagged[..]);
        let mut short = VecBuf::from_frame(&t10[..13]);
        assert!(!retag(&mut short, None));
        assert!(!retag(&mut VecBuf::from_frame(&t10[..15]), Some(20)));
    }
}
