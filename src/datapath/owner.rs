//! Owner routing: a connection belongs to one worker, derived from its
//! client-side endpoint with the NIC's own Toeplitz key and redirection
//! table; a frame that lands elsewhere is handed to its owner.

use super::Datapath;
use crate::ids::PortIndex;
use crate::ids::WorkerIndex;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::{Headers, L3};

/// Which side of the balancer a port faces: where the client's endpoint
/// of a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSide {
    /// Clients: the client is the frame's source.
    Client,
    /// Real servers: the client is the frame's destination.
    Server,
    /// Both (one-arm): a frame to a VIP comes from a client.
    Both,
}

impl<B: PacketBuf> Datapath<B> {
    /// The worker owning the frame's connection, when it is not this one.
    #[inline]
    pub(super) fn foreign_owner(&self, port: PortIndex, h: &Headers) -> Option<WorkerIndex> {
        let owners = self.owners.as_ref()?;
        // Fragments are reassembled where they arrive (the NIC hashes
        // them all by addresses alone); the datagram then goes to its owner.
        if h.is_fragment() {
            return None;
        }
        let (addr, p) = if h.is_icmp_error() {
            let i = h.inner?;
            if !i.has_ports {
                return None;
            }
            // The quoted packet is one we sent: the client is its
            // destination when it was a reply from a VIP, else its source.
            if self.is_vip(&i.src) {
                (i.dst, i.dst_port)
            } else {
                (i.src, i.src_port)
            }
        } else {
            if !(h.l3 == L3::Ipv4 || h.l3 == L3::Ipv6) || h.l4_offset == 0 {
                return None;
            }
            let client_side = match self.sides.get(port.get()) {
                Some(PortSide::Client) => true,
                Some(PortSide::Server) => false,
                _ => self.is_vip(&h.dst),
            };
            if client_side {
                (h.src, h.src_port)
            } else {
                (h.dst, h.dst_port)
            }
        };
        let o = owners.owner(addr, p);
        (o != self.me.0).then_some(WorkerIndex(o))
    }
}
