//! IPv6 (RFC 8200) and its common extension headers.

use std::net::Ipv6Addr;

use super::{rd16, rd32, wr16, wr32, Error, Field, IpProtocol, Result};

pub(crate) mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// The walker gives up after this many extension headers (bounded work per
/// packet; real traffic carries one or two).
pub const MAX_EXT_HEADERS: usize = 8;

/// A view over an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// For the datagram quoted in an ICMP error: only the fixed header must
    /// fit; `payload()` returns the bytes present.
    #[inline]
    pub fn new_checked_truncated(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(p)
        }
    }

    /// The fixed header and `payload_len` bytes must fit (trailing link
    /// padding allowed). Jumbograms (payload length 0 plus a hop-by-hop
    /// option) are read as an empty payload.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || HEADER_LEN + self.payload_len() as usize > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn word0(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    #[inline]
    pub fn payload_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Header length plus payload length: bytes of the datagram.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }

    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(super::rd_array::<16>(self.buffer.as_ref(), field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(super::rd_array::<16>(self.buffer.as_ref(), field::DST_ADDR))
    }

    /// Everything after the fixed header up to the payload length,
    /// extension headers included (cut short in a truncated view).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        let end = self.total_len().min(d.len());
        d.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Walks the extension headers: the upper-layer protocol and where it
    /// starts in `payload()`.
    #[inline]
    pub fn ext_chain(&self) -> Result<ExtChain> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    fn set_word0(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }

    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let w = (self.word0() & 0x0fff_ffff) | ((v as u32 & 0xf) << 28);
        self.set_word0(w);
    }

    #[inline]
    pub fn set_traffic_class(&mut self, v: u8) {
        let w = (self.word0() & 0xf00f_ffff) | ((v as u32) << 20);
        self.set_word0(w);
    }

    #[inline]
    pub fn set_flow_label(&mut self, v: u32) {
        let w = (self.word0() & 0xfff0_0000) | (v & 0x000f_ffff);
        self.set_word0(w);
    }

    #[inline]
    pub fn set_payload_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    #[inline]
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v.0;
    }

    #[inline]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Decrements the hop limit (saturating at 0) and returns it. No header
    /// checksum in IPv6.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(h);
        h
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        let d = self.buffer.as_mut();
        let end = end.min(d.len());
        d.get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fixed IPv6 header. `next_header`/`payload_len` are the raw fields
/// (extension headers are part of the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    pub flow_label: u32,
}

impl Repr {
    /// `Malformed` unless version 6.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.version() != 6 {
            return Err(Error::Malformed);
        }
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len() as usize,
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 40-byte header (payload untouched). `Truncated` if `p` is
    /// shorter, `Unsupported` for a payload over 65535 bytes (no jumbograms).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.payload_len > u16::MAX as usize {
            return Err(Error::Unsupported);
        }
        p.set_word0(
            (6 << 28) | ((self.traffic_class as u32) << 20) | (self.flow_label & 0x000f_ffff),
        );
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

// ---- extension headers ----------------------------------------------------

/// Fragment information (IPv4 header fields or an IPv6 Fragment header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FragInfo {
    /// Identification (16 bits on IPv4).
    pub ident: u32,
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl FragInfo {
    /// Carries the upper-layer header (offset 0).
    #[inline]
    pub const fn is_first(&self) -> bool {
        self.offset == 0
    }

    /// Offset 0 and no more fragments: a whole datagram in a Fragment
    /// header (RFC 6946 "atomic fragment").
    #[inline]
    pub const fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// Result of walking an extension header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtChain {
    /// The upper-layer protocol (or ESP / No Next Header, which end a walk).
    pub protocol: IpProtocol,
    /// Bytes of extension headers before the upper-layer header.
    pub len: usize,
    /// Present if a Fragment header was seen.
    pub frag: Option<FragInfo>,
    /// A Routing header with segments left: the datagram asks to be source
    /// routed (the kernel refuses type 0 and anything it cannot process).
    pub routed: bool,
}

/// True for the extension headers the walker skips.
#[inline]
pub const fn is_ext_header(p: IpProtocol) -> bool {
    matches!(p.0, 0 | 43 | 44 | 51 | 60)
}

