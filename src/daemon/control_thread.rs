//! rvsd's control thread: the socket's listener serving the rules handler,
//! and what the main thread needs to know of it (did it fail?) and do with
//! it (stop it). A control thread that fails leaves a daemon nobody can
//! configure, so the main loop stops rvsd when it does.

use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::control::listener::{self, Limits, ListenerStats};
use crate::control::server::{Handler, SocketFile};

pub(super) struct ControlThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
    /// Removes the socket file when rvsd is done with it.
    _file: SocketFile,
}

impl ControlThread {
    /// Serves `listener` on a thread of its own.
    pub fn start<H>(
        listener: UnixListener,
        file: SocketFile,
        handler: Arc<Mutex<H>>,
        stats: Arc<ListenerStats>,
        limits: Limits,
    ) -> Result<ControlThread, String>
    where
        H: Handler + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let path = file.path().display().to_string();
        let thread = std::thread::Builder::new()
            .name("rvsd-control".into())
            .spawn(move || {
                listener::serve(listener, handler, limits, s, stats)
                    .map_err(|e| format!("control socket {path}: {e}"))
            })
            .map_err(|e| format!("control thread: {e}"))?;
        Ok(ControlThread {
            stop,
            thread: Some(thread),
            _file: file,
        })
    }

    /// True once the thread has ended, which only an error makes it do
    /// before [`ControlThread::stop`].
    pub fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops serving, closes every client, and removes the socket file;
    /// the error that ended the thread, if one did.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the control thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for ControlThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
