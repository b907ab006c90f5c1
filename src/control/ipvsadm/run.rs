//! Running a parsed command: requests to rvsd, answers formatted.

use super::conns::{conn_header, conn_row, timeouts};
use super::list::{list_all, list_one, sort_services};
use super::names::{self, Names, Numeric};
use super::parse::{parse_with, Command, Format, Invocation, ListCmd, EXIT_FAIL, EXIT_USAGE};
use super::restore::{change_request, parse_restore_with};
use super::save::save_with;
use super::usage::{usage, version};
use crate::control::client::{socket_path, ClientError, LazyClient, Transport, DEFAULT_TIMEOUT};
use crate::control::conn_stream::Listing;
use crate::control::proto::{errors, ConnEntry, Request, Response};
use serde::Serialize;
use std::io::{Read, Write};

/// Exit code when a listing fails (ipvsadm's `exit(1)`).
pub const EXIT_LIST: i32 = 1;

/// The whole of rvsadm: parse `args` (without the program name), then run.
/// `env_sock` is `$RVS_SOCK`. Returns the exit code.
pub fn main_with(
    args: &[String],
    env_sock: Option<&str>,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let names = names::system();
    let inv = match parse_with(args, names) {
        Ok(inv) => inv,
        Err(e) => {
            if !e.message.is_empty() {
                let _ = writeln!(err, "{}", e.message);
            }
            return e.code;
        }
    };
    let path = socket_path(inv.sock.as_deref(), env_sock);
    let mut transport = LazyClient::new(path, DEFAULT_TIMEOUT);
    execute_with(&inv, &mut transport, names, stdin, out, err)
}

enum Failure {
    Client(ClientError),
    Daemon(String),
    Unexpected(Response),
}

fn call(t: &mut dyn Transport, req: &Request) -> Result<Response, Failure> {
    match t.call(req) {
        Ok(Response::Error { message, .. }) => Err(Failure::Daemon(message)),
        Ok(r) => Ok(r),
        Err(e) => Err(Failure::Client(e)),
    }
}

fn report(err: &mut dyn Write, f: Failure, daemon_code: i32) -> i32 {
    match f {
        Failure::Client(e) => {
            let _ = writeln!(err, "{e}");
            EXIT_FAIL
        }
        Failure::Daemon(m) => {
            let _ = writeln!(err, "{m}");
            daemon_code
        }
        Failure::Unexpected(r) => {
            let _ = writeln!(err, "rvsadm: unexpected answer from rvsd: {r:?}");
            daemon_code
        }
    }
}

fn json<T: Serialize>(out: &mut dyn Write, v: &T) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).expect("protocol types serialize")
    );
}

/// A JSON array written element by element, byte for byte what [`json`]
/// writes for the whole vector, without the vector.
struct JsonArray {
    n: usize,
}

impl JsonArray {
    fn element<T: Serialize>(&mut self, out: &mut dyn Write, v: &T) {
        let text = serde_json::to_string_pretty(v).expect("protocol types serialize");
        let _ = out.write_all(if self.n == 0 { b"[\n" } else { b",\n" });
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                let _ = out.write_all(b"\n");
            }
            let _ = write!(out, "  {line}");
        }
        self.n += 1;
    }

    fn end(self, out: &mut dyn Write) {
        let _ = out.write_all(if self.n == 0 { b"[]\n" } else { b"\n]\n" });
    }
}

/// Runs `inv` against `t`, names looked up through glibc. Nothing is sent
/// for commands that need no daemon (`-h`, `-v`, `-L --daemon`).
pub fn execute(
    inv: &Invocation,
    t: &mut dyn Transport,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    execute_with(inv, t, names::system(), stdin, out, err)
}

/// The names a listing in `f` prints: none with `-n`.
fn shown<'a>(f: &Format, names: &'a dyn Names) -> &'a dyn Names {
    if f.numeric {
        &Numeric
    } else {
        names
    }
}

