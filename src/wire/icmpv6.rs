//! ICMPv6 (RFC 4443) and the neighbour discovery messages a load balancer
//! must answer (RFC 4861 solicitation/advertisement). The checksum covers
//! the IPv6 pseudo-header.

use std::net::Ipv6Addr;

use super::{
    checksum, rd16, rd32, wr16, wr32, ChecksumMode, Error, EthernetAddress, Field, IpProtocol,
    Rest, Result,
};

/// ICMPv6 message type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Message(pub u8);

impl Message {
    pub const DST_UNREACHABLE: Self = Self(1);
    pub const PKT_TOO_BIG: Self = Self(2);
    pub const TIME_EXCEEDED: Self = Self(3);
    pub const PARAM_PROBLEM: Self = Self(4);
    pub const ECHO_REQUEST: Self = Self(128);
    pub const ECHO_REPLY: Self = Self(129);
    pub const ROUTER_SOLICIT: Self = Self(133);
    pub const ROUTER_ADVERT: Self = Self(134);
    pub const NEIGHBOR_SOLICIT: Self = Self(135);
    pub const NEIGHBOR_ADVERT: Self = Self(136);
    pub const REDIRECT: Self = Self(137);

    /// Error messages (types below 128) quote the offending datagram.
    #[inline]
    pub const fn is_error(self) -> bool {
        self.0 < 128
    }

    /// Messages whose fixed part carries a target address at bytes 8..24.
    #[inline]
    pub const fn has_target(self) -> bool {
        matches!(self.0, 135..=137)
    }
}

/// Codes of destination-unreachable.
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const BEYOND_SCOPE: u8 = 2;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
}

/// Codes of time-exceeded.
pub mod time_exceeded {
    pub const HOP_LIMIT: u8 = 0;
    pub const FRAG_REASSEMBLY: u8 = 1;
}

/// Neighbour advertisement flags (the top byte of the reserved word).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NdFlags(pub u8);

impl NdFlags {
    pub const ROUTER: Self = Self(0x80);
    pub const SOLICITED: Self = Self(0x40);
    pub const OVERRIDE: Self = Self(0x20);

    #[inline]
    pub const fn contains(self, f: NdFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl core::ops::BitOr for NdFlags {
    type Output = Self;
    #[inline]
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Neighbour discovery option types used here.
pub mod nd_option {
    pub const SOURCE_LL_ADDR: u8 = 1;
    pub const TARGET_LL_ADDR: u8 = 2;
}

pub(crate) mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    /// MTU of packet-too-big, pointer of parameter-problem.
    pub const WORD: Field = 4..8;
    pub const ND_FLAGS: usize = 4;
    pub const DATA: Rest = 8..;
    pub const TARGET: Field = 8..24;
    pub const ND_OPTIONS: Rest = 24..;
}

/// Length of the ICMPv6 header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;
/// Neighbour solicitation/advertisement without options.
pub const ND_LEN: usize = field::ND_OPTIONS.start;
/// RFC 4443 §2.4(c): an error must fit the minimum MTU.
pub const MIN_MTU: usize = 1280;

/// The prefix of `original` to quote in an error so that IPv6 (40) +
/// ICMPv6 (8) + quote fits the minimum MTU.
#[inline]
pub fn quote(original: &[u8]) -> &[u8] {
    let max = MIN_MTU - super::ipv6::HEADER_LEN - HEADER_LEN;
    &original[..original.len().min(max)]
}

/// A view over an ICMPv6 message (the whole upper-layer payload).
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

    /// The 8-byte header must fit, and for the neighbour discovery messages
    /// with a target (NS, NA, redirect) the 24-byte fixed part.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.msg_type().has_target() && len < ND_LEN) {
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
    pub fn msg_type(&self) -> Message {
        Message(self.buffer.as_ref()[field::TYPE])
    }

    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Packet-too-big MTU.
    #[inline]
    pub fn mtu(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::WORD)
    }

