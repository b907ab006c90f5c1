//! Connections and templates as `ipvsadm -Lnc` lists them.

use std::net::SocketAddr;

use super::{ConnState, Engine};
use crate::lb::conntable::{self, flag, DestEndpoints};
use crate::lb::persist::TemplateInfo;
use crate::lb::service::Protocol;
use crate::lb::tcp_state::TcpState;
use crate::lb::time::Timestamp;

/// A connection or template as `ipvsadm -Lnc` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// `None`: a fwmark service's template, of every protocol.
    pub proto: Option<Protocol>,
    pub state: &'static str,
    pub expires_in_ms: u64,
    pub client: SocketAddr,
    pub vip: SocketAddr,
    pub dest: SocketAddr,
    pub template: bool,
}

impl ConnInfo {
    /// The `expire` column: `mm:ss`.
    pub fn expire_mmss(&self) -> String {
        let s = self.expires_in_ms / 1000;
        format!("{:02}:{:02}", s / 60, s % 60)
    }

    /// A template as a listing row (client port 0).
    pub fn from_template(t: &TemplateInfo) -> Self {
        ConnInfo {
            proto: t.key.proto,
            state: match t.key.proto {
                Some(Protocol::Udp) => ConnState::Udp.name(),
                _ => TcpState::None.name(),
            },
            expires_in_ms: t.expires_in_ms,
            client: SocketAddr::new(t.key.caddr, 0),
            vip: SocketAddr::new(t.key.vaddr, t.key.vport),
            dest: SocketAddr::new(t.dest_addr, t.dest_port),
            template: true,
        }
    }
}

impl Engine {
    /// This lcore's connections for `-Lnc` (templates: [`Engine::list_templates`]).
    pub fn list_conns(&self, now: Timestamp) -> Vec<ConnInfo> {
        self.list_conns_page(now, 0, usize::MAX).0
    }

    /// At most `max` connections from table slot `from` on, and the slot
    /// to resume from (`None`: the table is done). Pages taken between
    /// bursts may miss or repeat a connection that moved meanwhile, as the
    /// kernel's `/proc` listing may.
    pub fn list_conns_page(
        &self,
        now: Timestamp,
        from: u32,
        max: usize,
    ) -> (Vec<ConnInfo>, Option<u32>) {
        let mut next = None;
        let mut out = Vec::new();
        for (i, c) in self.table.iter_from(from) {
            if out.len() == max {
                next = Some(i);
                break;
            }
            out.push(self.conn_info(c, now));
        }
        (out, next)
    }

    fn conn_info(&self, c: &conntable::Conn, now: Timestamp) -> ConnInfo {
        let v6 = c.has(flag::V6);
        let (daddr, _) = self.slab.endpoint(c.dest);
        let dport = c.rport;
        ConnInfo {
            proto: Some(c.proto()),
            state: if c.has(flag::UDP) {
                ConnState::Udp.name()
            } else {
                TcpState::from_u8(c.state).name()
            },
            expires_in_ms: c.expires.saturating_sub(now.0),
            client: SocketAddr::new(c.client(), c.cport),
            vip: SocketAddr::new(c.vip(), c.vport),
            dest: SocketAddr::new(conntable::ip_from16(daddr, v6), dport),
            template: false,
        }
    }

    /// The shared persistence templates as `-Lnc` rows.
    pub fn list_templates(&self, now: Timestamp) -> Vec<ConnInfo> {
        self.templates
            .list(now)
            .iter()
            .map(ConnInfo::from_template)
            .collect()
    }
}
