//! Sizes of the hot types and the connection entry, and the state
//! machine table.

use super::*;

#[test]
fn measured_size_per_connection() {
    let r = nat_rules();
    let cap = 1 << 20;
    let e = engine(&r, cap);
    let entry = std::mem::size_of::<crate::lb::conntable::Conn>();
    let per_conn = e.memory_bytes() as f64 / cap as f64;
    println!("conn entry {entry} bytes; table+index+wheel+template slots {per_conn:.1} bytes/conn at capacity {cap}");
    assert_eq!(entry, 64);
    assert!(per_conn <= 128.0, "{per_conn}");
}

#[test]
fn transition_table_matches_next_state() {
    let t = transitions();
    for (d, dir) in [StateDir::Input, StateDir::Output, StateDir::InputOnly]
        .into_iter()
        .enumerate()
    {
        for f in 0..=255u8 {
            for cur in TcpState::ALL {
                assert_eq!(
                    t[d][flag_bits(TcpFlags(f))][cur as usize],
                    next_state(dir, TcpFlags(f), cur),
                    "{dir:?} {f:#x} {cur:?}"
                );
            }
        }
    }
}

#[test]
fn hot_types_stay_small() {
    println!(
        "PacketMeta {} Verdict {} Forward {} Prepared {}",
        std::mem::size_of::<PacketMeta>(),
        std::mem::size_of::<Verdict>(),
        std::mem::size_of::<Forward>(),
        std::mem::size_of::<Prepared>()
    );
    assert!(std::mem::size_of::<Verdict>() <= 64);
}