    /// Parameter-problem pointer.
    #[inline]
    pub fn pointer(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::WORD)
    }

    /// Neighbour advertisement flags.
    #[inline]
    pub fn nd_flags(&self) -> NdFlags {
        NdFlags(self.buffer.as_ref()[field::ND_FLAGS] & 0xe0)
    }

    /// Target address of NS/NA/redirect; `None` if the message is too short
    /// to hold one (never the case for those types after `new_checked`).
    #[inline]
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        match self.buffer.as_ref().get(field::TARGET) {
            Some(b) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Some(Ipv6Addr::from(a))
            }
            None => None,
        }
    }

    /// Options after the NS/NA fixed part (empty if none or too short).
    #[inline]
    pub fn nd_options(&self) -> &[u8] {
        self.buffer.as_ref().get(field::ND_OPTIONS).unwrap_or(&[])
    }

    /// The link-layer address option of type `kind`, if present and Ethernet
    /// sized. `Malformed` for a zero-length option, `Truncated` for one that
    /// runs past the end.
    pub fn nd_lladdr(&self, kind: u8) -> Result<Option<EthernetAddress>> {
        let mut opts = self.nd_options();
        while let [ty, len, ..] = *opts {
            let n = len as usize * 8;
            if n == 0 {
                return Err(Error::Malformed);
            }
            let Some(opt) = opts.get(..n) else {
                return Err(Error::Truncated);
            };
            if ty == kind && n == 8 {
                return Ok(EthernetAddress::from_bytes(&opt[2..]));
            }
            opts = &opts[n..];
        }
        if opts.is_empty() {
            Ok(None)
        } else {
            Err(Error::Truncated)
        }
    }

    /// After the 8-byte header: echo data, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted datagram of an error (`None` for other types). Open it
    /// with `ipv6::Packet::new_checked_truncated`.
    #[inline]
    pub fn embedded(&self) -> Option<&[u8]> {
        if self.msg_type().is_error() {
            Some(self.data())
        } else {
            None
        }
    }

    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, d.len() as u32);
        checksum::verify(d, ph)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, m: Message) {
        self.buffer.as_mut()[field::TYPE] = m.0;
    }

    #[inline]
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::ECHO_SEQNO, v);
    }

    /// The 32-bit word after the checksum (MTU, pointer, or flags+reserved).
    #[inline]
    pub fn set_word(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::WORD, v);
    }

    /// Sets the target address; does nothing on a message too short for one.
    #[inline]
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::TARGET) {
            b.copy_from_slice(&a.octets());
        }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Recomputes the checksum (pseudo-header included).
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let d = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, d.len() as u32);
        let c = !checksum::combine(&[ph, checksum::data(d)]);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The ICMPv6 messages a load balancer answers or generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    DstUnreachable {
        code: u8,
        data: &'a [u8],
    },
    PktTooBig {
        mtu: u32,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        pointer: u32,
        data: &'a [u8],
    },
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// RFC 4861 §7.1.1 also wants hop limit 255 on the IPv6 header; the
    /// caller checks that.
    NeighborSolicit {
        target: Ipv6Addr,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    NeighborAdvert {
        flags: NdFlags,
        target: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

impl<'a> Repr<'a> {
    /// Other types (router discovery, redirect, MLD...) are `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&'a T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        mode: ChecksumMode,
    ) -> Result<Self> {
        p.check_len()?;
        if mode == ChecksumMode::Verify && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let buf: &'a T = p.buffer;
        let data = &buf.as_ref()[field::DATA];
        let code = p.msg_code();
        let target = || p.target_addr().ok_or(Error::Truncated);
        match p.msg_type() {
            Message::DST_UNREACHABLE => Ok(Repr::DstUnreachable { code, data }),
            Message::PKT_TOO_BIG => Ok(Repr::PktTooBig { mtu: p.mtu(), data }),
            Message::TIME_EXCEEDED => Ok(Repr::TimeExceeded { code, data }),
            Message::PARAM_PROBLEM => Ok(Repr::ParamProblem {
                code,
                pointer: p.pointer(),
                data,
            }),
            Message::ECHO_REQUEST if code == 0 => Ok(Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            Message::ECHO_REPLY if code == 0 => Ok(Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            }),
            Message::NEIGHBOR_SOLICIT if code == 0 => Ok(Repr::NeighborSolicit {
                target: target()?,
                lladdr: p.nd_lladdr(nd_option::SOURCE_LL_ADDR)?,
            }),
            Message::NEIGHBOR_ADVERT if code == 0 => Ok(Repr::NeighborAdvert {
                flags: p.nd_flags(),
                target: target()?,
                lladdr: p.nd_lladdr(nd_option::TARGET_LL_ADDR)?,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    /// Message length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match *self {
            Repr::DstUnreachable { data, .. }
            | Repr::PktTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. }
            | Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Repr::NeighborSolicit { lladdr, .. } | Repr::NeighborAdvert { lladdr, .. } => {
                ND_LEN + if lladdr.is_some() { 8 } else { 0 }
            }
        }
    }

    /// Writes the message and checksum into the first `buffer_len()` bytes
    /// of `p` (`Truncated` if shorter).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        let Some(buf) = p.buffer.as_mut().get_mut(..len) else {
            return Err(Error::Truncated);
        };
        let mut q = Packet::new_unchecked(buf);
        let echo = |i: u16, s: u16| ((i as u32) << 16) | s as u32;
        let (ty, code, word, data): (Message, u8, u32, &[u8]) = match *self {
            Repr::DstUnreachable { code, data } => (Message::DST_UNREACHABLE, code, 0, data),
            Repr::PktTooBig { mtu, data } => (Message::PKT_TOO_BIG, 0, mtu, data),
            Repr::TimeExceeded { code, data } => (Message::TIME_EXCEEDED, code, 0, data),
            Repr::ParamProblem {
                code,
                pointer,
                data,
            } => (Message::PARAM_PROBLEM, code, pointer, data),
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (Message::ECHO_REQUEST, 0, echo(ident, seq_no), data),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (Message::ECHO_REPLY, 0, echo(ident, seq_no), data),
            Repr::NeighborSolicit { target, lladdr } => {
                q.set_target_addr(target);
                emit_lladdr(&mut q, nd_option::SOURCE_LL_ADDR, lladdr);
                (Message::NEIGHBOR_SOLICIT, 0, 0, &[])
            }
            Repr::NeighborAdvert {
                flags,
                target,
                lladdr,
            } => {
                q.set_target_addr(target);
                emit_lladdr(&mut q, nd_option::TARGET_LL_ADDR, lladdr);
                (
                    Message::NEIGHBOR_ADVERT,
                    0,
                    ((flags.0 & 0xe0) as u32) << 24,
                    &[],
                )
            }
        };
        q.set_msg_type(ty);
        q.set_msg_code(code);
        q.set_word(word);
        if !data.is_empty() {
            q.data_mut().copy_from_slice(data);
        }
        q.fill_checksum(src, dst);
        Ok(())
    }
}

