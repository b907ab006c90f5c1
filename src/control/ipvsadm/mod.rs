//! `rvsadm`: ipvsadm 1.31's command line in front of the control protocol.
//!
//! - [`options`]: the option table and a popt-like tokenizer;
//! - [`legality`]: which options each command takes, ipvsadm's messages;
//! - [`addr`]: `host[:port]`, netmasks;
//! - [`names`]: host and service names, through glibc within a time budget;
//! - [`parse`]: argv to a checked [`parse::Invocation`];
//! - [`list`], [`conns`], [`save`], [`ports`]: the output formats, in
//!   ipvsadm's [`order`];
//! - [`marks`]: rvs's mark table (`--add-mark`, `--delete-mark`, `--marks`);
//! - [`restore`]: `-R` input to one atomic rule set;
//! - [`run`]: requests out, formatted answers back.
//!
//! Exit codes follow ipvsadm: 0 success, 2 for argument errors (`fail()`),
//! 255 for usage errors and refused commands, 1 for failed listings.

pub mod addr;
pub mod conns;
pub mod legality;
pub mod list;
pub mod marks;
pub mod names;
pub mod options;
pub mod order;
pub mod parse;
pub mod ports;
pub mod restore;
pub mod run;
pub mod save;
pub mod usage;

pub use parse::{parse, parse_with, Command, Format, Invocation, ListCmd, ParseError};
pub use run::{execute, execute_with, main_with};

#[cfg(test)]
mod tests;
