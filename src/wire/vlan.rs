//! IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! On the wire a tag sits between the source MAC and the ethertype: TPID
//! (0x8100, or 0x88a8 for a QinQ outer tag), then the TCI. The TPID is read
//! as the Ethernet header's ethertype, so this view covers what follows it:
//! the TCI and the encapsulated ethertype, then the payload.

use super::{rd16, wr16, Error, EtherType, Field, Rest, Result};

pub(crate) mod field {
    use super::{Field, Rest};
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// Bytes a tag adds to a frame.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A view over the 4 bytes after a VLAN TPID, and the payload after them.
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

    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Tag control information: PCP (3 bits), DEI (1), VID (12).
    #[inline]
    pub fn tci(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::TCI)
    }

    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The encapsulated type (another TPID for QinQ).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(rd16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        wr16(self.buffer.as_mut(), field::TCI, tci);
    }

    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
    }

    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        wr16(self.buffer.as_mut(), field::ETHERTYPE, t.0);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// Tag control information, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
    pub ethertype: EtherType,
}

impl Repr {
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            pcp: p.pcp(),
            dei: p.dei(),
            vid: p.vid(),
            ethertype: p.ethertype(),
        })
    }

    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    #[inline]
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    /// Writes TCI and ethertype (`Truncated` if shorter than 4 bytes).
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len()?;
        p.set_tci(self.tci());
        p.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::ethernet;
    use super::*;

    // Ethernet + 802.1Q VID 100, PCP 5, then IPv4.
    const FRAME: [u8; 20] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn parse() {
        let eth = ethernet::Packet::new_checked(&FRAME[..]).unwrap();
        assert!(eth.ethertype().is_vlan());
        let tag = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.pcp(), 5);
        assert!(!tag.dei());
        assert_eq!(tag.ethertype(), EtherType::IPV4);
        assert_eq!(tag.payload(), &[0x45, 0x00]);
        let r = Repr::parse(&tag).unwrap();
        assert_eq!(
            r,
            Repr {
                pcp: 5,
                dei: false,
                vid: 100,
                ethertype: EtherType::IPV4
            }
        );
    }

    #[test]
    fn emit() {
        let r = Repr {
            pcp: 5,
            dei: false,
            vid: 100,
            ethertype: EtherType::IPV4,
        };
        let mut buf = [0u8; 4];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, FRAME[14..18]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_vid(0xfff);
        assert_eq!(p.vid(), 0xfff);
        assert_eq!(p.pcp(), 5);
    }

    #[test]
    fn truncated() {
        assert_eq!(Packet::new_checked(&[0u8; 3][..]), Err(Error::Truncated));
    }
}
