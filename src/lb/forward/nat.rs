//! NAT (`-m`, Masq). Inbound (client -> VIP) the destination becomes the
//! real server (with port mapping); outbound (real server -> client, the
//! balancer being its gateway) the source becomes the VIP:vport. ICMP
//! errors about a connection are translated by [`super::icmp::translate`].

use std::net::IpAddr;

use crate::lb::engine::{Direction, Forward};
use crate::wire::parse::Headers;
use crate::wire::rewrite::{self, Side};

use super::{icmp, same_family, set_macs, Applied, DropReason, Env};

/// Rewrites the addresses (incremental IP and L4 checksums), decrements
/// the TTL and readdresses the Ethernet header. The caller has checked the
/// headers and that the TTL is above 1.
pub fn apply(
    f: &mut [u8],
    h: &Headers,
    fwd: &Forward,
    dir: Direction,
    env: &Env,
) -> Result<Applied, DropReason> {
    if h.is_icmp_error() {
        icmp::translate(f, h, fwd, dir)?;
    } else {
        let (side, addr, port) = match dir {
            Direction::In => (Side::Dst, fwd.daddr, fwd.dport),
            Direction::Out => (Side::Src, fwd.vaddr, fwd.vport),
        };
        if let IpAddr::V4(a) = addr {
            // Most packets: the address, port and TTL in one pass.
            if rewrite::nat4_ttl(f, h, side, a, port) {
                set_macs(f, env.dst_mac, env.src_mac)?;
                return Ok(Applied::Transmit);
            }
        }
        if !same_family(h, &addr) {
            return Err(DropReason::Family);
        }
        if h.is_fragment() {
            return Err(DropReason::RewriteFragment);
        }
        rewrite::set_endpoint(f, h, side, addr, port)?;
    }
    rewrite::decrement_ttl(f, h)?;
    set_macs(f, env.dst_mac, env.src_mac)?;
    Ok(Applied::Transmit)
}
