//! Issue 4's main end-to-end test: rvsd on two veth pairs (client side,
//! server side), configured through rvsadm with the ipvsadm seed commands,
//! crafted client and real-server frames injected with scapy, and every
//! frame rvsd emits checked field by field: NAT, DR and TUN rewrites, ARP for
//! the VIPs and for the real servers, rr order, weight 0, -d, -D, -C,
//! persistence, then `-Ln --stats --exact` and `-Lnc`.
//!
//! Needs root and /usr/bin/python3 with scapy: `#[ignore]`d, run with
//! `cargo test --test rvsd_forwarding -- --ignored` (scripts/test does).
#![cfg(feature = "dpdk")]

#[path = "rvsd_common.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

// Client network (rvsd's client port) and server network (its server port).
const L_CLIENT: &str = "198.18.1.1";
const L_SERVER: &str = "198.18.2.1";
const V1: &str = "198.18.1.100";
const V2: &str = "198.18.1.101";
const C1: &str = "198.18.1.2";
const C2: &str = "198.18.1.3";
const C3: &str = "198.18.1.4";
const R1: &str = "198.18.2.11";
const R2: &str = "198.18.2.12";
const R3: &str = "198.18.2.13";
const R4: &str = "198.18.2.14";

fn mac_of(ip: &str) -> String {
    let o: Vec<u8> = ip.split('.').map(|x| x.parse().unwrap()).collect();
    format!("02:00:00:00:{:02x}:{:02x}", o[2], o[3])
}

struct World {
    lab: Lab,
    ct: String,   // test end, client side
    st: String,   // test end, server side
    cmac: String, // rvsd's client port MAC
    smac: String, // rvsd's server port MAC
}

impl World {
    fn syn(&self, c: &str, sport: u16, vip: &str) -> Value {
        tcp(
            &mac_of(c),
            &self.cmac,
            (c, sport),
            (vip, 80),
            "S",
            1000,
            0,
            "",
        )
    }

    /// Send `frames` on the client side, wait for `n` IP frames on the
    /// server side (plus 300 ms for strays); the server side's IP frames.
    fn send_to_servers(&mut self, frames: Vec<Value>, n: usize) -> Vec<Value> {
        self.send_to_servers_within(frames, n, 5000)
    }

    /// The same, waiting at most `ms` (for what should not arrive).
    fn send_to_servers_within(&mut self, frames: Vec<Value>, n: usize, ms: u64) -> Vec<Value> {
        let (ct, st) = (self.ct.clone(), self.st.clone());
        self.lab.send(&ct, frames);
        let got = self.lab.collect(&[&st, &ct], n, ms, 300);
        assert!(
            ip_frames(&got[&ct]).is_empty(),
            "rvsd sent IP back to the client side: {:?}",
            got[&ct]
        );
        got[&st]
            .iter()
            .filter(|f| f.get("ip").is_some())
            .cloned()
            .collect()
    }
}

/// Check a NAT frame toward a real server: dst rewritten, TTL-1, checksums,
/// MACs; returns the real server address.
fn check_nat_in(w: &World, f: &Value, client: &str, sport: u16, rport: u16) -> String {
    let ip = &f["ip"];
    let t = &ip["tcp"];
    let rs = s(&ip["dst"]).to_string();
    assert_eq!(s(&ip["src"]), client, "{f}");
    assert_eq!(u(&t["sport"]), sport as u64, "{f}");
    assert_eq!(u(&t["dport"]), rport as u64, "{f}");
    assert_eq!(u(&ip["ttl"]), 63, "{f}");
    assert_eq!(ip["chk_ok"], true, "IP checksum: {f}");
    assert_eq!(t["chk_ok"], true, "TCP checksum: {f}");
    assert_eq!(s(&f["eth_src"]), w.smac, "{f}");
    assert_eq!(s(&f["eth_dst"]), mac_of(&rs), "{f}");
    rs
}

