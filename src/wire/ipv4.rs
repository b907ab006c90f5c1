//! IPv4 (RFC 791).

use std::net::Ipv4Addr;

use super::{checksum, rd16, wr16, ChecksumMode, Error, Field, IpProtocol, Result};

pub(crate) mod field {
    use super::Field;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
    /// The TTL and protocol bytes form one 16-bit checksum word.
    pub const TTL_PROTO: Field = 8..10;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header (IHL = 15).
pub const MAX_HEADER_LEN: usize = 60;

pub(crate) const DF: u16 = 0x4000;
pub(crate) const MF: u16 = 0x2000;
pub(crate) const OFFSET_MASK: u16 = 0x1fff;

/// A view over an IPv4 packet.
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

    /// For the datagram quoted in an ICMP error, which is cut short: only
    /// the header (options included) must fit. `payload()` then returns the
    /// bytes present, up to the total length.
    #[inline]
    pub fn new_checked_truncated(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let len = p.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = p.header_len() as usize;
        if hl < HEADER_LEN {
            Err(Error::Malformed)
        } else if hl > len {
            Err(Error::Truncated)
        } else {
            Ok(p)
        }
    }

    /// Header (with options) and the total length must fit the buffer, and
    /// the total length must cover the header. Bytes after the total length
    /// (link padding) are allowed. The version is not checked here (see
    /// `Repr::parse`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len() as usize;
        let tl = self.total_len() as usize;
        if hl < HEADER_LEN || tl < hl {
            Err(Error::Malformed)
        } else if hl > len || tl > len {
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
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included.
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The whole TOS byte.
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flg_off(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::FLG_OFF)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flg_off() & DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flg_off() & MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flg_off() & OFFSET_MASK) << 3
    }

    /// A fragment: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flg_off() & (MF | OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(super::rd32(self.buffer.as_ref(), field::SRC_ADDR))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(super::rd32(self.buffer.as_ref(), field::DST_ADDR))
    }

    /// The whole header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len() as usize]
    }

    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }

    /// The header checksum is right.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header(), 0)
    }

    /// After the header, up to `total_len`: excludes trailing link padding
    /// (and is cut short in a truncated view).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        let end = (self.total_len() as usize).min(d.len());
        d.get(self.header_len() as usize..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0x0f) | (v << 4);
    }

    /// Sets IHL from a length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0xf0) | ((len / 4) & 0x0f);
    }

    #[inline]
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets DF, MF and the offset (in bytes; the low 3 bits are dropped).
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v = if dont_frag { DF } else { 0 } | if more_frags { MF } else { 0 } | (offset >> 3);
        wr16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    #[inline]
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = (self.flg_off() & !DF) | if on { DF } else { 0 };
        wr16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.0;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Sets the source and updates the header checksum incrementally.
    /// Returns the old address, for the caller's L4 checksum update.
    #[inline]
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        self.set_src_addr(a);
        let c = checksum::update_ipv4_addr(self.checksum(), &old, &a);
        self.set_checksum(c);
        old
    }

    /// Sets the destination and updates the header checksum incrementally.
    /// Returns the old address, for the caller's L4 checksum update.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        self.set_dst_addr(a);
        let c = checksum::update_ipv4_addr(self.checksum(), &old, &a);
        self.set_checksum(c);
        old
    }

    /// Decrements the TTL (saturating at 0) with an incremental checksum
    /// update; returns the new TTL. The caller answers time-exceeded on 0.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let old = rd16(self.buffer.as_ref(), field::TTL_PROTO);
        let ttl = self.ttl().saturating_sub(1);
        self.set_ttl(ttl);
        let new = rd16(self.buffer.as_ref(), field::TTL_PROTO);
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum(c);
        ttl
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len() as usize, self.total_len() as usize);
        let d = self.buffer.as_mut();
        let end = tl.min(d.len());
        d.get_mut(hl..end).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fields of an IPv4 header. Options are skipped by `parse` and never
/// emitted (`emit` writes a 20-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Bytes after the header (total length minus header length).
    pub payload_len: usize,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes.
    pub frag_offset: u16,
}

