//! PCI addresses as operators write them, and what the host says about a
//! device: present or not, and which driver holds it.
//!
//! EAL accepts `DDDD:BB:DD.F` and the short `BB:DD.F`, in either case, but
//! names the port it probes in the long lower-case form; rvsd normalises
//! what the configuration says so that the two always match. When a
//! configured device did not become a DPDK port, [`diagnose`] reads sysfs
//! to say why in terms the operator can act on.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A PCI address: domain, bus, device, function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

/// Not a PCI address; the text says what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotPci(pub String);

impl fmt::Display for NotPci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a PCI address (DDDD:BB:DD.F or BB:DD.F, hexadecimal)",
            self.0
        )
    }
}

fn hex_field(s: &str, max_len: usize) -> Option<u32> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

impl FromStr for PciAddr {
    type Err = NotPci;

    fn from_str(s: &str) -> Result<Self, NotPci> {
        let err = || NotPci(s.to_string());
        let (head, function) = s.rsplit_once('.').ok_or_else(err)?;
        let parts: Vec<&str> = head.split(':').collect();
        let (domain, bus, device) = match parts[..] {
            [b, d] => (0, b, d),
            [dom, b, d] => (hex_field(dom, 8).ok_or_else(err)?, b, d),
            _ => return Err(err()),
        };
        let bus = hex_field(bus, 2).ok_or_else(err)?;
        let device = hex_field(device, 2).filter(|&d| d < 32).ok_or_else(err)?;
        let function = hex_field(function, 1).filter(|&f| f < 8).ok_or_else(err)?;
        Ok(PciAddr {
            domain,
            bus: bus as u8,
            device: device as u8,
            function: function as u8,
        })
    }
}

impl fmt::Display for PciAddr {
    /// The form EAL names ports with: `0000:3b:00.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Drivers through which DPDK can take a PCI device.
pub const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// What the host says about a PCI device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PciState {
    /// No such device on the bus.
    Absent,
    /// Not bound to any driver.
    Unbound,
    /// Bound to a driver DPDK can use (vfio-pci, uio_pci_generic, igb_uio).
    Dpdk(String),
    /// Bound to a kernel network driver; `ifaces` are its interfaces.
    Kernel { driver: String, ifaces: Vec<String> },
}

