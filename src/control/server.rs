//! The daemon side of the control protocol, minus the daemon: decode a
//! request line, hand it to a [`Handler`], encode the answer
//! ([`handle_line`]), and bind the socket. The socket's clients, with their
//! limits, are served by [`super::listener`].

use super::proto::{decode_request, encode_response, Request, Response};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// What the daemon implements: one answer per request. Errors are
/// `Response::Error` with ipvsadm's wording (see `proto::errors`).
pub trait Handler {
    fn handle(&mut self, request: Request) -> Response;
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

/// Binds the control socket: creates the parent directory, removes a stale
/// socket file, and restricts the socket to its owner (mode 0600).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running rvsd", path.display()),
                ))
            }
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
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
        let l = bind(&path).unwrap();
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
        // Stale socket file (no listener) is replaced.
        let l2 = bind(&path).unwrap();
        drop(l2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
