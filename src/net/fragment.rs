//! Output fragmentation: IPv4 as `ip_fragment` does it for a forwarded
//! packet whose DF bit is clear and that exceeds the egress MTU, and IPv6
//! for a datagram rvsd reassembled itself (the kernel refragments what its
//! defragmentation joined; a router never fragments IPv6 otherwise).
//!
//! Sans-IO: a [`Plan`] is read from the frame (Ethernet and VLAN header
//! before `l3`, then the IPv4 packet); [`Plan::write`] writes fragment `k`
//! into a buffer the caller provides. The caller keeps the original frame
//! until every fragment is written, then may turn it into the first one
//! ([`Plan::truncate_to_first`]), which saves an allocation.
//!
//! Like the kernel: every fragment but the last carries a multiple of 8
//! payload bytes; a packet that is itself a fragment keeps its offset and
//! MF; options without the copied bit are replaced by no-ops in every
//! fragment after the first (so all headers have the same length); the IP
//! id is the packet's own.

use crate::wire::{ipv4, ipv6};

/// Option kinds (RFC 791): end of list, no-op; bit 7 = copied on
/// fragmentation.
const OPT_END: u8 = 0;
const OPT_NOOP: u8 = 1;
const OPT_COPIED: u8 = 0x80;

/// Why a packet cannot be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a whole IPv4 header and payload at `l3`.
    Malformed,
    /// The MTU leaves fewer than 8 payload bytes per fragment, or the
    /// packet fits it already.
    Mtu,
}

/// How one IPv4 packet splits into fragments for an MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Offset of the IPv4 header in the frame (the L2 header is copied).
    l3: usize,
    /// IPv4 header length.
    ihl: usize,
    /// Payload bytes of the packet.
    payload: usize,
    /// Payload bytes of every fragment but the last (a multiple of 8).
    chunk: usize,
    /// The packet's own offset (bytes) and MF: a fragment fragmented again.
    base_offset: usize,
    base_more: bool,
    /// IPv6: the Fragment header's id (and the original next header).
    v6: Option<(u32, u8)>,
}

/// The IPv6 Fragment header's length and protocol number.
const FRAG_HDR: usize = 8;
const IPV6_FRAGMENT: u8 = 44;

impl Plan {
    /// The split of the IPv4 packet at `frame[l3..]` into fragments of at
    /// most `mtu` IP bytes.
    pub fn new(frame: &[u8], l3: usize, mtu: usize) -> Result<Plan, Refused> {
        Self::with_ident(frame, l3, mtu, 0)
    }

    /// [`Plan::new`], with the id an IPv6 packet's fragments carry.
    pub fn with_ident(frame: &[u8], l3: usize, mtu: usize, ident: u32) -> Result<Plan, Refused> {
        let ip = frame.get(l3..).ok_or(Refused::Malformed)?;
        if ip.first().is_some_and(|b| b >> 4 == 6) {
            return Self::v6(ip, l3, mtu, ident);
        }
        let p = ipv4::Packet::new_checked(ip).map_err(|_| Refused::Malformed)?;
        let ihl = p.header_len() as usize;
        let total = p.total_len() as usize;
        if total <= mtu {
            return Err(Refused::Mtu);
        }
        let chunk = mtu.saturating_sub(ihl) & !7;
        if chunk < 8 {
            return Err(Refused::Mtu);
        }
        Ok(Plan {
            l3,
            ihl,
            payload: total - ihl,
            chunk,
            base_offset: p.frag_offset() as usize,
            base_more: p.more_frags(),
            v6: None,
        })
    }

    fn v6(ip: &[u8], l3: usize, mtu: usize, ident: u32) -> Result<Plan, Refused> {
        let p = ipv6::Packet::new_checked(ip).map_err(|_| Refused::Malformed)?;
        let nh = p.next_header().0;
        // Hop-by-hop options must stay first, in every fragment; a packet
        // that is a fragment already is not fragmented again.
        if nh == 0 || nh == IPV6_FRAGMENT {
            return Err(Refused::Malformed);
        }
        let payload = p.payload_len() as usize;
        if ipv6::HEADER_LEN + payload <= mtu || mtu < 1280 {
            return Err(Refused::Mtu);
        }
        let chunk = mtu.saturating_sub(ipv6::HEADER_LEN + FRAG_HDR) & !7;
        if chunk < 8 {
            return Err(Refused::Mtu);
        }
        Ok(Plan {
            l3,
            ihl: ipv6::HEADER_LEN,
            payload,
            chunk,
            base_offset: 0,
            base_more: false,
            v6: Some((ident, nh)),
        })
    }

    /// How many fragments.
    pub fn count(&self) -> usize {
        self.payload.div_ceil(self.chunk)
    }

    /// The frame length of fragment `k`.
    pub fn frame_len(&self, k: usize) -> usize {
        self.l3 + self.ihl + self.frag_hdr() + self.chunk_len(k)
    }

    fn frag_hdr(&self) -> usize {
        if self.v6.is_some() {
            FRAG_HDR
        } else {
            0
        }
    }

