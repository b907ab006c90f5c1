//! Configuration errors, displayed with ipvsadm's wording.

use std::fmt;

/// Why a configuration change was refused. `Display` gives the text ipvsadm
/// prints (from its own checks or from the kernel's errno via libipvs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LbError {
    ServiceExists,
    NoService,
    DestExists,
    NoDest,
    SchedulerNotFound,
    ZeroPort,
    /// A virtual address no client can send to as a host (multicast,
    /// broadcast, loopback, unspecified, link-local, reserved).
    NotUnicast,
    OpsNotUdp,
    /// A scheduler flag used with a scheduler it does not belong to.
    IncompatibleSchedFlag(&'static str),
    IllegalWeight,
    IllegalUThreshold,
    IllegalLThreshold,
    /// The lower threshold is above the upper one (the kernel's ERANGE).
    ThresholdRange,
    /// A real server address the kernel refuses (its EINVAL): not unicast.
    DestNotUnicast,
    /// Persistence timeout outside 1 s .. 31 days.
    InvalidTimeout(u64),
    IllegalNetmask,
    IllegalIpv6Netmask,
    /// The real server's address family differs from the service's.
    FamilyMismatch,
    /// `--tun-port` is required with the gue tunnel type.
    TunPortRequired,
    /// A tunnel option that the tunnel type does not take.
    IllegalTunOption {
        opt: &'static str,
        tun: &'static str,
    },
    /// A mark rule with this match exists already.
    MarkExists,
    /// No mark rule has this match.
    NoMark,
    /// Mark 0 (the absence of a mark).
    BadMark,
    /// A prefix longer than the address.
    BadMarkPrefix,
    /// A port range whose first port is above its last.
    BadMarkPorts,
}

impl fmt::Display for LbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LbError::ServiceExists => f.write_str("Service already exists"),
            LbError::NoService => f.write_str("No such service"),
            LbError::DestExists => f.write_str("Destination already exists"),
            LbError::NoDest => f.write_str("No such destination"),
            LbError::SchedulerNotFound => f.write_str("Scheduler or persistence engine not found"),
            LbError::ZeroPort => f.write_str("Zero port specified for non-persistent service"),
            LbError::NotUnicast => f.write_str("Virtual address must be a unicast address"),
            LbError::OpsNotUdp => {
                f.write_str("One-Packet Scheduling is only for UDP virtual services")
            }
            LbError::IncompatibleSchedFlag(flag) => {
                write!(f, "incompatible scheduler flag `{flag}'")
            }
            LbError::IllegalWeight => f.write_str("illegal weight specified"),
            LbError::IllegalUThreshold => f.write_str("illegal u_threshold specified"),
            LbError::IllegalLThreshold => f.write_str("illegal l_threshold specified"),
            // What ipvsadm prints for the kernel's answers.
            LbError::ThresholdRange => f.write_str("Numerical result out of range"),
            LbError::DestNotUnicast => f.write_str(
                "Invalid operation.  Possibly wrong module version, address not unicast, ...",
            ),
            LbError::InvalidTimeout(t) => write!(f, "invalid timeout value `{t}' specified"),
            LbError::IllegalNetmask => {
                f.write_str("illegal virtual server persistent mask specified")
            }
            LbError::IllegalIpv6Netmask => f.write_str("illegal ipv6 netmask specified"),
            LbError::FamilyMismatch => {
                f.write_str("Address family of the real server does not match the virtual service")
            }
            LbError::TunPortRequired => {
                f.write_str("You need to supply the 'tun-port' option for the 'gue' tunnel type")
            }
            LbError::IllegalTunOption { opt, tun } => {
                write!(f, "Illegal '{opt}' option with the '{tun}' tunnel type")
            }
            LbError::MarkExists => f.write_str("Mark rule already exists"),
            LbError::NoMark => f.write_str("No such mark rule"),
            LbError::BadMark => f.write_str("invalid fwmark value `0' specified"),
            LbError::BadMarkPrefix => f.write_str("illegal prefix length specified"),
            LbError::BadMarkPorts => f.write_str("illegal port range specified"),
        }
    }
}

impl std::error::Error for LbError {}
