//! The few rtnetlink calls the twins need: an interface's index by name,
//! its addresses, adding and removing one. Blocking, bounded by
//! [`DEADLINE`]; called from rvsd's main thread, never from a worker.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::net::IpCidr;

/// The longest any one call waits for the kernel's answer.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// An rtnetlink socket of this network namespace.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    pub fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_non_blocking(true)?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// The index of interface `name`, `None` when there is none.
    pub fn index_of(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.call(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every address on interface `index`, with its prefix length.
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<IpCidr>> {
        let m = AddressMessage::default();
        let replies = self.call(RouteNetlinkMessage::GetAddress(m), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(a) = r else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            // IFA_LOCAL is the address of an IPv4 interface (IFA_ADDRESS
            // its peer on point-to-point links); IPv6 has IFA_ADDRESS only.
            let local = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                a.attributes.iter().find_map(|x| match x {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(c) = addr.and_then(|ip| IpCidr::new(ip, a.header.prefix_len).ok()) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Put `cidr` on interface `index` (no duplicate address detection:
    /// usable at once). Already there is not an error.
    pub fn add_address(&mut self, index: u32, cidr: IpCidr) -> io::Result<()> {
        let m = address_message(index, cidr);
        match self.call(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Take `cidr` off interface `index`. Not there is not an error.
    pub fn remove_address(&mut self, index: u32, cidr: IpCidr) -> io::Result<()> {
        let m = address_message(index, cidr);
        match self.call(RouteNetlinkMessage::DelAddress(m), 0) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Send one request and collect the answers up to its acknowledgement
    /// (or the end of the dump).
    fn call(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let until = Instant::now() + DEADLINE;
        let mut out = Vec::new();
        loop {
            let data = match self.sock.recv_from_full() {
                Ok((d, _)) => d,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the kernel did not answer an rtnetlink request",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut at = 0;
            while at + 16 <= data.len() {
                let len = u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
                    as usize;
                if len < 16 || at + len > data.len() {
                    break;
                }
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..at + len])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                at += (len + 3) & !3;
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(r) => out.push(r),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        // A dump ends with Done; its ACK may follow.
                        None if !dump => return Ok(out),
                        None => {}
                        Some(c) => return Err(io::Error::from_raw_os_error(-c.get())),
                    },
                    _ => {}
                }
            }
        }
    }
}

fn address_message(index: u32, cidr: IpCidr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = cidr.prefix_len();
    let ip = cidr.addr();
    m.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    if ip.is_ipv4() {
        m.attributes.push(AddressAttribute::Local(ip));
    }
    m.attributes.push(AddressAttribute::Address(ip));
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    m
}
