//! IP fragment reassembly (IPv4, and IPv6 with the Fragment header right
//! after the fixed header), as the kernel does before IPVS sees a packet:
//! a load balancer needs the ports, which only the first fragment has, and
//! the rest of the datagram must follow it to the same real server.
//!
//! Sans-IO and bounded: the fragments' own buffers are kept (no copies)
//! until the datagram is whole, then [`Reassembly::assemble`] copies them
//! into one buffer the caller provides. At most `max_datagrams` datagrams
//! and `max_fragments` fragments wait at a time; when either is reached the
//! oldest datagram is given up for the new one (a flood of fragments that
//! never complete cannot shut out datagrams that do), and a datagram not
//! whole after `timeout_ms` is given up too. Overlapping or inconsistent
//! fragments drop the whole datagram (RFC 5722; the kernel does the same
//! for IPv4 since 4.19).

use std::collections::VecDeque;
use std::net::IpAddr;

use crate::drops::DropReason;
use crate::lb::time::Timestamp;
use crate::wire::buf::PacketBuf;
use crate::wire::parse::{Headers, L3};
use crate::wire::{ipv4, ipv6};

/// Limits; the defaults hold a few hundred KiB of fragments per worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    pub max_datagrams: usize,
    pub max_fragments: usize,
    /// The kernel's `ipfrag_time` is 30 s; datagrams on a LAN complete in
    /// milliseconds, and buffers held are buffers the NIC lacks.
    pub timeout_ms: u64,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_datagrams: 256,
            max_fragments: 1024,
            timeout_ms: 5_000,
        }
    }
}

/// The largest IP datagram (IPv4 total length, IPv6 payload length).
const MAX_DATAGRAM: usize = 65_535;
/// The IPv6 Fragment header's protocol number and length.
const IPV6_FRAGMENT: u8 = 44;
const FRAG_HDR_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    ident: u32,
    /// IPv4's protocol (part of its key); 0 for IPv6.
    protocol: u8,
}

struct Piece<B> {
    offset: usize,
    end: usize,
    /// Where its data starts in the buffer.
    data: usize,
    buf: B,
}

struct Datagram<B> {
    key: Key,
    created: Timestamp,
    /// The port the first fragment to arrive came in on.
    port: u16,
    pieces: Vec<Piece<B>>,
    /// Set by the last fragment (MF clear): the datagram's data length.
    total: Option<usize>,
    have: usize,
}

impl<B> Datagram<B> {
    fn complete(&self) -> bool {
        self.total == Some(self.have) && self.pieces.iter().any(|p| p.offset == 0)
    }
}

/// What became of a fragment given to [`Reassembly::insert`].
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Kept, its datagram still incomplete.
    Kept,
    /// Kept, and its datagram is whole: [`Reassembly::take_complete`].
    Complete,
}

/// Fragments dropped by an insert or an expiry: `count` under `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub reason: DropReason,
    pub count: usize,
}

/// A whole datagram ready to be copied out.
pub struct Complete<B> {
    /// Its fragments' buffers, in offset order (the first holds the headers).
    pieces: Vec<Piece<B>>,
    l3: usize,
    v6: bool,
    total: usize,
    pub port: u16,
}

impl<B: PacketBuf> Complete<B> {
    /// The frame length of the reassembled datagram.
    pub fn frame_len(&self) -> usize {
        self.header_end() + self.total
    }

    /// How many fragments it was made of.
    pub fn fragments(&self) -> usize {
        self.pieces.len()
    }

    fn header_end(&self) -> usize {
        // IPv4: the first fragment's header; IPv6: the fixed header (the
        // Fragment header goes).
        match self.v6 {
            true => self.l3 + ipv6::HEADER_LEN,
            false => self.pieces[0].data,
        }
    }

