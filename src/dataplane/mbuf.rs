//! RAII packet buffers and fixed-size bursts of them.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

use super::Mempool;

/// Packets moved per rx/tx call.
pub const BURST_SIZE: usize = 32;

/// One packet buffer, owned: freed exactly once, when dropped, unless it
/// was handed back to DPDK by a transmit. Only the first segment's bytes are
/// exposed: rvs configures ports without scatter, so frames are contiguous.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<rte_mbuf>,
}

// SAFETY: an Mbuf is uniquely owned; moving it to another lcore moves the
// ownership (DPDK mbufs may be freed on any lcore).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Take a buffer from `pool`; `None` when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: pool is a live mempool; the result is null or a fresh mbuf we now own.
        NonNull::new(unsafe { dpdk_sys::rvs_pktmbuf_alloc(pool.as_ptr()) }).map(|raw| Mbuf { raw })
    }

    /// Build a buffer holding a copy of `bytes`; `None` when the pool is empty
    /// or the bytes do not fit.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(pool)?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Some(m)
    }

    /// Take ownership of a raw mbuf pointer.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or frees.
    pub unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Give up ownership (e.g. to a ring); the caller must free it later.
    pub fn into_raw(self) -> NonNull<rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    #[inline]
    fn mb(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf; shared access to its header.
        unsafe { self.raw.as_ref() }
    }

    /// Bytes in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.mb().data_len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the whole packet (all segments).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.mb().pkt_len as usize
    }

    /// The packet bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.mb();
        // SAFETY: buf_addr + data_off .. + data_len lies within the mbuf's
        // buffer, which we own for the lifetime of &self.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.mb();
        let (base, off, len) = (
            m.buf_addr as *mut u8,
            m.data_off as usize,
            m.data_len as usize,
        );
        // SAFETY: as in data(); &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(base.add(off), len) }
    }

    /// Grow the front by `n` bytes (into the headroom), e.g. for a tunnel
    /// header; returns the new front bytes, or `None` without enough headroom.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: we own the mbuf; prepend returns null when headroom is short.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_prepend(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: p points at n freshly claimed bytes inside our buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    /// Grow the back by `n` bytes; returns them, or `None` without tailroom.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: we own the mbuf; append returns null when tailroom is short.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_append(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: p points at n freshly claimed bytes inside our buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    /// Remove `n` bytes from the front (e.g. a decapsulated header).
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: we own the mbuf; adj fails (null) when n > data_len.
        !unsafe { dpdk_sys::rvs_pktmbuf_adj(self.raw.as_ptr(), n16) }.is_null()
    }

    /// Remove `n` bytes from the back.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: we own the mbuf; trim fails (-1) when n > data_len of the last segment.
        unsafe { dpdk_sys::rvs_pktmbuf_trim(self.raw.as_ptr(), n16) == 0 }
    }

    pub fn headroom(&self) -> usize {
        // SAFETY: read-only query on an owned mbuf.
        unsafe { dpdk_sys::rvs_pktmbuf_headroom(self.raw.as_ptr()) as usize }
    }

    pub fn tailroom(&self) -> usize {
        // SAFETY: read-only query on an owned mbuf.
        unsafe { dpdk_sys::rvs_pktmbuf_tailroom(self.raw.as_ptr()) as usize }
    }

    /// The port the packet arrived on.
    #[inline]
    pub fn in_port(&self) -> u16 {
        self.mb().port
    }

    /// Record the port a packet arrived on (before handing it to another
    /// lcore; not every PMD sets it).
    #[inline]
    pub fn set_in_port(&mut self, port: u16) {
        // SAFETY: we own the mbuf; writing a plain u16 header field.
        unsafe { self.raw.as_mut().port = port }
    }

    /// The NIC's RSS hash (valid when the port computed one).
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: reading a plain u32 member of the hash union.
        unsafe { self.mb().__bindgen_anon_2.hash.rss }
    }

    /// Hint the CPU to load the packet's first cache line.
    #[inline]
    pub fn prefetch(&self) {
        let m = self.mb();
        // SAFETY: prefetch has no architectural effect beyond the cache; the
        // address is inside our buffer.
        unsafe {
            dpdk_sys::rvs_prefetch0((m.buf_addr as *const u8).add(m.data_off as usize).cast())
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and it has not been freed or transmitted
        // (those paths forget it), so this is the one free.
        unsafe { dpdk_sys::rvs_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Up to [`BURST_SIZE`] owned mbufs, filled by rx and drained by tx without
/// allocating. Dropping a burst frees what it still holds.
pub struct Burst {
    slots: [MaybeUninit<Mbuf>; BURST_SIZE],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub fn new() -> Burst {
        Burst {
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Add a packet; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Remove and return the last packet.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot len was initialised and is now outside the live range.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// The packets, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first len slots are initialised; MaybeUninit<Mbuf> has
        // Mbuf's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast(), self.len) }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, with exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast(), self.len) }
    }

    /// Move every packet out, in order, leaving the burst empty. Packets the
    /// caller does not take are freed when the iterator is dropped.
    pub fn drain(&mut self) -> Drain<'_> {
        let end = std::mem::replace(&mut self.len, 0);
        Drain {
            slots: &mut self.slots,
            next: 0,
            end,
        }
    }

    /// Receive into the free part of the burst; returns how many arrived.
    #[inline]
    pub(crate) fn fill_from(&mut self, f: impl FnOnce(*mut *mut rte_mbuf, u16) -> u16) -> usize {
        let room = (BURST_SIZE - self.len) as u16;
        // Mbuf is repr(transparent) over NonNull<rte_mbuf>, so the slots can
        // receive raw pointers.
        let dst = self.slots[self.len..].as_mut_ptr().cast::<*mut rte_mbuf>();
        let n = f(dst, room) as usize;
        debug_assert!(n <= room as usize);
        self.len += n.min(room as usize);
        n
    }

    /// Hand the packets to `f` (a transmit), which returns how many it took;
    /// those are forgotten (DPDK owns them now), the rest stay, in order.
    #[inline]
    pub(crate) fn drain_into(&mut self, f: impl FnOnce(*mut *mut rte_mbuf, u16) -> u16) -> usize {
        if self.len == 0 {
            return 0;
        }
        let src = self.slots.as_mut_ptr().cast::<*mut rte_mbuf>();
        let sent = (f(src, self.len as u16) as usize).min(self.len);
        let rest = self.len - sent;
        // Slide the unsent ones to the front (ptr::copy handles overlap).
        // SAFETY: slots sent..len are initialised; moving them bitwise to
        // 0..rest keeps each owned exactly once.
        unsafe { std::ptr::copy(src.add(sent), src, rest) };
        self.len = rest;
        sent
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        drop(self.drain());
    }
}

/// Iterator of [`Burst::drain`]: each packet is read out exactly once.
pub struct Drain<'a> {
    slots: &'a mut [MaybeUninit<Mbuf>; BURST_SIZE],
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots next..end are initialised and each is read once
        // (the burst's len was already reset, so nothing else reads them).
        Some(unsafe { self.slots[i].assume_init_read() })
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

/// The packet code (`lb::forward`, `net`) is generic over this trait, so it
/// runs on mbufs here and on `VecBuf` in tests without an EAL.
impl crate::wire::buf::PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
    #[inline]
    fn headroom(&self) -> usize {
        Mbuf::headroom(self)
    }

    #[inline]
    fn prefetch(&self) {
        Mbuf::prefetch(self)
    }
}
