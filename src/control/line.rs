//! Request lines out of whatever pieces a client's bytes arrive in
//! (sans-IO: the listener pushes what it read, takes whole lines out).

/// A line that would exceed the limit; the connection cannot resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// Buffered bytes of a client, cut into lines at `\n`.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// Bytes before this were handed out already.
    start: usize,
    /// Bytes from `start` up to this hold no newline.
    scanned: usize,
    max_line: usize,
}

impl LineBuffer {
    /// Lines longer than `max_line` bytes (without the newline) are refused.
    pub fn new(max_line: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
        }
    }

    /// Appends bytes as read. The buffer holds at most one line past the
    /// limit before [`LineBuffer::next_line`] refuses it, so it is bounded
    /// by `max_line` plus one read.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, without its `\n` (a `\r` before it stays);
    /// `Err(TooLong)` once the pending line exceeds the limit, with or
    /// without its newline.
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, TooLong>> {
        let pending = &self.buf[self.scanned..];
        match pending.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                if end - self.start > self.max_line {
                    return Some(Err(TooLong));
                }
                let line = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                self.scanned = self.start;
                Some(Ok(line))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() - self.start > self.max_line {
                    Some(Err(TooLong))
                } else {
                    None
                }
            }
        }
    }

    /// Bytes of an unfinished line are waiting: a request has begun.
    pub fn partial(&self) -> bool {
        self.buf.len() > self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(b: &mut LineBuffer) -> Vec<Result<String, TooLong>> {
        std::iter::from_fn(|| b.next_line())
            .map(|l| l.map(|v| String::from_utf8(v).unwrap()))
            .take(10)
            .collect()
    }

    #[test]
    fn lines_across_pieces() {
        let mut b = LineBuffer::new(100);
        assert!(!b.partial());
        b.push(b"ab");
        assert!(b.partial());
        assert!(lines(&mut b).is_empty());
        b.push(b"c\n\nde");
        assert_eq!(lines(&mut b), vec![Ok("abc".into()), Ok("".into())]);
        assert!(b.partial());
        b.push(b"f\r\n");
        assert_eq!(lines(&mut b), vec![Ok("def\r".into())]);
        assert!(!b.partial());
        // One byte at a time.
        for &c in b"{\"op\":1}\nx" {
            b.push(&[c]);
        }
        assert_eq!(lines(&mut b), vec![Ok("{\"op\":1}".into())]);
        assert!(b.partial());
    }

    #[test]
    fn the_limit_holds_with_and_without_a_newline() {
        let mut b = LineBuffer::new(4);
        b.push(b"1234\n12345\n");
        assert_eq!(lines(&mut b)[..2], [Ok("1234".into()), Err(TooLong)]);
        let mut b = LineBuffer::new(4);
        b.push(b"123");
        assert!(lines(&mut b).is_empty());
        b.push(b"45");
        assert_eq!(lines(&mut b)[0], Err(TooLong));
    }

    #[test]
    fn memory_stays_bounded_over_many_lines() {
        let mut b = LineBuffer::new(64);
        for i in 0..100_000 {
            b.push(format!("line {i}\n").as_bytes());
            assert_eq!(b.next_line(), Some(Ok(format!("line {i}").into_bytes())));
        }
        assert!(b.buf.capacity() < 1024, "{}", b.buf.capacity());
    }
}
