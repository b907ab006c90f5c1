//! The mark table: which packets carry which firewall mark, for fwmark
//! services (`-f`). In front of kernel IPVS iptables sets the marks
//! (`-t mangle ... -j MARK --set-mark`); rvs sees packets before any
//! kernel does, so it classifies them itself, with rules as plain as
//! ipvsadm's: protocol, destination address or network, destination
//! port range -> mark.
//!
//! The most specific rule that matches wins (longest prefix, then the
//! narrowest port range), so the outcome does not depend on the order the
//! rules were added in, and `-S` / `-R` give back the same table.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::error::LbError;
use super::service::Protocol;
use crate::net::addr::{mask, max_len};

/// What a rule matches: protocol, destination network, destination ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MarkMatch {
    pub proto: Protocol,
    /// The network's address (bits past the prefix are cleared on add).
    pub addr: IpAddr,
    /// Prefix length: 32 / 128 for one address.
    pub prefix: u8,
    /// First and last destination port (0 and 65535: every port).
    pub ports: (u16, u16),
}

impl MarkMatch {
    /// One address and port range.
    pub fn host(proto: Protocol, addr: IpAddr, ports: (u16, u16)) -> Self {
        MarkMatch {
            proto,
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
            ports,
        }
    }

    /// A single address, not a network.
    pub fn is_host(&self) -> bool {
        self.prefix == max_len(&self.addr)
    }

    /// Checked, with the bits past the prefix cleared.
    fn normalized(mut self) -> Result<Self, LbError> {
        if self.prefix > max_len(&self.addr) {
            return Err(LbError::BadMarkPrefix);
        }
        if self.ports.0 > self.ports.1 {
            return Err(LbError::BadMarkPorts);
        }
        self.addr = mask(self.addr, self.prefix);
        Ok(self)
    }

    #[inline]
    fn matches(&self, proto: Protocol, addr: IpAddr, port: u16) -> bool {
        self.proto == proto
            && (self.ports.0..=self.ports.1).contains(&port)
            // Addresses of another family are never equal.
            && mask(addr, self.prefix) == self.addr
    }

    /// Narrower first: longer prefix, then fewer ports.
    fn specificity(&self) -> (u8, u32) {
        (
            self.prefix,
            u32::MAX - (self.ports.1 as u32 - self.ports.0 as u32),
        )
    }
}

/// As rvsadm writes it after `-t`/`-u`: `10.0.0.0/24:80-89`,
/// `[2001:db8::/64]:443` (no prefix for one address, no port for all).
impl fmt::Display for MarkMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = self.addr.is_ipv6();
        if v6 {
            f.write_str("[")?;
        }
        write!(f, "{}", self.addr)?;
        if !self.is_host() {
            write!(f, "/{}", self.prefix)?;
        }
        if v6 {
            f.write_str("]")?;
        }
        match self.ports {
            (0, u16::MAX) => Ok(()),
            (lo, hi) if lo == hi => write!(f, ":{lo}"),
            (lo, hi) => write!(f, ":{lo}-{hi}"),
        }
    }
}

/// One rule: packets matching `matches` carry `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarkRule {
    #[serde(rename = "match")]
    pub matches: MarkMatch,
    pub mark: u32,
}

impl MarkRule {
    /// Packets of `proto` to `addr/prefix` with a destination port in
    /// `ports` carry `mark`.
    pub fn new(proto: Protocol, addr: IpAddr, prefix: u8, ports: (u16, u16), mark: u32) -> Self {
        MarkRule {
            matches: MarkMatch {
                proto,
                addr,
                prefix,
                ports,
            },
            mark,
        }
    }
}

/// The rules in the order they were added (for listings), and the same
/// most specific first (for classifying).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkTable {
    rules: Vec<MarkRule>,
    by_specificity: Vec<MarkRule>,
}

impl MarkTable {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// In the order they were added.
    pub fn rules(&self) -> &[MarkRule] {
        &self.rules
    }

    /// A new rule; one with the same match is refused.
    pub fn add(&mut self, rule: MarkRule) -> Result<(), LbError> {
        if rule.mark == 0 {
            return Err(LbError::BadMark);
        }
        let matches = rule.matches.normalized()?;
        if self.rules.iter().any(|r| r.matches == matches) {
            return Err(LbError::MarkExists);
        }
        self.rules.push(MarkRule { matches, ..rule });
        self.index();
        Ok(())
    }

