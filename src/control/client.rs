//! A blocking unix-socket client for the control protocol: one request line
//! out, one response line back, with a timeout on every read and write.
//! Connection listings are decoded as they arrive
//! ([`Client::list_connections`]).

use super::conn_stream::{read_connections, Listing, ReadError};
use super::proto::{decode_response, encode_request, ConnEntry, Request, Response};
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where rvsd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";

/// Environment variable overriding [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "RVS_SOCK";

/// Default timeout for connecting, sending and waiting for the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket path to use: `explicit` if given, else `$RVS_SOCK`, else
/// [`DEFAULT_SOCKET`].
pub fn socket_path(explicit: Option<&Path>, env: Option<&str>) -> PathBuf {
    match (explicit, env) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(e)) if !e.is_empty() => PathBuf::from(e),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// What can go wrong talking to rvsd.
#[derive(Debug)]
pub enum ClientError {
    /// No socket file or nobody listening.
    NotRunning(PathBuf),
    /// Connecting failed for another reason (e.g. permissions).
    Connect(PathBuf, io::Error),
    /// Sending or receiving failed (including timeouts).
    Io(PathBuf, io::Error),
    /// The daemon closed the connection without answering.
    Closed(PathBuf),
    /// The answer was not a valid response line.
    Protocol(PathBuf, String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotRunning(p) => write!(
                f,
                "rvsadm: cannot connect to rvsd at {}: is rvsd running?",
                p.display()
            ),
            ClientError::Connect(p, e) => {
                write!(f, "rvsadm: cannot connect to rvsd at {}: {e}", p.display())
            }
            ClientError::Io(p, e) if is_timeout(e) => write!(
                f,
                "rvsadm: no answer from rvsd at {} (timed out)",
                p.display()
            ),
            ClientError::Io(p, e) => {
                write!(f, "rvsadm: talking to rvsd at {}: {e}", p.display())
            }
            ClientError::Closed(p) => write!(
                f,
                "rvsadm: rvsd at {} closed the connection without answering",
                p.display()
            ),
            ClientError::Protocol(p, m) => {
                write!(f, "rvsadm: bad answer from rvsd at {}: {m}", p.display())
            }
        }
    }
}

impl std::error::Error for ClientError {}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Something that answers requests: the socket [`Client`], or a fake in tests.
pub trait Transport {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError>;

    /// `list-connections`, each entry handed to `each` as it arrives. By
    /// default through [`Transport::call`], whole.
    fn list_connections(
        &mut self,
        each: &mut dyn FnMut(ConnEntry),
    ) -> Result<Listing, ClientError> {
        match self.call(&Request::ListConnections)? {
            Response::Connections { connections } => {
                let n = connections.len() as u64;
                connections.into_iter().for_each(each);
                Ok(Listing::Streamed(n))
            }
            other => Ok(Listing::Answer(other)),
        }
    }
}