    fn chunk_len(&self, k: usize) -> usize {
        let start = k * self.chunk;
        self.payload.saturating_sub(start).min(self.chunk)
    }

    /// Writes fragment `k` (0 < k < count) of `frame` into `out`, which
    /// must be [`Plan::frame_len`]`(k)` bytes. Fragment 0 is made in place
    /// by [`Plan::truncate_to_first`].
    pub fn write(&self, frame: &[u8], k: usize, out: &mut [u8]) {
        let hdr_end = self.l3 + self.ihl;
        let start = hdr_end + k * self.chunk;
        let len = self.chunk_len(k);
        if let Some((ident, nh)) = self.v6 {
            out[..hdr_end].copy_from_slice(&frame[..hdr_end]);
            let data = hdr_end + FRAG_HDR;
            out[data..data + len].copy_from_slice(&frame[start..start + len]);
            self.finish_v6(&mut out[self.l3..data], k, len, ident, nh);
            return;
        }
        out[..hdr_end].copy_from_slice(&frame[..hdr_end]);
        out[hdr_end..hdr_end + len].copy_from_slice(&frame[start..start + len]);
        strip_uncopied_options(&mut out[self.l3 + ipv4::HEADER_LEN..hdr_end]);
        self.finish_header(&mut out[self.l3..hdr_end], k, len);
    }

    /// Makes `frame` fragment 0 in place; returns its new frame length
    /// (the caller trims the buffer to it). Call after writing the others.
    pub fn truncate_to_first(&self, frame: &mut [u8]) -> usize {
        let hdr_end = self.l3 + self.ihl;
        if let Some((ident, nh)) = self.v6 {
            // The data moves up for the Fragment header; the packet was
            // over the MTU, so the first fragment still fits its buffer.
            let data = hdr_end + FRAG_HDR;
            frame.copy_within(hdr_end..hdr_end + self.chunk, data);
            self.finish_v6(&mut frame[self.l3..data], 0, self.chunk, ident, nh);
            return data + self.chunk;
        }
        self.finish_header(&mut frame[self.l3..hdr_end], 0, self.chunk);
        hdr_end + self.chunk
    }

    /// The fixed header and Fragment header of IPv6 fragment `k`.
    fn finish_v6(&self, hdr: &mut [u8], k: usize, len: usize, ident: u32, nh: u8) {
        let last = k + 1 == self.count();
        hdr[ipv6::field::PAYLOAD_LEN].copy_from_slice(&((FRAG_HDR + len) as u16).to_be_bytes());
        hdr[ipv6::field::NEXT_HEADER] = IPV6_FRAGMENT;
        let f = &mut hdr[ipv6::HEADER_LEN..];
        let off = (k * self.chunk) as u16 | u16::from(!last);
        f[0] = nh;
        f[1] = 0;
        f[2..4].copy_from_slice(&off.to_be_bytes());
        f[4..8].copy_from_slice(&ident.to_be_bytes());
    }

    fn finish_header(&self, hdr: &mut [u8], k: usize, len: usize) {
        let last = k + 1 == self.count();
        let mut p = ipv4::Packet::new_unchecked(hdr);
        p.set_total_len((self.ihl + len) as u16);
        p.set_frag(
            false,
            !last || self.base_more,
            (self.base_offset + k * self.chunk) as u16,
        );
        p.fill_checksum();
    }
}