/// [`execute`], with host and service names from `names` (listings without
/// `-n`, and `-R` input).
pub fn execute_with(
    inv: &Invocation,
    t: &mut dyn Transport,
    names: &dyn Names,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let req = match &inv.command {
        Command::Help => {
            let _ = out.write_all(usage().as_bytes());
            return 0;
        }
        Command::Version => {
            let _ = out.write_all(version().as_bytes());
            return 0;
        }
        Command::Zero(k) => Some(Request::Zero { service: *k }),
        // The rule changes: one request each, as in a restore.
        c => change_request(c.clone()).ok(),
    };
    if let Some(req) = req {
        return match call(t, &req) {
            Ok(Response::Ok) => 0,
            Ok(r) => report(err, Failure::Unexpected(r), EXIT_USAGE),
            Err(f) => report(err, f, EXIT_USAGE),
        };
    }
    let result = match &inv.command {
        Command::List(l) => list(inv, l, t, names, out),
        Command::Save(f) => match call(t, &Request::Save) {
            Ok(Response::Rules { rules }) => {
                if inv.json {
                    json(out, &rules);
                } else {
                    let _ = out.write_all(save_with(&rules, shown(f, names)).as_bytes());
                }
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        Command::Restore => return run_restore(t, names, stdin, err),
        Command::Marks => match call(t, &Request::ListMarks) {
            Ok(Response::Marks { marks }) => {
                if inv.json {
                    json(out, &marks);
                } else {
                    let _ = out.write_all(super::marks::list(&marks).as_bytes());
                }
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        Command::Ports => match call(t, &Request::Ports) {
            Ok(Response::Ports { ports }) => {
                if inv.json {
                    json(out, &ports);
                } else {
                    let _ = out.write_all(super::ports::format(&ports).as_bytes());
                }
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        Command::Lcores => match call(t, &Request::Lcores) {
            Ok(Response::Lcores { lcores }) => {
                json(out, &lcores);
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        Command::Counters => match call(t, &Request::Counters) {
            Ok(Response::Counters { counters }) => {
                if inv.json {
                    json(out, &counters);
                } else {
                    for (k, v) in &counters {
                        let _ = writeln!(out, "{k} {v}");
                    }
                }
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        _ => unreachable!("simple commands handled above"),
    };
    match result {
        Ok(()) => 0,
        Err(f) => report(err, f, EXIT_LIST),
    }
}

fn list(
    inv: &Invocation,
    l: &ListCmd,
    t: &mut dyn Transport,
    names: &dyn Names,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    match l {
        ListCmd::Daemon => Ok(()),
        ListCmd::Timeout => match call(t, &Request::GetTimeouts)? {
            Response::Timeouts { timeouts: tm } => {
                if inv.json {
                    json(out, &tm);
                } else {
                    let _ = out.write_all(timeouts(&tm).as_bytes());
                }
                Ok(())
            }
            r => Err(Failure::Unexpected(r)),
        },
        ListCmd::Connections(f) => list_connections(inv.json, f, t, shown(f, names), out),
        ListCmd::Services {
            service: Some(key),
            format,
        } => match call(
            t,
            &Request::ListServices {
                service: Some(*key),
            },
        )? {
            Response::Services { services } => {
                let Some(s) = services.iter().find(|s| s.spec.key() == *key) else {
                    return Err(Failure::Daemon(errors::NO_SUCH_SERVICE.into()));
                };
                if inv.json {
                    json(out, s);
                } else {
                    let _ = out.write_all(list_one(s, format, shown(format, names)).as_bytes());
                }
                Ok(())
            }
            r => Err(Failure::Unexpected(r)),
        },
        ListCmd::Services {
            service: None,
            format,
        } => {
            let version = match call(t, &Request::Version)? {
                Response::Version { version } => version,
                r => return Err(Failure::Unexpected(r)),
            };
            match call(t, &Request::ListServices { service: None })? {
                Response::Services { mut services } => {
                    if inv.json {
                        if !format.nosort {
                            sort_services(&mut services);
                        }
                        json(out, &services);
                    } else {
                        let text = list_all(&version, &services, format, shown(format, names));
                        let _ = out.write_all(text.as_bytes());
                    }
                    Ok(())
                }
                r => Err(Failure::Unexpected(r)),
            }
        }
    }
}

/// `-Lc`: rows are printed as the entries arrive, so the listing's length
/// costs no memory here. The title waits for the first entry (or the end),
/// so that an error answer prints only the error.
fn list_connections(
    as_json: bool,
    f: &Format,
    t: &mut dyn Transport,
    names: &dyn Names,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut array = JsonArray { n: 0 };
    let mut titled = false;
    let mut title = |out: &mut dyn Write| {
        if !as_json && !titled {
            let _ = out.write_all(conn_header(f).as_bytes());
            titled = true;
        }
    };
    let mut each = |c: ConnEntry| {
        if as_json {
            array.element(out, &c);
        } else {
            title(out);
            let _ = out.write_all(conn_row(&c, names).as_bytes());
        }
    };
    let listing = t.list_connections(&mut each).map_err(Failure::Client)?;
    match listing {
        Listing::Streamed(_) if as_json => array.end(out),
        Listing::Streamed(_) => title(out),
        Listing::Answer(Response::Error { message, .. }) => return Err(Failure::Daemon(message)),
        Listing::Answer(r) => return Err(Failure::Unexpected(r)),
    }
    Ok(())
}

/// `-R`: every line read and checked first, then one transaction; a
/// refused change names its line.
fn run_restore(
    t: &mut dyn Transport,
    names: &dyn Names,
    stdin: &mut dyn Read,
    err: &mut dyn Write,
) -> i32 {
    let mut input = String::new();
    if let Err(e) = stdin.read_to_string(&mut input) {
        let _ = writeln!(err, "rvsadm: reading the rules from stdin: {e}");
        return EXIT_FAIL;
    }
    let aborted = |err: &mut dyn Write, message: &str, line: Option<usize>| {
        let _ = writeln!(err, "{message}");
        match line {
            Some(n) => writeln!(
                err,
                "rvsadm: restore aborted at line {n}; nothing was changed"
            ),
            None => writeln!(err, "rvsadm: restore aborted; nothing was changed"),
        }
    };
    let changes = match parse_restore_with(&input, names) {
        Ok(c) => c,
        Err(e) => {
            let _ = aborted(err, &e.message, Some(e.line));
            return e.code;
        }
    };
    let request = Request::Transaction {
        changes: changes.requests.clone(),
    };
    match t.call(&request) {
        Ok(Response::Ok) => 0,
        Ok(Response::Error {
            message,
            change: Some(i),
        }) => {
            let _ = aborted(err, &message, changes.line(i));
            EXIT_USAGE
        }
        Ok(Response::Error { message, .. }) => report(err, Failure::Daemon(message), EXIT_USAGE),
        Ok(r) => report(err, Failure::Unexpected(r), EXIT_USAGE),
        Err(e) => report(err, Failure::Client(e), EXIT_USAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::ConnProtocol as Protocol;

    #[test]
    fn a_streamed_json_array_is_the_whole_vector_pretty_printed() {
        let entry = |i: u16| ConnEntry {
            protocol: Protocol::Tcp,
            expire: 60,
            state: "SYN_RECV".into(),
            client: std::net::SocketAddr::new([10, 0, 0, 2].into(), i),
            virtual_addr: "[2001:db8::1]:80".parse().unwrap(),
            destination: "10.0.0.9:80".parse().unwrap(),
            template: i.is_multiple_of(2),
        };
        for n in [0, 1, 3] {
            let all: Vec<ConnEntry> = (0..n).map(entry).collect();
            let mut whole = Vec::new();
            json(&mut whole, &all);
            let mut streamed = Vec::new();
            let mut array = JsonArray { n: 0 };
            for e in &all {
                array.element(&mut streamed, e);
            }
            array.end(&mut streamed);
            assert_eq!(
                String::from_utf8(streamed).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }
}
