//! Fuzz entry point for the forwarding rewrites.
//!
//! [`fuzz_one`] parses the bytes and, when they parse, runs every method
//! (NAT, DR, each tunnel type and checksum mode, real servers of both
//! families) in both directions with a fixed [`Env`], in buffers with and
//! without headroom, answers the input with port unreachable (as for a new
//! connection no real server can take), and checks what must hold: no
//! panic; a transmitted or generated frame parses; if every checksum of
//! the input verified, every checksum of the output does; a generated
//! error is addressed to the sender; leaving the `Env` addresses
//! [`env_addrs_needed`] says are not read unspecified changes nothing. It
//! also feeds `apply` headers that do not match the buffer.
//!
//! Tooling: it allocates (the buffers, once per call).

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::lb::dest::{FwdMethod, TunCsum, TunType};
use crate::lb::engine::{ConnState, Direction, Forward};
use crate::wire::buf::{PacketBuf, VecBuf};
use crate::wire::parse::{parse_frame, Headers};
use crate::wire::{EthernetAddress, IpProtocol};

use super::verify::verify_frame;
use super::{apply, env_addrs_needed, icmp, Applied, DropReason, Env, Reply};

/// The GUE port of the fixed environment.
pub const FUZZ_GUE_PORT: u16 = 6080;

/// The methods tried on every input.
pub const METHODS: [FwdMethod; 8] = [
    FwdMethod::Masq,
    FwdMethod::Route,
    tun(TunType::Ipip, TunCsum::NoCsum),
    tun(TunType::Gue, TunCsum::NoCsum),
    tun(TunType::Gue, TunCsum::Csum),
    tun(TunType::Gue, TunCsum::RemCsum),
    tun(TunType::Gre, TunCsum::NoCsum),
    tun(TunType::Gre, TunCsum::Csum),
];

const fn tun(tun_type: TunType, csum: TunCsum) -> FwdMethod {
    FwdMethod::Tunnel {
        tun_type,
        port: if matches!(tun_type, TunType::Gue) {
            FUZZ_GUE_PORT
        } else {
            0
        },
        csum,
    }
}

const RS4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);
const RS6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 5);

/// A `Forward` for `fwd` to a real server of family v6 or not, with the
/// VIP being the packet's destination (inbound) or the client being it
/// (outbound: the VIP is then a fixed one of the packet's family).
pub fn forward_for(h: &Headers, fwd: FwdMethod, rs_v6: bool) -> Forward {
    let daddr: IpAddr = if rs_v6 { RS6.into() } else { RS4.into() };
    let vaddr: IpAddr = match h.dst {
        IpAddr::V4(_) => Ipv4Addr::new(10, 0, 0, 100).into(),
        IpAddr::V6(_) => "2001:db8:100::1".parse::<Ipv6Addr>().unwrap().into(),
    };
    Forward {
        conn: Some(0),
        new: false,
        dest: 0,
        fwd,
        daddr,
        dport: 8080,
        vaddr,
        vport: 80,
        state: ConnState::Udp,
    }
}

/// The egress MTU the harness forwards to.
const FUZZ_MTU: u16 = 1500;