    /// Writes the datagram into `out` ([`Complete::frame_len`] bytes): the
    /// first fragment's L2 and IP headers with the lengths and fragment
    /// fields made whole, then every fragment's data.
    pub fn write(&self, out: &mut [u8]) {
        let first = self.pieces[0].buf.data();
        let hdr = self.header_end();
        out[..hdr].copy_from_slice(&first[..hdr]);
        let mut at = hdr;
        for p in &self.pieces {
            let d = &p.buf.data()[p.data..p.data + (p.end - p.offset)];
            out[at..at + d.len()].copy_from_slice(d);
            at += d.len();
        }
        let ip = &mut out[self.l3..hdr];
        if self.v6 {
            // The Fragment header's next header takes its place.
            ip[ipv6::field::NEXT_HEADER] = first[self.l3 + ipv6::HEADER_LEN];
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&(self.total as u16).to_be_bytes());
        } else {
            let mut p = ipv4::Packet::new_unchecked(ip);
            let df = p.dont_frag();
            p.set_total_len((hdr - self.l3 + self.total) as u16);
            p.set_frag(df, false, 0);
            p.fill_checksum();
        }
    }
}

/// One worker's datagrams being reassembled.
pub struct Reassembly<B> {
    cfg: ReassemblyConfig,
    /// Oldest first (few; scanned linearly by key).
    datagrams: VecDeque<Datagram<B>>,
    fragments: usize,
    complete: Vec<Complete<B>>,
}

impl<B: PacketBuf> Reassembly<B> {
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembly {
            cfg: ReassemblyConfig {
                max_datagrams: cfg.max_datagrams.max(1),
                max_fragments: cfg.max_fragments.max(2),
                ..cfg
            },
            datagrams: VecDeque::new(),
            fragments: 0,
            complete: Vec::new(),
        }
    }

    /// Fragments held.
    pub fn held(&self) -> usize {
        self.fragments
    }

    /// True when datagrams wait in [`Reassembly::take_complete`].
    pub fn has_complete(&self) -> bool {
        !self.complete.is_empty()
    }

    /// The whole datagrams, for the caller to copy out (and then free their
    /// fragments by dropping the [`Complete`]).
    pub fn take_complete(&mut self) -> std::vec::Drain<'_, Complete<B>> {
        self.complete.drain(..)
    }

    /// Takes fragment `buf` (parsed into `h`, `h.is_fragment()`) that came
    /// in on `port`. `drops` hears of the fragments given up on the way
    /// (this one included when refused).
    pub fn insert(
        &mut self,
        buf: B,
        h: &Headers,
        port: u16,
        now: Timestamp,
        mut drops: impl FnMut(Dropped),
    ) -> Option<Taken> {
        let Some(f) = h.frag else {
            drops(Dropped {
                reason: DropReason::Fragment,
                count: 1,
            });
            return None;
        };
        let Some((key, data)) = key_and_data(buf.data(), h, f.ident) else {
            drops(Dropped {
                reason: DropReason::Fragment,
                count: 1,
            });
            return None;
        };
        let offset = f.offset as usize;
        let len = h.l3_end().saturating_sub(data);
        let end = offset + len;
        // Every fragment but the last carries a multiple of 8 bytes, and
        // the datagram fits its length field.
        if len == 0
            || (f.more && len % 8 != 0)
            || end + (data - h.l3_offset as usize) > MAX_DATAGRAM
        {
            drops(Dropped {
                reason: DropReason::Fragment,
                count: 1,
            });
            return None;
        }
        let at = match self.datagrams.iter().position(|d| d.key == key) {
            Some(i) => i,
            None => {
                while self.datagrams.len() >= self.cfg.max_datagrams {
                    self.give_up(0, DropReason::FragEvicted, &mut drops);
                }
                self.datagrams.push_back(Datagram {
                    key,
                    created: now,
                    port,
                    pieces: Vec::new(),
                    total: None,
                    have: 0,
                });
                self.datagrams.len() - 1
            }
        };
        let d = &mut self.datagrams[at];
        let overlaps = d.pieces.iter().any(|p| offset < p.end && p.offset < end);
        let bad_end = match (f.more, d.total) {
            (false, Some(t)) => t != end,
            (false, None) => d.pieces.iter().any(|p| p.end > end),
            (true, Some(t)) => end > t,
            (true, None) => false,
        };
        if overlaps || bad_end {
            drops(Dropped {
                reason: DropReason::FragOverlap,
                count: 1,
            });
            self.give_up(at, DropReason::FragOverlap, &mut drops);
            return None;
        }
        if !f.more {
            d.total = Some(end);
        }
        d.have += len;
        let pos = d.pieces.partition_point(|p| p.offset < offset);
        d.pieces.insert(
            pos,
            Piece {
                offset,
                end,
                data,
                buf,
            },
        );
        self.fragments += 1;
        if d.complete() {
            let d = self.datagrams.remove(at).expect("index from position");
            self.fragments -= d.pieces.len();
            let v6 = key_is_v6(&d.key);
            self.complete.push(Complete {
                l3: h.l3_offset as usize,
                v6,
                total: d.total.unwrap_or(0),
                port: d.port,
                pieces: d.pieces,
            });
            return Some(Taken::Complete);
        }
        // Over the fragment budget: the oldest datagram (maybe this one)
        // goes.
        while self.fragments > self.cfg.max_fragments && !self.datagrams.is_empty() {
            self.give_up(0, DropReason::FragEvicted, &mut drops);
        }
        Some(Taken::Kept)
    }

    /// Gives up datagrams older than the timeout.
    pub fn expire(&mut self, now: Timestamp, mut drops: impl FnMut(Dropped)) {
        while let Some(d) = self.datagrams.front() {
            if now.0.saturating_sub(d.created.0) < self.cfg.timeout_ms {
                break;
            }
            self.give_up(0, DropReason::FragTimeout, &mut drops);
        }
    }

    fn give_up(&mut self, at: usize, reason: DropReason, drops: &mut impl FnMut(Dropped)) {
        if let Some(d) = self.datagrams.remove(at) {
            self.fragments -= d.pieces.len();
            if !d.pieces.is_empty() {
                drops(Dropped {
                    reason,
                    count: d.pieces.len(),
                });
            }
        }
    }
}