#[test]
#[ignore = "needs root (veths, AF_PACKET) and python3-scapy; scripts/test runs it"]
fn rvsd_forwarding_nat_dr_tun() {
    require_root_and_scapy();
    let t0 = Instant::now();
    let mut lab = Lab::new("f", 2);
    let (cd, sd) = (lab.pairs[0].dut.clone(), lab.pairs[1].dut.clone());
    let (ct, st) = (lab.pairs[0].tap.clone(), lab.pairs[1].tap.clone());
    let config = format!(
        r#"
[workers]
lcores = [1]
mbufs = 4096
[lb]
connections = 16384
[[port]]
name = "client"
device = "net_af_packet0,iface={cd}"
role = "client"
addresses = ["{L_CLIENT}/24"]
[[port]]
name = "server"
device = "net_af_packet1,iface={sd}"
role = "server"
addresses = ["{L_SERVER}/24"]
"#
    );
    lab.start_injector();
    lab.start_rvsd(&config, &["-l", "0,1"], 90);
    let (cmac, smac) = (lab.mac(&cd), lab.mac(&sd));
    // The helper answers rvsd's ARP requests for the clients and servers.
    let ctab: Vec<(String, String)> = [C1, C2, C3]
        .iter()
        .map(|a| (a.to_string(), mac_of(a)))
        .collect();
    let stab: Vec<(String, String)> = [R1, R2, R3, R4]
        .iter()
        .map(|a| (a.to_string(), mac_of(a)))
        .collect();
    let as_ref = |v: &Vec<(String, String)>| {
        v.iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let (ctab, stab) = (as_ref(&ctab), as_ref(&stab));
    lab.arp_table(
        &ct,
        &ctab
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    lab.arp_table(
        &st,
        &stab
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    let mut w = World {
        lab,
        ct: ct.clone(),
        st: st.clone(),
        cmac,
        smac,
    };

    // --- the seed configuration -------------------------------------------
    for line in [
        format!("-A -t {V1}:80 -s rr"),
        format!("-a -t {V1}:80 -r {R1}:8080 -m -w 1"),
        format!("-a -t {V1}:80 -r {R2}:8080 -m -w 1"),
        // One service mixing methods (IPVS allows it): DR and TUN.
        format!("-A -t {V2}:80 -s rr"),
        format!("-a -t {V2}:80 -r {R3} -g -w 2"),
        format!("-a -t {V2}:80 -r {R4} -i -w 1"),
    ] {
        w.lab.adm_line(&line);
    }
    let ln = w.lab.adm_ok(&["-Ln"]);
    for row in [
        format!("TCP  {V1}:80 rr"),
        format!("  -> {R1}:8080"),
        format!("TCP  {V2}:80 rr"),
    ] {
        assert!(ln.contains(&row), "{row:?} missing in -Ln:\n{ln}");
    }
    assert!(
        ln.contains("Masq    1") && ln.contains("Route   2") && ln.contains("Tunnel  1"),
        "{ln}"
    );

    // --- ARP for the VIPs: rvsd answers on the client side -----------------
    for vip in [V1, V2] {
        let mut answered = None;
        for _ in 0..3 {
            w.lab.send(&ct, vec![arp_request(&mac_of(C1), C1, vip)]);
            let got = w.lab.collect(&[&ct], 0, 500, 0);
            answered = got[&ct]
                .iter()
                .find(|f| f["arp"]["op"] == 2 && s(&f["arp"]["psrc"]) == vip)
                .cloned();
            if answered.is_some() {
                break;
            }
        }
        let a = answered.unwrap_or_else(|| panic!("no ARP reply for {vip}"));
        assert_eq!(s(&a["arp"]["hwsrc"]), w.cmac, "{a}");
        assert_eq!(s(&a["eth_dst"]), mac_of(C1), "{a}");
        assert_eq!(s(&a["arp"]["pdst"]), C1, "{a}");
    }
    // ... and not for an address that is no VIP.
    w.lab
        .send(&ct, vec![arp_request(&mac_of(C1), C1, "198.18.1.199")]);
    let got = w.lab.collect(&[&ct], 0, 300, 0);
    assert!(
        got[&ct].iter().all(|f| f.get("arp").is_none()),
        "{:?}",
        got[&ct]
    );

    // --- NAT: four SYNs, rr over R1/R2 (newest first: R2) ------------------
    let syns: Vec<Value> = (40001..=40004).map(|p| w.syn(C1, p, V1)).collect();
    let out = w.send_to_servers(syns, 4);
    assert_eq!(out.len(), 4, "{out:?}");
    let mut placed = BTreeMap::new();
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        assert_eq!(s(&f["ip"]["tcp"]["flags"]), "S");
        let rs = check_nat_in(&w, f, C1, sport, 8080);
        placed.insert(sport, rs);
    }
    let order: Vec<&str> = (40001..=40004).map(|p| placed[&p].as_str()).collect();
    assert_eq!(order, [R2, R1, R2, R1], "rr order by client port");
    // rvsd asked for the real servers' MACs by ARP (the helper answered).
    let v = w.lab.inj(serde_json::json!({"op": "stats"}));
    assert!(u(&v["arp_answered"][&st]) >= 2, "{v}");

    // --- NAT replies come back from the VIP --------------------------------
    let mut replies = Vec::new();
    for p in 40001..=40004u16 {
        let rs = placed[&p].clone();
        replies.push(tcp(
            &mac_of(&rs),
            &w.smac,
            (&rs, 8080),
            (C1, p),
            "SA",
            5000,
            1001,
            "",
        ));
    }
    w.lab.send(&st, replies);
    let got = w.lab.collect(&[&ct, &st], 4, 5000, 300);
    assert!(ip_frames(&got[&st]).is_empty(), "{:?}", got[&st]);
    let back = ip_frames(&got[&ct]);
    assert_eq!(back.len(), 4, "{:?}", got[&ct]);
    for f in back {
        let ip = &f["ip"];
        assert_eq!(s(&ip["src"]), V1, "{f}");
        assert_eq!(u(&ip["tcp"]["sport"]), 80, "{f}");
        assert_eq!(s(&ip["dst"]), C1, "{f}");
        assert!((40001..=40004).contains(&u(&ip["tcp"]["dport"])), "{f}");
        assert_eq!(s(&ip["tcp"]["flags"]), "SA", "{f}");
        assert_eq!(u(&ip["ttl"]), 63, "{f}");
        assert_eq!(ip["chk_ok"], true, "{f}");
        assert_eq!(ip["tcp"]["chk_ok"], true, "{f}");
        assert_eq!(s(&f["eth_src"]), w.cmac, "{f}");
        assert_eq!(s(&f["eth_dst"]), mac_of(C1), "{f}");
    }

    // --- ACK + data from the client reach the same real servers -----------
    let data: Vec<Value> = (40001..=40004u16)
        .map(|p| {
            tcp(
                &mac_of(C1),
                &w.cmac,
                (C1, p),
                (V1, 80),
                "PA",
                1001,
                5001,
                "GET / HTTP/1.0\r\n\r\n",
            )
        })
        .collect();
    let out = w.send_to_servers(data, 4);
    assert_eq!(out.len(), 4, "{out:?}");
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        let rs = check_nat_in(&w, f, C1, sport, 8080);
        assert_eq!(rs, placed[&sport], "connection moved: {f}");
        assert_eq!(s(&f["ip"]["tcp"]["payload"]), "GET / HTTP/1.0\r\n\r\n");
    }

    // --- DR and TUN on one service -------------------------------------------
    let out = w.send_to_servers(vec![w.syn(C1, 41001, V2), w.syn(C1, 41002, V2)], 2);
    assert_eq!(out.len(), 2, "{out:?}");
    let mut seen = BTreeMap::new();
    for f in &out {
        let ip = &f["ip"];
        if ip.get("inner").is_some() {
            // TUN: IPIP from the balancer's server-side address.
            assert_eq!(u(&ip["proto"]), 4, "{f}");
            assert_eq!(s(&ip["src"]), L_SERVER, "{f}");
            assert_eq!(s(&ip["dst"]), R4, "{f}");
            assert_eq!(ip["chk_ok"], true, "{f}");
            assert_eq!(s(&f["eth_dst"]), mac_of(R4), "{f}");
            assert_eq!(s(&f["eth_src"]), w.smac, "{f}");
            let inner = &ip["inner"];
            assert_eq!(s(&inner["src"]), C1, "{f}");
            assert_eq!(s(&inner["dst"]), V2, "{f}");
            assert_eq!(u(&inner["ttl"]), 63, "{f}");
            assert_eq!(inner["chk_ok"], true, "{f}");
            assert_eq!(u(&inner["tcp"]["dport"]), 80, "{f}");
            assert_eq!(inner["tcp"]["chk_ok"], true, "{f}");
            assert_eq!(u(&ip["len"]), u(&inner["len"]) + 20, "{f}");
            seen.insert(u(&inner["tcp"]["sport"]), R4);
        } else {
            // DR: only the MACs change (and the TTL).
            assert_eq!(s(&ip["src"]), C1, "{f}");
            assert_eq!(s(&ip["dst"]), V2, "{f}");
            assert_eq!(u(&ip["tcp"]["dport"]), 80, "{f}");
            assert_eq!(u(&ip["ttl"]), 63, "{f}");
            assert_eq!(ip["chk_ok"], true, "{f}");
            assert_eq!(ip["tcp"]["chk_ok"], true, "{f}");
            assert_eq!(s(&f["eth_dst"]), mac_of(R3), "{f}");
            assert_eq!(s(&f["eth_src"]), w.smac, "{f}");
            seen.insert(u(&ip["tcp"]["sport"]), R3);
        }
    }
    // rr, newest first: R4 (TUN), then R3 (DR).
    assert_eq!(seen.get(&41001), Some(&R4), "{out:?}");
    assert_eq!(seen.get(&41002), Some(&R3), "{out:?}");

    // --- weight 0: no new connection, existing ones continue ---------------
    w.lab
        .adm_line(&format!("-e -t {V1}:80 -r {R1}:8080 -m -w 0"));
    let out = w.send_to_servers((40011..=40014).map(|p| w.syn(C1, p, V1)).collect(), 4);
    assert_eq!(out.len(), 4, "{out:?}");
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        assert_eq!(
            check_nat_in(&w, f, C1, sport, 8080),
            R2,
            "weight 0 got a new connection: {f}"
        );
    }
    let on_r1: Vec<u16> = (40001..=40004).filter(|p| placed[p] == R1).collect();
    let out = w.send_to_servers(
        on_r1
            .iter()
            .map(|&p| tcp(&mac_of(C1), &w.cmac, (C1, p), (V1, 80), "A", 1019, 5001, ""))
            .collect(),
        on_r1.len(),
    );
    assert_eq!(out.len(), on_r1.len(), "{out:?}");
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        assert_eq!(check_nat_in(&w, f, C1, sport, 8080), R1, "{f}");
    }

    // --- -d: the deleted server gets nothing more --------------------------
    w.lab.adm_line(&format!("-d -t {V1}:80 -r {R1}:8080"));
    let mut frames: Vec<Value> = on_r1
        .iter()
        .map(|&p| tcp(&mac_of(C1), &w.cmac, (C1, p), (V1, 80), "A", 1019, 5001, ""))
        .collect();
    frames.extend((40021..=40022).map(|p| w.syn(C1, p, V1)));
    let out = w.send_to_servers_within(frames, 2 + on_r1.len(), 1000);
    assert!(
        out.iter().all(|f| s(&f["ip"]["dst"]) != R1),
        "deleted server got: {out:?}"
    );
    assert_eq!(out.len(), 2, "{out:?}");
    let ln = w.lab.adm_ok(&["-Ln"]);
    assert!(!ln.contains(R1), "{ln}");

    // --- -D: the service, its VIP and its traffic are gone ----------------
    w.lab.adm_line(&format!("-D -t {V2}:80"));
    let out = w.send_to_servers_within(vec![w.syn(C1, 41003, V2)], 1, 700);
    assert!(out.is_empty(), "deleted service forwarded: {out:?}");
    w.lab.send(&ct, vec![arp_request(&mac_of(C1), C1, V2)]);
    let got = w.lab.collect(&[&ct], 0, 300, 0);
    assert!(
        got[&ct].iter().all(|f| f.get("arp").is_none()),
        "ARP for a deleted VIP: {:?}",
        got[&ct]
    );

    // --- -C: nothing left ----------------------------------------------------
    w.lab.adm_line("-C");
    let ln = w.lab.adm_ok(&["-Ln"]);
    assert!(!ln.contains("TCP"), "{ln}");
    let out = w.send_to_servers_within(vec![w.syn(C1, 40031, V1)], 1, 700);
    assert!(out.is_empty(), "forwarded after -C: {out:?}");

    // --- persistence: one client sticks to one server across ports --------
    w.lab.adm_line(&format!("-A -t {V1}:80 -s rr -p 300"));
    w.lab
        .adm_line(&format!("-a -t {V1}:80 -r {R1}:8080 -m -w 1"));
    w.lab
        .adm_line(&format!("-a -t {V1}:80 -r {R2}:8080 -m -w 1"));
    let ln = w.lab.adm_ok(&["-Ln"]);
    assert!(
        ln.contains(&format!("TCP  {V1}:80 rr persistent 300")),
        "{ln}"
    );
    let mut in_pkts = 0u64;
    let mut in_bytes = 0u64;
    let mut out_pkts = 0u64;
    let mut out_bytes = 0u64;
    let mut per_rs: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let c2_syns: Vec<Value> = (42001..=42006).map(|p| w.syn(C2, p, V1)).collect();
    let lens = w.lab.send(&ct, c2_syns);
    let got = w.lab.collect(&[&st], 6, 5000, 300);
    let out = ip_frames(&got[&st]);
    assert_eq!(out.len(), 6, "{out:?}");
    let c2_rs = s(&out[0]["ip"]["dst"]).to_string();
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        assert_eq!(
            check_nat_in(&w, f, C2, sport, 8080),
            c2_rs,
            "persistence broken: {f}"
        );
    }
    in_pkts += 6;
    in_bytes += lens.iter().sum::<u64>();
    {
        let e = per_rs.entry(c2_rs.clone()).or_default();
        e[0] += 6; // conns
        e[1] += 6;
        e[3] += lens.iter().sum::<u64>();
    }
    // Another client goes to the other server (rr moves on), and sticks.
    let lens = w
        .lab
        .send(&ct, vec![w.syn(C3, 43001, V1), w.syn(C3, 43002, V1)]);
    let got = w.lab.collect(&[&st], 2, 5000, 300);
    let out = ip_frames(&got[&st]);
    assert_eq!(out.len(), 2, "{out:?}");
    let c3_rs = s(&out[0]["ip"]["dst"]).to_string();
    assert_ne!(c3_rs, c2_rs, "rr did not move on for a new client");
    for f in &out {
        let sport = u(&f["ip"]["tcp"]["sport"]) as u16;
        assert_eq!(check_nat_in(&w, f, C3, sport, 8080), c3_rs, "{f}");
    }
    in_pkts += 2;
    in_bytes += lens.iter().sum::<u64>();
    {
        let e = per_rs.entry(c3_rs.clone()).or_default();
        e[0] += 2;
        e[1] += 2;
        e[3] += lens.iter().sum::<u64>();
    }
    // One connection completes its handshake (SYN-ACK, ACK + data).
    let lens = w.lab.send(
        &st,
        vec![tcp(
            &mac_of(&c2_rs),
            &w.smac,
            (&c2_rs, 8080),
            (C2, 42001),
            "SA",
            7000,
            1001,
            "",
        )],
    );
    let got = w.lab.collect(&[&ct], 1, 5000, 300);
    let back = ip_frames(&got[&ct]);
    assert_eq!(back.len(), 1, "{:?}", got[&ct]);
    assert_eq!(s(&back[0]["ip"]["src"]), V1);
    out_pkts += 1;
    out_bytes += lens[0];
    per_rs.get_mut(&c2_rs).unwrap()[2] += 1;
    per_rs.get_mut(&c2_rs).unwrap()[4] += lens[0];
    let lens = w.lab.send(
        &ct,
        vec![tcp(
            &mac_of(C2),
            &w.cmac,
            (C2, 42001),
            (V1, 80),
            "PA",
            1001,
            7001,
            "hello",
        )],
    );
    let got = w.lab.collect(&[&st], 1, 5000, 300);
    assert_eq!(ip_frames(&got[&st]).len(), 1, "{:?}", got[&st]);
    in_pkts += 1;
    in_bytes += lens[0];
    per_rs.get_mut(&c2_rs).unwrap()[1] += 1;
    per_rs.get_mut(&c2_rs).unwrap()[3] += lens[0];

    // --- -Ln --stats --exact counts exactly what was sent ------------------
    let stats = w.lab.adm_ok(&["-Ln", "--stats", "--exact"]);
    let nums = |line: &str| -> Vec<u64> {
        line.split_whitespace()
            .skip_while(|t| !t.contains(':'))
            .skip(1)
            .map(|t| t.parse().unwrap())
            .collect()
    };
    let svc = stats
        .lines()
        .find(|l| l.starts_with(&format!("TCP  {V1}:80")))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        nums(svc),
        vec![8, in_pkts, out_pkts, in_bytes, out_bytes],
        "service row:\n{stats}"
    );
    for (rs, e) in &per_rs {
        let row = stats
            .lines()
            .find(|l| l.starts_with(&format!("  -> {rs}:8080")))
            .unwrap_or_else(|| panic!("{rs} missing:\n{stats}"));
        assert_eq!(nums(row), e.to_vec(), "{rs} row:\n{stats}");
    }

    // --- -Lnc lists the connections and the templates ----------------------
    let conns = w.lab.adm_ok(&["-Lnc"]);
    let lines: Vec<&str> = conns.lines().collect();
    assert_eq!(lines[0], "IPVS connection entries", "{conns}");
    assert!(lines[1].starts_with("pro expire state"), "{conns}");
    let row = |client: String, rs: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" {client} ")) && l.ends_with(&format!(" {rs}:8080")))
            .map(|l| l.to_string())
            .collect()
    };
    let est = row(format!("{C2}:42001"), &c2_rs);
    assert_eq!(est.len(), 1, "{conns}");
    let f: Vec<&str> = est[0].split_whitespace().collect();
    assert_eq!(f[0], "TCP", "{conns}");
    assert_eq!(f[2], "ESTABLISHED", "{conns}");
    assert_eq!(f[4], format!("{V1}:80"), "{conns}");
    for p in 42002..=42006 {
        let r = row(format!("{C2}:{p}"), &c2_rs);
        assert_eq!(r.len(), 1, "{C2}:{p}\n{conns}");
        assert!(r[0].contains("SYN_RECV"), "{conns}");
    }
    for p in 43001..=43002 {
        assert_eq!(row(format!("{C3}:{p}"), &c3_rs).len(), 1, "{conns}");
    }
    // Persistence templates: client port 0.
    assert_eq!(
        row(format!("{C2}:0"), &c2_rs).len(),
        1,
        "template for {C2}\n{conns}"
    );
    assert_eq!(
        row(format!("{C3}:0"), &c3_rs).len(),
        1,
        "template for {C3}\n{conns}"
    );

    assert!(w.lab.rvsd_alive(), "rvsd died:\n{}", w.lab.rvsd_log());
    let st = w.lab.stop_rvsd().unwrap();
    assert!(st.success(), "rvsd exit {st}");
    eprintln!("rvsd_forwarding_nat_dr_tun: {:.1?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(60));
}