/// Runs the rewrites over `data` (see the module documentation).
pub fn fuzz_one(data: &[u8]) {
    let Ok(h) = parse_frame(data) else {
        return;
    };
    let ip_id = Cell::new(0x1234);
    let env = Env {
        local_v4: Ipv4Addr::new(10, 255, 0, 1),
        local_v6: "fd00::1".parse().unwrap(),
        reply_v4: Ipv4Addr::new(10, 255, 0, 1),
        reply_v6: "fd00::1".parse().unwrap(),
        src_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0xaa]),
        dst_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0xbb]),
        // A third of the inputs (by length) go to an MTU half their size:
        // fragmentation, fragmentation needed and packet too big.
        mtu: if data.len().is_multiple_of(3) {
            (h.l3_len / 2).max(68)
        } else {
            FUZZ_MTU
        },
        refragment: data.len().is_multiple_of(5),
        ip_id: &ip_id,
    };
    let valid = verify_frame(data, Some(FUZZ_GUE_PORT)).is_ok();
    let mut buf = VecBuf::new(data.len() + 256, 128);
    let mut lean_buf = buf.clone();
    for fwd in METHODS {
        let families: &[bool] = if matches!(fwd, FwdMethod::Tunnel { .. }) {
            &[false, true]
        } else {
            &[h.dst.is_ipv6()]
        };
        for &rs_v6 in families {
            let f = forward_for(&h, fwd, rs_v6);
            for dir in [Direction::In, Direction::Out] {
                for headroom in [128, 0] {
                    assert!(buf.reset(data, headroom));
                    let id0 = ip_id.get();
                    let r = apply(&mut buf, &h, &f, dir, &env);
                    check(&h, valid, buf.data(), r, env.mtu);
                    // The addresses `env_addrs_needed` says are not read
                    // may be left unspecified: same outcome, same bytes.
                    let (need_local, need_reply) = env_addrs_needed(&h, &f, env.mtu);
                    let id = Cell::new(id0);
                    let lean = Env {
                        local_v4: if need_local {
                            env.local_v4
                        } else {
                            Ipv4Addr::UNSPECIFIED
                        },
                        local_v6: if need_local {
                            env.local_v6
                        } else {
                            Ipv6Addr::UNSPECIFIED
                        },
                        reply_v4: if need_reply {
                            env.reply_v4
                        } else {
                            Ipv4Addr::UNSPECIFIED
                        },
                        reply_v6: if need_reply {
                            env.reply_v6
                        } else {
                            Ipv6Addr::UNSPECIFIED
                        },
                        ip_id: &id,
                        ..env
                    };
                    assert!(lean_buf.reset(data, headroom));
                    let r2 = apply(&mut lean_buf, &h, &f, dir, &lean);
                    assert_eq!(r, r2, "{fwd:?} {dir:?}: env_addrs_needed is wrong");
                    if r.is_ok() {
                        assert_eq!(buf.data(), lean_buf.data(), "{fwd:?} {dir:?}");
                    }
                    assert_eq!(ip_id.get(), id.get());
                }
            }
        }
    }
    // Refused (no real server could take it): port unreachable to the
    // sender, or a drop that says why not.
    for headroom in [128, 0] {
        assert!(buf.reset(data, headroom));
        let r = icmp::port_unreachable(&mut buf, &h, &env);
        assert!(
            matches!(
                r,
                Ok(Applied::Reply(Reply::PortUnreachable))
                    | Err(DropReason::NoDest | DropReason::NoRoom | DropReason::BadHeaders)
            ),
            "port unreachable: {r:?}"
        );
        check(&h, valid, buf.data(), r, env.mtu);
    }
    // Headers that do not describe the buffer: errors, never panics.
    let f = forward_for(&h, FwdMethod::Masq, h.dst.is_ipv6());
    for cut in [1, 8, data.len() / 2] {
        if let Some(short) = data.get(..data.len().saturating_sub(cut)) {
            for fwd in METHODS {
                let f = Forward { fwd, ..f };
                assert!(buf.reset(short, 64));
                let _ = apply(&mut buf, &h, &f, Direction::In, &env);
            }
        }
    }
    // Same length, headers changed under the parsed `Headers`: IHL, a
    // length, the TCP data offset, the quoted header.
    let mut spots = vec![h.l3_offset as usize, h.l3_offset as usize + 3];
    spots.push(h.l4_offset as usize + 12);
    if let Some(i) = h.inner {
        spots.extend([i.l3_offset as usize, i.l4_offset as usize]);
    }
    for at in spots {
        for x in [0x0f, 0xff, 0x40] {
            let mut m = data.to_vec();
            if let Some(b) = m.get_mut(at) {
                *b ^= x;
            }
            for fwd in METHODS {
                let f = Forward { fwd, ..f };
                for dir in [Direction::In, Direction::Out] {
                    assert!(buf.reset(&m, 64));
                    let _ = apply(&mut buf, &h, &f, dir, &env);
                }
            }
        }
    }
    // No room at all for the tunnel headers (link padding, trimmed first,
    // would make some).
    if h.padding > 0 {
        return;
    }
    let mut tight = VecBuf::with_frame(data, 0, 0);
    let f = Forward {
        fwd: tun(TunType::Gue, TunCsum::Csum),
        ..f
    };
    if let Ok(Applied::Transmit) = apply(&mut tight, &h, &f, Direction::In, &env) {
        panic!("tunnelled without room");
    }
}

fn check(h: &Headers, valid: bool, out: &[u8], r: Result<Applied, DropReason>, mtu: u16) {
    let Ok(applied) = r else {
        return;
    };
    let o = match parse_frame(out) {
        Ok(o) => o,
        // An ICMPv6 error quoting an extension header chain longer than
        // the 1232 bytes that fit is valid but cannot be parsed back.
        Err(_)
            if matches!(applied, Applied::Reply(_))
                && (h.l4_offset - h.l3_offset) as usize > 1232 =>
        {
            return;
        }
        Err(e) => panic!("output does not parse ({e}): {applied:?} {out:02x?}"),
    };
    if valid {
        if let Err(e) = verify_frame(out, Some(FUZZ_GUE_PORT)) {
            panic!("{e} checksum broken by {applied:?}: {out:02x?}");
        }
    }
    if let Applied::Fragment = applied {
        // Fragmentable into frames that parse, none over the MTU.
        let plan = crate::net::fragment::Plan::new(out, o.l3_offset as usize, mtu as usize)
            .unwrap_or_else(|e| panic!("to fragment but {e:?}: {out:02x?}"));
        for k in 1..plan.count() {
            let mut b = vec![0; plan.frame_len(k)];
            plan.write(out, k, &mut b);
            assert!(b.len() - o.l3_offset as usize <= mtu as usize);
            parse_frame(&b).unwrap_or_else(|e| panic!("fragment {k}: {e}"));
        }
        let mut first = out.to_vec();
        let n = plan.truncate_to_first(&mut first);
        // A first fragment may end inside the upper-layer header at tiny
        // MTUs (legal, if unkind); our parser refuses those.
        let header_end = o.l4_offset as usize + 8 + 60;
        if let Err(e) = parse_frame(&first[..n]) {
            assert!(n < header_end, "fragment 0: {e}");
        }
    }
    if let Applied::Reply(_) = applied {
        assert_eq!(o.dst, h.src, "error not sent back to the sender");
        assert!(o.is_icmp_error());
        assert!(matches!(o.protocol, IpProtocol::ICMP | IpProtocol::ICMPV6));
    }
}
