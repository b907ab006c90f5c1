//! Rule sets applied as one change. Both `restore` (a whole new set) and
//! `transaction` (changes on top of the rules as they are) first build the
//! result on a draft ([`Wanted`]), checked the way the rules check each
//! step, and touch the rules only when all of it holds; then they make the
//! rules equal to the draft with as few changes as possible
//! ([`apply_rule_set`]), so that what stays keeps its counters, shared
//! state and connections.
//!
//! A transaction is applied to the rules under the handler's lock, so a
//! change another client made and saw acknowledged before is part of its
//! starting point: `rvsadm -R` can no longer undo it.

use std::collections::HashSet;
use std::net::IpAddr;

use super::{dest_config, dest_error, service_config};
use crate::control::proto::{self, Request};
use crate::lb::dest::DestConfig;
use crate::lb::error::LbError;
use crate::lb::marks::MarkTable;
use crate::lb::rules::Rules;
use crate::lb::service::{ServiceConfig, ServiceKey};

/// A rule set checked in full: lb configurations ready to apply. Real
/// servers are in the order they were added (the last is the newest).
pub(super) struct Wanted {
    pub services: Vec<(ServiceConfig, Vec<DestConfig>)>,
    pub marks: MarkTable,
}

impl Wanted {
    /// The rules as they are now.
    pub fn current(rules: &Rules) -> Wanted {
        Wanted {
            services: rules
                .services()
                // The rules keep real servers newest first.
                .map(|(cfg, _, dests)| (cfg.clone(), dests.iter().rev().map(|d| d.cfg).collect()))
                .collect(),
            marks: rules.marks().clone(),
        }
    }

    fn pos(&self, key: &ServiceKey) -> Result<usize, LbError> {
        self.services
            .iter()
            .position(|(c, _)| c.key == *key)
            .ok_or(LbError::NoService)
    }

    /// One change of a transaction, refused with the message the same
    /// request alone would get. `--set` values are collected in
    /// `timeouts`, to apply after the rules.
    pub fn apply(
        &mut self,
        change: &Request,
        timeouts: &mut Vec<proto::Timeouts>,
    ) -> Result<(), String> {
        let lb = |e: LbError| e.to_string();
        match change {
            Request::AddService { service } => {
                let cfg = service_config(service)?;
                cfg.validate().map_err(lb)?;
                if self.pos(&cfg.key).is_ok() {
                    return Err(lb(LbError::ServiceExists));
                }
                self.services.push((cfg, Vec::new()));
            }
            Request::EditService { service } => {
                let cfg = service_config(service)?;
                cfg.validate().map_err(lb)?;
                let i = self.pos(&cfg.key).map_err(lb)?;
                self.services[i].0 = cfg;
            }
            Request::DeleteService { service } => {
                let i = self.pos(&super::service_key(service)).map_err(lb)?;
                self.services.remove(i);
            }
            Request::AddDest { service, dest } => {
                let key = super::service_key(service);
                let i = self.pos(&key).map_err(dest_error)?;
                let mut d = dest_config(dest);
                d.normalize(&key).map_err(dest_error)?;
                let dests = &mut self.services[i].1;
                if dests.iter().any(|c| (c.addr, c.port) == (d.addr, d.port)) {
                    return Err(dest_error(LbError::DestExists));
                }
                dests.push(d);
            }
            Request::EditDest { service, dest } => {
                let key = super::service_key(service);
                let i = self.pos(&key).map_err(dest_error)?;
                let mut d = dest_config(dest);
                d.normalize(&key).map_err(dest_error)?;
                let c = self.services[i]
                    .1
                    .iter_mut()
                    .find(|c| (c.addr, c.port) == (d.addr, d.port))
                    .ok_or_else(|| dest_error(LbError::NoDest))?;
                *c = d;
            }
            Request::DeleteDest { service, dest } => {
                let i = self.pos(&super::service_key(service)).map_err(dest_error)?;
                let dests = &mut self.services[i].1;
                let j = dests
                    .iter()
                    .position(|c| (c.addr, c.port) == (dest.address, dest.port))
                    .ok_or_else(|| dest_error(LbError::NoDest))?;
                dests.remove(j);
            }
            Request::Clear => {
                self.services.clear();
                self.marks.clear();
            }
            Request::AddMark { mark } => self.marks.add(super::mark_rule(mark)?).map_err(lb)?,
            Request::DeleteMark { mark } => {
                self.marks.delete(&super::mark_match(mark)?).map_err(lb)?
            }
            Request::SetTimeouts { timeouts: t } => timeouts.push(*t),
            other => {
                let op = serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(String::from))
                    .unwrap_or_default();
                return Err(format!("rvsd: {op} cannot be part of a transaction"));
            }
        }
        Ok(())
    }
}