impl Repr {
    /// A checked view's header; `Malformed` unless version 4, `Checksum` if
    /// asked to verify and it is wrong.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, mode: ChecksumMode) -> Result<Self> {
        p.check_len()?;
        if p.version() != 4 {
            return Err(Error::Malformed);
        }
        if mode == ChecksumMode::Verify && !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() as usize - p.header_len() as usize,
            ttl: p.ttl(),
            tos: p.tos(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
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

    /// Writes the header and its checksum into the first 20 bytes of `p`
    /// (the payload is not touched). `Truncated` if `p` is shorter than the
    /// header, `Unsupported` if the payload is more than IPv4 can carry.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.payload_len > u16::MAX as usize - HEADER_LEN {
            return Err(Error::Unsupported);
        }
        let d = p.buffer.as_mut();
        d[field::VER_IHL] = 0x45;
        p.set_tos(self.tos);
        p.set_total_len((HEADER_LEN + self.payload_len) as u16);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
        Ok(())
    }
}

/// Whether `a` can be a unicast host on a wire: not 0/8 (this network),
/// 127/8 (loopback), 224/4 (multicast) nor 240/4 (reserved, with the
/// limited broadcast).
#[inline]
pub const fn is_unicast_host(a: std::net::Ipv4Addr) -> bool {
    let first = a.octets()[0];
    !(first == 0 || first == 127 || first >= 224)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 10.0.0.1 -> 10.0.0.2, UDP, id 0x1c46, DF, TTL 64, 12 bytes of payload.
    const PACKET: [u8; 32] = [
        0x45, 0x00, 0x00, 0x20, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x0a, 0x85, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad,
        0xbe, 0xef,
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: IpProtocol::UDP,
            payload_len: 12,
            ttl: 64,
            tos: 0,
            ident: 0x1c46,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0x0a85);
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), &PACKET[20..]);
        assert!(p.options().is_empty());
        assert_eq!(Repr::parse(&p, ChecksumMode::Verify).unwrap(), repr());
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 32];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr().emit(&mut p).unwrap();
        p.payload_mut().copy_from_slice(&PACKET[20..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn bad_checksum_and_version() {
        let mut b = PACKET;
        b[11] ^= 1;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, ChecksumMode::Verify), Err(Error::Checksum));
        assert!(Repr::parse(&p, ChecksumMode::Skip).is_ok());
        let mut b = PACKET;
        b[0] = 0x65;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p, ChecksumMode::Skip), Err(Error::Malformed));
    }

    #[test]
    fn options_and_padding() {
        // IHL 6: one 4-byte option (NOP NOP NOP EOL), then 4 bytes payload,
        // then 6 bytes of Ethernet padding.
        let mut b = [0u8; 34];
        b[..12].copy_from_slice(&[
            0x46, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x20, 0x05, 0x01, 0x06, 0, 0,
        ]);
        b[12..20].copy_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        b[20..24].copy_from_slice(&[1, 1, 1, 0]);
        b[24..28].copy_from_slice(&[9, 9, 9, 9]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
        assert!(p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 40);
        assert!(p.verify_checksum());
        let r = Repr::parse(&p, ChecksumMode::Verify).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.frag_offset, 40);
        assert!(r.more_frags && !r.dont_frag);
    }

    #[test]
    fn lengths() {
        assert_eq!(Packet::new_checked(&PACKET[..19]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&PACKET[..31]), Err(Error::Truncated));
        let mut b = PACKET;
        b[0] = 0x44; // IHL 4 < 5
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        let mut b = PACKET;
        b[0] = 0x4f; // IHL 15 = 60 bytes > 32
        b[3] = 60;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Truncated));
        let mut b = PACKET;
        b[3] = 19; // total < header
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
    }

    #[test]
    fn truncated_view() {
        // An ICMP quote: header plus 8 bytes of a 32-byte datagram.
        let p = Packet::new_checked_truncated(&PACKET[..28]).unwrap();
        assert_eq!(p.payload(), &PACKET[20..28]);
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            Packet::new_checked_truncated(&PACKET[..19]),
            Err(Error::Truncated)
        );
        let mut b = PACKET;
        b[3] = 3; // total < header: payload is empty, no panic
        let p = Packet::new_checked_truncated(&b[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn nat_helpers() {
        let mut b = PACKET;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        let old = p.rewrite_dst_addr(Ipv4Addr::new(192, 168, 1, 20));
        assert_eq!(old, Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.verify_checksum());
        p.rewrite_src_addr(Ipv4Addr::new(172, 16, 0, 9));
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        p.set_ttl(0);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
        p.set_dont_frag(false);
        assert!(!p.dont_frag());
    }
}
