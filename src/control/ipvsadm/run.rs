//! Running a parsed command: requests to rvsd, answers formatted.

use super::conns::{list_conns, timeouts};
use super::list::{list_all, list_one, sort_services};
use super::parse::{parse, Command, Invocation, ListCmd, EXIT_FAIL, EXIT_USAGE};
use super::restore::restore;
use super::save::save;
use super::usage::{usage, version};
use crate::control::client::{socket_path, ClientError, LazyClient, Transport, DEFAULT_TIMEOUT};
use crate::control::proto::{errors, Request, Response};
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
    let inv = match parse(args) {
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
    execute(&inv, &mut transport, stdin, out, err)
}

enum Failure {
    Client(ClientError),
    Daemon(String),
    Unexpected(Response),
}

fn call(t: &mut dyn Transport, req: &Request) -> Result<Response, Failure> {
    match t.call(req) {
        Ok(Response::Error { message }) => Err(Failure::Daemon(message)),
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

/// Runs `inv` against `t`. Nothing is sent for commands that need no
/// daemon (`-h`, `-v`, `-L --daemon`).
pub fn execute(
    inv: &Invocation,
    t: &mut dyn Transport,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let simple = |req: Request| -> Option<Request> { Some(req) };
    let req = match &inv.command {
        Command::Help => {
            let _ = out.write_all(usage().as_bytes());
            return 0;
        }
        Command::Version => {
            let _ = out.write_all(version().as_bytes());
            return 0;
        }
        Command::AddService(s) => simple(Request::AddService { service: s.clone() }),
        Command::EditService(s) => simple(Request::EditService { service: s.clone() }),
        Command::DeleteService(k) => simple(Request::DeleteService { service: *k }),
        Command::AddDest(k, d) => simple(Request::AddDest {
            service: *k,
            dest: *d,
        }),
        Command::EditDest(k, d) => simple(Request::EditDest {
            service: *k,
            dest: *d,
        }),
        Command::DeleteDest(k, d) => simple(Request::DeleteDest {
            service: *k,
            dest: *d,
        }),
        Command::Clear => simple(Request::Clear),
        Command::Zero(k) => simple(Request::Zero { service: *k }),
        Command::Set(tm) => simple(Request::SetTimeouts { timeouts: *tm }),
        _ => None,
    };
    if let Some(req) = req {
        return match call(t, &req) {
            Ok(Response::Ok) => 0,
            Ok(r) => report(err, Failure::Unexpected(r), EXIT_USAGE),
            Err(f) => report(err, f, EXIT_USAGE),
        };
    }
    let result = match &inv.command {
        Command::List(l) => list(inv, l, t, out),
        Command::Save(_) => match call(t, &Request::Save) {
            Ok(Response::Rules { rules }) => {
                if inv.json {
                    json(out, &rules);
                } else {
                    let _ = out.write_all(save(&rules).as_bytes());
                }
                Ok(())
            }
            Ok(r) => Err(Failure::Unexpected(r)),
            Err(f) => Err(f),
        },
        Command::Restore => return run_restore(t, stdin, err),
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
        ListCmd::Connections(f) => match call(t, &Request::ListConnections)? {
            Response::Connections { connections } => {
                if inv.json {
                    json(out, &connections);
                } else {
                    let _ = out.write_all(list_conns(&connections, f).as_bytes());
                }
                Ok(())
            }
            r => Err(Failure::Unexpected(r)),
        },
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
                    let _ = out.write_all(list_one(s, format).as_bytes());
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
                        let _ = out.write_all(list_all(&version, &services, format).as_bytes());
                    }
                    Ok(())
                }
                r => Err(Failure::Unexpected(r)),
            }
        }
    }
}

fn run_restore(t: &mut dyn Transport, stdin: &mut dyn Read, err: &mut dyn Write) -> i32 {
    let mut input = String::new();
    if let Err(e) = stdin.read_to_string(&mut input) {
        let _ = writeln!(err, "rvsadm: reading the rules from stdin: {e}");
        return EXIT_FAIL;
    }
    let base = match call(t, &Request::Save) {
        Ok(Response::Rules { rules }) => rules,
        Ok(r) => return report(err, Failure::Unexpected(r), EXIT_USAGE),
        Err(f) => return report(err, f, EXIT_USAGE),
    };
    let (rules, timeouts) = match restore(&input, base) {
        Ok(x) => x,
        Err(e) => {
            let _ = writeln!(err, "{}", e.message);
            let _ = writeln!(
                err,
                "rvsadm: restore aborted at line {}; nothing was changed",
                e.line
            );
            return e.code;
        }
    };
    match call(t, &Request::Restore { rules, timeouts }) {
        Ok(Response::Ok) => 0,
        Ok(r) => report(err, Failure::Unexpected(r), EXIT_USAGE),
        Err(f) => report(err, f, EXIT_USAGE),
    }
}