    /// Removes the rule with this match.
    pub fn delete(&mut self, m: &MarkMatch) -> Result<(), LbError> {
        let m = m.normalized()?;
        let i = self
            .rules
            .iter()
            .position(|r| r.matches == m)
            .ok_or(LbError::NoMark)?;
        self.rules.remove(i);
        self.index();
        Ok(())
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.by_specificity.clear();
    }

    fn index(&mut self) {
        self.by_specificity = self.rules.clone();
        // Stable: among equally specific rules the older one wins.
        self.by_specificity
            .sort_by_key(|r| std::cmp::Reverse(r.matches.specificity()));
    }

    /// The mark of a packet to `addr:port`, if any rule matches.
    #[inline]
    pub fn classify(&self, proto: Protocol, addr: IpAddr, port: u16) -> Option<u32> {
        self.by_specificity
            .iter()
            .find(|r| r.matches.matches(proto, addr, port))
            .map(|r| r.mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rule(proto: Protocol, addr: &str, prefix: u8, ports: (u16, u16), mark: u32) -> MarkRule {
        MarkRule::new(proto, ip(addr), prefix, ports, mark)
    }

    #[test]
    fn most_specific_wins_whatever_the_order() {
        let rules = [
            rule(Protocol::Tcp, "10.0.0.0", 24, (0, 65535), 1),
            rule(Protocol::Tcp, "10.0.0.5", 32, (0, 65535), 2),
            rule(Protocol::Tcp, "10.0.0.5", 32, (80, 80), 3),
            rule(Protocol::Udp, "10.0.0.0", 8, (53, 53), 4),
            rule(Protocol::Tcp, "2001:db8::", 32, (443, 443), 6),
        ];
        for rev in [false, true] {
            let mut t = MarkTable::default();
            let mut rs = rules.to_vec();
            if rev {
                rs.reverse();
            }
            for r in rs {
                t.add(r).unwrap();
            }
            let c = |p, a: &str, port| t.classify(p, ip(a), port);
            assert_eq!(c(Protocol::Tcp, "10.0.0.5", 80), Some(3));
            assert_eq!(c(Protocol::Tcp, "10.0.0.5", 81), Some(2));
            assert_eq!(c(Protocol::Tcp, "10.0.0.6", 80), Some(1));
            assert_eq!(c(Protocol::Udp, "10.0.0.5", 80), None);
            assert_eq!(c(Protocol::Udp, "10.9.9.9", 53), Some(4));
            assert_eq!(c(Protocol::Tcp, "10.0.1.1", 80), None);
            assert_eq!(c(Protocol::Tcp, "2001:db8:1::1", 443), Some(6));
            assert_eq!(c(Protocol::Tcp, "2001:db8:1::1", 80), None);
            // The same bits in the other family do not match.
            assert_eq!(c(Protocol::Tcp, "::a00:5", 80), None);
        }
    }

    #[test]
    fn add_delete_and_refusals() {
        let mut t = MarkTable::default();
        // Host bits are cleared, so this is 10.0.0.0/24.
        t.add(rule(Protocol::Tcp, "10.0.0.77", 24, (80, 89), 1))
            .unwrap();
        assert_eq!(t.rules()[0].matches.to_string(), "10.0.0.0/24:80-89");
        assert_eq!(
            t.add(rule(Protocol::Tcp, "10.0.0.0", 24, (80, 89), 2)),
            Err(LbError::MarkExists)
        );
        assert_eq!(
            t.add(rule(Protocol::Tcp, "10.0.0.1", 33, (80, 80), 2)),
            Err(LbError::BadMarkPrefix)
        );
        assert_eq!(
            t.add(rule(Protocol::Tcp, "10.0.0.1", 32, (90, 80), 2)),
            Err(LbError::BadMarkPorts)
        );
        assert_eq!(
            t.add(rule(Protocol::Tcp, "10.0.0.1", 32, (80, 80), 0)),
            Err(LbError::BadMark)
        );
        let m = rule(Protocol::Tcp, "10.0.0.1", 24, (80, 89), 0).matches;
        t.delete(&m).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.delete(&m), Err(LbError::NoMark));
        t.add(rule(Protocol::Udp, "2001:db8::1", 128, (0, 65535), 5))
            .unwrap();
        assert_eq!(t.rules()[0].matches.to_string(), "[2001:db8::1]");
        assert_eq!(t.classify(Protocol::Udp, ip("2001:db8::1"), 9), Some(5));
    }
}
