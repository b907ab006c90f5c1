//! `-R`: read ipvsadm commands (one per line, as `-S` or `ipvsadm-save`
//! writes them) and turn them into one `transaction` request. rvsd applies
//! its changes in order to the rules as they are when it arrives, all or
//! nothing, in one snapshot; rvsadm never sends back a rule set it read
//! earlier, so a change another client made meanwhile is kept.
//!
//! Differences from ipvsadm, which runs each line as it reads it: nothing
//! is changed unless every line is valid, and a line the kernel would refuse
//! (e.g. "Service already exists") aborts the restore like a syntax error.

use super::names::{self, Names};
use super::parse::{parse_with, Command, ParseError, EXIT_USAGE};
use crate::control::proto::Request;

/// Why a restore was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
    pub code: i32,
}

/// Splits one input line into words: whitespace separated, `#` starts a
/// comment, a leading `ipvsadm` (or `rvsadm`, or a path to either) is
/// dropped.
pub fn line_words(line: &str) -> Vec<String> {
    let line = match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    };
    let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
    if let Some(first) = words.first() {
        let base = first.rsplit('/').next().unwrap_or(first);
        if base == "ipvsadm" || base == "rvsadm" {
            words.remove(0);
        }
    }
    words
}

/// The request that makes one change, for commands a restore may hold.
pub fn change_request(cmd: Command) -> Result<Request, String> {
    Ok(match cmd {
        Command::AddService(service) => Request::AddService { service },
        Command::EditService(service) => Request::EditService { service },
        Command::DeleteService(service) => Request::DeleteService { service },
        Command::AddDest(service, dest) => Request::AddDest { service, dest },
        Command::EditDest(service, dest) => Request::EditDest { service, dest },
        Command::DeleteDest(service, dest) => Request::DeleteDest { service, dest },
        Command::Clear => Request::Clear,
        Command::Set(timeouts) => Request::SetTimeouts { timeouts },
        Command::AddMark(mark) => Request::AddMark { mark },
        Command::DeleteMark(mark) => Request::DeleteMark { mark },
        other => {
            return Err(format!(
                "rvs: {} is not supported in restore input",
                command_word(&other)
            ))
        }
    })
}

fn command_word(c: &Command) -> &'static str {
    match c {
        Command::List(_) => "-L",
        Command::Zero(_) => "-Z",
        Command::Save(_) => "-S",
        Command::Help => "-h",
        Command::Version => "-v",
        Command::Ports => "--ports",
        Command::Lcores => "--lcores",
        Command::Counters => "--counters",
        Command::Marks => "--marks",
        _ => "this command",
    }
}

/// A restore input as changes, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    /// One request per change.
    pub requests: Vec<Request>,
    /// The 1-based input line of each.
    pub lines: Vec<usize>,
}

impl Changes {
    /// The input line of change `index` (as a refusal names it).
    pub fn line(&self, index: usize) -> Option<usize> {
        self.lines.get(index).copied()
    }
}

/// Reads a whole restore input; the first bad line stops it. Names are
/// looked up through glibc, within one budget for the whole input.
pub fn parse_restore(input: &str) -> Result<Changes, RestoreError> {
    parse_restore_with(input, names::system())
}

/// [`parse_restore`], with names looked up in `names`.
pub fn parse_restore_with(input: &str, names: &dyn Names) -> Result<Changes, RestoreError> {
    let mut changes = Changes::default();
    for (n, line) in input.lines().enumerate() {
        let words = line_words(line);
        if words.is_empty() {
            continue;
        }
        let err = |e: ParseError| RestoreError {
            line: n + 1,
            message: e.message,
            code: e.code,
        };
        let inv = parse_with(&words, names).map_err(err)?;
        if inv.command == Command::Restore {
            // ipvsadm refuses -R inside -R the same way.
            return Err(RestoreError {
                line: n + 1,
                message: format!(
                    "Try `{0} -h' or '{0} --help' for more information.",
                    super::parse::PROGRAM
                ),
                code: EXIT_USAGE,
            });
        }
        let request = change_request(inv.command).map_err(|m| RestoreError {
            line: n + 1,
            message: m,
            code: EXIT_USAGE,
        })?;
        changes.requests.push(request);
        changes.lines.push(n + 1);
    }
    Ok(changes)
}