/// A whole rule set (`restore`), checked: services unique, each valid, its
/// real servers unique and valid.
pub(super) fn check_rule_set(set: &proto::RuleSet) -> Result<Wanted, String> {
    let mut marks = MarkTable::default();
    for m in &set.marks {
        let rule = super::mark_rule(m)?;
        marks
            .add(rule)
            .map_err(|e| format!("mark {}: {e}", rule.matches))?;
    }
    let mut seen = HashSet::new();
    let mut services = Vec::with_capacity(set.services.len());
    for sr in &set.services {
        let cfg = service_config(&sr.service)?;
        cfg.validate().map_err(|e| format!("{}: {e}", cfg.key))?;
        if !seen.insert(cfg.key) {
            return Err(format!("{}: {}", cfg.key, LbError::ServiceExists));
        }
        let mut dkeys = HashSet::new();
        let mut dests = Vec::with_capacity(sr.dests.len());
        for d in &sr.dests {
            let mut dc = dest_config(d);
            dc.normalize(&cfg.key)
                .map_err(|e| format!("{}: {e}", cfg.key))?;
            if !dkeys.insert((dc.addr, dc.port)) {
                return Err(format!("{}: {}", cfg.key, LbError::DestExists));
            }
            dests.push(dc);
        }
        services.push((cfg, dests));
    }
    Ok(Wanted { services, marks })
}

/// Make `rules` equal to `w` (already checked, so no step is expected to fail).
pub(super) fn apply_rule_set(rules: &mut Rules, w: &Wanted) -> Result<(), LbError> {
    if rules.marks() != &w.marks {
        rules.set_marks(w.marks.clone());
    }
    let wanted_keys: HashSet<ServiceKey> = w.services.iter().map(|(c, _)| c.key).collect();
    let gone: Vec<ServiceKey> = rules
        .services()
        .map(|(c, _, _)| c.key)
        .filter(|k| !wanted_keys.contains(k))
        .collect();
    for k in gone {
        rules.delete_service(&k)?;
    }
    for (cfg, dests) in &w.services {
        let current = rules
            .service(&cfg.key)
            .ok()
            .map(|(c, _, ds)| (c.clone(), ds.iter().map(|d| d.cfg).collect::<Vec<_>>()));
        match current {
            None => {
                rules.add_service(cfg.clone())?;
                for d in dests {
                    rules.add_dest(&cfg.key, *d)?;
                }
            }
            Some((cur_cfg, cur_dests)) => {
                if &cur_cfg != cfg {
                    rules.edit_service(cfg.clone())?;
                }
                let keep: HashSet<(IpAddr, u16)> = dests.iter().map(|d| (d.addr, d.port)).collect();
                for d in cur_dests
                    .iter()
                    .filter(|d| !keep.contains(&(d.addr, d.port)))
                {
                    rules.delete_dest(&cfg.key, d.addr, d.port)?;
                }
                for d in dests {
                    match cur_dests
                        .iter()
                        .find(|c| (c.addr, c.port) == (d.addr, d.port))
                    {
                        Some(c) if c == d => {}
                        Some(_) => rules.edit_dest(&cfg.key, *d)?,
                        None => rules.add_dest(&cfg.key, *d)?,
                    }
                }
            }
        }
    }
    Ok(())
}
