//! rvsd's control socket: accepts clients, reads one JSON request per line,
//! answers one line each, a thread per client. Bad input never stalls or
//! kills the daemon, and no set of clients can keep another out:
//!
//! - each request must arrive whole within a deadline, each chunk of an
//!   answer be taken within another, and a connection idle too long is
//!   closed ([`super::slots`] keeps the phases and deadlines);
//! - when every place is taken, the connection that has waited on its
//!   client the longest makes room for the newcomer, so trickling or idle
//!   clients cannot lock rvsadm out; what a client sent before it was
//!   accepted is read at once, so a connection its client already closed
//!   (a connect/close flood) takes no place, and one whose request is there
//!   cannot be pushed out before it is served;
//! - a line longer than the limit gets an error and the connection closes;
//! - requests are handled one at a time (the handler is behind a mutex) so
//!   the rules see a single writer; decoding and writing the answer happen
//!   outside it, and `list-connections` streams its entries after the lock
//!   is released ([`super::conn_stream`]).

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::conn_stream::write_connections;
use super::line::LineBuffer;
use super::proto::{decode_request, encode_response, Request, Response};
use super::server::{ConnIter, Handler};
use super::slots::{Admission, ConnId, Deadlines, Expiry, Phase, Slots};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line in bytes (a restore of many services is long).
    pub max_line: usize,
    /// Connections held at once; past that, the one that has waited on its
    /// client the longest is closed for the newcomer.
    pub max_clients: usize,
    pub deadlines: Deadlines,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            max_clients: 128,
            deadlines: Deadlines {
                idle: Duration::from_secs(10),
                request: Duration::from_secs(5),
                write: Duration::from_secs(5),
            },
        }
    }
}

/// Counters of what the listener refused or closed, for `--counters`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicUsize,
    /// Refused: every place held a request in progress, or no thread.
    pub refused_busy: AtomicUsize,
    /// Closed to make room for a newcomer.
    pub evicted: AtomicUsize,
    pub too_long: AtomicUsize,
    pub idle_closed: AtomicUsize,
    /// Closed because a request did not arrive, or an answer was not taken,
    /// in time.
    pub slow_closed: AtomicUsize,
}

/// Bytes an answer is sent in; each must be taken within the write
/// deadline.
const CHUNK: usize = 64 << 10;

/// Client threads that may exist at once, as a multiple of the places:
/// the threads of evicted or closed connections are still on their way
/// out. Past it, accepting waits for some to end (connections wait in the
/// backlog meanwhile), and only refuses after [`THREAD_WAIT`].
const THREADS_PER_PLACE: usize = 4;
const THREAD_WAIT: Duration = Duration::from_secs(1);

struct Shared<H> {
    handler: Arc<Mutex<H>>,
    slots: Mutex<Slots<UnixStream>>,
    limits: Limits,
    stats: Arc<ListenerStats>,
    threads: AtomicUsize,
}

/// A poisoned lock only means a thread panicked while holding it; the
/// state is still the best there is, so keep serving with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<H> Shared<H> {
    fn slots(&self) -> MutexGuard<'_, Slots<UnixStream>> {
        lock(&self.slots)
    }
    fn count(&self, c: impl Fn(&ListenerStats) -> &AtomicUsize) {
        c(&self.stats).fetch_add(1, Ordering::Relaxed);
    }
}

/// Serve `listener` until `stop` is set, then close every client's
/// connection. An error means the socket cannot accept any more.
pub fn serve<H>(
    listener: UnixListener,
    handler: Arc<Mutex<H>>,
    limits: Limits,
    stop: Arc<AtomicBool>,
    stats: Arc<ListenerStats>,
) -> io::Result<()>
where
    H: Handler + Send + 'static,
{
    listener.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        handler,
        slots: Mutex::new(Slots::new(limits.max_clients, limits.deadlines)),
        limits,
        stats,
        threads: AtomicUsize::new(0),
    });
    let result = accept_loop(&listener, &shared, &stop);
    // Blocked reads and writes return at once; threads in the handler
    // finish their request and find their connection gone.
    for s in shared.slots().drain() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    result
}

