# BGP/ECMP lab helpers: BIRD 2 in Linux network namespaces. A router
# namespace (AS 65000) learns the VIPs from the load-balancer nodes (AS
# 65001) over eBGP and installs one multipath route per VIP with every
# node announcing it as a next hop. Source after common.sh; do not run.
# Needs root, iproute2, jq and bird2 (bird, birdc).
#
# Addresses (the same in every run):
#   lan segment      10.231.8.0/24, 2001:db8:231:8::/64 (a bridge in its own namespace)
#     router         .1 / ::1
#     node A, B      .2 / ::2, .3 / ::3
#     real servers   .11 .. / ::11 ..
#   client network   10.231.9.0/24, 2001:db8:231:9::/64 (router .1 / ::1, clients .2 .. .9)
#   VIPs             10.231.7.100/32, 2001:db8:231:7::100/128
#
# BIRD instances are named (NAME); each keeps its config, control socket,
# pid file and log under $RVS_WORK as bird-NAME.*. Protocol names: on the
# router node1_v4, node1_v6, node2_v4, ... (nodes in the order given to
# bgp_router_conf); on a node router_v4, router_v6 and vips (direct).

BGP_VIP4=10.231.7.100
BGP_VIP6=2001:db8:231:7::100
BGP_ROUTER_AS=65000
BGP_NODE_AS=65001

# bgp_lan4 N / bgp_lan6 N: host N on the lan segment (1 router, 2 node A,
# 3 node B, 11.. real servers); bgp_cnet4 N / bgp_cnet6 N: the same on the
# client network.
bgp_lan4() { echo "10.231.8.$1"; }
bgp_lan6() { echo "2001:db8:231:8::$1"; }
bgp_cnet4() { echo "10.231.9.$1"; }
bgp_cnet6() { echo "2001:db8:231:9::$1"; }

# Pids of the BIRD instances this shell started, by NAME.
declare -gA BGP_PID=()

# BGP timers on both sides: a dead peer is noticed in ~3 s (hold), a lost
# session is retried every second and restarts after an error without
# BIRD's default 60 s back-off. Graceful restart is off on both sides: a
# dead node must stop getting traffic at once. With the router left at
# BIRD's default ("aware"), a node announcing itself restart-capable
# ("graceful restart on") would keep its routes as stale for 120 s after
# its bird died.
_bgp_session_opts() {
    cat <<'EOF'
    hold time 3;
    startup hold time 3;
    keepalive time 1;
    connect delay time 1;
    connect retry time 1;
    error wait time 1, 2;
    graceful restart off;
    long lived graceful restart off;
    debug { states, events };
EOF
}

# Log to stderr (bgp_start sends it to bird-NAME.log), with milliseconds.
_bgp_conf_head() {
    local id=$1
    cat <<EOF
router id $id;
log stderr all;
timeformat log "%T.%3f";
timeformat protocol "%T.%3f";

protocol device { }
EOF
}

