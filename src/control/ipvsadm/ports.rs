//! `rvsadm --ports`: each DPDK port, its driver, queues, RSS as requested
//! and in force, how connections reach their owner worker, and counters.

use crate::control::proto::PortInfo;

/// The text form (`--json` prints the protocol's objects instead).
pub fn format(ports: &[PortInfo]) -> String {
    let mut s = String::new();
    for p in ports {
        let speed = match p.speed_mbps {
            Some(m) => format!("{m} Mb/s"),
            None => "unknown".into(),
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        s += &format!(
            "port {} {} ({}): driver {}, mac {}, link {}, speed {speed}\n",
            p.port,
            p.name,
            p.device,
            p.driver,
            p.mac,
            if p.link_up { "up" } else { "down" }
        );
        s += &format!(
            "  queues: rx {} tx {}; offloads in force: rx {} tx {}\n",
            p.rx_queues, p.tx_queues, p.rx_offloads, p.tx_offloads
        );
        s += &format!("  rss requested: {}\n", list(&p.rss.requested));
        s += &format!("  rss in force:  {}\n", list(&p.rss.in_force));
        let key = if p.rss.key_len == 0 {
            "not used".to_string()
        } else {
            format!("{} bytes", p.rss.key_len)
        };
        s += &format!(
            "  rss key: {key}; driver's reta: {} entries; connection owners: {}\n",
            p.rss.reta_size, p.rss.ownership
        );
        s += &format!(
            "  rx {} pkts {} bytes, tx {} pkts {} bytes, rx dropped {}, tx errors {}\n",
            p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_dropped, p.tx_errors
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::RssInfo;

    #[test]
    fn shows_rss_and_unknown_speed() {
        let p = PortInfo {
            port: 1,
            name: "server".into(),
            device: "0000:00:04.0".into(),
            driver: "net_virtio".into(),
            mac: "52:54:00:00:00:02".into(),
            link_up: true,
            speed_mbps: None,
            rx_queues: 2,
            tx_queues: 2,
            rss: RssInfo {
                requested: vec!["ipv4".into(), "l3-dst-only".into()],
                in_force: vec!["ipv4".into()],
                key_len: 40,
                reta_size: 128,
                ownership: "hand-off: no".into(),
            },
            rx_offloads: "0x0".into(),
            tx_offloads: "0x0".into(),
            ..Default::default()
        };
        let t = format(&[p]);
        assert!(t.starts_with(
            "port 1 server (0000:00:04.0): driver net_virtio, mac 52:54:00:00:00:02, link up, speed unknown\n"
        ), "{t}");
        assert!(
            t.contains("  rss requested: ipv4 l3-dst-only\n  rss in force:  ipv4\n"),
            "{t}"
        );
        assert!(
            t.contains(
                "rss key: 40 bytes; driver's reta: 128 entries; connection owners: hand-off: no"
            ),
            "{t}"
        );
    }
}
