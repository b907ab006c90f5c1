//! Persistence templates shared by all lcores:
//! `<proto, client & netmask, VIP, vport (0 for port-0 services)> -> real server`,
//! for fwmark services `<IP, client & netmask, mark, 0>`.
//!
//! A sharded-lock hash table, touched only when a connection is created
//! (lookup or create, re-arm) and by the periodic sweep; never on the
//! established-connection path. Connections a template controls hold an
//! `Arc` to it and count themselves in `n_control`; while that count is
//! non-zero an expired template is re-armed for 60 s instead of removed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use super::dest::DestShared;
use super::service::Protocol;
use super::time::Timestamp;

/// Re-arm period of an expired template that still controls connections.
pub const CONTROLLED_REARM_MS: u64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// `None` for a fwmark service's template (the kernel's IPPROTO_IP):
    /// one template for every protocol and port carrying the mark.
    pub proto: Option<Protocol>,
    /// Client address with the service's netmask applied.
    pub caddr: IpAddr,
    /// The VIP; for a fwmark service the mark, in the address's first
    /// 32 bits as the kernel puts it.
    pub vaddr: IpAddr,
    /// The virtual port, 0 for port-0 and fwmark services.
    pub vport: u16,
}

#[derive(Debug)]
pub struct Template {
    pub key: TemplateKey,
    pub dest: Arc<DestShared>,
    /// Expiry in ms on the injected clock.
    expires: AtomicU64,
    /// Live connections this template controls, across lcores.
    n_control: AtomicU32,
}

impl Template {
    pub fn expires(&self) -> Timestamp {
        Timestamp(self.expires.load(Relaxed))
    }
    pub fn n_control(&self) -> u32 {
        self.n_control.load(Relaxed)
    }
    /// A connection now depends on this template.
    pub(crate) fn control(&self) {
        self.n_control.fetch_add(1, Relaxed);
    }
    /// A connection this template controlled is gone.
    pub(crate) fn release(&self) {
        self.n_control.fetch_sub(1, Relaxed);
    }
}

/// A template as `-Lnc` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateInfo {
    pub key: TemplateKey,
    pub dest_addr: IpAddr,
    pub dest_port: u16,
    pub expires_in_ms: u64,
    pub n_control: u32,
}

type Shard = HashMap<TemplateKey, Arc<Template>, ahash::RandomState>;

fn fixed_state() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x9e37_79b9_7f4a_7c15,
        0xbf58_476d_1ce4_e5b9,
        0x94d0_49bb_1331_11eb,
        0x2545_f491_4f6c_dd1d,
    )
}

/// The shared template table.
#[derive(Debug)]
pub struct TemplateTable {
    shards: Box<[Mutex<Shard>]>,
    hasher: ahash::RandomState,
    sweep: AtomicUsize,
}

/// What a lookup found.
pub enum Lookup<'a> {
    /// A valid template, re-armed.
    Found(Arc<Template>),
    /// No (valid) template; create one while the shard stays locked.
    Vacant(Vacant<'a>),
}

/// A locked place for a new template.
pub struct Vacant<'a> {
    guard: MutexGuard<'a, Shard>,
    key: TemplateKey,
}

impl Vacant<'_> {
    /// Insert a template for `dest` expiring at `now + timeout_ms`.
    pub fn insert(
        mut self,
        dest: Arc<DestShared>,
        now: Timestamp,
        timeout_ms: u64,
    ) -> Arc<Template> {
        dest.bind_template();
        let t = Arc::new(Template {
            key: self.key,
            dest,
            expires: AtomicU64::new(now.0.saturating_add(timeout_ms)),
            n_control: AtomicU32::new(0),
        });
        self.guard.insert(self.key, t.clone());
        t
    }
}

fn remove(shard: &mut Shard, key: &TemplateKey) {
    if let Some(t) = shard.remove(key) {
        t.dest.unbind_template();
    }
}

impl Default for TemplateTable {
    fn default() -> Self {
        Self::new(64)
    }
}

impl TemplateTable {
    pub fn new(shards: usize) -> Self {
        TemplateTable {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Shard::with_hasher(fixed_state())))
                .collect(),
            hasher: fixed_state(),
            sweep: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &TemplateKey) -> MutexGuard<'_, Shard> {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        let i = (std::hash::Hasher::finish(&h) as usize) % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Find the template for `key`. A template is used when it has not
    /// expired and `valid` accepts it (real server still available, not
    /// quiescent with expire_quiescent_template); it is then re-armed to
    /// `now + timeout_ms`. An invalid or expired template is removed.
    pub fn lookup(
        &self,
        key: TemplateKey,
        now: Timestamp,
        timeout_ms: u64,
        valid: impl Fn(&Template) -> bool,
    ) -> Lookup<'_> {
        let mut g = self.shard(&key);
        if let Some(t) = g.get(&key) {
            let expired = t.expires.load(Relaxed) <= now.0 && t.n_control() == 0;
            if !expired && valid(t) {
                t.expires.store(now.0.saturating_add(timeout_ms), Relaxed);
                return Lookup::Found(t.clone());
            }
            remove(&mut g, &key);
        }
        Lookup::Vacant(Vacant { guard: g, key })
    }

    /// Sweep up to `shards` shards (round robin over calls): remove expired
    /// templates, re-arm for 60 s those still controlling connections.
    /// Returns how many were removed.
    pub fn expire(&self, now: Timestamp, shards: usize) -> usize {
        let mut removed = 0;
        for _ in 0..shards.min(self.shards.len()) {
            let i = self.sweep.fetch_add(1, Relaxed) % self.shards.len();
            let mut g = self.shards[i].lock().unwrap_or_else(|e| e.into_inner());
            g.retain(|_, t| {
                if t.expires.load(Relaxed) > now.0 {
                    return true;
                }
                if t.n_control() > 0 {
                    t.expires.store(now.0 + CONTROLLED_REARM_MS, Relaxed);
                    return true;
                }
                t.dest.unbind_template();
                removed += 1;
                false
            });
        }
        removed
    }

    /// Sweep every shard.
    pub fn expire_all(&self, now: Timestamp) -> usize {
        self.expire(now, self.shards.len())
    }

    /// Remove every template (e.g. after `-C`).
    pub fn clear(&self) {
        for s in self.shards.iter() {
            let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
            for (_, t) in g.drain() {
                t.dest.unbind_template();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every template, for `-Lnc`.
    pub fn list(&self, now: Timestamp) -> Vec<TemplateInfo> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            let g = s.lock().unwrap_or_else(|e| e.into_inner());
            for t in g.values() {
                out.push(TemplateInfo {
                    key: t.key,
                    dest_addr: t.dest.addr,
                    dest_port: t.dest.port,
                    expires_in_ms: t.expires.load(Relaxed).saturating_sub(now.0),
                    n_control: t.n_control(),
                });
            }
        }
        out
    }
}