/// Replaces every option without the copied bit by no-ops (RFC 791: only
/// copied options appear in later fragments; the header keeps its length).
fn strip_uncopied_options(opts: &mut [u8]) {
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            OPT_END => return,
            OPT_NOOP => i += 1,
            _ => {
                // A bad length ends the walk; the rest becomes no-ops.
                let len = opts.get(i + 1).map_or(0, |&l| l as usize);
                let len = if len < 2 || i + len > opts.len() {
                    opts.len() - i
                } else {
                    len
                };
                if kind & OPT_COPIED == 0 {
                    opts[i..i + len].fill(OPT_NOOP);
                }
                i += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// An Ethernet (+ `tags` VLAN tags) frame with an IPv4 header with
    /// `opts` and `payload` bytes 0, 1, 2, ...
    fn frame(tags: usize, opts: &[u8], payload: usize, flg_off: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for _ in 0..tags {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let ihl = 20 + opts.len();
        let total = (ihl + payload) as u16;
        f.extend_from_slice(&[0x40 | (ihl / 4) as u8, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0xab, 0xcd]);
        f.extend_from_slice(&flg_off.to_be_bytes());
        f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(opts);
        f.extend((0..payload).map(|i| i as u8));
        let l3 = 14 + 4 * tags;
        let mut p = ipv4::Packet::new_unchecked(&mut f[l3..]);
        p.fill_checksum();
        f
    }

    /// Every fragment of `f`, the first made in place.
    fn split(f: &[u8], l3: usize, mtu: usize) -> Vec<Vec<u8>> {
        let plan = Plan::new(f, l3, mtu).unwrap();
        let mut out = vec![Vec::new()];
        for k in 1..plan.count() {
            let mut b = vec![0u8; plan.frame_len(k)];
            plan.write(f, k, &mut b);
            out.push(b);
        }
        let mut first = f.to_vec();
        let n = plan.truncate_to_first(&mut first);
        first.truncate(n);
        out[0] = first;
        out
    }

    /// Reassembles fragments by their offsets and checks every header.
    fn reassemble(frags: &[Vec<u8>], l3: usize) -> (Vec<u8>, usize, bool) {
        let mut data = Vec::new();
        let mut first_off = None;
        let mut last_more = true;
        for (i, f) in frags.iter().enumerate() {
            let p = ipv4::Packet::new_checked(&f[l3..]).unwrap();
            assert!(p.verify_checksum(), "fragment {i} checksum");
            assert_eq!(p.total_len() as usize, f.len() - l3);
            assert_eq!(p.ident(), 0xabcd);
            assert!(!p.dont_frag());
            let off = p.frag_offset() as usize;
            let base = *first_off.get_or_insert(off);
            assert_eq!(off - base, data.len(), "fragment {i} offset");
            if i + 1 < frags.len() {
                assert!(p.more_frags());
                assert_eq!(p.payload().len() % 8, 0);
            }
            last_more = p.more_frags();
            data.extend_from_slice(p.payload());
        }
        (data, first_off.unwrap(), last_more)
    }

    #[test]
    fn splits_at_multiples_of_eight_and_reassembles() {
        for (tags, payload, mtu) in [
            (0, 3000, 1500),
            (1, 1481, 1500),
            (2, 100, 68),
            (0, 9000, 1280),
        ] {
            let f = frame(tags, &[], payload, 0);
            let l3 = 14 + 4 * tags;
            let frags = split(&f, l3, mtu);
            for g in &frags {
                assert!(g.len() - l3 <= mtu);
                assert_eq!(g[..l3], f[..l3], "L2 header copied");
            }
            let (data, off, more) = reassemble(&frags, l3);
            assert_eq!(data, f[l3 + 20..]);
            assert_eq!((off, more), (0, false));
        }
    }

    #[test]
    fn a_fragment_keeps_its_offset_and_more_flag() {
        // Offset 800 bytes (100 units), MF set.
        let f = frame(0, &[], 2000, 0x2000 | 100);
        let frags = split(&f, 14, 1000);
        let (data, off, more) = reassemble(&frags, 14);
        assert_eq!(data.len(), 2000);
        assert_eq!((off, more), (800, true));
    }

    #[test]
    fn uncopied_options_become_noops_after_the_first() {
        // Record route (7, not copied) then LSRR-like copied option 0x83.
        let opts = [7, 7, 4, 0, 0, 0, 0, 0x83, 3, 4, 0, 0];
        let f = frame(0, &opts, 1000, 0);
        let frags = split(&f, 14, 500);
        assert_eq!(&frags[0][34..46], &opts);
        for g in &frags[1..] {
            assert_eq!(&g[34..46], &[1, 1, 1, 1, 1, 1, 1, 0x83, 3, 4, 0, 0]);
        }
        assert_eq!(reassemble(&frags, 14).0, f[46..]);
    }

    #[test]
    fn ipv6_gets_a_fragment_header_and_reassembles() {
        use crate::net::reassembly::{Reassembly, ReassemblyConfig};
        use crate::wire::buf::VecBuf;
        use crate::wire::parse::parse_frame;
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&3000u16.to_be_bytes());
        f.extend_from_slice(&[17, 64]);
        f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend((0..3000).map(|i| (i * 3) as u8));
        let plan = Plan::with_ident(&f, 14, 1280, 0xfeed).unwrap();
        assert_eq!(plan.count(), 3);
        let mut frags = vec![];
        for k in 1..plan.count() {
            let mut b = vec![0u8; plan.frame_len(k)];
            plan.write(&f, k, &mut b);
            frags.push(b);
        }
        let mut first = f.clone();
        let n = plan.truncate_to_first(&mut first);
        first.truncate(n);
        frags.push(first);
        let mut r = Reassembly::new(ReassemblyConfig::default());
        for g in &frags {
            assert!(g.len() - 14 <= 1280);
            let h = parse_frame(g).unwrap();
            assert_eq!(h.frag.unwrap().ident, 0xfeed);
            r.insert(
                VecBuf::from_frame(g),
                &h,
                0,
                crate::lb::time::Timestamp(0),
                |d| panic!("{d:?}"),
            );
        }
        let c = r.take_complete().next().unwrap();
        let mut whole = vec![0; c.frame_len()];
        c.write(&mut whole);
        assert_eq!(whole, f);
    }

    #[test]
    fn refuses_what_fits_and_tiny_mtus() {
        let f = frame(0, &[], 100, 0);
        assert_eq!(Plan::new(&f, 14, 120), Err(Refused::Mtu));
        assert_eq!(Plan::new(&f, 14, 27), Err(Refused::Mtu));
        assert_eq!(Plan::new(&f[..30], 14, 68), Err(Refused::Malformed));
        assert!(checksum::verify_ipv4_header(f[14..34].try_into().unwrap()));
    }
}
