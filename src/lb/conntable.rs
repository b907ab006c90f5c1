//! The per-lcore connection table: owned by one worker, no locks, fixed
//! capacity allocated once.
//!
//! - Entries live in a slab of 64-byte, cache-line-aligned [`Conn`]s with a
//!   free list.
//! - A bucketed open-addressing index maps both directions to an entry: the
//!   inbound key (proto, client, cport, VIP, vport) and, for NAT, the outbound
//!   key (proto, real server, dport, client, cport). A [`Bucket`] is one cache
//!   line of 10 (16-bit tag, entry) slots plus an overflow count (how many
//!   entries probed past it), so a lookup stops at the first bucket without
//!   overflow and deletion needs no tombstones. The index is sized for two
//!   keys per connection at 70% load (16 bytes per connection, any bucket
//!   count: no power-of-two rounding). A lookup at normal load touches two
//!   cache lines: the bucket and the entry.
//! - Expiry uses a timing wheel (10 ms ticks, 8192 slots) with lazy
//!   re-arming: a packet only rewrites `expires` (and relinks only when the
//!   new expiry is earlier than the slot the entry sits in); an entry found
//!   in a due slot that is not yet expired moves to its real slot. So
//!   `pop_expired` costs O(expired + ticks + moved) and takes a budget.
//!
//! Addresses are kept as `u128` (IPv4 as the v4-mapped IPv6 address, i.e.
//! `::ffff:a.b.c.d`), so that key comparison and hashing are a few integer
//! instructions.
//!
//! The real server's address is not stored in the entry: outbound matching
//! asks the owner through [`DestEndpoints`].
//!
//! # Memory
//!
//! [`ConnTable::new`] allocates entries and index on the heap. At a million
//! connections that is about 100 MB touched at random, so TLB misses are a
//! large part of a lookup on 4 KiB pages; two ways to get huge pages:
//!
//! - The data plane allocates the two arrays itself (e.g. from DPDK's
//!   hugepage heap with `rte_zmalloc_socket`, sized by [`ConnTable::layout`])
//!   and hands them over as `&'static mut` slices with
//!   [`ConnTable::with_memory`]. Any bit pattern is a valid [`Conn`] and
//!   [`Bucket`] (plain integers), and the table initialises both, so turning
//!   zeroed hugepage memory into these slices is sound. The slices are only
//!   reachable through the table; a provider that wants its memory back
//!   registers a release with [`ConnTable::on_drop`], which runs when the
//!   table is dropped, after its last access.
//! - With heap memory, glibc asks for transparent huge pages on its large
//!   allocations when the process starts with
//!   `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (THP mode `madvise`, glibc
//!   2.35+). No `unsafe` is needed in `lb` for either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, DerefMut};

use super::service::Protocol;
use super::time::Timestamp;

/// Timing wheel resolution.
pub const TICK_MS: u64 = 10;
/// Timing wheel size (a power of two); span = 81.92 s.
pub const WHEEL_SLOTS: usize = 8192;
/// Largest capacity (entry indices keep their top bit free).
pub const MAX_CAPACITY: usize = (1 << 31) - 1;

const NIL: u32 = u32::MAX;
/// In `prev`: the entry is the head of wheel slot `prev & !HEAD`.
const HEAD: u32 = 1 << 31;
/// In an index slot: the key is the outbound one.
const OUT: u32 = 1 << 31;
const SLOTS: usize = 10;
/// No candidate entry for [`ConnTable::find_hinted`].
pub const NO_HINT: u32 = u32::MAX;

/// Entry flags.
pub mod flag {
    pub const USED: u8 = 1 << 0;
    pub const V6: u8 = 1 << 1;
    pub const UDP: u8 = 1 << 2;
    /// Counted in InActConn (IP_VS_CONN_F_INACTIVE).
    pub const INACTIVE: u8 = 1 << 3;
    /// Replies bypass the balancer: INPUT-ONLY state table.
    pub const NOOUTPUT: u8 = 1 << 4;
    /// NAT: the outbound key is indexed too.
    pub const MASQ: u8 = 1 << 5;
    /// Controlled by a persistence template.
    pub const CONTROLLED: u8 = 1 << 6;
}

/// One connection: 64 bytes, one cache line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Conn {
    /// Client address (IPv4 v4-mapped, see [`addr16`]).
    pub caddr: u128,
    /// Virtual address.
    pub vaddr: u128,
    /// Expiry in ms on the injected clock.
    pub expires: u64,
    /// The owner's real server slot.
    pub dest: u32,
    next: u32,
    prev: u32,
    tick: u32,
    pub cport: u16,
    pub vport: u16,
    /// The port at the real server, fixed when the connection was made
    /// (the real server's, the virtual one for port 0, or the packet's for
    /// a persistent port-zero or fwmark service).
    pub rport: u16,
    /// `TcpState as u8` (UDP: 0).
    pub state: u8,
    pub flags: u8,
}

const EMPTY: Conn = Conn {
    caddr: 0,
    vaddr: 0,
    expires: 0,
    dest: 0,
    next: NIL,
    prev: NIL,
    tick: 0,
    cport: 0,
    vport: 0,
    rport: 0,
    state: 0,
    flags: 0,
};

