//! The daemon side of the control protocol, minus the daemon: decode a
//! request line, hand it to a [`Handler`], encode the answer
//! ([`handle_line`]), and bind the socket ([`bind`]). The socket's clients,
//! with their limits, are served by [`super::listener`].

use super::proto::{decode_request, encode_response, ConnEntry, Request, Response};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Connections handed out one at a time (see [`Handler::connections`]).
pub type ConnIter = Box<dyn Iterator<Item = ConnEntry> + Send>;

/// What the daemon implements: one answer per request. Errors are
/// `Response::Error` with ipvsadm's wording (see `proto::errors`).
pub trait Handler {
    fn handle(&mut self, request: Request) -> Response;

    /// `list-connections`, as entries to stream. The listener calls this
    /// with the handler locked and consumes the entries after unlocking,
    /// so that a long listing to a slow reader holds up no other client.
    /// `Err` is the answer to send instead. By default, [`Handler::handle`].
    fn connections(&mut self) -> Result<ConnIter, Response> {
        match self.handle(Request::ListConnections) {
            Response::Connections { connections } => Ok(Box::new(connections.into_iter())),
            other => Err(other),
        }
    }
}

impl<F: FnMut(Request) -> Response> Handler for F {
    fn handle(&mut self, request: Request) -> Response {
        self(request)
    }
}

/// Decodes one line, dispatches it, and returns the encoded response (no
/// trailing newline). A line that does not decode gets an error response.
pub fn handle_line<H: Handler + ?Sized>(handler: &mut H, line: &str) -> String {
    let resp = match decode_request(line) {
        Ok(req) => handler.handle(req),
        Err(e) => Response::error(format!("rvsd: {e}")),
    };
    encode_response(&resp)
}

/// The socket file a [`bind`] made. Dropping it removes the file, but only
/// while the path still names that very socket: never a file that took its
/// place, nor the socket of a daemon that started after this one.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.file_type().is_socket() && (m.dev(), m.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

fn refuse(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// Binds the control socket: creates the parent directory if missing,
/// restricts the socket to its owner (mode 0600), and takes over the path
/// only from a stale socket. A path that is not a socket (a regular file, a
/// directory, a symlink) is never removed, and a socket something still
/// listens on (another rvsd) is never taken over: both are errors that say
/// so.
pub fn bind(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(refuse(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", dir.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    refuse(
                        e.kind(),
                        format!("cannot create the directory {}: {e}", dir.display()),
                    )
                })?
            }
            Err(e) => return Err(refuse(e.kind(), format!("{}: {e}", dir.display()))),
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(refuse(
                io::ErrorKind::AddrInUse,
                "another process (another rvsd?) listens on it; stop it or choose another socket"
                    .into(),
            )),
            // Nobody listens: a socket left by an rvsd that died.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
            Err(e) => {
                return Err(refuse(
                    e.kind(),
                    format!("cannot tell whether the socket there is in use ({e}); leaving it"),
                ))
            }
        },
        Ok(m) => {
            let what = if m.is_dir() {
                "a directory"
            } else if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_file() {
                "a regular file"
            } else {
                "not a socket"
            };
            return Err(refuse(
                io::ErrorKind::AlreadyExists,
                format!(
                    "the path exists and is {what}, not a socket; rvsd does not remove it \
                     (remove it yourself or choose another socket path)"
                ),
            ));
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let m = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        id: (m.dev(), m.ino()),
    };
    Ok((listener, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::client::Client;
    use std::io::{BufRead, BufReader, Write};

    #[test]
    fn handle_line_dispatches_and_reports_bad_lines() {
        let mut h = |r: Request| match r {
            Request::Clear => Response::Ok,
            _ => Response::error("No such service"),
        };
        assert_eq!(
            handle_line(&mut h, r#"{"v":1,"op":"clear"}"#),
            r#"{"v":1,"result":"ok"}"#
        );
        assert_eq!(
            handle_line(&mut h, r#"{"v":1,"op":"save"}"#),
            r#"{"v":1,"result":"error","message":"No such service"}"#
        );
        assert!(handle_line(&mut h, "{").contains("malformed JSON"));
    }

    #[test]
    fn bind_serve_and_client() {
        let dir = std::env::temp_dir().join(format!("rvs-server-{}", std::process::id()));
        let path = dir.join("sub/rvsd.sock");
        let (l, file) = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second bind while one listens is refused.
        assert!(bind(&path).is_err());
        let t = std::thread::spawn(move || {
            // The first connection is the probe of the refused bind above.
            drop(l.accept().unwrap());
            let (s, _) = l.accept().unwrap();
            let mut n = 0;
            let mut h = |_r: Request| {
                n += 1;
                Response::Ok
            };
            let mut w = s.try_clone().unwrap();
            for line in BufReader::new(s).lines() {
                let out = handle_line(&mut h, &line.unwrap());
                writeln!(w, "{out}").unwrap();
            }
            n
        });
        let mut c = Client::connect(&path).unwrap();
        assert_eq!(c.request(&Request::Version).unwrap(), Response::Ok);
        assert_eq!(c.request(&Request::Clear).unwrap(), Response::Ok);
        drop(c);
        assert_eq!(t.join().unwrap(), 2);
        // A stale socket file (its daemon died without removing it: the
        // guard is forgotten) is replaced; the new guard removes it.
        std::mem::forget(file);
        let (l2, file2) = bind(&path).unwrap();
        drop(l2);
        assert!(path.exists());
        drop(file2);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rvs-bind-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bind_never_removes_what_is_not_a_socket() {
        let dir = scratch("notsock");
        // A regular file: kept, with its content, and the error says why.
        let file = dir.join("rules.txt");
        std::fs::write(&file, "precious").unwrap();
        let e = bind(&file).unwrap_err();
        assert!(
            e.to_string().contains("a regular file, not a socket"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        // A directory.
        let sub = dir.join("d");
        std::fs::create_dir(&sub).unwrap();
        let e = bind(&sub).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        assert!(sub.is_dir());
        // A symlink, even to a stale socket.
        let stale = dir.join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&stale, &link).unwrap();
        let e = bind(&link).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
        assert!(std::fs::symlink_metadata(&link).is_ok() && stale.exists());
        // A parent that is a file.
        let e = bind(&file.join("x.sock")).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_survives_the_attempt() {
        let dir = scratch("live");
        let path = dir.join("rvsd.sock");
        let other = UnixListener::bind(&path).unwrap();
        let e = bind(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("listens on it"), "{e}");
        // The other daemon's socket is still there and still answers.
        drop(other.accept().unwrap());
        let c = UnixStream::connect(&path).unwrap();
        drop(c);
        drop(other);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_guard_removes_only_its_own_socket() {
        let dir = scratch("guard");
        let path = dir.join("rvsd.sock");
        let (l, file) = bind(&path).unwrap();
        drop(l);
        // Something else took the path meanwhile: a regular file.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "not yours").unwrap();
        drop(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not yours");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
