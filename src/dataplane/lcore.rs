//! Running closures on EAL worker lcores (each pinned to its core by the
//! EAL), with panics caught at the entry so they never unwind into C.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use super::eal::EalRef;
use super::{DpdkError, Eal, LcoreId, Result};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How a worker ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Returned,
    /// The closure panicked; the message, when it was a string.
    Panicked(String),
}

struct Slot {
    job: Option<Job>,
    exit: Arc<Mutex<Option<Exit>>>,
}

/// A launched worker; [`LaunchHandle::join`] waits for it, and so does
/// dropping the handle: the EAL (which the handle keeps) is never cleaned up
/// under a running lcore.
pub struct LaunchHandle {
    lcore: LcoreId,
    exit: Arc<Mutex<Option<Exit>>>,
    joined: bool,
    _eal: EalRef,
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Slot> leaked by launch(), handed to exactly one
    // lcore; we take it back here once.
    let mut slot = unsafe { Box::from_raw(arg.cast::<Slot>()) };
    let job = slot.job.take();
    let result = catch_unwind(AssertUnwindSafe(move || {
        if let Some(job) = job {
            job();
        }
    }));
    let exit = match result {
        Ok(()) => Exit::Returned,
        Err(e) => Exit::Panicked(
            e.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into()),
        ),
    };
    let code = if exit == Exit::Returned { 0 } else { -1 };
    if let Ok(mut g) = slot.exit.lock() {
        *g = Some(exit);
    }
    code
}

/// Run `f` on worker lcore `lcore` (which must be idle).
pub fn launch<F>(eal: &Eal, lcore: LcoreId, f: F) -> Result<LaunchHandle>
where
    F: FnOnce() + Send + 'static,
{
    let exit = Arc::new(Mutex::new(None));
    let slot = Box::new(Slot {
        job: Some(Box::new(f)),
        exit: exit.clone(),
    });
    let arg = Box::into_raw(slot).cast::<c_void>();
    // SAFETY: the EAL is initialised (&Eal); trampoline matches
    // lcore_function_t; arg is a leaked Box that the trampoline reclaims. On
    // failure we reclaim it here instead.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
    if ret != 0 {
        // SAFETY: the launch failed, so no lcore received arg.
        drop(unsafe { Box::from_raw(arg.cast::<Slot>()) });
        return Err(DpdkError::new(
            format!("rte_eal_remote_launch on {lcore}"),
            ret,
        ));
    }
    Ok(LaunchHandle {
        lcore,
        exit,
        joined: false,
        _eal: eal.keep(),
    })
}

impl LaunchHandle {
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Block until the worker returns.
    pub fn join(mut self) -> Exit {
        self.wait();
        self.exit
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or(Exit::Panicked("worker left no exit status".into()))
    }

    fn wait(&mut self) {
        if !self.joined {
            self.joined = true;
            // SAFETY: waits for the lcore we launched, on the EAL _eal keeps
            // alive; no memory is passed.
            unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore.0) };
        }
    }
}

impl Drop for LaunchHandle {
    fn drop(&mut self) {
        self.wait();
    }
}