impl Conn {
    #[inline]
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    pub fn proto(&self) -> Protocol {
        if self.has(flag::UDP) {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }
    pub fn client(&self) -> IpAddr {
        ip_from16(self.caddr, self.has(flag::V6))
    }
    pub fn vip(&self) -> IpAddr {
        ip_from16(self.vaddr, self.has(flag::V6))
    }
}

const V4_MAPPED: u128 = 0xffff << 32;

/// An address as a `u128` (IPv4 as `::ffff:a.b.c.d`) and whether it is IPv6.
#[inline]
pub fn addr16(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (V4_MAPPED | u32::from(a) as u128, false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

/// The address back from its [`addr16`] form.
#[inline]
pub fn ip_from16(a: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::from(a as u32))
    }
}

/// A packet's addresses and ports as it arrives (source first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    pub udp: bool,
    pub v6: bool,
}

impl Tuple {
    pub const EMPTY: Tuple = Tuple {
        src: 0,
        dst: 0,
        sport: 0,
        dport: 0,
        udp: false,
        v6: false,
    };

    #[inline]
    pub fn new(proto: Protocol, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        let (s, v6) = addr16(src);
        let (d, _) = addr16(dst);
        Tuple {
            src: s,
            dst: d,
            sport,
            dport,
            udp: proto == Protocol::Udp,
            v6,
        }
    }

    /// The entry flags (UDP, V6) an entry for this key carries.
    #[inline]
    fn kind(&self) -> u8 {
        ((self.udp as u8) * flag::UDP) | ((self.v6 as u8) * flag::V6)
    }
}

/// Where the owner's real server slots are (for outbound keys).
pub trait DestEndpoints {
    /// Address ([`addr16`] form) and port of real server slot `dest`; port 0
    /// means "the connection's virtual port" (port-0 services).
    fn endpoint(&self, dest: u32) -> (u128, u16);
}

const SEEDS: [u64; 6] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
];

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Hash of a key (fixed seeds: deterministic across runs and lcores): three
/// 64x64->128 multiplications.
#[inline]
pub fn hash_key(t: &Tuple, out: bool) -> u64 {
    let p = (t.sport as u64)
        | (t.dport as u64) << 16
        | (t.udp as u64) << 32
        | (t.v6 as u64) << 33
        | (out as u64) << 34;
    let h1 = mix(t.src as u64 ^ SEEDS[0], t.dst as u64 ^ SEEDS[1]);
    let h2 = mix(
        (t.src >> 64) as u64 ^ SEEDS[2],
        (t.dst >> 64) as u64 ^ SEEDS[3],
    );
    mix(h1 ^ p ^ SEEDS[4], h2 ^ SEEDS[5])
}

/// A key's 16-bit tag in its bucket (never 0: 0 marks a free slot), from
/// the hash's top bits (the bucket comes from the low 32 bits).
#[inline(always)]
fn tag_of(h: u64) -> u16 {
    let t = (h >> 48) as u16;
    t | (t == 0) as u16
}

/// One index bucket (a cache line): 10 slots of (16-bit tag, entry).
/// Opaque; public only so that a caller can provide the memory
/// ([`ConnTable::with_memory`]).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Bucket {
    tags: [u16; SLOTS],
    /// How many keys whose home is this bucket were placed further on.
    overflow: u16,
    /// Never used (stays 0): the target of [`ConnTable::preload_bucket`].
    spare: u16,
    /// Entry of each slot (`| OUT` for an outbound key).
    idx: [u32; SLOTS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [0; SLOTS],
    overflow: 0,
    spare: 0,
    idx: [0; SLOTS],
};

impl Bucket {
    /// Bit `s` set when slot `s` holds `tag` (no branches; the compiler
    /// turns it into vector compares).
    #[inline(always)]
    fn matches(&self, tag: u16) -> u32 {
        let mut m = 0;
        for s in 0..SLOTS {
            m |= ((self.tags[s] == tag) as u32) << s;
        }
        m
    }

    #[inline(always)]
    fn overflow(&self) -> u32 {
        self.overflow as u32
    }

    #[inline(always)]
    fn overflow_mut(&mut self) -> &mut u16 {
        &mut self.overflow
    }
}

/// Array storage: owned heap memory or memory the caller provided for the
/// life of the process.
enum Region<T: 'static> {
    Heap(Box<[T]>),
    Provided(&'static mut [T]),
}

impl<T> Deref for Region<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        match self {
            Region::Heap(b) => b,
            Region::Provided(s) => s,
        }
    }
}

impl<T> DerefMut for Region<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Region::Heap(b) => b,
            Region::Provided(s) => s,
        }
    }
}

/// The table is full: the new connection is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// Fields of a new connection.
#[derive(Clone, Copy, Debug)]
pub struct NewConn {
    pub tuple: Tuple,
    pub dest: u32,
    /// The port at the real server.
    pub rport: u16,
    pub expires: Timestamp,
    pub state: u8,
    pub flags: u8,
}

/// How many entries and buckets a table of some capacity uses (for a caller
/// that provides the memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLayout {
    /// [`Conn`]s (= the capacity).
    pub conns: usize,
    /// [`Bucket`]s.
    pub buckets: usize,
}

impl TableLayout {
    /// Bytes of the two arrays.
    pub fn bytes(&self) -> usize {
        self.conns * std::mem::size_of::<Conn>() + self.buckets * std::mem::size_of::<Bucket>()
    }
}

/// Memory for [`ConnTable::with_memory`] is too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryTooSmall;