/// A connection to rvsd. Several requests may be sent over one connection,
/// one at a time.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects with [`DEFAULT_TIMEOUT`].
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Client::connect_timeout(path, DEFAULT_TIMEOUT)
    }

    /// Connects; `timeout` bounds every later read and write.
    pub fn connect_timeout(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let p = path.to_path_buf();
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(p.clone())
            }
            _ => ClientError::Connect(p.clone(), e),
        })?;
        let t = Some(timeout.max(Duration::from_millis(1)));
        stream
            .set_read_timeout(t)
            .and_then(|_| stream.set_write_timeout(t))
            .map_err(|e| ClientError::Io(p.clone(), e))?;
        let writer = stream
            .try_clone()
            .map_err(|e| ClientError::Io(p.clone(), e))?;
        Ok(Client {
            path: p,
            reader: BufReader::new(stream),
            writer,
        })
    }

    fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        let mut line = encode_request(req);
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .and_then(|_| self.writer.flush())
            .map_err(|e| ClientError::Io(self.path.clone(), e))
    }

    /// Sends `list-connections` and hands each entry to `each` as it is
    /// decoded, so that a listing of any length takes little memory.
    pub fn list_connections(
        &mut self,
        each: &mut dyn FnMut(ConnEntry),
    ) -> Result<Listing, ClientError> {
        self.send(&Request::ListConnections)?;
        read_connections(&mut self.reader, each).map_err(|e| match e {
            ReadError::Closed => ClientError::Closed(self.path.clone()),
            ReadError::Io(e) => ClientError::Io(self.path.clone(), e),
            ReadError::Decode(e) => ClientError::Protocol(self.path.clone(), e.0),
        })
    }

    /// Sends one request and waits for its response.
    pub fn request(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.send(req)?;
        let mut answer = String::new();
        let n = self
            .reader
            .read_line(&mut answer)
            .map_err(|e| ClientError::Io(self.path.clone(), e))?;
        if n == 0 {
            return Err(ClientError::Closed(self.path.clone()));
        }
        decode_response(&answer).map_err(|e| ClientError::Protocol(self.path.clone(), e.0))
    }
}

impl Transport for Client {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.request(req)
    }
    fn list_connections(
        &mut self,
        each: &mut dyn FnMut(ConnEntry),
    ) -> Result<Listing, ClientError> {
        Client::list_connections(self, each)
    }
}

/// Connects on first use, so that commands that fail to parse never touch
/// the socket.
pub struct LazyClient {
    path: PathBuf,
    timeout: Duration,
    client: Option<Client>,
}

impl LazyClient {
    pub fn new(path: PathBuf, timeout: Duration) -> LazyClient {
        LazyClient {
            path,
            timeout,
            client: None,
        }
    }
}

impl LazyClient {
    fn client(&mut self) -> Result<&mut Client, ClientError> {
        if self.client.is_none() {
            self.client = Some(Client::connect_timeout(&self.path, self.timeout)?);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }
}

impl Transport for LazyClient {
    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.client()?.request(req)
    }
    fn list_connections(
        &mut self,
        each: &mut dyn FnMut(ConnEntry),
    ) -> Result<Listing, ClientError> {
        self.client()?.list_connections(each)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rvs-client-{}-{name}.sock", std::process::id()))
    }

    #[test]
    fn socket_path_precedence() {
        assert_eq!(socket_path(None, None), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(socket_path(None, Some("")), PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(socket_path(None, Some("/e")), PathBuf::from("/e"));
        assert_eq!(
            socket_path(Some(Path::new("/x")), Some("/e")),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn missing_socket_is_not_running() {
        let p = tmp("missing");
        let e = Client::connect(&p).err().unwrap();
        assert!(matches!(e, ClientError::NotRunning(_)));
        assert_eq!(
            e.to_string(),
            format!(
                "rvsadm: cannot connect to rvsd at {}: is rvsd running?",
                p.display()
            )
        );
    }

    #[test]
    fn stale_socket_is_not_running() {
        let p = tmp("stale");
        let _ = std::fs::remove_file(&p);
        drop(UnixListener::bind(&p).unwrap());
        let e = Client::connect(&p).err().unwrap();
        let _ = std::fs::remove_file(&p);
        assert!(matches!(e, ClientError::NotRunning(_)), "{e:?}");
    }

    #[test]
    fn round_trip_and_timeout() {
        let p = tmp("rt");
        let _ = std::fs::remove_file(&p);
        let l = UnixListener::bind(&p).unwrap();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, "{\"v\":1,\"op\":\"version\"}\n");
            w.write_all(b"{\"v\":1,\"result\":\"ok\"}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            // Never answer the second request.
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut c = Client::connect_timeout(&p, Duration::from_millis(100)).unwrap();
        assert_eq!(c.request(&Request::Version).unwrap(), Response::Ok);
        let e = c.request(&Request::Clear).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        h.join().unwrap();
        let _ = std::fs::remove_file(&p);
    }
}
