//! Finds the system DPDK with pkg-config, generates bindings for the
//! allowlisted API, and compiles the C shim for DPDK's static inlines.

use std::env;
use std::path::PathBuf;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "\nerror: DPDK >= {MIN_DPDK} (pkg-config libdpdk) was not found: {e}\n\
                 Install the build dependencies with ./scripts/deps (Debian 12: libdpdk-dev),\n\
                 or build without DPDK: cargo build --no-default-features\n"
            );
            std::process::exit(1);
        }
    };
    println!("cargo:version={}", dpdk.version);
    // rte_eth_from_rings lives in the net_ring driver, which pkg-config does
    // not list (drivers are plugins). Linking it is harmless: the EAL's
    // plugin loader finds the same, already loaded, library.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    // rte_vdev_init (hot-plugging a vdev after init) is in the vdev bus library.
    println!("cargo:rustc-link-lib=dylib=rte_bus_vdev");

    // The C compiler flags pkg-config gives (-include rte_config.h, -march=...),
    // verbatim: the pkg-config crate splits them into paths and defines only.
    let raw = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config runs");
    let cflags: Vec<String> = String::from_utf8_lossy(&raw.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let mut cc = cc::Build::new();
    cc.file("shim/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("rvs_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(cflags.iter().filter(|f| !f.starts_with("-march")))
        .clang_arg("-march=corei7")
        .allowlist_function("rvs_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore|process_type|hotplug_add)")
        .allowlist_function("rte_(lcore_count|get_next_lcore|get_main_lcore|lcore_to_cpu_id|socket_id|lcore_is_enabled|lcore_to_socket_id)")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_(free|lookup)")
        .allowlist_function("rte_eth_dev_(count_avail|configure|start|stop|close|info_get|socket_id|get_port_by_name|get_name_by_port|rss_reta_update|rss_reta_query|rss_hash_update|rss_hash_conf_get|conf_get|set_mtu|get_mtu|is_valid_port)")
        .allowlist_function("rte_eth_(rx_queue_setup|tx_queue_setup|promiscuous_enable|promiscuous_get|macaddr_get|link_get_nowait|stats_get|stats_reset|find_next_owned_by|find_next)")
        .allowlist_function("rte_vdev_(init|uninit)")
        .allowlist_function("rte_ring_(create|free)")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_(zmalloc_socket|free|eal_has_hugepages)")
        .allowlist_function("rte_eth_from_rings")
        .allowlist_function("rte_ring_(sp_enqueue_bulk_elem|count)")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_eth_(conf|dev_info|rss_conf|rss_reta_entry64|stats|link|rxconf|txconf)")
        .allowlist_type("rte_ether_addr")
        .allowlist_var("RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_ETH_RETA_GROUP_SIZE|RTE_MBUF_DEFAULT_DATAROOM|RTE_ETHER_ADDR_LEN|RING_F_.*|RTE_ETH_LINK_.*|SOCKET_ID_ANY")
        .allowlist_type("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode|rte_lcore_state_t|rte_rmt_call_main_t")
        .rustified_enum("rte_eth_rx_mq_mode|rte_eth_tx_mq_mode|rte_rmt_call_main_t")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen generates the DPDK bindings");

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("bindings written");
}
