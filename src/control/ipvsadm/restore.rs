//! `-R`: read ipvsadm commands (one per line, as `-S` or `ipvsadm-save`
//! writes them), apply them in memory to the current rule set, and hand
//! back the result to send as one atomic `restore` request.
//!
//! Differences from ipvsadm, which runs each line as it reads it: nothing
//! is changed unless every line is valid, and a line the kernel would refuse
//! (e.g. "Service already exists") aborts the restore like a syntax error.

use super::parse::{parse, Command, ParseError, EXIT_USAGE};
use crate::control::proto::{errors, RuleSet, ServiceKey, ServiceRules, Timeouts};

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

fn find(rules: &RuleSet, key: &ServiceKey) -> Option<usize> {
    rules.services.iter().position(|s| s.service.key() == *key)
}

/// Applies one parsed command to `rules` the way the kernel would.
pub fn apply(
    rules: &mut RuleSet,
    timeouts: &mut Option<Timeouts>,
    cmd: Command,
) -> Result<(), String> {
    match cmd {
        Command::AddService(spec) => {
            if find(rules, &spec.key()).is_some() {
                return Err(errors::SERVICE_EXISTS.into());
            }
            rules.services.push(ServiceRules {
                service: spec,
                dests: Vec::new(),
            });
        }
        Command::EditService(spec) => {
            let i = find(rules, &spec.key()).ok_or(errors::NO_SUCH_SERVICE)?;
            rules.services[i].service = spec;
        }
        Command::DeleteService(key) => {
            let i = find(rules, &key).ok_or(errors::NO_SUCH_SERVICE)?;
            rules.services.remove(i);
        }
        Command::AddDest(key, dest) => {
            let i = find(rules, &key).ok_or(errors::SERVICE_NOT_DEFINED)?;
            let dests = &mut rules.services[i].dests;
            if dests.iter().any(|d| d.key() == dest.key()) {
                return Err(errors::DEST_EXISTS.into());
            }
            dests.push(dest);
        }
        Command::EditDest(key, dest) => {
            let i = find(rules, &key).ok_or(errors::SERVICE_NOT_DEFINED)?;
            let d = rules.services[i]
                .dests
                .iter_mut()
                .find(|d| d.key() == dest.key())
                .ok_or(errors::NO_SUCH_DEST)?;
            *d = dest;
        }
        Command::DeleteDest(key, dkey) => {
            let i = find(rules, &key).ok_or(errors::SERVICE_NOT_DEFINED)?;
            let dests = &mut rules.services[i].dests;
            let j = dests
                .iter()
                .position(|d| d.key() == dkey)
                .ok_or(errors::NO_SUCH_DEST)?;
            dests.remove(j);
        }
        Command::Clear => rules.services.clear(),
        Command::Set(t) => {
            let cur = timeouts.get_or_insert_with(Timeouts::default);
            if t.tcp != 0 {
                cur.tcp = t.tcp;
            }
            if t.tcpfin != 0 {
                cur.tcpfin = t.tcpfin;
            }
            if t.udp != 0 {
                cur.udp = t.udp;
            }
        }
        other => {
            return Err(format!(
                "rvs: {} is not supported in restore input",
                command_word(&other)
            ))
        }
    }
    Ok(())
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
        _ => "this command",
    }
}

/// Reads a whole restore input on top of `base` (the daemon's current
/// rules). Returns the new rule set and any `--set` timeouts.
pub fn restore(input: &str, base: RuleSet) -> Result<(RuleSet, Option<Timeouts>), RestoreError> {
    let mut rules = base;
    let mut timeouts = None;
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
        let inv = parse(&words).map_err(err)?;
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
        apply(&mut rules, &mut timeouts, inv.command).map_err(|m| RestoreError {
            line: n + 1,
            message: m,
            code: EXIT_USAGE,
        })?;
    }
    Ok((rules, timeouts))
}
