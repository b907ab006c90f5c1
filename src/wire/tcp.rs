//! TCP headers (RFC 9293). The view covers one whole segment (the IP
//! payload), since TCP has no length field of its own.

use core::fmt;
use core::ops::BitOr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, rd16, rd32, wr16, wr32, ChecksumMode, Error, Field, IpProtocol, Result};

pub(crate) mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The eight TCP flag bits (the experimental NS bit is not included).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Self = Self(0x01);
    pub const SYN: Self = Self(0x02);
    pub const RST: Self = Self(0x04);
    pub const PSH: Self = Self(0x08);
    pub const ACK: Self = Self(0x10);
    pub const URG: Self = Self(0x20);
    pub const ECE: Self = Self(0x40);
    pub const CWR: Self = Self(0x80);

    /// All bits of `f` are set.
    #[inline]
    pub const fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }

    #[inline]
    pub const fn fin(self) -> bool {
        self.0 & 0x01 != 0
    }

    #[inline]
    pub const fn syn(self) -> bool {
        self.0 & 0x02 != 0
    }

    #[inline]
    pub const fn rst(self) -> bool {
        self.0 & 0x04 != 0
    }

    #[inline]
    pub const fn psh(self) -> bool {
        self.0 & 0x08 != 0
    }

    #[inline]
    pub const fn ack(self) -> bool {
        self.0 & 0x10 != 0
    }

    #[inline]
    pub const fn urg(self) -> bool {
        self.0 & 0x20 != 0
    }
}