/// Length in bytes of the extension header `kind` at the start of `data`
/// (which must hold at least its first two bytes).
#[inline]
pub fn ext_header_len(kind: IpProtocol, data: &[u8]) -> Result<usize> {
    match (kind, data.get(1)) {
        (_, None) => Err(Error::Truncated),
        (IpProtocol::IPV6_FRAG, _) => Ok(FragmentHeader::<&[u8]>::LEN),
        // AH counts 4-byte words, minus 2 (RFC 4302).
        (IpProtocol::AH, Some(&l)) => Ok((l as usize + 2) * 4),
        // The others count 8-byte units beyond the first.
        (_, Some(&l)) => Ok((l as usize + 1) * 8),
    }
}

/// Skips hop-by-hop, routing, fragment, destination options and AH headers
/// at the start of `data` (an IPv6 payload whose first header is `first`).
/// A non-first fragment ends the walk at its Fragment header: what follows
/// is fragment data, not a header.
pub fn walk_ext_headers(first: IpProtocol, data: &[u8]) -> Result<ExtChain> {
    let mut nh = first;
    let mut off = 0usize;
    let mut frag = None;
    let mut routed = false;
    for i in 0..=MAX_EXT_HEADERS {
        if !is_ext_header(nh) {
            return Ok(ExtChain {
                protocol: nh,
                len: off,
                frag,
                routed,
            });
        }
        if i == MAX_EXT_HEADERS {
            break;
        }
        // Hop-by-hop is only allowed right after the fixed header.
        if nh == IpProtocol::HOPOPT && i != 0 {
            return Err(Error::Malformed);
        }
        let rest = data.get(off..).unwrap_or(&[]);
        let len = ext_header_len(nh, rest)?;
        if rest.len() < len {
            return Err(Error::Truncated);
        }
        let next = IpProtocol(rest[0]);
        if nh == IpProtocol::IPV6_FRAG {
            // A second Fragment header is nonsense (RFC 8200 §4.5).
            if frag.is_some() {
                return Err(Error::Malformed);
            }
            let f = FragmentHeader::new_unchecked(&rest[..len]).info();
            frag = Some(f);
            off += len;
            if !f.is_first() {
                return Ok(ExtChain {
                    protocol: next,
                    len: off,
                    frag,
                    routed,
                });
            }
        } else {
            if nh == IpProtocol::IPV6_ROUTE {
                routed |= rest.get(ROUTING_SEGMENTS_LEFT).is_some_and(|&n| n > 0);
            }
            off += len;
        }
        nh = next;
    }
    Err(Error::Unsupported)
}

/// Where a Routing header keeps its count of segments left (RFC 8200 §4.4).
const ROUTING_SEGMENTS_LEFT: usize = 3;

mod frag_field {
    use super::Field;
    pub const NEXT_HEADER: usize = 0;
    pub const OFF_M: Field = 2..4;
    pub const IDENT: Field = 4..8;
}

