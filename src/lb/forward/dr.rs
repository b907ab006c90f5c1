//! Direct routing (`-g`, Route): the frame goes to the real server's MAC
//! unchanged but for the TTL / hop limit (and the IPv4 checksum with it).
//! The real server holds the VIP on a loopback and replies directly.

use crate::wire::parse::Headers;
use crate::wire::rewrite;

use super::{set_macs, Applied, DropReason, Env};

/// Decrements the TTL and readdresses the Ethernet header. The caller has
/// checked the headers and that the TTL is above 1.
pub fn apply(f: &mut [u8], h: &Headers, env: &Env) -> Result<Applied, DropReason> {
    rewrite::decrement_ttl(f, h)?;
    set_macs(f, env.dst_mac, env.src_mac)?;
    Ok(Applied::Transmit)
}
