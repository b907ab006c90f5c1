//! Persistence templates: held across lcores, kept while they control
//! connections, quiescent and deleted real servers.

use super::*;

fn persistent_rules(mask: Option<Netmask>) -> Rules {
    rules_with(
        ServiceConfig::new(Protocol::Tcp, ip(VIP), 80)
            .with_scheduler("rr")
            .with_persistence(360, mask),
        &[DestConfig::new(ip(RS1), 80), DestConfig::new(ip(RS2), 80)],
    )
}

#[test]
fn persistence_holds_across_two_lcores() {
    let r = persistent_rules(Some(Netmask::V4("255.255.255.0".parse().unwrap())));
    let tpl = Arc::new(TemplateTable::default());
    let mut e0 = Engine::with_factory(0, 64, r.snapshot(), tpl.clone(), Timestamp::ZERO, factory);
    let mut e1 = Engine::with_factory(1, 64, r.snapshot(), tpl.clone(), Timestamp::ZERO, factory);
    let a = fwd(e0.process(&tcp_in(client(1), 1000, SYN), Timestamp::ZERO));
    // Same client, another port, on the other lcore (whose rr would pick
    // index 0 first as well; make it differ by scheduling someone else).
    let mut other_net = tcp_in(ip("172.17.0.1"), 5, SYN);
    other_net.dport = 80;
    let x = fwd(e1.process(&other_net, Timestamp::ZERO));
    let b = fwd(e1.process(&tcp_in(client(1), 2000, SYN), Timestamp(10)));
    assert_eq!(b.daddr, a.daddr);
    // Same /24: same server.
    let c = fwd(e0.process(&tcp_in(client(77), 3000, SYN), Timestamp(20)));
    assert_eq!(c.daddr, a.daddr);
    assert_eq!(tpl.len(), 2); // 172.16.0.0/24 and 172.17.0.0/24
    let (_, _, p) = counts(&r, &tkey(), if a.daddr == ip(RS1) { RS1 } else { RS2 });
    assert_eq!(p, if x.daddr == a.daddr { 2 } else { 1 });

    // Listing: templates with client port 0, state NONE, 360 s.
    let l = e0.list_templates(Timestamp(20));
    let t = l
        .iter()
        .find(|t| t.client.ip() == ip("172.16.0.0"))
        .unwrap();
    assert_eq!(t.client.port(), 0);
    assert_eq!(t.state, "NONE");
    assert_eq!(t.vip, "192.168.1.100:80".parse().unwrap());
    assert_eq!(t.expires_in_ms, 360_000);
    assert!(t.template);

    // Connections gone (RST -> CLOSE 10 s), template expires at 360 s after
    // its last use and only then.
    fwd(e0.process(&tcp_in(client(1), 1000, RST), Timestamp(30)));
    fwd(e1.process(&tcp_in(client(1), 2000, RST), Timestamp(30)));
    fwd(e0.process(&tcp_in(client(77), 3000, RST), Timestamp(30)));
    fwd(e1.process(&tcp_in(ip("172.17.0.1"), 5, RST), Timestamp(30)));
    e0.expire(Timestamp(100_000), usize::MAX);
    e1.expire(Timestamp(100_000), usize::MAX);
    // 172.17.0.0/24 was last used at 0, 172.16.0.0/24 at 20 ms.
    assert_eq!(tpl.expire_all(Timestamp(359_999)), 0);
    assert_eq!(tpl.expire_all(Timestamp(360_000)), 1);
    assert_eq!(tpl.expire_all(Timestamp(360_019)), 0);
    assert_eq!(tpl.expire_all(Timestamp(360_020)), 1);
    for a in [RS1, RS2] {
        assert_eq!(counts(&r, &tkey(), a), (0, 0, 0));
    }
}

#[test]
fn template_kept_while_it_controls_connections() {
    let r = persistent_rules(None);
    let mut e = engine(&r, 64);
    let tpl = e.templates().clone();
    fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    fwd(e.process(&tcp_in(client(1), 1, ACK), Timestamp(1)));
    // At 360 s the template is due but its connection (ESTABLISHED, 900 s)
    // lives: re-armed for 60 s.
    assert_eq!(tpl.expire_all(Timestamp(360_000)), 0);
    assert_eq!(tpl.list(Timestamp(360_000))[0].expires_in_ms, 60_000);
    assert_eq!(tpl.list(Timestamp(360_000))[0].n_control, 1);
    // A new connection from the client re-arms it to the full timeout.
    fwd(e.process(&tcp_in(client(1), 2, SYN), Timestamp(400_000)));
    assert_eq!(tpl.list(Timestamp(400_000))[0].expires_in_ms, 360_000);
    assert_eq!(tpl.list(Timestamp(400_000))[0].n_control, 2);
    e.flush();
    assert_eq!(tpl.list(Timestamp(400_000))[0].n_control, 0);
    assert_eq!(tpl.expire_all(Timestamp(760_000)), 1);
    assert!(tpl.is_empty());
}

#[test]
fn quiescent_template_follows_expire_quiescent_template() {
    for eqt in [false, true] {
        let mut r = persistent_rules(None);
        r.set_settings(Settings {
            expire_quiescent_template: eqt,
            ..Settings::default()
        });
        let mut e = engine(&r, 64);
        let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
        let port = 80;
        r.edit_dest(&tkey(), DestConfig::new(a.daddr, port).with_weight(0))
            .unwrap();
        e.set_snapshot(r.snapshot());
        let b = fwd(e.process(&tcp_in(client(1), 2, SYN), Timestamp(10)));
        if eqt {
            assert_ne!(b.daddr, a.daddr, "template dropped, rescheduled");
        } else {
            assert_eq!(
                b.daddr, a.daddr,
                "persistent client keeps its weight-0 server"
            );
        }
    }
}

#[test]
fn template_of_deleted_dest_is_replaced() {
    let mut r = persistent_rules(None);
    let mut e = engine(&r, 64);
    let a = fwd(e.process(&tcp_in(client(1), 1, SYN), Timestamp::ZERO));
    r.delete_dest(&tkey(), a.daddr, 80).unwrap();
    e.set_snapshot(r.snapshot());
    let b = fwd(e.process(&tcp_in(client(1), 2, SYN), Timestamp(10)));
    assert_ne!(b.daddr, a.daddr);
    assert_eq!(e.templates().len(), 1);
}