/// Read a device's state under `sysfs` (normally `/sys`).
pub fn state(sysfs: &Path, addr: PciAddr) -> PciState {
    let dev = sysfs.join("bus/pci/devices").join(addr.to_string());
    if !dev.exists() {
        return PciState::Absent;
    }
    let driver = std::fs::read_link(dev.join("driver"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match driver {
        None => PciState::Unbound,
        Some(d) if DPDK_DRIVERS.contains(&d.as_str()) => PciState::Dpdk(d),
        Some(driver) => {
            // Interfaces sit in net/, or for virtio in virtioN/net/.
            let names = |d: &Path| -> Vec<String> {
                std::fs::read_dir(d)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut ifaces = names(&dev.join("net"));
            for sub in names(&dev).iter().filter(|n| n.starts_with("virtio")) {
                ifaces.extend(names(&dev.join(sub).join("net")));
            }
            ifaces.sort();
            PciState::Kernel { driver, ifaces }
        }
    }
}

/// Why a configured PCI device is not a DPDK port, and what to do about it.
pub fn explain(addr: PciAddr, state: &PciState) -> String {
    let bind = format!("modprobe vfio-pci && dpdk-devbind.py -b vfio-pci {addr}");
    match state {
        PciState::Absent => format!(
            "PCI device {addr} is not present (no /sys/bus/pci/devices/{addr}; \
             `dpdk-devbind.py --status` lists the network devices)"
        ),
        PciState::Unbound => {
            format!("PCI device {addr} is not bound to a driver; bind it for DPDK with: {bind}")
        }
        PciState::Kernel { driver, ifaces } => {
            let on = if ifaces.is_empty() {
                String::new()
            } else {
                format!(" (interface {})", ifaces.join(", "))
            };
            format!(
                "PCI device {addr} is bound to its kernel driver {driver}{on}; \
                 bind it for DPDK with: {bind}"
            )
        }
        PciState::Dpdk(d) => format!(
            "PCI device {addr} is bound to {d} but DPDK did not make it a port \
             (see the EAL messages above: no IOMMU group access, or no driver for it in this DPDK?)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_eal_accepts() {
        let long: PciAddr = "0000:3b:00.1".parse().unwrap();
        assert_eq!(long.to_string(), "0000:3b:00.1");
        assert_eq!("3b:00.1".parse::<PciAddr>().unwrap(), long);
        assert_eq!("0000:3B:00.1".parse::<PciAddr>().unwrap(), long);
        assert_eq!("3B:00.1".parse::<PciAddr>().unwrap(), long);
        let d: PciAddr = "10000:00:1f.7".parse().unwrap();
        assert_eq!(d.to_string(), "10000:00:1f.7");
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "net_null0",
            "3b:00",
            "3b:00.8",
            "3b:20.0",
            "100:00.0",
            "0000:3b:00.0.1",
            "0:0:0:0.0",
            "3b:0g.0",
            "+3b:00.0",
        ] {
            assert!(bad.parse::<PciAddr>().is_err(), "{bad}");
        }
        let e = "eth0".parse::<PciAddr>().unwrap_err();
        assert!(e.to_string().contains("not a PCI address"), "{e}");
    }

    fn fake_sysfs(dir: &Path, addr: &str, driver: Option<&str>, ifaces: &[&str]) {
        let dev = dir.join("bus/pci/devices").join(addr);
        std::fs::create_dir_all(&dev).unwrap();
        if let Some(d) = driver {
            let drv = dir.join("bus/pci/drivers").join(d);
            std::fs::create_dir_all(&drv).unwrap();
            std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
        }
        for i in ifaces {
            std::fs::create_dir_all(dev.join("net").join(i)).unwrap();
        }
    }

    #[test]
    fn reads_the_device_state_from_sysfs() {
        let dir = std::env::temp_dir().join(format!("rvs-pci-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fake_sysfs(&dir, "0000:00:03.0", Some("virtio-pci"), &["eth0"]);
        fake_sysfs(&dir, "0000:00:04.0", Some("vfio-pci"), &[]);
        fake_sysfs(&dir, "0000:00:05.0", None, &[]);
        fake_sysfs(&dir, "0000:00:07.0", Some("virtio-pci"), &[]);
        std::fs::create_dir_all(dir.join("bus/pci/devices/0000:00:07.0/virtio2/net/ens7")).unwrap();
        let at = |s: &str| state(&dir, s.parse().unwrap());
        assert_eq!(
            at("00:03.0"),
            PciState::Kernel {
                driver: "virtio-pci".into(),
                ifaces: vec!["eth0".into()]
            }
        );
        assert_eq!(at("00:04.0"), PciState::Dpdk("vfio-pci".into()));
        assert_eq!(at("00:05.0"), PciState::Unbound);
        assert_eq!(at("00:06.0"), PciState::Absent);
        assert_eq!(
            at("00:07.0"),
            PciState::Kernel {
                driver: "virtio-pci".into(),
                ifaces: vec!["ens7".into()]
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn explanations_say_what_to_do() {
        let a: PciAddr = "00:03.0".parse().unwrap();
        let k = explain(
            a,
            &PciState::Kernel {
                driver: "e1000e".into(),
                ifaces: vec!["ens3".into()],
            },
        );
        assert!(k.contains("is bound to its kernel driver e1000e (interface ens3)"));
        assert!(
            k.contains("dpdk-devbind.py -b vfio-pci 0000:00:03.0"),
            "{k}"
        );
        assert!(explain(a, &PciState::Absent).contains("is not present"));
        assert!(explain(a, &PciState::Unbound).contains("is not bound to a driver"));
    }
}
