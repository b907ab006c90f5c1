use std::fmt;

/// A failed DPDK call: what rvs was doing and DPDK's errno text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkError {
    pub what: String,
    pub errno: i32,
}

pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    pub fn new(what: impl Into<String>, errno: i32) -> Self {
        DpdkError {
            what: what.into(),
            errno: errno.abs(),
        }
    }

    /// An error carrying the calling lcore's `rte_errno`.
    pub fn last(what: impl Into<String>) -> Self {
        // SAFETY: reads the per-thread rte_errno variable.
        let errno = unsafe { dpdk_sys::rvs_errno() };
        Self::new(what, errno)
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            return write!(f, "{}", self.what);
        }
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string, valid until the next call on this thread.
        let p = unsafe { dpdk_sys::rte_strerror(self.errno) };
        let msg = if p.is_null() {
            String::from("unknown error")
        } else {
            // SAFETY: non-null NUL-terminated string (see above), copied at once.
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        };
        write!(f, "{}: {} (errno {})", self.what, msg, self.errno)
    }
}

impl std::error::Error for DpdkError {}
