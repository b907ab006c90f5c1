//! ARP (RFC 826). The view handles any hardware/protocol address sizes; the
//! `Repr` only Ethernet + IPv4, the one combination a load balancer answers.

use std::net::Ipv4Addr;

use super::{rd16, wr16, Error, EtherType, EthernetAddress, Field, Result};

/// ARP operation codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation(pub u16);

impl Operation {
    pub const REQUEST: Self = Self(1);
    pub const REPLY: Self = Self(2);
}

/// Hardware type for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

mod field {
    use super::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const ADDRS: usize = 8;

    // The addresses follow at offsets that depend on HLEN and PLEN.
    #[inline(always)]
    pub const fn sha(hlen: usize, _plen: usize) -> Field {
        ADDRS..ADDRS + hlen
    }
    #[inline(always)]
    pub const fn spa(hlen: usize, plen: usize) -> Field {
        ADDRS + hlen..ADDRS + hlen + plen
    }
    #[inline(always)]
    pub const fn tha(hlen: usize, plen: usize) -> Field {
        ADDRS + hlen + plen..ADDRS + 2 * hlen + plen
    }
    #[inline(always)]
    pub const fn tpa(hlen: usize, plen: usize) -> Field {
        ADDRS + 2 * hlen + plen..ADDRS + 2 * hlen + 2 * plen
    }
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

/// A view over an ARP packet.
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

    /// The fixed part and all four addresses (sized by HLEN/PLEN) must fit.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < field::ADDRS {
            return Err(Error::Truncated);
        }
        let (h, p) = (d[field::HLEN] as usize, d[field::PLEN] as usize);
        if d.len() < field::ADDRS + 2 * (h + p) {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Bytes the ARP packet occupies (trailing Ethernet padding excluded).
    #[inline]
    pub fn packet_len(&self) -> usize {
        field::ADDRS + 2 * (self.hardware_len() as usize + self.protocol_len() as usize)
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::HTYPE)
    }

    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType(rd16(self.buffer.as_ref(), field::PTYPE))
    }

    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    #[inline]
    pub fn operation(&self) -> Operation {
        Operation(rd16(self.buffer.as_ref(), field::OPER))
    }

    #[inline]
    fn lens(&self) -> (usize, usize) {
        (self.hardware_len() as usize, self.protocol_len() as usize)
    }

    #[inline]
    pub fn source_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::sha(h, p)]
    }

    #[inline]
    pub fn source_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::spa(h, p)]
    }

    #[inline]
    pub fn target_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tha(h, p)]
    }

    #[inline]
    pub fn target_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::tpa(h, p)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_hardware_type(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::HTYPE, v);
    }

    #[inline]
    pub fn set_protocol_type(&mut self, v: EtherType) {
        wr16(self.buffer.as_mut(), field::PTYPE, v.0);
    }

    /// Changes where the addresses are; the caller re-checks the length.
    #[inline]
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Changes where the addresses are; the caller re-checks the length.
    #[inline]
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    #[inline]
    pub fn set_operation(&mut self, v: Operation) {
        wr16(self.buffer.as_mut(), field::OPER, v.0);
    }

    /// Copies `a`; `Malformed` unless it is `hardware_len()` bytes.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, a: &[u8]) -> Result<()> {
        let (h, p) = self.lens();
        copy_exact(&mut self.buffer.as_mut()[field::sha(h, p)], a)
    }

    /// Copies `a`; `Malformed` unless it is `protocol_len()` bytes.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, a: &[u8]) -> Result<()> {
        let (h, p) = self.lens();
        copy_exact(&mut self.buffer.as_mut()[field::spa(h, p)], a)
    }

    /// Copies `a`; `Malformed` unless it is `hardware_len()` bytes.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, a: &[u8]) -> Result<()> {
        let (h, p) = self.lens();
        copy_exact(&mut self.buffer.as_mut()[field::tha(h, p)], a)
    }

    /// Copies `a`; `Malformed` unless it is `protocol_len()` bytes.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, a: &[u8]) -> Result<()> {
        let (h, p) = self.lens();
        copy_exact(&mut self.buffer.as_mut()[field::tpa(h, p)], a)
    }
}

#[inline]
fn copy_exact(dst: &mut [u8], src: &[u8]) -> Result<()> {
    if dst.len() != src.len() {
        return Err(Error::Malformed);
    }
    dst.copy_from_slice(src);
    Ok(())
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub operation: Operation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Parses Ethernet/IPv4 ARP; other address families are `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != EtherType::IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let v4 = |b: &[u8]| match *b {
            [a, b, c, d] => Ok(Ipv4Addr::new(a, b, c, d)),
            _ => Err(Error::Malformed),
        };
        let mac = |b: &[u8]| EthernetAddress::from_bytes(b).ok_or(Error::Malformed);
        Ok(Self {
            operation: p.operation(),
            source_hardware_addr: mac(p.source_hardware_addr())?,
            source_protocol_addr: v4(p.source_protocol_addr())?,
            target_hardware_addr: mac(p.target_hardware_addr())?,
            target_protocol_addr: v4(p.target_protocol_addr())?,
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the message (`Truncated` if shorter than `buffer_len()`).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < ETHERNET_IPV4_LEN {
            return Err(Error::Truncated);
        }
        p.set_hardware_type(HTYPE_ETHERNET);
        p.set_protocol_type(EtherType::IPV4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(self.operation);
        p.set_source_hardware_addr(&self.source_hardware_addr.0)?;
        p.set_source_protocol_addr(&self.source_protocol_addr.octets())?;
        p.set_target_hardware_addr(&self.target_hardware_addr.0)?;
        p.set_target_protocol_addr(&self.target_protocol_addr.octets())
    }

    /// The reply a host owning `target_protocol_addr` at `our_mac` sends to
    /// this request.
    pub fn reply(&self, our_mac: EthernetAddress) -> Self {
        Self {
            operation: Operation::REPLY,
            source_hardware_addr: our_mac,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // who-has 10.0.0.1 tell 10.0.0.2 (from 52:54:00:12:34:56).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x0a,
        0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
    ];

    fn repr() -> Repr {
        Repr {
            operation: Operation::REQUEST,
            source_hardware_addr: EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress::ZERO,
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn parse() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), EtherType::IPV4);
        assert_eq!(p.operation(), Operation::REQUEST);
        assert_eq!(p.packet_len(), 28);
        assert_eq!(p.target_protocol_addr(), &[10, 0, 0, 1]);
        assert_eq!(Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn emit() {
        let mut buf = [0xaau8; 28];
        repr()
            .emit(&mut Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        assert_eq!(
            repr().emit(&mut Packet::new_unchecked(&mut buf[..27])),
            Err(Error::Truncated)
        );
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn reply() {
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let r = repr().reply(mac);
        assert_eq!(r.operation, Operation::REPLY);
        assert_eq!(r.source_hardware_addr, mac);
        assert_eq!(r.source_protocol_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.target_protocol_addr, Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn lengths() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated
        );
        // Big address lengths are checked against the buffer.
        let mut b = REQUEST;
        b[4] = 255;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        // Other families parse as views but not as Repr.
        let mut b = REQUEST;
        b[4] = 4;
        b[5] = 2;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.target_protocol_addr().len(), 2);
        assert_eq!(Repr::parse(&p), Err(Error::Unsupported));
        let mut m = Packet::new_unchecked(&mut b[..]);
        assert_eq!(
            m.set_target_protocol_addr(&[1, 2, 3, 4]),
            Err(Error::Malformed)
        );
        assert_eq!(m.set_target_protocol_addr(&[1, 2]), Ok(()));
    }
}