impl BitOr for Flags {
    type Output = Self;
    #[inline]
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, n) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// A view over a TCP segment.
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

    /// The fixed header must fit, the data offset must be at least 5 words
    /// and the options it announces must fit.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len() as usize;
        if hl < HEADER_LEN {
            Err(Error::Malformed)
        } else if hl > len {
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
    pub fn src_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn seq_number(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset × 4), options included.
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::URGENT)
    }

    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len() as usize..]
    }

    /// The checksum over the pseudo-header and the whole segment is right.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::TCP, d.len() as u32);
        checksum::verify(d, ph)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::SEQ, v);
    }

    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the data offset from a length in bytes (multiple of 4, 20..=60);
    /// the reserved bits are cleared.
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        self.buffer.as_mut()[field::DATA_OFF] = (len / 4) << 4;
    }

    #[inline]
    pub fn set_flags(&mut self, f: Flags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::WINDOW, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::URGENT, v);
    }

    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..hl]
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len() as usize;
        &mut self.buffer.as_mut()[hl..]
    }

    /// Computes the checksum over the pseudo-header and the whole segment.
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::TCP, d.len() as u32);
        let c = !checksum::combine(&[ph, checksum::data(d)]);
        self.set_checksum(c);
    }

    /// Sets the source port, updating the checksum; returns the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
        old
    }

    /// Sets the destination port, updating the checksum; returns the old port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(port);
        self.set_checksum(checksum::update_u16(self.checksum(), old, port));
        old
    }

    /// Accounts in the checksum for an IPv4 address change in the IP header
    /// (the pseudo-header covers it).
    #[inline]
    pub fn update_checksum_ipv4(&mut self, old: &Ipv4Addr, new: &Ipv4Addr) {
        self.set_checksum(checksum::update_ipv4_addr(self.checksum(), old, new));
    }

    /// Accounts in the checksum for an IPv6 address change.
    #[inline]
    pub fn update_checksum_ipv6(&mut self, old: &Ipv6Addr, new: &Ipv6Addr) {
        self.set_checksum(checksum::update_ipv6_addr(self.checksum(), old, new));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fixed TCP header fields. Options are skipped by `parse` (see
/// `header_len`) and not emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: Flags,
    pub window_len: u16,
    pub urgent_at: u16,
    pub payload_len: usize,
}

impl Repr {
    /// `Checksum` if asked to verify and it is wrong; a zero source or
    /// destination port is `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(
        p: &Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<Self> {
        p.check_len()?;
        if p.src_port() == 0 || p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if mode == ChecksumMode::Verify && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            payload_len: p.payload().len(),
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

    /// Writes the 20-byte header with a zero checksum; the payload is not
    /// touched. Follow with `fill_checksum` once the payload is in place.
    /// `Truncated` if `p` is shorter than the header.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        p.set_header_len(HEADER_LEN as u8);
        p.set_flags(self.flags);
        p.set_window_len(self.window_len);
        p.set_checksum(0);
        p.set_urgent_at(self.urgent_at);
        Ok(())
    }

    /// `emit_header`, then the checksum over the segment as it is in `p`
    /// (the payload must already be there).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<()> {
        self.emit_header(p)?;
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));

    // 192.168.1.10:52000 -> 192.168.1.1:80 SYN, MSS 1460 option, 4 bytes data.
    fn segment() -> [u8; 28] {
        let mut s = [
            0xcb, 0x20, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02,
            0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, b'G', b'E', b'T', b' ',
        ];
        let mut p = Packet::new_unchecked(&mut s[..]);
        p.fill_checksum(&SRC, &DST);
        s
    }

    #[test]
    fn parse() {
        let s = segment();
        let p = Packet::new_checked(&s[..]).unwrap();
        assert_eq!(p.src_port(), 52000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01020304);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), Flags::SYN);
        assert!(p.flags().syn() && !p.flags().ack());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.options(), &[2, 4, 5, 0xb4]);
        assert_eq!(p.payload(), b"GET ");
        assert!(p.verify_checksum(&SRC, &DST));
        assert!(!p.verify_checksum(&DST, &DST));
        let r = Repr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!(r.payload_len, 4);
        assert_eq!(r.flags, Flags::SYN);
        assert_eq!(
            Repr::parse(&p, &DST, &DST, ChecksumMode::Verify),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn known_checksum() {
        // Hand-checked: ACK 10.0.0.1:1234 -> 10.0.0.2:80, seq 1 ack 1, win 502.
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let mut s = [
            0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0x01, 0xf6, 0, 0, 0, 0,
        ];
        let mut p = Packet::new_unchecked(&mut s[..]);
        p.fill_checksum(&src, &dst);
        // Pseudo 0a00+0001+0a00+0002+0006+0014 = 0x141d; header 0x04d2+0x50+1+1
        // +0x5010+0x01f6 = 0x572a; total 0x6b47 -> ~ = 0x94b8.
        assert_eq!(p.checksum(), 0x94b8);
    }

    #[test]
    fn emit() {
        let r = Repr {
            src_port: 52000,
            dst_port: 80,
            seq_number: 0x01020304,
            ack_number: 0,
            flags: Flags::SYN,
            window_len: 64240,
            urgent_at: 0,
            payload_len: 4,
        };
        let mut buf = [0u8; 24];
        buf[20..].copy_from_slice(b"GET ");
        let mut p = Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut p, &SRC, &DST).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum(&SRC, &DST));
        assert_eq!(
            Repr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap(),
            r
        );
        // Same bytes as the captured segment minus its option.
        let s = segment();
        assert_eq!(&buf[..12], &s[..12]);
        assert_eq!(buf[12], 0x50);
    }

    #[test]
    fn lengths() {
        let s = segment();
        assert_eq!(Packet::new_checked(&s[..19]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&s[..23]), Err(Error::Truncated));
        let mut b = s;
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        let mut b = s;
        b[0] = 0;
        b[1] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &SRC, &DST, ChecksumMode::Skip),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn nat_rewrites() {
        let mut s = segment();
        let mut p = Packet::new_checked(&mut s[..]).unwrap();
        assert_eq!(p.rewrite_dst_port(8080), 80);
        p.rewrite_src_port(1);
        let (IpAddr::V4(old), IpAddr::V4(new)) = (DST, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        else {
            unreachable!()
        };
        p.update_checksum_ipv4(&old, &new);
        assert!(p.verify_checksum(&SRC, &IpAddr::V4(new)));
    }

    #[test]
    fn flags_debug() {
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK), "SYN|ACK");
        assert_eq!(format!("{:?}", Flags::default()), "-");
        assert!((Flags::SYN | Flags::ACK).contains(Flags::ACK));
    }
}