/// Writes an 8-byte link-layer address option after the ND fixed part
/// (the buffer was sized by `buffer_len`).
fn emit_lladdr(q: &mut Packet<&mut [u8]>, kind: u8, lladdr: Option<EthernetAddress>) {
    if let (Some(a), Some(opt)) = (lladdr, q.buffer.get_mut(ND_LEN..ND_LEN + 8)) {
        opt[0] = kind;
        opt[1] = 1;
        opt[2..].copy_from_slice(&a.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::ipv6;
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // A neighbour solicitation for fe80::1 from fe80::2 (to the
    // solicited-node group), source lladdr 52:54:00:00:00:02, as captured.
    fn ns_bytes() -> [u8; 32] {
        let mut b = [
            0x87, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0x01, 0x01, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0x02,
        ];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&a("fe80::2"), &a("ff02::1:ff00:1"));
        b
    }

    #[test]
    fn parse_ns() {
        let b = ns_bytes();
        let (src, dst) = (a("fe80::2"), a("ff02::1:ff00:1"));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), Message::NEIGHBOR_SOLICIT);
        assert!(p.verify_checksum(&src, &dst));
        assert!(!p.verify_checksum(&a("fe80::3"), &dst));
        assert_eq!(p.target_addr(), Some(a("fe80::1")));
        let mac = EthernetAddress([0x52, 0x54, 0, 0, 0, 2]);
        assert_eq!(
            Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
            Repr::NeighborSolicit {
                target: a("fe80::1"),
                lladdr: Some(mac)
            }
        );
        // And emit gives the same bytes.
        let mut out = [0u8; 32];
        Repr::NeighborSolicit {
            target: a("fe80::1"),
            lladdr: Some(mac),
        }
        .emit(&mut Packet::new_unchecked(&mut out[..]), &src, &dst)
        .unwrap();
        assert_eq!(out, b);
    }

    #[test]
    fn na_roundtrip() {
        let (src, dst) = (a("2001:db8::1"), a("fe80::2"));
        let r = Repr::NeighborAdvert {
            flags: NdFlags::SOLICITED | NdFlags::OVERRIDE,
            target: a("2001:db8::1"),
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])),
        };
        assert_eq!(r.buffer_len(), 32);
        let mut buf = [0u8; 32];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), &src, &dst)
            .unwrap();
        assert_eq!(buf[0], 136);
        assert_eq!(buf[4], 0x60);
        assert_eq!(&buf[24..26], &[2, 1]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.nd_flags().contains(NdFlags::SOLICITED));
        assert_eq!(
            Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
            r
        );
        // Without the option.
        let r = Repr::NeighborAdvert {
            flags: NdFlags::default(),
            target: a("::1"),
            lladdr: None,
        };
        let mut buf = [0u8; 24];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), &src, &dst)
            .unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
            r
        );
    }

    #[test]
    fn nd_options_errors() {
        let mut b = ns_bytes();
        b[25] = 0; // zero-length option
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_lladdr(1), Err(Error::Malformed));
        let mut b = ns_bytes();
        b[25] = 2; // runs past the end
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_lladdr(1), Err(Error::Truncated));
        // NS shorter than its fixed part.
        assert_eq!(
            Packet::new_checked(&ns_bytes()[..23]),
            Err(Error::Truncated)
        );
        // Unrelated option kinds are skipped.
        let b = ns_bytes();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_lladdr(2), Ok(None));
    }

    #[test]
    fn echo() {
        let (src, dst) = (a("2001:db8::1"), a("2001:db8::2"));
        let r = Repr::EchoRequest {
            ident: 7,
            seq_no: 9,
            data: b"ping",
        };
        let mut buf = [0u8; 12];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), &src, &dst)
            .unwrap();
        assert_eq!(&buf[..2], &[128, 0]);
        assert_eq!(&buf[4..8], &[0, 7, 0, 9]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
            r
        );
        assert_eq!(
            Repr::parse(&p, &dst, &dst, ChecksumMode::Verify),
            Err(Error::Checksum)
        );
    }

    #[test]
    fn packet_too_big_quotes_original() {
        let (src, dst) = (a("2001:db8::fe"), a("2001:db8::1"));
        // The original: a 1500-byte TCP/IPv6 datagram; quote keeps 1232 bytes.
        let mut orig = [0u8; 1500];
        let r6 = ipv6::Repr {
            src_addr: dst,
            dst_addr: a("2001:db8::10"),
            next_header: IpProtocol::TCP,
            payload_len: 1460,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        r6.emit(&mut ipv6::Packet::new_unchecked(&mut orig[..]))
            .unwrap();
        orig[40..44].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        let q = quote(&orig);
        assert_eq!(q.len(), 1232);
        let r = Repr::PktTooBig { mtu: 1280, data: q };
        let mut buf = [0u8; 1240];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), &src, &dst)
            .unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.mtu(), 1280);
        let inner = ipv6::Packet::new_checked_truncated(p.embedded().unwrap()).unwrap();
        assert_eq!(inner.dst_addr(), a("2001:db8::10"));
        assert_eq!(&inner.payload()[..4], &[0x9c, 0x40, 0, 80]);
        assert_eq!(
            Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
            r
        );
    }

    #[test]
    fn errors_roundtrip() {
        let (src, dst) = (a("::1"), a("::2"));
        let q = [0x60u8; 48];
        for r in [
            Repr::DstUnreachable {
                code: unreachable::PORT,
                data: &q,
            },
            Repr::TimeExceeded {
                code: time_exceeded::HOP_LIMIT,
                data: &q,
            },
            Repr::ParamProblem {
                code: 1,
                pointer: 40,
                data: &q,
            },
        ] {
            let mut buf = [0u8; 56];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), &src, &dst)
                .unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            assert!(p.msg_type().is_error());
            assert_eq!(
                Repr::parse(&p, &src, &dst, ChecksumMode::Verify).unwrap(),
                r
            );
            assert_eq!(
                r.emit(&mut Packet::new_unchecked(&mut buf[..55]), &src, &dst),
                Err(Error::Truncated)
            );
        }
    }
}
