//! A packet buffer with headroom, as the rewrites see it.
//!
//! [`PacketBuf`] is the part of a DPDK mbuf the forwarding code needs: one
//! contiguous segment (`data`) inside a larger buffer, which can grow at the
//! front into the headroom (tunnel headers) or at the back into the
//! tailroom, and shrink at either end. The dataplane's `Mbuf` implements it;
//! [`VecBuf`] is the same thing over a `Vec`, for tests, the `simulate` mode
//! and the fuzzers, so packet code generic over `PacketBuf` runs without an
//! EAL.
//!
//! Only single-segment packets are described: `data()` is the whole packet.
//! A caller holding a chained mbuf must linearize it first.

/// A single-segment packet buffer with head- and tailroom (mbuf semantics).
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the front by `n` bytes taken from the headroom and returns them
    /// (their contents are unspecified); `None`, unchanged, without room.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Grows the back by `n` bytes taken from the tailroom and returns them
    /// (contents unspecified); `None`, unchanged, without room.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false, unchanged, if there are fewer.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the back; false, unchanged, if there are fewer.
    fn trim(&mut self, n: usize) -> bool;
    /// Free bytes before the data.
    fn headroom(&self) -> usize;
    /// Start loading the packet's first bytes into the cache (a hint; the
    /// burst path asks for every frame before it parses any).
    #[inline]
    fn prefetch(&self) {}

    /// Packet length.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// DPDK's default mbuf headroom (`RTE_PKTMBUF_HEADROOM`).
pub const DEFAULT_HEADROOM: usize = 128;
/// DPDK's default mbuf data room (`RTE_MBUF_DEFAULT_DATAROOM`), headroom
/// included.
pub const DEFAULT_DATAROOM: usize = 2048 + DEFAULT_HEADROOM;

/// A [`PacketBuf`] over a `Vec<u8>` of fixed size, laid out like an mbuf:
/// `buf[off..off + len]` is the packet, `buf[..off]` the headroom and
/// `buf[off + len..]` the tailroom. The size never changes after
/// construction, so growing fails exactly when an mbuf of the same geometry
/// would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    buf: Vec<u8>,
    off: usize,
    len: usize,
}

impl VecBuf {
    /// An empty packet in a buffer of `size` bytes with `headroom` bytes
    /// before the data (clamped to `size`).
    pub fn new(size: usize, headroom: usize) -> Self {
        VecBuf {
            buf: vec![0; size],
            off: headroom.min(size),
            len: 0,
        }
    }

    /// `frame` with `headroom` bytes before it and `tailroom` after.
    pub fn with_frame(frame: &[u8], headroom: usize, tailroom: usize) -> Self {
        let mut b = VecBuf::new(headroom + frame.len() + tailroom, headroom);
        b.len = frame.len();
        b.buf[headroom..headroom + frame.len()].copy_from_slice(frame);
        b
    }

    /// `frame` in a default-sized mbuf (128 bytes of headroom, 2048 of data
    /// room), or larger if the frame does not fit.
    pub fn from_frame(frame: &[u8]) -> Self {
        let tail = DEFAULT_DATAROOM.saturating_sub(DEFAULT_HEADROOM + frame.len());
        VecBuf::with_frame(frame, DEFAULT_HEADROOM, tail)
    }

    /// Replaces the packet with `frame` (the data starting `headroom` bytes
    /// into the buffer), without reallocating if it fits. False, unchanged,
    /// if it does not.
    pub fn reset(&mut self, frame: &[u8], headroom: usize) -> bool {
        let Some(end) = headroom.checked_add(frame.len()) else {
            return false;
        };
        let Some(dst) = self.buf.get_mut(headroom..end) else {
            return false;
        };
        dst.copy_from_slice(frame);
        self.off = headroom;
        self.len = frame.len();
        true
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.off - self.len
    }

    /// Size of the whole buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The packet bytes as a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl PacketBuf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.len]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.off..self.off + self.len]
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.off {
            return None;
        }
        self.off -= n;
        self.len += n;
        Some(&mut self.buf[self.off..self.off + n])
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let end = self.off + self.len;
        self.len += n;
        Some(&mut self.buf[end..end + n])
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.off += n;
        self.len -= n;
        true
    }

    fn trim(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.len -= n;
        true
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry() {
        let mut b = VecBuf::with_frame(&[1, 2, 3, 4], 4, 2);
        assert_eq!(
            (b.headroom(), b.len(), b.tailroom(), b.capacity()),
            (4, 4, 2, 10)
        );
        assert_eq!(b.data(), &[1, 2, 3, 4]);

        let front = b.prepend(3).unwrap();
        assert_eq!(front.len(), 3);
        front.copy_from_slice(&[9, 9, 9]);
        assert_eq!(b.data(), &[9, 9, 9, 1, 2, 3, 4]);
        assert_eq!(b.headroom(), 1);
        assert!(b.prepend(2).is_none());
        assert_eq!(b.len(), 7);

        b.append(2).unwrap().copy_from_slice(&[7, 8]);
        assert_eq!(b.data(), &[9, 9, 9, 1, 2, 3, 4, 7, 8]);
        assert!(b.append(1).is_none());
        assert_eq!(b.tailroom(), 0);

        assert!(b.adj(3));
        assert!(b.trim(2));
        assert_eq!(b.data(), &[1, 2, 3, 4]);
        assert!(!b.adj(5) && !b.trim(5));
        assert_eq!(b.data(), &[1, 2, 3, 4]);
        assert!(b.trim(4) && b.is_empty());
        assert_eq!((b.headroom(), b.tailroom()), (4, 6));
        b.data_mut();
    }

    #[test]
    fn default_and_reset() {
        let b = VecBuf::from_frame(&[0xaa; 60]);
        assert_eq!(b.headroom(), DEFAULT_HEADROOM);
        assert_eq!(b.capacity(), DEFAULT_DATAROOM);
        assert_eq!(b.to_vec(), vec![0xaa; 60]);
        // A frame bigger than the data room still fits.
        let big = VecBuf::from_frame(&[1; 3000]);
        assert_eq!((big.len(), big.tailroom()), (3000, 0));

        let mut b = VecBuf::new(16, 100);
        assert_eq!((b.headroom(), b.len()), (16, 0));
        assert!(b.reset(&[5; 8], 8));
        assert_eq!((b.headroom(), b.data()), (8, &[5u8; 8][..]));
        assert!(!b.reset(&[5; 8], 9));
        assert!(!b.reset(&[5; 8], usize::MAX));
        assert_eq!(b.data(), &[5; 8]);
    }
}