pub struct ConnTable {
    conns: Region<Conn>,
    buckets: Region<Bucket>,
    free: u32,
    len: usize,
    /// Number of buckets (any number: a key's home is its hash's low 32
    /// bits scaled to it).
    nb: usize,
    wheel: Vec<u32>,
    cur_tick: u64,
    /// Gives provided memory back once the table is gone ([`ConnTable::on_drop`]).
    release: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for ConnTable {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

#[inline]
fn ceil_tick(ms: u64) -> u64 {
    ms.div_ceil(TICK_MS)
}

impl ConnTable {
    /// Sizes for at most `capacity` connections (clamped to
    /// 1..=MAX_CAPACITY): room for two keys per connection (NAT) at <= 70%
    /// index load (16 bytes of index per connection).
    pub fn layout(capacity: usize) -> TableLayout {
        let cap = capacity.clamp(1, MAX_CAPACITY);
        TableLayout {
            conns: cap,
            buckets: (2 * cap).div_ceil(SLOTS * 7 / 10).max(2),
        }
    }

    /// A table for at most `capacity` connections (clamped to
    /// 1..=MAX_CAPACITY), its clock starting at `now`. Everything is
    /// allocated here, on the heap.
    pub fn new(capacity: usize, now: Timestamp) -> Self {
        let l = Self::layout(capacity);
        Self::build(
            Region::Heap(vec![EMPTY; l.conns].into_boxed_slice()),
            Region::Heap(vec![EMPTY_BUCKET; l.buckets].into_boxed_slice()),
            now,
        )
    }

    /// A table in memory the caller provides (e.g. hugepages): `conns.len()`
    /// is the capacity (at most MAX_CAPACITY), `buckets` needs at least
    /// `ConnTable::layout(conns.len()).buckets` entries (extra ones are not
    /// used). The contents are overwritten; the table never frees the
    /// memory itself (see [`ConnTable::on_drop`]).
    pub fn with_memory(
        conns: &'static mut [Conn],
        buckets: &'static mut [Bucket],
        now: Timestamp,
    ) -> Result<Self, MemoryTooSmall> {
        if conns.is_empty() || conns.len() > MAX_CAPACITY {
            return Err(MemoryTooSmall);
        }
        let l = Self::layout(conns.len());
        if buckets.len() < l.buckets {
            return Err(MemoryTooSmall);
        }
        let buckets = &mut buckets[..l.buckets];
        conns.fill(EMPTY);
        buckets.fill(EMPTY_BUCKET);
        Ok(Self::build(
            Region::Provided(conns),
            Region::Provided(buckets),
            now,
        ))
    }

    fn build(mut conns: Region<Conn>, buckets: Region<Bucket>, now: Timestamp) -> Self {
        let cap = conns.len();
        for (i, c) in conns.iter_mut().enumerate() {
            c.next = if i + 1 < cap { (i + 1) as u32 } else { NIL };
        }
        let nb = buckets.len();
        ConnTable {
            conns,
            buckets,
            free: 0,
            len: 0,
            nb,
            wheel: vec![NIL; WHEEL_SLOTS],
            cur_tick: now.0 / TICK_MS,
            release: None,
        }
    }

    /// Run `release` when the table is dropped, after its last use of the
    /// memory given to [`ConnTable::with_memory`]: the provider frees that
    /// memory there instead of keeping it for the life of the process.
    pub fn on_drop(mut self, release: Box<dyn FnOnce() + Send>) -> Self {
        self.release = Some(release);
        self
    }

    pub fn capacity(&self) -> usize {
        self.conns.len()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An empty bucket (e.g. to fill memory for [`ConnTable::with_memory`]
    /// in tests; the table initialises the memory anyway).
    pub fn bucket_template() -> Bucket {
        EMPTY_BUCKET
    }

    #[cfg(test)]
    fn layout_now(&self) -> TableLayout {
        TableLayout {
            conns: self.conns.len(),
            buckets: self.buckets.len(),
        }
    }

    /// Bytes allocated: entries, index and wheel.
    pub fn memory_bytes(&self) -> usize {
        self.conns.len() * std::mem::size_of::<Conn>()
            + self.buckets.len() * std::mem::size_of::<Bucket>()
            + self.wheel.len() * 4
    }

    /// The index bucket a hash starts at (multiply-shift of the low 32
    /// bits: no power-of-two rounding of the index size).
    #[inline(always)]
    pub fn bucket_of(&self, hash: u64) -> usize {
        ((hash as u32 as u64 * self.nb as u64) >> 32) as usize
    }

    #[inline(always)]
    fn next_bucket(&self, b: usize) -> usize {
        if b + 1 == self.nb {
            0
        } else {
            b + 1
        }
    }

    /// Address of the bucket a hash starts at, for a prefetch instruction.
    #[inline]
    pub fn bucket_addr(&self, hash: u64) -> *const u8 {
        self.bucket_addr_at(self.bucket_of(hash))
    }

    /// Address of the entry a hint names (see [`ConnTable::hint`]), for a
    /// prefetch instruction; only an address, never read here.
    #[inline]
    pub fn entry_addr(&self, hint: u32) -> *const u8 {
        self.conns.as_ptr().wrapping_add((hint & !OUT) as usize) as *const u8
    }

    /// First stage of a burst preload: start fetching the index line of a
    /// key. Without `unsafe` there is no prefetch instruction, and a load
    /// holds up retirement until its line arrives; a store does not (it
    /// waits in the store buffer while the line is fetched), so this writes
    /// 0 into the bucket's never-used eighth index slot (always 0).
    #[inline(always)]
    pub fn preload_bucket(&mut self, hash: u64) {
        let b = self.bucket_of(hash);
        self.buckets[b].spare = 0;
    }

    /// Second stage: the entry the key's first tag match points to, as an
    /// index value for [`ConnTable::find_hinted`] and
    /// [`ConnTable::preload_entry`] ([`NO_HINT`] without a match). Reads
    /// the bucket; the match is not verified here.
    #[inline(always)]
    pub fn hint(&self, hash: u64) -> u32 {
        self.hint_at(self.bucket_of(hash), hash)
    }

    /// For a key whose home bucket holds no matching tag but overflowed
    /// (about 2.5% of keys at full load are placed further on): the next
    /// bucket, where a probe would look, so that a burst can fetch it
    /// ahead as well instead of missing twice in a row in
    /// [`ConnTable::find`]. `None` for every other key.
    #[inline(always)]
    pub fn overflow_next(&self, hash: u64) -> Option<usize> {
        let b = self.bucket_of(hash);
        let bk = &self.buckets[b];
        (bk.overflow() != 0 && bk.matches(tag_of(hash)) == 0).then(|| self.next_bucket(b))
    }

    /// Address of bucket `b`, for a prefetch instruction; only an address,
    /// never read here.
    #[inline]
    pub fn bucket_addr_at(&self, b: usize) -> *const u8 {
        self.buckets.as_ptr().wrapping_add(b) as *const u8
    }

    /// [`ConnTable::hint`] in bucket `b` (the key's home bucket, or the
    /// one [`ConnTable::overflow_next`] names).
    #[inline(always)]
    pub fn hint_at(&self, b: usize, hash: u64) -> u32 {
        let Some(bk) = self.buckets.get(b) else {
            return NO_HINT;
        };
        // The first matching slot, from the compare's bit mask.
        let m = bk.matches(tag_of(hash));
        if m == 0 {
            NO_HINT
        } else {
            bk.idx[(m.trailing_zeros() as usize).min(SLOTS - 1)]
        }
    }

    /// Third stage: load the hinted entry (returns a byte of it for the
    /// caller to consume, so that the load is not optimised away). Keep the
    /// loop around this small: the number of these loads in flight is
    /// bounded by how many fit in the reorder window.
    #[inline(always)]
    pub fn preload_entry(&self, hint: u32) -> u8 {
        match self.conns.get((hint & !OUT) as usize) {
            Some(c) => c.flags,
            None => 0,
        }
    }

    #[inline]
    pub fn get(&self, idx: u32) -> &Conn {
        &self.conns[idx as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, idx: u32) -> &mut Conn {
        &mut self.conns[idx as usize]
    }

    /// Entry `i` is in use and has key `t` (inbound, or outbound for NAT).
    #[inline(always)]
    fn matches(&self, i: u32, t: &Tuple, out: bool, eps: &impl DestEndpoints) -> bool {
        let c = &self.conns[i as usize];
        if out {
            const K: u8 = flag::USED | flag::UDP | flag::V6 | flag::MASQ;
            if c.flags & K != flag::USED | flag::MASQ | t.kind()
                || c.caddr != t.dst
                || c.cport != t.dport
            {
                return false;
            }
            let (daddr, _) = eps.endpoint(c.dest);
            daddr == t.src && c.rport == t.sport
        } else {
            const K: u8 = flag::USED | flag::UDP | flag::V6;
            c.flags & K == flag::USED | t.kind()
                && (c.caddr ^ t.src) | (c.vaddr ^ t.dst) == 0
                && c.cport == t.sport
                && c.vport == t.dport
        }
    }

    /// As [`ConnTable::find`], trying first the entry `hint` (an index value
    /// from [`ConnTable::touch_entry`] for the same hash, or [`NO_HINT`]).
    /// The hint is only a guess: the entry is checked against the whole key,
    /// so a hint made stale by changes to the table since is harmless.
    #[inline(always)]
    pub fn find_hinted(
        &self,
        hash: u64,
        t: &Tuple,
        out: bool,
        eps: &impl DestEndpoints,
        hint: u32,
    ) -> Option<u32> {
        let dir = if out { OUT } else { 0 };
        let i = hint & !OUT;
        if hint & OUT == dir && (i as usize) < self.conns.len() && self.matches(i, t, out, eps) {
            return Some(i);
        }
        self.find(hash, t, out, eps)
    }

    /// Find the connection for a key whose hash (`hash_key(t, out)`) was
    /// computed beforehand.
    #[inline(always)]
    pub fn find(&self, hash: u64, t: &Tuple, out: bool, eps: &impl DestEndpoints) -> Option<u32> {
        let b = self.bucket_of(hash);
        let bk = &self.buckets[b];
        let mut m = bk.matches(tag_of(hash));
        let dir = if out { OUT } else { 0 };
        while m != 0 {
            let v = bk.idx[m.trailing_zeros() as usize % SLOTS];
            if v & OUT == dir && self.matches(v & !OUT, t, out, eps) {
                return Some(v & !OUT);
            }
            m &= m - 1;
        }
        if bk.overflow() == 0 {
            return None;
        }
        self.find_probe(hash, t, out, eps, b)
    }

    /// The rest of a lookup whose home bucket overflowed.
    #[cold]
    #[inline(never)]
    fn find_probe(
        &self,
        hash: u64,
        t: &Tuple,
        out: bool,
        eps: &impl DestEndpoints,
        home: usize,
    ) -> Option<u32> {
        let tag = tag_of(hash);
        let dir = if out { OUT } else { 0 };
        let mut b = home;
        for _ in 1..self.nb {
            b = self.next_bucket(b);
            let bk = &self.buckets[b];
            let mut m = bk.matches(tag);
            while m != 0 {
                let v = bk.idx[m.trailing_zeros() as usize % SLOTS];
                if v & OUT == dir && self.matches(v & !OUT, t, out, eps) {
                    return Some(v & !OUT);
                }
                m &= m - 1;
            }
            if bk.overflow() == 0 {
                return None;
            }
        }
        None
    }

    fn index_insert(&mut self, hash: u64, val: u32) -> bool {
        let tag = tag_of(hash);
        let home = self.bucket_of(hash);
        let mut b = home;
        for probe in 0..self.nb {
            let bk = &mut self.buckets[b];
            let free = bk.matches(0);
            if free != 0 {
                let s = free.trailing_zeros() as usize;
                bk.tags[s] = tag;
                bk.idx[s] = val;
                let mut p = home;
                for _ in 0..probe {
                    *self.buckets[p].overflow_mut() += 1;
                    p = self.next_bucket(p);
                }
                return true;
            }
            b = self.next_bucket(b);
        }
        false
    }

    fn index_remove(&mut self, hash: u64, val: u32) {
        let tag = tag_of(hash);
        let home = self.bucket_of(hash);
        let mut b = home;
        for probe in 0..self.nb {
            let bk = &mut self.buckets[b];
            if let Some(s) = (0..SLOTS).find(|&s| bk.tags[s] == tag && bk.idx[s] == val) {
                bk.tags[s] = 0;
                bk.idx[s] = 0;
                let mut p = home;
                for _ in 0..probe {
                    *self.buckets[p].overflow_mut() -= 1;
                    p = self.next_bucket(p);
                }
                return;
            }
            b = self.next_bucket(b);
        }
        debug_assert!(false, "index entry not found");
    }

    #[inline(always)]
    fn link_tick(&self, expires: u64) -> u64 {
        ceil_tick(expires).clamp(self.cur_tick, self.cur_tick + WHEEL_SLOTS as u64 - 1)
    }

    #[inline(never)]
    fn relink(&mut self, i: u32, tick: u64) {
        self.unlink(i);
        self.link(i, tick);
    }

    fn link(&mut self, i: u32, tick: u64) {
        let slot = (tick as usize) & (WHEEL_SLOTS - 1);
        let head = self.wheel[slot];
        if head != NIL {
            self.conns[head as usize].prev = i;
        }
        let c = &mut self.conns[i as usize];
        c.next = head;
        c.prev = HEAD | slot as u32;
        c.tick = tick as u32;
        self.wheel[slot] = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let c = &self.conns[i as usize];
            (c.prev, c.next)
        };
        if prev & HEAD != 0 {
            self.wheel[(prev & !HEAD) as usize] = next;
        } else {
            self.conns[prev as usize].next = next;
        }
        if next != NIL {
            self.conns[next as usize].prev = prev;
        }
    }

    /// Insert a connection. `out_hash` (the outbound key's hash) is given for
    /// NAT connections, which then also answer outbound lookups.
    pub fn insert(
        &mut self,
        n: NewConn,
        in_hash: u64,
        out_hash: Option<u64>,
    ) -> Result<u32, TableFull> {
        let i = self.free;
        if i == NIL {
            return Err(TableFull);
        }
        if !self.index_insert(in_hash, i) {
            return Err(TableFull);
        }
        if let Some(h) = out_hash {
            if !self.index_insert(h, i | OUT) {
                self.index_remove(in_hash, i);
                return Err(TableFull);
            }
        }
        let c = &mut self.conns[i as usize];
        self.free = c.next;
        let t = n.tuple;
        *c = Conn {
            caddr: t.src,
            vaddr: t.dst,
            expires: n.expires.0,
            dest: n.dest,
            next: NIL,
            prev: NIL,
            tick: 0,
            cport: t.sport,
            vport: t.dport,
            rport: n.rport,
            state: n.state,
            flags: (n.flags & !(flag::UDP | flag::V6 | flag::MASQ))
                | flag::USED
                | t.kind()
                | if out_hash.is_some() { flag::MASQ } else { 0 },
        };
        let tick = self.link_tick(n.expires.0);
        self.link(i, tick);
        self.len += 1;
        Ok(i)
    }

    /// Set a connection's expiry (per packet). Cheap: the wheel is touched
    /// only when the new expiry is earlier than the entry's slot.
    #[inline(always)]
    pub fn set_expires(&mut self, i: u32, expires: Timestamp) {
        let tick = self.link_tick(expires.0);
        let c = &mut self.conns[i as usize];
        c.expires = expires.0;
        if ((tick as u32).wrapping_sub(c.tick) as i32) < 0 {
            self.relink(i, tick);
        }
    }

    /// The inbound key of an entry.
    fn in_tuple(c: &Conn) -> Tuple {
        Tuple {
            src: c.caddr,
            dst: c.vaddr,
            sport: c.cport,
            dport: c.vport,
            udp: c.has(flag::UDP),
            v6: c.has(flag::V6),
        }
    }

    /// Remove a connection now; returns its last contents.
    pub fn remove(&mut self, i: u32, eps: &impl DestEndpoints) -> Conn {
        let c = self.conns[i as usize];
        debug_assert!(c.has(flag::USED));
        self.unlink(i);
        let tin = Self::in_tuple(&c);
        self.index_remove(hash_key(&tin, false), i);
        if c.has(flag::MASQ) {
            let (daddr, _) = eps.endpoint(c.dest);
            let tout = Tuple {
                src: daddr,
                dst: c.caddr,
                sport: c.rport,
                dport: c.cport,
                udp: tin.udp,
                v6: tin.v6,
            };
            self.index_remove(hash_key(&tout, true), i | OUT);
        }
        let free = self.free;
        let e = &mut self.conns[i as usize];
        *e = EMPTY;
        e.next = free;
        self.free = i;
        self.len -= 1;
        c
    }

    /// Take the next connection expired by `now`, if any is due, spending at
    /// most `budget` (one unit per wheel tick advanced and per entry looked
    /// at). The entry is already removed when returned.
    pub fn pop_expired(
        &mut self,
        now: Timestamp,
        budget: &mut usize,
        eps: &impl DestEndpoints,
    ) -> Option<(u32, Conn)> {
        let now_tick = now.0 / TICK_MS;
        if self.len == 0 {
            self.cur_tick = self.cur_tick.max(now_tick);
            return None;
        }
        while self.cur_tick <= now_tick && *budget > 0 {
            *budget -= 1;
            let slot = (self.cur_tick as usize) & (WHEEL_SLOTS - 1);
            let h = self.wheel[slot];
            if h == NIL {
                self.cur_tick += 1;
                continue;
            }
            let expires = self.conns[h as usize].expires;
            if expires <= now.0 {
                let c = self.remove(h, eps);
                return Some((h, c));
            }
            // Re-armed since it was linked: move it to its real slot (always
            // a later tick than the current one).
            self.unlink(h);
            let tick = self.link_tick(expires);
            self.link(h, tick);
        }
        None
    }

    /// Every live connection (for listings).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.iter_from(0)
    }

    /// The live connections from slot `start` on, with their slots: a
    /// listing in pages resumes where the last one stopped.
    pub fn iter_from(&self, start: u32) -> impl Iterator<Item = (u32, &Conn)> {
        let start = (start as usize).min(self.conns.len());
        self.conns[start..]
            .iter()
            .enumerate()
            .filter(|(_, c)| c.has(flag::USED))
            .map(move |(i, c)| ((start + i) as u32, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::dest::real_port;

    struct Eps(Vec<(u128, u16)>);
    impl DestEndpoints for Eps {
        fn endpoint(&self, d: u32) -> (u128, u16) {
            self.0[d as usize]
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn eps() -> Eps {
        Eps(vec![
            (addr16(ip("10.0.0.1")).0, 8080),
            (addr16(ip("10.0.0.2")).0, 0),
        ])
    }

    fn client(n: u32) -> Tuple {
        let c = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
        Tuple::new(
            Protocol::Tcp,
            c,
            1024 + (n % 60000) as u16,
            ip("192.168.1.100"),
            80,
        )
    }

    fn out_tuple(t: &Tuple, e: &Eps, dest: u32) -> Tuple {
        let (a, p) = e.endpoint(dest);
        let p = real_port(p, t.dport);
        Tuple {
            src: a,
            dst: t.src,
            sport: p,
            dport: t.sport,
            udp: t.udp,
            v6: t.v6,
        }
    }

    fn add(
        tab: &mut ConnTable,
        t: Tuple,
        dest: u32,
        masq: bool,
        exp: u64,
        e: &Eps,
    ) -> Result<u32, TableFull> {
        let ho = if masq {
            Some(hash_key(&out_tuple(&t, e, dest), true))
        } else {
            None
        };
        tab.insert(
            NewConn {
                tuple: t,
                dest,
                rport: real_port(e.endpoint(dest).1, t.dport),
                expires: Timestamp(exp),
                state: 0,
                flags: 0,
            },
            hash_key(&t, false),
            ho,
        )
    }

    #[test]
    fn entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Conn>(), 64);
        assert_eq!(std::mem::size_of::<Bucket>(), 64);
    }

    #[test]
    fn both_directions_one_lookup_each() {
        let e = eps();
        let mut tab = ConnTable::new(16, Timestamp::ZERO);
        let t = client(1);
        let i = add(&mut tab, t, 0, true, 1000, &e).unwrap();
        assert_eq!(tab.find(hash_key(&t, false), &t, false, &e), Some(i));
        let o = out_tuple(&t, &e, 0);
        assert_eq!(tab.find(hash_key(&o, true), &o, true, &e), Some(i));
        // The inbound tuple does not answer an outbound lookup.
        assert_eq!(tab.find(hash_key(&t, true), &t, true, &e), None);
        // DR: no outbound key.
        let t2 = client(2);
        let j = add(&mut tab, t2, 1, false, 1000, &e).unwrap();
        let o2 = out_tuple(&t2, &e, 1);
        assert_eq!(tab.find(hash_key(&o2, true), &o2, true, &e), None);
        assert_eq!(tab.find(hash_key(&t2, false), &t2, false, &e), Some(j));
        // Port-0 real server: outbound port is the connection's vport.
        let t3 = client(3);
        let k = add(&mut tab, t3, 1, true, 1000, &e).unwrap();
        let o3 = out_tuple(&t3, &e, 1);
        assert_eq!(o3.sport, 80);
        assert_eq!(tab.find(hash_key(&o3, true), &o3, true, &e), Some(k));
        tab.remove(i, &e);
        assert_eq!(tab.find(hash_key(&t, false), &t, false, &e), None);
        assert_eq!(tab.find(hash_key(&o, true), &o, true, &e), None);
        assert_eq!(tab.len(), 2);
        let c = tab.get(k);
        assert_eq!(c.client(), IpAddr::V4(Ipv4Addr::from(0x0b00_0003)));
        assert_eq!(c.vip(), ip("192.168.1.100"));
        assert_eq!(c.proto(), Protocol::Tcp);
    }

    #[test]
    fn full_table_refuses_without_growing() {
        let e = eps();
        let mut tab = ConnTable::new(100, Timestamp::ZERO);
        let mem = tab.memory_bytes();
        for n in 0..100 {
            add(&mut tab, client(n), 0, true, 1000, &e).unwrap();
        }
        assert_eq!(
            add(&mut tab, client(1000), 0, true, 1000, &e),
            Err(TableFull)
        );
        assert_eq!(tab.len(), 100);
        assert_eq!(tab.memory_bytes(), mem);
        // Every entry still found.
        for n in 0..100 {
            let t = client(n);
            assert!(tab.find(hash_key(&t, false), &t, false, &e).is_some());
        }
    }

    #[test]
    fn wheel_expires_at_the_right_time() {
        let e = eps();
        let mut tab = ConnTable::new(64, Timestamp::ZERO);
        let a = add(&mut tab, client(1), 0, false, 3000, &e).unwrap();
        let b = add(&mut tab, client(2), 0, false, 200_000, &e).unwrap(); // beyond one wheel turn
        let c = add(&mut tab, client(3), 0, true, 5005, &e).unwrap();
        let mut budget = usize::MAX;
        assert!(tab.pop_expired(Timestamp(2999), &mut budget, &e).is_none());
        assert_eq!(
            tab.pop_expired(Timestamp(3000), &mut budget, &e)
                .map(|x| x.0),
            Some(a)
        );
        assert!(tab.pop_expired(Timestamp(5004), &mut budget, &e).is_none());
        assert!(tab.pop_expired(Timestamp(5009), &mut budget, &e).is_none());
        assert_eq!(
            tab.pop_expired(Timestamp(5010), &mut budget, &e)
                .map(|x| x.0),
            Some(c)
        );
        // Re-armed later: not expired at its old time.
        tab.set_expires(b, Timestamp(250_000));
        assert!(tab
            .pop_expired(Timestamp(249_990), &mut budget, &e)
            .is_none());
        assert_eq!(
            tab.pop_expired(Timestamp(250_000), &mut budget, &e)
                .map(|x| x.0),
            Some(b)
        );
        assert!(tab.is_empty());
    }

    #[test]
    fn earlier_expiry_relinks() {
        let e = eps();
        let mut tab = ConnTable::new(8, Timestamp::ZERO);
        let a = add(&mut tab, client(1), 0, false, 900_000, &e).unwrap();
        tab.set_expires(a, Timestamp(10_000));
        let mut budget = usize::MAX;
        assert_eq!(
            tab.pop_expired(Timestamp(10_000), &mut budget, &e)
                .map(|x| x.0),
            Some(a)
        );
    }

    #[test]
    fn budget_bounds_work() {
        let e = eps();
        let mut tab = ConnTable::new(1000, Timestamp::ZERO);
        for n in 0..1000 {
            add(&mut tab, client(n), 0, false, 1000, &e).unwrap();
        }
        let mut got = 0;
        let mut budget = 10;
        while tab.pop_expired(Timestamp(1000), &mut budget, &e).is_some() {
            got += 1;
        }
        assert!(got <= 10);
        let mut budget = usize::MAX;
        while tab.pop_expired(Timestamp(1000), &mut budget, &e).is_some() {
            got += 1;
        }
        assert_eq!(got, 1000);
        assert!(tab.is_empty());
    }

    #[test]
    fn ipv6_keys() {
        let e = Eps(vec![(addr16(ip("2001:db8::10")).0, 80)]);
        let mut tab = ConnTable::new(8, Timestamp::ZERO);
        let t = Tuple::new(
            Protocol::Udp,
            ip("2001:db8::1"),
            5353,
            ip("2001:db8::100"),
            53,
        );
        let i = add(&mut tab, t, 0, true, 1000, &e).unwrap();
        assert_eq!(tab.find(hash_key(&t, false), &t, false, &e), Some(i));
        let o = out_tuple(&t, &e, 0);
        assert_eq!(tab.find(hash_key(&o, true), &o, true, &e), Some(i));
        // Same tuple as TCP: no match.
        let tt = Tuple { udp: false, ..t };
        assert_eq!(tab.find(hash_key(&tt, false), &tt, false, &e), None);
        assert_eq!(tab.get(i).client(), ip("2001:db8::1"));
    }

    #[test]
    fn churn_keeps_index_consistent() {
        // Insert/remove many times in a small table: overflow counts must
        // return to zero and lookups stay exact.
        let e = eps();
        let mut tab = ConnTable::new(200, Timestamp::ZERO);
        let mut live: Vec<(u32, Tuple)> = Vec::new();
        let mut x: u64 = 12345;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if live.len() < 200 && (!x.is_multiple_of(3) || live.is_empty()) {
                let t = client(step);
                let i = add(&mut tab, t, 0, x.is_multiple_of(2), 1000, &e).unwrap();
                live.push((i, t));
            } else {
                let k = (x as usize / 3) % live.len();
                let (i, _) = live.swap_remove(k);
                tab.remove(i, &e);
            }
        }
        for (i, t) in &live {
            assert_eq!(tab.find(hash_key(t, false), t, false, &e), Some(*i));
        }
        for (i, _) in std::mem::take(&mut live) {
            tab.remove(i, &e);
        }
        assert!(tab.buckets.iter().all(|b| b.tags.iter().all(|&t| t == 0)));
    }

    #[test]
    fn provided_memory_works_like_heap_memory() {
        let e = eps();
        let l = ConnTable::layout(100);
        assert_eq!(l, ConnTable::new(100, Timestamp::ZERO).layout_now());
        // Garbage in the provided memory does not matter.
        let conns: &'static mut [Conn] = Box::leak(
            vec![
                Conn {
                    flags: 0xff,
                    next: 7,
                    ..EMPTY
                };
                l.conns
            ]
            .into_boxed_slice(),
        );
        let buckets: &'static mut [Bucket] = Box::leak(
            vec![
                Bucket {
                    tags: [9; SLOTS],
                    overflow: 3,
                    spare: 1,
                    idx: [5; SLOTS]
                };
                l.buckets + 3
            ]
            .into_boxed_slice(),
        );
        let mut tab = ConnTable::with_memory(conns, buckets, Timestamp::ZERO).unwrap();
        assert_eq!(tab.capacity(), 100);
        assert_eq!(tab.memory_bytes(), l.bytes() + WHEEL_SLOTS * 4);
        for n in 0..100 {
            add(&mut tab, client(n), 0, n % 2 == 0, 1000, &e).unwrap();
        }
        assert_eq!(
            add(&mut tab, client(100), 0, true, 1000, &e),
            Err(TableFull)
        );
        for n in 0..100 {
            let t = client(n);
            assert!(tab.find(hash_key(&t, false), &t, false, &e).is_some());
        }
        let mut budget = usize::MAX;
        let mut gone = 0;
        while tab.pop_expired(Timestamp(1000), &mut budget, &e).is_some() {
            gone += 1;
        }
        assert_eq!(gone, 100);
        assert!(tab.is_empty());
    }

    #[test]
    fn provided_memory_too_small_is_refused() {
        let l = ConnTable::layout(1000);
        let conns: &'static mut [Conn] = Box::leak(vec![EMPTY; l.conns].into_boxed_slice());
        let buckets: &'static mut [Bucket] =
            Box::leak(vec![EMPTY_BUCKET; l.buckets - 1].into_boxed_slice());
        assert!(ConnTable::with_memory(conns, buckets, Timestamp::ZERO).is_err());
        let none: &'static mut [Conn] = Box::leak(Vec::new().into_boxed_slice());
        let buckets: &'static mut [Bucket] = Box::leak(vec![EMPTY_BUCKET; 2].into_boxed_slice());
        assert!(ConnTable::with_memory(none, buckets, Timestamp::ZERO).is_err());
    }

    #[test]
    fn preload_never_panics() {
        let e = eps();
        let mut tab = ConnTable::new(4, Timestamp::ZERO);
        // Empty table, any hash.
        for h in [0u64, 1, u64::MAX, 0x1234_5678_9abc_def0] {
            tab.preload_bucket(h);
            assert_eq!(tab.hint(h), NO_HINT);
            tab.preload_entry(tab.hint(h));
        }
        assert!(tab.buckets.iter().all(|b| b.spare == 0));
        let t = client(1);
        let i = add(&mut tab, t, 0, true, 1000, &e).unwrap();
        let h = hash_key(&t, false);
        tab.preload_bucket(h);
        assert_eq!(tab.hint(h), i);
        tab.preload_entry(tab.hint(h));
        assert_eq!(tab.find_hinted(h, &t, false, &e, tab.hint(h)), Some(i));
        // A wrong or stale hint is only a guess.
        for bad in [NO_HINT, 3, OUT | i, u32::MAX - 1] {
            assert_eq!(tab.find_hinted(h, &t, false, &e, bad), Some(i));
        }
        let o = out_tuple(&t, &e, 0);
        assert_eq!(
            tab.find_hinted(hash_key(&o, true), &o, true, &e, i),
            Some(i)
        );
    }

    #[test]
    fn address_forms_round_trip() {
        for s in [
            "10.1.2.3",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "::",
        ] {
            let a = ip(s);
            let (x, v6) = addr16(a);
            assert_eq!(v6, a.is_ipv6());
            assert_eq!(ip_from16(x, v6), a);
        }
        // IPv4 is the v4-mapped IPv6 address.
        assert_eq!(
            addr16(ip("10.1.2.3")).0,
            u128::from(
                ip("::ffff:10.1.2.3")
                    .to_string()
                    .parse::<Ipv6Addr>()
                    .unwrap()
            )
        );
    }
}
