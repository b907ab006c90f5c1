//! UDP (RFC 768). The checksum field's zero means "none" on IPv4 only; a
//! computed zero is sent as 0xffff. See [`super::checksum::udp_wire`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, rd16, wr16, ChecksumMode, Error, Field, IpProtocol, Result};

pub(crate) mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

pub const HEADER_LEN: usize = 8;

/// A view over a UDP datagram.
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

    /// The header must fit and the length field must cover the header and
    /// fit in the buffer (the buffer may be longer).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l < HEADER_LEN {
            Err(Error::Malformed)
        } else if l > len {
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

    /// The length field: header plus payload.
    #[inline]
    pub fn len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    /// Checksum right, or absent on IPv4 (zero). On IPv6 zero is invalid.
    #[inline]
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return matches!((src, dst), (IpAddr::V4(_), IpAddr::V4(_)));
        }
        let d = &self.buffer.as_ref()[..self.len() as usize];
        let ph = checksum::pseudo_header(src, dst, IpProtocol::UDP, d.len() as u32);
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
    pub fn set_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }

    /// Computes the checksum over the pseudo-header and `len()` bytes
    /// (a computed 0 is stored as 0xffff).
    #[inline]
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let d = &self.buffer.as_ref()[..self.len() as usize];
        let ph = checksum::pseudo_header(src, dst, IpProtocol::UDP, d.len() as u32);
        let c = checksum::udp_wire(!checksum::combine(&[ph, checksum::data(d)]));
        self.set_checksum(c);
    }

    /// Sets the source port, updating the checksum (unless absent); returns
    /// the old port.
    #[inline]
    pub fn rewrite_src_port(&mut self, port: u16) -> u16 {
        let old = self.src_port();
        self.set_src_port(port);
        self.set_checksum(checksum::udp_update_u16(self.checksum(), old, port));
        old
    }

    /// Sets the destination port, updating the checksum (unless absent);
    /// returns the old port.
    #[inline]
    pub fn rewrite_dst_port(&mut self, port: u16) -> u16 {
        let old = self.dst_port();
        self.set_dst_port(port);
        self.set_checksum(checksum::udp_update_u16(self.checksum(), old, port));
        old
    }

    /// Accounts for an IPv4 address change in the pseudo-header (a zero
    /// checksum stays zero).
    #[inline]
    pub fn update_checksum_ipv4(&mut self, old: &Ipv4Addr, new: &Ipv4Addr) {
        self.set_checksum(checksum::udp_update_ipv4_addr(self.checksum(), old, new));
    }

    /// Accounts for an IPv6 address change in the pseudo-header.
    #[inline]
    pub fn update_checksum_ipv6(&mut self, old: &Ipv6Addr, new: &Ipv6Addr) {
        self.set_checksum(checksum::udp_update_ipv6_addr(self.checksum(), old, new));
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The UDP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl Repr {
    /// `Malformed` for a zero destination port; `Checksum` if asked to
    /// verify and it is wrong.
    pub fn parse<T: AsRef<[u8]>>(
        p: &Packet<T>,
        src: &IpAddr,
        dst: &IpAddr,
        mode: ChecksumMode,
    ) -> Result<Self> {
        p.check_len()?;
        if p.dst_port() == 0 {
            return Err(Error::Malformed);
        }
        if mode == ChecksumMode::Verify && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() as usize - HEADER_LEN,
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

    /// Writes ports and length with a zero checksum; payload untouched.
    /// `Truncated` if `p` is shorter than `buffer_len()`, `Unsupported` if
    /// the length does not fit the 16-bit field.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::Truncated);
        }
        if self.buffer_len() > u16::MAX as usize {
            return Err(Error::Unsupported);
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len((HEADER_LEN + self.payload_len) as u16);
        p.set_checksum(0);
        Ok(())
    }

    /// `emit_header`, then the checksum (payload must already be in `p`,
    /// which must hold `buffer_len()` bytes).
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

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    // 10.0.0.1:12345 -> 10.0.0.2:53, 4 bytes payload. Checksum by hand:
    // pseudo 0a00+0001+0a00+0002+0011+000c, header 3039+0035+000c, payload
    // dead+beef: folded sum 0xe237, checksum 0x1dc8.
    const DGRAM: [u8; 12] = [
        0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x1d, 0xc8, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn parse() {
        let p = Packet::new_checked(&DGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 12345);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum(&SRC, &DST));
        let r = Repr::parse(&p, &SRC, &DST, ChecksumMode::Verify).unwrap();
        assert_eq!(
            r,
            Repr {
                src_port: 12345,
                dst_port: 53,
                payload_len: 4
            }
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; 12];
        buf[8..].copy_from_slice(&DGRAM[8..]);
        let r = Repr {
            src_port: 12345,
            dst_port: 53,
            payload_len: 4,
        };
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), &SRC, &DST)
            .unwrap();
        assert_eq!(buf, DGRAM);
    }

    #[test]
    fn zero_checksum() {
        let mut b = DGRAM;
        b[6] = 0;
        b[7] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(&SRC, &DST));
        let s6: IpAddr = "::1".parse().unwrap();
        assert!(!p.verify_checksum(&s6, &s6));
        // Rewrites keep "no checksum".
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.rewrite_dst_port(5353);
        p.update_checksum_ipv4(&Ipv4Addr::new(10, 0, 0, 2), &Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(p.checksum(), 0);
    }

    #[test]
    fn computed_zero_is_ffff() {
        // Choose a payload word making the sum 0xffff: the checksum field
        // must then read 0xffff, and verify.
        let mut b = DGRAM;
        b[6] = 0;
        b[7] = 0;
        b[8..10].copy_from_slice(&[0, 0]);
        let p = Packet::new_unchecked(&b[..]);
        let ph = checksum::pseudo_header(&SRC, &DST, IpProtocol::UDP, 12);
        let s = checksum::combine(&[ph, checksum::data(p.as_ref())]);
        let w = !s; // adding this word brings the sum to 0xffff
        b[8..10].copy_from_slice(&w.to_be_bytes());
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&SRC, &DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn lengths() {
        assert_eq!(Packet::new_checked(&DGRAM[..7]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&DGRAM[..11]), Err(Error::Truncated));
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::Malformed));
        // Shorter length field than the buffer: trailing bytes ignored.
        let mut b = DGRAM;
        b[5] = 10;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &[0xde, 0xad]);
    }
}
