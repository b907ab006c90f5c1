# Shared helpers for rvs scripts: unique names, cleanup of what we create,
# bounded waits. Source it; do not run it.

RVS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# A short unique id for names (interfaces are limited to 15 characters).
rvs_uid() {
    printf '%04x%02x' $(( $$ & 0xffff )) $(( RANDOM & 0xff ))
}

# Everything registered here is undone by rvs_cleanup, in reverse order.
RVS_CLEANUP=()
rvs_on_exit() { RVS_CLEANUP+=("$*"); }

rvs_cleanup() {
    local i
    for ((i=${#RVS_CLEANUP[@]}-1; i>=0; i--)); do
        eval "${RVS_CLEANUP[$i]}" >/dev/null 2>&1 || true
    done
    RVS_CLEANUP=()
}

# Stop a process we started, by pid: SIGINT, then SIGKILL after a grace period.
rvs_stop_pid() {
    local pid=$1 grace=${2:-10}
    kill -0 "$pid" 2>/dev/null || return 0
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# rvs_counters_balanced RVSADM: every frame rvsd's workers took in (rx,
# handed in, made) is accounted for (tx, handed off, held, dropped by
# reason), read from `rvsadm --counters`. Traffic in flight can make one
# read uneven, so it asks a few times. Prints the figures.
rvs_counters_balanced() {
    local adm=$1 c
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        c=$(timeout 10 "$adm" --counters 2>/dev/null) || c=
        if awk '
            { v[$1] = $2 }
            END {
                if (!("worker.rx" in v)) exit 1
                taken = v["worker.rx"] + v["worker.handoff_in"] + v["worker.originated"] + v["worker.from_kernel"]
                out = v["worker.tx"] + v["worker.handoff_out"] + v["worker.held"] + v["worker.reassembled"] + v["worker.to_kernel"] + v["worker.dropped"]
                drops = 0
                for (k in v) if (k ~ /^drop\./) drops += v[k]
                printf "   accounting: rx %d + handed in %d + made %d + from the kernel %d = tx %d + handed off %d + held %d + reassembled %d + to the kernel %d + dropped %d (by reason %d)\n", v["worker.rx"], v["worker.handoff_in"], v["worker.originated"], v["worker.from_kernel"], v["worker.tx"], v["worker.handoff_out"], v["worker.held"], v["worker.reassembled"], v["worker.to_kernel"], v["worker.dropped"], drops
                exit !(taken == out && drops == v["worker.dropped"])
            }' <<<"$c"; then
            return 0
        fi
        sleep 0.3
    done
    return 1
}

# rvs_report_balanced FILE: rvsd's shutdown report in FILE says every
# worker balanced (each lcore line ends "; balanced").
rvs_report_balanced() {
    grep -q '^lcore.*; balanced$' "$1" && ! grep -q 'UNBALANCED' "$1"
}

# The cargo-fuzz scripts/fuzz uses (scripts/deps installs it from crates.io).
RVS_CARGO_FUZZ_VERSION=0.13.2

# True when that cargo-fuzz, and a C++ compiler for libFuzzer, are there.
rvs_have_cargo_fuzz() {
    command -v c++ >/dev/null 2>&1 \
        && [ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $RVS_CARGO_FUZZ_VERSION" ]
}

# Make sure the build dependencies are there (scripts/deps does nothing when they are).
rvs_deps() {
    if ! command -v cargo >/dev/null 2>&1 || ! pkg-config --exists libdpdk 2>/dev/null \
        || ! rvs_have_cargo_fuzz \
        || ! command -v dpdk-testpmd >/dev/null 2>&1 || ! command -v ethtool >/dev/null 2>&1 \
        || ! command -v socat >/dev/null 2>&1 || ! command -v tshark >/dev/null 2>&1 \
        || ! command -v hadolint >/dev/null 2>&1 \
        || ! command -v bird >/dev/null 2>&1 || ! command -v tcpdump >/dev/null 2>&1 \
        || ! command -v ipvsadm >/dev/null 2>&1 \
        || ! /usr/bin/python3 -c "import scapy" >/dev/null 2>&1; then
        "$RVS_ROOT/scripts/deps"
    fi
}

# Wait until a command succeeds, at most $1 seconds.
rvs_wait_for() {
    local secs=$1; shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.2
    done
}

# A veth pair: $1 stays in the root namespace (for rvsd), $2 goes into
# namespace $3 with address $4. Offloads are off on both ends so that the
# kernel hands whole frames with full checksums to AF_PACKET.
rvs_veth_to_ns() {
    local host=$1 peer=$2 ns=$3 addr=$4
    ip link add "$host" type veth peer name "$peer"
    rvs_on_exit "ip link del $host"
    ip link set "$peer" netns "$ns"
    ip link set "$host" up
    ip link set "$host" promisc on
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null 2>&1 || true
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1" || true
    ip -n "$ns" link set "$peer" up
    ip -n "$ns" addr add "$addr" dev "$peer"
    ip netns exec "$ns" ethtool -K "$peer" tx off tso off gso off gro off >/dev/null 2>&1 || true
}

rvs_netns_add() {
    ip netns add "$1"
    rvs_on_exit "ip netns del $1"
    ip -n "$1" link set lo up
}

# EAL arguments for a run without NICs and hugepages, with a unique file
# prefix, into the array RVS_EAL; the prefix's runtime directory is removed
# at exit. (Not a $(...) function: cleanup must be registered in this shell.)
rvs_eal_args() {
    local prefix=$1
    rvs_on_exit "rm -rf /var/run/dpdk/$prefix"
    RVS_EAL=(--no-huge --no-pci -m 512 --file-prefix "$prefix" --log-level '*:warning')
}