/// A view over an IPv6 Fragment header (8 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    pub const LEN: usize = 8;

    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[frag_field::NEXT_HEADER])
    }

    /// In bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        rd16(self.buffer.as_ref(), frag_field::OFF_M) & !0x7
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        rd16(self.buffer.as_ref(), frag_field::OFF_M) & 1 != 0
    }

    #[inline]
    pub fn ident(&self) -> u32 {
        rd32(self.buffer.as_ref(), frag_field::IDENT)
    }

    #[inline]
    pub fn info(&self) -> FragInfo {
        FragInfo {
            ident: self.ident(),
            offset: self.frag_offset(),
            more: self.more_frags(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    /// Writes the whole header (reserved fields zeroed).
    #[inline]
    pub fn emit(&mut self, next_header: IpProtocol, info: &FragInfo) {
        let d = self.buffer.as_mut();
        d[frag_field::NEXT_HEADER] = next_header.0;
        d[1] = 0;
        wr16(
            d,
            frag_field::OFF_M,
            (info.offset & !0x7) | info.more as u16,
        );
        wr32(d, frag_field::IDENT, info.ident);
    }
}

/// Whether `a` can be a unicast host on a wire: not unspecified, loopback,
/// multicast nor IPv4-mapped (RFC 4291 §2.5.5.2: never on the wire).
#[inline]
pub fn is_unicast_host(a: &std::net::Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.to_ipv4_mapped().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2001:db8::1 -> 2001:db8::2, next header UDP, hop limit 64, flow 0x12345,
    // traffic class 0xb8, 8 bytes of payload.
    const PACKET: [u8; 48] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x08, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x04,
        0xd2, 0x00, 0x35, 0x00, 0x08, 0xab, 0xcd,
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: IpProtocol::UDP,
            payload_len: 8,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), IpProtocol::UDP);
        assert_eq!(p.payload(), &PACKET[40..]);
        assert_eq!(Repr::parse(&p).unwrap(), repr());
        let c = p.ext_chain().unwrap();
        assert_eq!((c.protocol, c.len, c.frag), (IpProtocol::UDP, 0, None));
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 48];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut p).unwrap();
        p.payload_mut().copy_from_slice(&PACKET[40..]);
        assert_eq!(buf, PACKET);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_flow_label(0xfffff);
        p.set_traffic_class(1);
        assert_eq!((p.version(), p.traffic_class()), (6, 1));
        assert_eq!(p.flow_label(), 0xfffff);
        assert_eq!(p.decrement_hop_limit(), 63);
    }

    #[test]
    fn lengths() {
        assert_eq!(Packet::new_checked(&PACKET[..39]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&PACKET[..47]), Err(Error::Truncated));
        let mut b = PACKET;
        b[0] = 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Malformed));
    }

    #[test]
    fn truncated_view() {
        let p = Packet::new_checked_truncated(&PACKET[..44]).unwrap();
        assert_eq!(p.payload(), &PACKET[40..44]);
        assert_eq!(
            Packet::new_checked_truncated(&PACKET[..39]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn ext_chain() {
        // HBH (8 bytes, PadN) -> DstOpts (16 bytes) -> Fragment (first,
        // M=1, id 0xdeadbeef) -> AH (len 4 => 24 bytes) -> TCP.
        let mut d = [0u8; 8 + 16 + 8 + 24 + 4];
        d[0] = 60;
        d[1] = 0;
        d[2] = 1;
        d[3] = 4;
        d[8] = 44;
        d[9] = 1;
        d[24..32].copy_from_slice(&[51, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        d[32] = 6;
        d[33] = 4;
        let c = walk_ext_headers(IpProtocol::HOPOPT, &d).unwrap();
        assert_eq!(c.protocol, IpProtocol::TCP);
        assert_eq!(c.len, 56);
        assert_eq!(
            c.frag,
            Some(FragInfo {
                ident: 0xdeadbeef,
                offset: 0,
                more: true
            })
        );
        // Truncated inside AH.
        assert_eq!(
            walk_ext_headers(IpProtocol::HOPOPT, &d[..50]),
            Err(Error::Truncated)
        );
        // HBH not first.
        let mut e = d;
        e[0] = 0;
        assert_eq!(
            walk_ext_headers(IpProtocol::HOPOPT, &e),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn non_first_fragment_stops() {
        let mut d = [0u8; 16];
        let mut f = FragmentHeader::new_unchecked(&mut d[..8]);
        f.emit(
            IpProtocol::UDP,
            &FragInfo {
                ident: 7,
                offset: 1448,
                more: false,
            },
        );
        // What follows looks like an ext header but is data.
        d[8] = 0;
        let c = walk_ext_headers(IpProtocol::IPV6_FRAG, &d).unwrap();
        assert_eq!(c.protocol, IpProtocol::UDP);
        assert_eq!(c.len, 8);
        let fi = c.frag.unwrap();
        assert_eq!((fi.ident, fi.offset, fi.more), (7, 1448, false));
        assert!(!fi.is_first() && !fi.is_atomic());
    }

    #[test]
    fn walk_limits() {
        // Nine destination-options headers in a row: Unsupported.
        let mut d = [0u8; 9 * 8 + 8];
        for i in 0..9 {
            d[i * 8] = 60;
        }
        assert_eq!(
            walk_ext_headers(IpProtocol::IPV6_OPTS, &d),
            Err(Error::Unsupported)
        );
        // ESP ends the walk.
        let c = walk_ext_headers(IpProtocol::ESP, &[]).unwrap();
        assert_eq!((c.protocol, c.len), (IpProtocol::ESP, 0));
        assert_eq!(
            walk_ext_headers(IpProtocol::IPV6_ROUTE, &[6]),
            Err(Error::Truncated)
        );
        // Two fragment headers.
        let mut d = [0u8; 16];
        d[0] = 44;
        d[8] = 17;
        assert_eq!(
            walk_ext_headers(IpProtocol::IPV6_FRAG, &d),
            Err(Error::Malformed)
        );
    }
}