fn key_is_v6(k: &Key) -> bool {
    k.src.is_ipv6()
}

/// The datagram's key and where this fragment's data starts.
fn key_and_data(f: &[u8], h: &Headers, ident: u32) -> Option<(Key, usize)> {
    let l3 = h.l3_offset as usize;
    match h.l3 {
        L3::Ipv4 => {
            let ihl = (*f.get(l3)? & 0x0f) as usize * 4;
            let protocol = *f.get(l3 + ipv4::field::PROTOCOL)?;
            Some((
                Key {
                    src: h.src,
                    dst: h.dst,
                    ident,
                    protocol,
                },
                l3 + ihl,
            ))
        }
        L3::Ipv6 => {
            // Only a Fragment header right after the fixed one: anything
            // before it would be per-fragment headers to carry over.
            if *f.get(l3 + ipv6::field::NEXT_HEADER)? != IPV6_FRAGMENT {
                return None;
            }
            Some((
                Key {
                    src: h.src,
                    dst: h.dst,
                    ident,
                    protocol: 0,
                },
                l3 + ipv6::HEADER_LEN + FRAG_HDR_LEN,
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::fragment::Plan;
    use crate::wire::buf::VecBuf;
    use crate::wire::parse::parse_frame;

    /// An Ethernet + IPv4 UDP-ish datagram of `payload` bytes, id `id`.
    fn datagram(id: u16, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + payload) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&[0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend((0..payload).map(|i| (i * 7) as u8));
        ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f
    }

    fn split(f: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let plan = Plan::new(f, 14, mtu).unwrap();
        let mut out = vec![];
        let mut first = f.to_vec();
        for k in 1..plan.count() {
            let mut b = vec![0; plan.frame_len(k)];
            plan.write(f, k, &mut b);
            out.push(b);
        }
        let n = plan.truncate_to_first(&mut first);
        first.truncate(n);
        out.insert(0, first);
        out
    }

    fn feed(
        r: &mut Reassembly<VecBuf>,
        frame: &[u8],
        now: u64,
        drops: &mut Vec<Dropped>,
    ) -> Option<Taken> {
        let h = parse_frame(frame).unwrap();
        r.insert(VecBuf::from_frame(frame), &h, 0, Timestamp(now), |d| {
            drops.push(d)
        })
    }

    fn out(r: &mut Reassembly<VecBuf>) -> Vec<Vec<u8>> {
        r.take_complete()
            .map(|c| {
                let mut b = vec![0; c.frame_len()];
                c.write(&mut b);
                b
            })
            .collect()
    }

    #[test]
    fn in_any_order_gives_back_the_datagram() {
        let d = datagram(7, 4000);
        let frags = split(&d, 1500);
        assert_eq!(frags.len(), 3);
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut r = Reassembly::new(ReassemblyConfig::default());
            let mut drops = vec![];
            for (i, &k) in order.iter().enumerate() {
                let t = feed(&mut r, &frags[k], 0, &mut drops);
                let want = if i == 2 { Taken::Complete } else { Taken::Kept };
                assert_eq!(t, Some(want));
            }
            assert_eq!(out(&mut r), vec![d.clone()]);
            assert!(drops.is_empty());
            assert_eq!(r.held(), 0);
        }
    }

    #[test]
    fn overlaps_and_bad_lengths_drop_the_datagram() {
        let d = datagram(8, 4000);
        let frags = split(&d, 1500);
        let mut r = Reassembly::new(ReassemblyConfig::default());
        let mut drops = vec![];
        feed(&mut r, &frags[0], 0, &mut drops);
        feed(&mut r, &frags[1], 0, &mut drops);
        // The second again: overlaps; it and the two held go.
        assert_eq!(feed(&mut r, &frags[1], 0, &mut drops), None);
        let n: usize = drops
            .iter()
            .filter(|d| d.reason == DropReason::FragOverlap)
            .map(|d| d.count)
            .sum();
        assert_eq!(n, 3);
        assert_eq!(r.held(), 0);
        // A middle fragment whose length is not a multiple of 8.
        let mut odd = frags[1].clone();
        odd.pop();
        let len = (odd.len() - 14) as u16;
        ipv4::Packet::new_unchecked(&mut odd[14..]).set_total_len(len);
        ipv4::Packet::new_unchecked(&mut odd[14..]).fill_checksum();
        drops.clear();
        assert_eq!(feed(&mut r, &odd, 0, &mut drops), None);
        assert_eq!(
            drops,
            vec![Dropped {
                reason: DropReason::Fragment,
                count: 1
            }]
        );
    }

    #[test]
    fn old_and_excess_datagrams_are_given_up() {
        let cfg = ReassemblyConfig {
            max_datagrams: 2,
            max_fragments: 3,
            timeout_ms: 100,
        };
        let mut r = Reassembly::new(cfg);
        let mut drops = vec![];
        for id in 0..3u16 {
            feed(
                &mut r,
                &split(&datagram(id, 3000), 1500)[0],
                id as u64,
                &mut drops,
            );
        }
        // The third datagram evicted the first.
        assert_eq!(
            drops,
            vec![Dropped {
                reason: DropReason::FragEvicted,
                count: 1
            }]
        );
        // A fourth fragment over the fragment budget evicts the oldest.
        feed(&mut r, &split(&datagram(2, 3000), 1500)[1], 3, &mut drops);
        feed(&mut r, &split(&datagram(2, 3000), 1500)[2], 3, &mut drops);
        assert_eq!(out(&mut r).len(), 1, "datagram 2 completes");
        r.expire(Timestamp(50), |d| drops.push(d));
        assert_eq!(r.held(), 1);
        r.expire(Timestamp(101), |d| drops.push(d));
        assert_eq!(
            drops.last(),
            Some(&Dropped {
                reason: DropReason::FragTimeout,
                count: 1
            })
        );
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn ipv6_fragment_header_removed() {
        // Fixed header, Fragment header, 16 + 8 bytes of UDP data.
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let data: Vec<u8> = (0..24u8).collect();
        let frag = |off: usize, more: bool, chunk: &[u8]| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
            f.extend_from_slice(&[44, 64]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            let fo = (off as u16) | more as u16;
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&fo.to_be_bytes());
            f.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            f.extend_from_slice(chunk);
            f
        };
        let mut r = Reassembly::new(ReassemblyConfig::default());
        let mut drops = vec![];
        assert_eq!(
            feed(&mut r, &frag(16, false, &data[16..]), 0, &mut drops),
            Some(Taken::Kept)
        );
        assert_eq!(
            feed(&mut r, &frag(0, true, &data[..16]), 0, &mut drops),
            Some(Taken::Complete)
        );
        let whole = out(&mut r).pop().unwrap();
        assert_eq!(whole.len(), 14 + 40 + 24);
        assert_eq!(whole[20], 17, "next header from the Fragment header");
        assert_eq!(whole[18..20], [0, 24]);
        assert_eq!(whole[54..], data[..]);
    }
}