# bgp_router_conf FILE ID4 NODE4 NODE6 [NODE4 NODE6 ...]: the router's
# config: router id ID4, AS 65000; per node (its v4 and v6 address) an
# IPv4 and an IPv6 eBGP session (nodeN_v4, nodeN_v6) importing everything
# and exporting nothing; kernel protocols that put the routes in the
# namespace's main tables with `merge paths on`, so equal BGP routes for a
# VIP from several nodes become one multipath route.
bgp_router_conf() {
    local file=$1 id=$2; shift 2
    (($# > 0 && $# % 2 == 0)) || { echo "bgp_router_conf: nodes come as V4 V6 pairs" >&2; return 1; }
    {
        _bgp_conf_head "$id"
        cat <<'EOF'

protocol kernel kernel_v4 {
    ipv4 { import none; export all; };
    merge paths on;
}
protocol kernel kernel_v6 {
    ipv6 { import none; export all; };
    merge paths on;
}

template bgp lbnode {
EOF
        echo "    local as $BGP_ROUTER_AS;"
        _bgp_session_opts
        echo "}"
        local n=1
        while (($#)); do
            printf '\nprotocol bgp node%d_v4 from lbnode {\n    neighbor %s as %d;\n    ipv4 { import all; export none; };\n}\n' \
                "$n" "$1" "$BGP_NODE_AS"
            printf 'protocol bgp node%d_v6 from lbnode {\n    neighbor %s as %d;\n    ipv6 { import all; export none; };\n}\n' \
                "$n" "$2" "$BGP_NODE_AS"
            n=$((n + 1)); shift 2
        done
    } >"$file"
}

# bgp_node_conf FILE ROUTER_ID IFACE LOCAL4 LOCAL6 PEER4 PEER6: a node's
# config: the direct protocol `vips` reads the addresses on IFACE (rvsd's
# kernel twin in the real lab); eBGP sessions router_v4 and router_v6
# from LOCAL4/LOCAL6 (AS 65001) to the router at PEER4/PEER6 announce only
# the host routes (/32, /128) of those addresses, i.e. the VIPs, not the
# interface's own networks; nothing is imported.
bgp_node_conf() {
    local file=$1 id=$2 ifc=$3 l4=$4 l6=$5 p4=$6 p6=$7
    {
        _bgp_conf_head "$id"
        cat <<EOF

protocol direct vips {
    ipv4;
    ipv6;
    interface "$ifc";
}

template bgp lbrouter {
    local as $BGP_NODE_AS;
EOF
        _bgp_session_opts
        cat <<EOF
}

protocol bgp router_v4 from lbrouter {
    local $l4 as $BGP_NODE_AS;
    neighbor $p4 as $BGP_ROUTER_AS;
    ipv4 { import none; export where proto = "vips" && net.len = 32; };
}
protocol bgp router_v6 from lbrouter {
    local $l6 as $BGP_NODE_AS;
    neighbor $p6 as $BGP_ROUTER_AS;
    ipv6 { import none; export where proto = "vips" && net.len = 128; };
}
EOF
    } >"$file"
}

_bgp_sock() { echo "$RVS_WORK/bird-$1.ctl"; }

# _bgp_reap PID SOCK: stop PID only if it still is the bird serving SOCK
# (the pid may have been reused once that bird was gone). BIRD shuts down
# on SIGTERM (it ignores rvs_stop_pid's SIGINT); SIGKILL after 3 s.
_bgp_reap() {
    local pid=$1 sock=$2
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-s $sock " || return 0
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true # a frozen bird must see it
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# bgp_start NS NAME CONF: run BIRD with CONF in namespace NS, in the
# foreground of a background job of this shell (so its pid is ours to
# stop), and wait until birdc answers on its socket. Its stop is
# registered with rvs_on_exit. Fails, showing the log, if BIRD exits or
# does not answer within 10 s.
bgp_start() {
    local ns=$1 name=$2 conf=$3
    : "${RVS_WORK:?set RVS_WORK to a scratch directory}"
    local sock log=$RVS_WORK/bird-$name.log pid
    sock=$(_bgp_sock "$name")
    # `ip netns exec` execs the command: $! is bird itself.
    ip netns exec "$ns" bird -f -c "$conf" -s "$sock" -P "$RVS_WORK/bird-$name.pid" >>"$log" 2>&1 &
    pid=$!
    BGP_PID[$name]=$pid
    rvs_on_exit "_bgp_reap $pid $sock"
    local end=$((SECONDS + 10))
    until timeout 2 birdc -s "$sock" show status >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= end)); then
            echo "bgp_start: bird $name did not come up:" >&2
            sed 's/^/    /' "$log" >&2
            return 1
        fi
        sleep 0.1
    done
}

# bgp_stop NAME: stop that BIRD by its pid (SIGTERM: it shuts down,
# telling its peers with a Cease notification; SIGKILL after 3 s).
bgp_stop() {
    local pid=${BGP_PID[$1]:-}
    [ -n "$pid" ] || return 0
    _bgp_reap "$pid" "$(_bgp_sock "$1")"
    unset "BGP_PID[$1]"
}

# bgp_birdc NAME CMD...: birdc against that instance (e.g. show route).
bgp_birdc() {
    local name=$1; shift
    timeout 5 birdc -s "$(_bgp_sock "$name")" "$@"
}

# bgp_established NAME PROTO: true when BGP protocol PROTO of instance
# NAME is in state Established (for rvs_wait_for).
bgp_established() {
    bgp_birdc "$1" show protocols "$2" 2>/dev/null \
        | awk -v p="$2" '$1 == p && / Established/ { ok = 1 } END { exit !ok }'
}

# bgp_nexthops NS PREFIX: the gateways of the kernel's route for exactly
# PREFIX (an address means /32 or /128) in NS's main table, one a line,
# sorted; nothing when there is no route. Reads single-path routes
# (gateway, or via for another family's gateway) and multipath ones
# (nexthops), and IPv6 multipath routes listed as one route per next hop.
bgp_nexthops() {
    local ns=$1 pfx=$2 fam=-4
    [[ $pfx == *:* ]] && fam=-6
    timeout 5 ip -n "$ns" "$fam" -j route show "$pfx" 2>/dev/null \
        | jq -r '.[] | (.gateway // .via.host // empty), (.nexthops // [] | .[] | .gateway // .via.host // empty)' \
        | sort -u
}

# bgp_ns_add NS: a namespace (removed at exit) whose IPv6 addresses are
# usable at once: no duplicate address detection, here and on interfaces
# made or moved into it later.
bgp_ns_add() {
    rvs_netns_add "$1"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

# bgp_router_ns_setup NS: what the router namespace needs: forwarding on,
# multipath hashing on the L4 header (policy 1: one client's connections
# spread over the nodes by source port) and no reverse path filter (a
# reply may come back by another path). Run it before adding interfaces,
# so they take the defaults; those already there are set too.
bgp_router_ns_setup() {
    local ns=$1 dev
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv6.conf.default.forwarding=1 \
        net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 || return 1
    for dev in $(ip -n "$ns" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0" 2>/dev/null || true
    done
}

# bgp_switch_add NS BR: a namespace holding the bridge BR (up, no STP, no
# forwarding delay). br_netfilter, where loaded, would hand bridged frames
# to iptables: turned off in this namespace when its sysctls are there.
bgp_switch_add() {
    local ns=$1 br=$2 s
    bgp_ns_add "$ns"
    for s in iptables ip6tables arptables; do
        ip netns exec "$ns" sysctl -qw "net.bridge.bridge-nf-call-$s=0" >/dev/null 2>&1 || true
    done
    ip -n "$ns" link add "$br" type bridge
    ip -n "$ns" link set "$br" type bridge stp_state 0 forward_delay 0 2>/dev/null || true
    ip -n "$ns" link set "$br" up
}

# bgp_switch_port SW BR NS IFACE PORT: a veth IFACE in namespace NS whose
# peer PORT is a port of bridge BR in namespace SW; both ends up. The
# veth is made in place (never in the root namespace) and goes away with
# either namespace.
bgp_switch_port() {
    local sw=$1 br=$2 ns=$3 ifc=$4 port=$5
    ip link add "$ifc" netns "$ns" type veth peer name "$port" netns "$sw" || return 1
    ip -n "$sw" link set "$port" master "$br" up
    ip -n "$ns" link set "$ifc" up
}
