//! ICMP for IPv4 (RFC 792, RFC 1191 for fragmentation-needed).
//!
//! Error messages quote the start of the datagram that caused them (the
//! "embedded" or inner datagram): the IP header and at least 8 bytes of its
//! payload, enough for the ports. NAT translates that quote too.

use super::{checksum, rd16, wr16, ChecksumMode, Error, Field, Rest, Result};

/// ICMP message type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Message(pub u8);

impl Message {
    pub const ECHO_REPLY: Self = Self(0);
    pub const DST_UNREACHABLE: Self = Self(3);
    pub const SOURCE_QUENCH: Self = Self(4);
    pub const REDIRECT: Self = Self(5);
    pub const ECHO_REQUEST: Self = Self(8);
    pub const ROUTER_ADVERT: Self = Self(9);
    pub const ROUTER_SOLICIT: Self = Self(10);
    pub const TIME_EXCEEDED: Self = Self(11);
    pub const PARAM_PROBLEM: Self = Self(12);
    pub const TIMESTAMP: Self = Self(13);
    pub const TIMESTAMP_REPLY: Self = Self(14);

    /// Error messages, which quote the offending datagram.
    #[inline]
    pub const fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
    }
}

/// Codes of destination-unreachable.
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU.
    pub const FRAG_NEEDED: u8 = 4;
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    pub const NET_UNKNOWN: u8 = 6;
    pub const HOST_UNKNOWN: u8 = 7;
    pub const NET_PROHIBITED: u8 = 9;
    pub const HOST_PROHIBITED: u8 = 10;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of time-exceeded.
pub mod time_exceeded {
    /// TTL reached 0 in transit.
    pub const TTL: u8 = 0;
    pub const FRAG_REASSEMBLY: u8 = 1;
}

pub(crate) mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const REST: Field = 4..8;
    pub const MTU: Field = 6..8;
    pub const POINTER: usize = 4;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMP header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA.start;

/// RFC 1812 §4.3.2.3: an error datagram should not exceed 576 bytes.
pub const MAX_ERROR_DATAGRAM: usize = 576;

/// The prefix of `original` (an IP datagram, from its header) to quote in
/// an error so that IP (20) + ICMP (8) + quote stays within 576 bytes.
#[inline]
pub fn quote(original: &[u8]) -> &[u8] {
    let max = MAX_ERROR_DATAGRAM - super::ipv4::HEADER_LEN - HEADER_LEN;
    &original[..original.len().min(max)]
}

