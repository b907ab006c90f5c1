//! Which options each command accepts, requires, or allows only one of, in
//! ipvsadm's order (which decides which message wins when several apply),
//! with ipvsadm's messages.

use super::options::Opt;

/// The commands that take part in the legality check, with ipvsadm's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Flush,
    List,
    AddServer,
    DeleteServer,
    EditServer,
    Set,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
}

impl Cmd {
    /// The name ipvsadm uses in messages.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DeleteService => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddServer => "add-server",
            Cmd::DeleteServer => "delete-server",
            Cmd::EditServer => "edit-server",
            Cmd::Set => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// Legality row: one character per option class in [`CLASS_NAMES`]
    /// order: `+` required, `x` illegal, `1` at most one of the `1`s,
    /// `.` optional.
    fn row(self) -> &'static [u8; NCLASS] {
        //                                   n c s s p M r f w x y m t d s r t p s s e o p b g p t s t t t n c r
        match self {
            Cmd::AddService | Cmd::EditService => b"xx+...xxxxxxxxxxxxxxx...xxxxxxxxxx",
            Cmd::DeleteService => b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Set | Cmd::Restore => b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => b".11xxxxxxxxx11.......xxxxxxx.xxxxx",
            Cmd::AddServer | Cmd::EditServer => b"xx+xxx+....xxxxxxxxxxxxxxxxxx.....",
            Cmd::DeleteServer => b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => b"xxxxxxxxxxx.xxxxxxx.xxxx....xxxxxx",
            Cmd::StopDaemon => b"xxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxx",
            Cmd::Save => b".xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => b"xx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// Number of option classes.
pub const NCLASS: usize = 34;

/// Option class names as ipvsadm prints them, in table order.
pub const CLASS_NAMES: [&str; NCLASS] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

/// The option class of an option, or `None` for options outside the table
/// (commands, `--sort`, `-6`, rvs's `--sock`/`--json`).
pub fn class_of(opt: Opt) -> Option<usize> {
    Some(match opt {
        Opt::Numeric => 0,
        Opt::Connection => 1,
        Opt::TcpService | Opt::UdpService | Opt::SctpService | Opt::FwmarkService => 2,
        Opt::Scheduler => 3,
        Opt::Persistent => 4,
        Opt::Netmask => 5,
        Opt::RealServer => 6,
        Opt::Masquerading | Opt::Ipip | Opt::Gatewaying => 7,
        Opt::Weight => 8,
        Opt::UThreshold => 9,
        Opt::LThreshold => 10,
        Opt::McastInterface => 11,
        Opt::Timeout => 12,
        Opt::Daemon => 13,
        Opt::Stats => 14,
        Opt::Rate => 15,
        Opt::Thresholds => 16,
        Opt::PersistentConn => 17,
        Opt::NoSort => 18,
        Opt::SyncId => 19,
        Opt::Exact => 20,
        Opt::Ops => 21,
        Opt::Pe => 22,
        Opt::SchedFlags => 23,
        Opt::McastGroup => 24,
        Opt::McastPort => 25,
        Opt::McastTtl => 26,
        Opt::SyncMaxlen => 27,
        Opt::TunInfo => 28,
        Opt::TunType => 29,
        Opt::TunPort => 30,
        Opt::TunNocsum => 31,
        Opt::TunCsum => 32,
        Opt::TunRemcsum => 33,
        _ => return None,
    })
}

/// A set of option classes seen on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen(u64);

impl Seen {
    pub fn has(self, class: usize) -> bool {
        self.0 & (1 << class) != 0
    }
    /// Records a class; the message if it was already there.
    pub fn set(&mut self, class: usize) -> Result<(), String> {
        if self.has(class) {
            return Err(format!(
                "multiple '{}' options specified",
                CLASS_NAMES[class]
            ));
        }
        self.0 |= 1 << class;
        Ok(())
    }
}

/// ipvsadm's generic check: the first offending class in table order wins.
pub fn check(cmd: Cmd, seen: Seen) -> Result<(), String> {
    let row = cmd.row();
    let mut first_one: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        if !seen.has(j) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    CLASS_NAMES[j],
                    cmd.name()
                ));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    CLASS_NAMES[j],
                    cmd.name()
                ))
            }
            b'1' => match first_one {
                None => first_one = Some(j),
                Some(last) => {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        CLASS_NAMES[j],
                        CLASS_NAMES[last],
                        cmd.name()
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

/// Tunnel types and which of tun-port, tun-nocsum, tun-csum, tun-remcsum
/// they accept (ipvsadm 1.31).
pub fn check_tunnel(kind: crate::control::proto::TunnelType, seen: Seen) -> Result<(), String> {
    use crate::control::proto::TunnelType;
    let row: &[u8; 4] = match kind {
        TunnelType::Ipip => b"xxxx",
        TunnelType::Gue => b"+111",
        TunnelType::Gre => b"x11x",
    };
    let mut first_one: Option<usize> = None;
    for (i, &rule) in row.iter().enumerate() {
        let class = 30 + i;
        if !seen.has(class) {
            if rule == b'+' {
                return Err(format!(
                    "You need to supply the '{}' option for the '{}' tunnel type",
                    CLASS_NAMES[class],
                    kind.name()
                ));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' tunnel type",
                    CLASS_NAMES[class],
                    kind.name()
                ))
            }
            b'1' => match first_one {
                None => first_one = Some(class),
                Some(last) => {
                    return Err(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        CLASS_NAMES[class],
                        CLASS_NAMES[last],
                        kind.name()
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_right_length_and_alphabet() {
        for cmd in [
            Cmd::AddService,
            Cmd::EditService,
            Cmd::DeleteService,
            Cmd::Flush,
            Cmd::List,
            Cmd::AddServer,
            Cmd::DeleteServer,
            Cmd::EditServer,
            Cmd::Set,
            Cmd::StartDaemon,
            Cmd::StopDaemon,
            Cmd::Restore,
            Cmd::Save,
            Cmd::Zero,
        ] {
            assert!(cmd.row().iter().all(|c| b"+x1.".contains(c)), "{cmd:?}");
        }
    }

    #[test]
    fn spot_checks_against_ipvsadm() {
        let mut s = Seen::default();
        s.set(2).unwrap();
        assert!(check(Cmd::AddService, s).is_ok());
        assert_eq!(
            check(Cmd::AddServer, s).unwrap_err(),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
        s.set(0).unwrap();
        assert_eq!(
            check(Cmd::AddService, s).unwrap_err(),
            "Illegal 'numeric' option with the 'add-service' command"
        );
        let mut l = Seen::default();
        l.set(1).unwrap();
        l.set(12).unwrap();
        assert_eq!(
            check(Cmd::List, l).unwrap_err(),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            l.set(1).unwrap_err(),
            "multiple 'connection' options specified"
        );
    }
}
