//! rvsd's control socket: accepts clients, reads one JSON request per line,
//! answers one line each. Bad input never stalls or kills the daemon: a
//! line longer than the limit gets an error and the connection is closed, a
//! client that sends nothing is dropped after the idle timeout, clients over
//! the limit are told so and closed, and requests are served one at a time
//! (the handler is behind a mutex) so the rules see a single writer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::proto::{encode_response, Response};
use super::server::{handle_line, Handler};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line in bytes (a restore of many services is long).
    pub max_line: usize,
    /// A client silent this long is disconnected.
    pub idle_timeout: Duration,
    /// Clients served at once; more are refused with an error line.
    pub max_clients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 << 20,
            idle_timeout: Duration::from_secs(30),
            max_clients: 128,
        }
    }
}

/// Counters of what the listener refused, for `--counters`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicUsize,
    pub refused_busy: AtomicUsize,
    pub too_long: AtomicUsize,
    pub idle_closed: AtomicUsize,
}

/// Serve `listener` until `stop` is set. Returns when the accept loop ends;
/// client threads finish their current request and exit on their own.
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
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        if active.load(Ordering::Relaxed) >= limits.max_clients {
            stats.refused_busy.fetch_add(1, Ordering::Relaxed);
            refuse(stream, &limits);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (h, a, st, sp) = (handler.clone(), active.clone(), stats.clone(), stop.clone());
        let spawned = thread::Builder::new()
            .name("rvsd-ctl".into())
            .spawn(move || {
                let _ = client(stream, &h, &limits, &st, &sp);
                a.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            // Out of threads: the stream went with the closure that never
            // ran, which closed it; undo the count.
            active.fetch_sub(1, Ordering::Relaxed);
            stats.refused_busy.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn refuse(stream: UnixStream, limits: &Limits) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let msg = format!(
        "rvsd: too many control clients (limit {}), try again",
        limits.max_clients
    );
    let mut s = stream;
    let _ = writeln!(s, "{}", encode_response(&Response::error(msg)));
}

fn client<H: Handler>(
    stream: UnixStream,
    handler: &Mutex<H>,
    limits: &Limits,
    stats: &ListenerStats,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(limits.idle_timeout))?;
    stream.set_write_timeout(Some(limits.idle_timeout))?;
    let mut writer = stream.try_clone()?;
    // Read at most max_line + 1 bytes per line, so an endless line is cut.
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        line.clear();
        let n = match (&mut reader)
            .take(limits.max_line as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(()); // client closed
        }
        if line.last() != Some(&b'\n') && line.len() > limits.max_line {
            stats.too_long.fetch_add(1, Ordering::Relaxed);
            let msg = format!("rvsd: request line longer than {} bytes", limits.max_line);
            writeln!(writer, "{}", encode_response(&Response::error(msg)))?;
            return Ok(());
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(_) => {
                let r = Response::error("rvsd: request is not UTF-8");
                writeln!(writer, "{}", encode_response(&r))?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let out = {
            // A panic in a handler poisons the mutex; keep serving with the
            // state as it is rather than refusing every later request.
            let mut h = handler.lock().unwrap_or_else(|p| p.into_inner());
            handle_line(&mut *h, text)
        };
        writeln!(writer, "{out}")?;
        writer.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::Request;
    use std::time::Instant;

    struct Echo;
    impl Handler for Echo {
        fn handle(&mut self, request: Request) -> Response {
            match request {
                Request::Clear => Response::Ok,
                _ => Response::error("unexpected"),
            }
        }
    }

    fn start(
        limits: Limits,
    ) -> (
        std::path::PathBuf,
        Arc<AtomicBool>,
        Arc<ListenerStats>,
        thread::JoinHandle<()>,
    ) {
        let dir = std::env::temp_dir().join(format!(
            "rvs-listener-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let listener = super::super::server::bind(&path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ListenerStats::default());
        let (s2, st2) = (stop.clone(), stats.clone());
        let h = thread::spawn(move || {
            serve(listener, Arc::new(Mutex::new(Echo)), limits, s2, st2).unwrap();
        });
        (path, stop, stats, h)
    }

    fn ask(path: &std::path::Path, line: &[u8]) -> String {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(line).unwrap();
        let mut out = String::new();
        BufReader::new(s).read_line(&mut out).unwrap();
        out
    }

    #[test]
    fn bad_input_gets_errors_and_the_server_keeps_serving() {
        let limits = Limits {
            max_line: 1024,
            idle_timeout: Duration::from_millis(300),
            max_clients: 8,
        };
        let (path, stop, stats, h) = start(limits);
        let ok = ask(&path, b"{\"v\":1,\"op\":\"clear\"}\n");
        assert!(ok.contains("\"ok\""), "{ok}");
        let bad = ask(&path, b"{not json\n");
        assert!(bad.contains("\"error\""), "{bad}");
        let unknown = ask(&path, b"{\"v\":1,\"op\":\"explode\"}\n");
        assert!(unknown.contains("\"error\""), "{unknown}");
        let long = ask(&path, &vec![b'x'; 5000]);
        assert!(long.contains("longer than 1024 bytes"), "{long}");
        let utf = ask(&path, b"\xff\xfe\n");
        assert!(utf.contains("not UTF-8"), "{utf}");

        // A client that connects and never sends is dropped after the idle
        // timeout, without holding anyone else up meanwhile.
        let silent = UnixStream::connect(&path).unwrap();
        let t = Instant::now();
        assert!(ask(&path, b"{\"v\":1,\"op\":\"clear\"}\n").contains("ok"));
        assert!(t.elapsed() < Duration::from_millis(250));
        let mut buf = [0u8; 1];
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!((&silent).read(&mut buf).unwrap(), 0, "closed by the server");
        assert!(stats.too_long.load(Ordering::Relaxed) >= 1);
        assert!(stats.idle_closed.load(Ordering::Relaxed) >= 1);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }

    #[test]
    fn a_hundred_clients_at_once() {
        let limits = Limits {
            max_clients: 64,
            ..Limits::default()
        };
        let (path, stop, stats, h) = start(limits);
        // 100 clients connect and hold their connections; 64 are served, the
        // rest are told the daemon is busy. Nobody hangs.
        let conns: Vec<UnixStream> = (0..100)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        let mut answered = 0;
        let mut busy = 0;
        for mut c in conns {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(b"{\"v\":1,\"op\":\"clear\"}\n");
            let mut out = String::new();
            let _ = BufReader::new(&c).read_line(&mut out);
            if out.contains("\"ok\"") {
                answered += 1;
            } else if out.contains("too many control clients") {
                busy += 1;
            }
        }
        assert_eq!(answered + busy, 100);
        assert!(answered >= 64, "{answered}");
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 100);
        stop.store(true, Ordering::Relaxed);
        h.join().unwrap();
    }
}