/// A view over an ICMPv4 message (the whole IP payload).
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

    /// The 8-byte header must fit (every accessor reads within it).
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

    /// Echo request/reply identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo request/reply sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Next-hop MTU of fragmentation-needed (RFC 1191); 0 from old routers.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::MTU)
    }

    /// Parameter-problem pointer.
    #[inline]
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The four type-specific header bytes (redirect gateway, ...).
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        super::rd_array(self.buffer.as_ref(), field::REST)
    }

    /// After the 8-byte header: echo data, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted datagram of an error message (`None` for other types).
    /// Open it with `ipv4::Packet::new_checked_truncated`.
    #[inline]
    pub fn embedded(&self) -> Option<&[u8]> {
        if self.msg_type().is_error() {
            Some(self.data())
        } else {
            None
        }
    }

    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref(), 0)
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

    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::MTU, v);
    }

    #[inline]
    pub fn set_rest_of_header(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v);
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }

    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The ICMPv4 messages a load balancer answers or generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
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
    /// `next_hop_mtu` is meaningful for `unreachable::FRAG_NEEDED`, else 0.
    DstUnreachable {
        code: u8,
        next_hop_mtu: u16,
        data: &'a [u8],
    },
    TimeExceeded {
        code: u8,
        data: &'a [u8],
    },
    ParamProblem {
        code: u8,
        pointer: u8,
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Other message types are `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&'a T>, mode: ChecksumMode) -> Result<Self> {
        p.check_len()?;
        if mode == ChecksumMode::Verify && !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        let buf: &'a T = p.buffer;
        let data = &buf.as_ref()[field::DATA];
        let code = p.msg_code();
        match p.msg_type() {
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
            Message::DST_UNREACHABLE => Ok(Repr::DstUnreachable {
                code,
                next_hop_mtu: if code == unreachable::FRAG_NEEDED {
                    p.next_hop_mtu()
                } else {
                    0
                },
                data,
            }),
            Message::TIME_EXCEEDED => Ok(Repr::TimeExceeded { code, data }),
            Message::PARAM_PROBLEM => Ok(Repr::ParamProblem {
                code,
                pointer: p.pointer(),
                data,
            }),
            _ => Err(Error::Unsupported),
        }
    }

    #[inline]
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. } => data,
        }
    }

    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message and its checksum into the first `buffer_len()`
    /// bytes of `p` (`Truncated` if it is shorter).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        let len = self.buffer_len();
        let buf = p.buffer.as_mut();
        let Some(buf) = buf.get_mut(..len) else {
            return Err(Error::Truncated);
        };
        let mut q = Packet::new_unchecked(buf);
        let (ty, code, rest) = match *self {
            Repr::EchoRequest { ident, seq_no, .. } => {
                (Message::ECHO_REQUEST, 0, echo(ident, seq_no))
            }
            Repr::EchoReply { ident, seq_no, .. } => (Message::ECHO_REPLY, 0, echo(ident, seq_no)),
            Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => {
                let m = next_hop_mtu.to_be_bytes();
                (Message::DST_UNREACHABLE, code, [0, 0, m[0], m[1]])
            }
            Repr::TimeExceeded { code, .. } => (Message::TIME_EXCEEDED, code, [0; 4]),
            Repr::ParamProblem { code, pointer, .. } => {
                (Message::PARAM_PROBLEM, code, [pointer, 0, 0, 0])
            }
        };
        q.set_msg_type(ty);
        q.set_msg_code(code);
        q.set_rest_of_header(rest);
        q.data_mut().copy_from_slice(self.data());
        q.fill_checksum();
        Ok(())
    }
}

#[inline]
fn echo(ident: u16, seq_no: u16) -> [u8; 4] {
    let (i, s) = (ident.to_be_bytes(), seq_no.to_be_bytes());
    [i[0], i[1], s[0], s[1]]
}

#[cfg(test)]
mod tests {
    use super::super::ipv4;
    use super::*;
    use std::net::Ipv4Addr;

    // ping: id 0x1234 seq 1, data "abcd". Checksum by hand:
    // 0800 + 1234 + 0001 + 6162 + 6364 = 0xdefb -> ~ = 0x2104.
    const ECHO: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn parse_echo() {
        let p = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.msg_type(), Message::ECHO_REQUEST);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert!(p.verify_checksum());
        assert_eq!(p.embedded(), None);
        assert_eq!(
            Repr::parse(&p, ChecksumMode::Verify).unwrap(),
            Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
    }

    #[test]
    fn emit_echo_reply() {
        let req = Packet::new_checked(&ECHO[..]).unwrap();
        let Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = Repr::parse(&req, ChecksumMode::Verify).unwrap()
        else {
            panic!()
        };
        let reply = Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let mut buf = [0u8; 12];
        reply
            .emit(&mut Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        // Only the type and checksum change: 0x0800 less in the sum.
        let mut want = ECHO;
        want[0] = 0;
        want[2..4].copy_from_slice(&0x2904u16.to_be_bytes());
        assert_eq!(buf, want);
        assert_eq!(
            reply.emit(&mut Packet::new_unchecked(&mut buf[..11])),
            Err(Error::Truncated)
        );
    }

    /// Builds a fragmentation-needed error quoting a TCP/IPv4 datagram.
    fn frag_needed(buf: &mut [u8; 36]) {
        // Quoted: 10.0.0.1:40000 -> 192.0.2.10:80, TCP, total length 1500.
        let mut orig = [0u8; 28];
        let r = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(192, 0, 2, 10),
            protocol: crate::wire::IpProtocol::TCP,
            payload_len: 1480,
            ttl: 63,
            tos: 0,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        r.emit(&mut ipv4::Packet::new_unchecked(&mut orig[..]))
            .unwrap();
        orig[20..24].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        orig[24..28].copy_from_slice(&[0, 0, 0, 1]);
        let e = Repr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: 1480,
            data: quote(&orig),
        };
        assert_eq!(e.buffer_len(), 36);
        e.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
    }

    #[test]
    fn frag_needed_roundtrip() {
        let mut buf = [0u8; 36];
        frag_needed(&mut buf);
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0, 0, 0x05, 0xc8]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.next_hop_mtu(), 1480);
        let inner = ipv4::Packet::new_checked_truncated(p.embedded().unwrap()).unwrap();
        assert_eq!(inner.dst_addr(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(inner.total_len(), 1500);
        assert_eq!(inner.payload(), &[0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1]);
        match Repr::parse(&p, ChecksumMode::Verify).unwrap() {
            Repr::DstUnreachable {
                code,
                next_hop_mtu,
                data,
            } => {
                assert_eq!((code, next_hop_mtu, data.len()), (4, 1480, 28));
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn time_exceeded_and_others() {
        let quoted = [0x45u8; 28];
        let r = Repr::TimeExceeded {
            code: time_exceeded::TTL,
            data: &quoted,
        };
        let mut buf = [0u8; 36];
        r.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.msg_type(), Message::TIME_EXCEEDED);
        assert_eq!(Repr::parse(&p, ChecksumMode::Verify).unwrap(), r);
        let pp = Repr::ParamProblem {
            code: 0,
            pointer: 9,
            data: &quoted,
        };
        pp.emit(&mut Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.pointer(), 9);
        assert_eq!(Repr::parse(&p, ChecksumMode::Verify).unwrap(), pp);

        buf[0] = 13; // timestamp
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p, ChecksumMode::Skip), Err(Error::Unsupported));
        assert_eq!(Repr::parse(&p, ChecksumMode::Verify), Err(Error::Checksum));
        assert_eq!(Packet::new_checked(&buf[..7]), Err(Error::Truncated));
    }

    #[test]
    fn quote_limit() {
        let big = [0u8; 1500];
        assert_eq!(quote(&big).len(), 548);
        assert_eq!(quote(&big[..100]).len(), 100);
    }
}