fn accept_loop<H>(listener: &UnixListener, sh: &Arc<Shared<H>>, stop: &AtomicBool) -> io::Result<()>
where
    H: Handler + Send + 'static,
{
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) if transient(&e) => {
                // Out of descriptors or memory (a flood, say): the
                // connection waits in the backlog; try again shortly.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        sh.count(|s| &s.accepted);
        let Some(first) = first_bytes(&stream) else {
            continue; // closed already: a connect/close loop, say
        };
        let phase = if first.contains(&b'\n') {
            // Its request is here: nobody may push it out before its
            // thread runs.
            Phase::Queued
        } else if first.is_empty() {
            Phase::Idle
        } else {
            Phase::Reading
        };
        if !threads_to_spare(sh) {
            sh.count(|s| &s.refused_busy);
            refuse(stream, &sh.limits);
            continue;
        }
        let Ok(handle) = stream.try_clone() else {
            sh.count(|s| &s.refused_busy);
            continue;
        };
        let admission = sh.slots().admit(Instant::now(), phase, handle);
        let id = match admission {
            Admission::Admitted(id) => id,
            Admission::Evicted { id, victim, phase } => {
                sh.count(|s| &s.evicted);
                evict(victim, phase, &sh.limits);
                id
            }
            Admission::Refused(_) => {
                sh.count(|s| &s.refused_busy);
                refuse(stream, &sh.limits);
                continue;
            }
        };
        sh.threads.fetch_add(1, Ordering::Relaxed);
        let s2 = sh.clone();
        let spawned = thread::Builder::new()
            .name("rvsd-ctl".into())
            .spawn(move || client(stream, first, id, &s2));
        if spawned.is_err() {
            // Out of threads: the stream went with the closure that never
            // ran, which closed it.
            sh.threads.fetch_sub(1, Ordering::Relaxed);
            sh.slots().leave(id);
            sh.count(|s| &s.refused_busy);
        }
    }
    Ok(())
}

/// What the client sent before it was accepted, read without waiting;
/// `None` if it has closed already (or the socket failed). Leaves the
/// socket blocking.
fn first_bytes(stream: &UnixStream) -> Option<Vec<u8>> {
    stream.set_nonblocking(true).ok()?;
    let mut buf = vec![0u8; 4096];
    let got = (&*stream).read(&mut buf);
    stream.set_nonblocking(false).ok()?;
    match got {
        Ok(0) => None,
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(e) if retry(&e) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Waits (a connect/close flood outruns the threads' exits for a moment)
/// until there is a thread to spare; false if none came in time.
fn threads_to_spare<H>(sh: &Shared<H>) -> bool {
    let cap = sh.limits.max_clients.saturating_mul(THREADS_PER_PLACE);
    let t0 = Instant::now();
    while sh.threads.load(Ordering::Relaxed) >= cap {
        if t0.elapsed() >= THREAD_WAIT {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// accept(2) errors that say nothing about the listening socket.
fn transient(e: &io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOBUFS: i32 = 105;
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
    ) || matches!(e.raw_os_error(), Some(ENOMEM | ENFILE | EMFILE | ENOBUFS))
}

/// One short line to a client about to be closed; never waits long for it.
fn last_word(stream: &UnixStream, msg: String) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(50)));
    let mut s = stream;
    let _ = writeln!(s, "{}", encode_response(&Response::error(msg)));
}

fn refuse(stream: UnixStream, limits: &Limits) {
    last_word(
        &stream,
        format!(
            "rvsd: too many control clients (limit {}), try again",
            limits.max_clients
        ),
    );
}

/// Closes a connection chosen to make room. A client between requests or
/// in the middle of one is told why; one in the middle of an answer would
/// read the message as part of it, so it only sees the connection close.
fn evict(victim: UnixStream, phase: Phase, limits: &Limits) {
    if matches!(phase, Phase::Idle | Phase::Reading) {
        last_word(
            &victim,
            format!(
                "rvsd: connection closed to make room for another client \
                 (idle or slow, with all {} places taken)",
                limits.max_clients
            ),
        );
    }
    let _ = victim.shutdown(std::net::Shutdown::Both);
}

/// Frees the place and the thread count however the client thread ends.
struct Leave<'a, H> {
    sh: &'a Shared<H>,
    id: ConnId,
}

impl<H> Drop for Leave<'_, H> {
    fn drop(&mut self) {
        self.sh.slots().leave(self.id);
        self.sh.threads.fetch_sub(1, Ordering::Relaxed);
    }
}

fn client<H: Handler>(stream: UnixStream, first: Vec<u8>, id: ConnId, sh: &Shared<H>) {
    let _leave = Leave { sh, id };
    let _ = serve_client(&stream, first, id, sh);
}

fn serve_client<H: Handler>(
    stream: &UnixStream,
    first: Vec<u8>,
    id: ConnId,
    sh: &Shared<H>,
) -> io::Result<()> {
    let mut lines = LineBuffer::new(sh.limits.max_line);
    lines.push(&first);
    drop(first);
    let mut buf = vec![0u8; CHUNK];
    loop {
        while let Some(line) = lines.next_line() {
            let Ok(line) = line else {
                sh.count(|s| &s.too_long);
                let msg = format!(
                    "rvsd: request line longer than {} bytes",
                    sh.limits.max_line
                );
                answer(
                    stream,
                    id,
                    sh,
                    Reply::Line(encode_response(&Response::error(msg))),
                )?;
                return Ok(());
            };
            let Ok(text) = std::str::from_utf8(&line) else {
                let r = Response::error("rvsd: request is not UTF-8");
                answer(stream, id, sh, Reply::Line(encode_response(&r)))?;
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                // No request after all; idle since the last answer.
                if !sh.slots().enter(id, Phase::Idle, Instant::now()) {
                    return Ok(());
                }
                continue;
            }
            let reply = dispatch(id, sh, text)?;
            answer(stream, id, sh, reply)?;
        }
        {
            let mut slots = sh.slots();
            if lines.partial() && slots.phase(id) == Some(Phase::Idle) {
                slots.enter(id, Phase::Reading, Instant::now());
            }
        }
        let Ok(deadline) = sh.slots().deadline(id) else {
            return Ok(()); // evicted
        };
        let (deadline, why) = deadline.unwrap_or((Instant::now(), Expiry::Slow));
        let now = Instant::now();
        if now >= deadline {
            match why {
                Expiry::Idle => sh.count(|s| &s.idle_closed),
                Expiry::Slow => sh.count(|s| &s.slow_closed),
            }
            return Ok(());
        }
        stream.set_read_timeout(Some(deadline - now))?;
        match (&*stream).read(&mut buf) {
            Ok(0) => return Ok(()), // closed by the client, or evicted
            Ok(n) => lines.push(&buf[..n]),
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// An answer ready to send: one encoded line, or connections to stream.
enum Reply {
    Line(String),
    Connections(ConnIter),
}

/// Decodes outside the handler's lock (a long restore takes a while), then
/// hands the request to the handler.
fn dispatch<H: Handler>(id: ConnId, sh: &Shared<H>, text: &str) -> io::Result<Reply> {
    let gone = || io::Error::new(io::ErrorKind::ConnectionAborted, "evicted");
    if !sh.slots().enter(id, Phase::Queued, Instant::now()) {
        return Err(gone());
    }
    let request = decode_request(text);
    let mut h = lock(&sh.handler);
    if !sh.slots().enter(id, Phase::Handling, Instant::now()) {
        return Err(gone());
    }
    Ok(match request {
        Err(e) => Reply::Line(encode_response(&Response::error(format!("rvsd: {e}")))),
        Ok(Request::ListConnections) => match h.connections() {
            Ok(entries) => Reply::Connections(entries),
            Err(r) => Reply::Line(encode_response(&r)),
        },
        Ok(request) => Reply::Line(encode_response(&h.handle(request))),
    })
}

/// Sends one answer line; the connection is idle again afterwards.
fn answer<H>(stream: &UnixStream, id: ConnId, sh: &Shared<H>, reply: Reply) -> io::Result<()> {
    let mut w = ChunkWriter {
        stream,
        id,
        sh,
        buf: Vec::with_capacity(CHUNK),
    };
    match reply {
        Reply::Line(line) => w.write_all(line.as_bytes())?,
        Reply::Connections(entries) => {
            write_connections(&mut w, entries)?;
        }
    }
    w.write_all(b"\n")?;
    w.flush()?;
    if !sh.slots().enter(id, Phase::Idle, Instant::now()) {
        return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "evicted"));
    }
    Ok(())
}

/// Sends an answer in chunks, each within the write deadline, so that a
/// client that stops reading is dropped while one that reads a long
/// listing steadily is not.
struct ChunkWriter<'a, H> {
    stream: &'a UnixStream,
    id: ConnId,
    sh: &'a Shared<H>,
    buf: Vec<u8>,
}

impl<H> ChunkWriter<'_, H> {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        if !self.sh.slots().enter(self.id, Phase::Writing, start) {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "evicted"));
        }
        let deadline = start + self.sh.limits.deadlines.write;
        let mut off = 0;
        while off < self.buf.len() {
            let now = Instant::now();
            if now >= deadline {
                self.sh.count(|s| &s.slow_closed);
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_write_timeout(Some(deadline - now))?;
            match (&*self.stream).write(&self.buf[off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => off += n,
                Err(e) if retry(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        Ok(())
    }
}

impl<H> Write for ChunkWriter<'_, H> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests;
