# Test topologies for rvs: Linux network namespaces as clients and real
# servers, veths whose root-namespace ends rvsd owns (net_af_packet), and a
# bridge (in its own namespace) as the real servers' segment. Source
# common.sh first. Every object is named with the run's id and registered
# for removal (rvs_cleanup).
#
# Addresses (the same in every layout, per run):
#   client network   10.231.1.0/24, 2001:db8:231:1::/64
#     client         .2 / ::2        rvsd's client port .1 / ::1
#     VIPs           .100 .. .109 / ::100
#   server network   10.231.2.0/24, 2001:db8:231:2::/64   (NAT two-arm)
#     real servers   .11 .. / ::11 ..   rvsd's server port .1 / ::1
# In the one-arm layouts (DR, TUN) the real servers sit on the client
# network, .11 .. / ::11 ..
# The vlan layout is NAT with VLANs: the client network is VLAN 10 of
# rvsd's client port (which carries VLANs only), odd real servers sit in
# VLAN 20 of the server port (the server network above), even ones on the
# same port untagged, 10.231.3.0/24, 2001:db8:231:3::/64 (rvsd .1 / ::1).

TOPO_CLIENT4=10.231.1.2
TOPO_CLIENT6=2001:db8:231:1::2
TOPO_VIP4=10.231.1.100
TOPO_VIP6=2001:db8:231:1::100

# rs_addr4 LAYOUT N / rs_addr6 LAYOUT N: real server N's address (N from 1).
topo_rs4() {
    case $1 in
    nat | mtu) echo "10.231.2.$((10 + $2))" ;;
    vlan) echo "10.231.$((2 + ($2 + 1) % 2)).$((10 + $2))" ;;
    *) echo "10.231.1.$((10 + $2))" ;;
    esac
}
topo_rs6() {
    case $1 in
    nat | mtu) echo "2001:db8:231:2::$((10 + $2))" ;;
    vlan) echo "2001:db8:231:$((2 + ($2 + 1) % 2))::$((10 + $2))" ;;
    *) echo "2001:db8:231:1::$((10 + $2))" ;;
    esac
}

# topo_vlan_port NS DEV VID: make DEV in NS an access port of VLAN VID: it
# sends every frame tagged VID and takes only frames tagged VID (this
# kernel has no 802.1Q driver: a tc-BPF program does it, built once per
# run).
topo_vlan_port() {
    local ns=$1 dev=$2 vid=$3 dir
    tc -n "$ns" qdisc add dev "$dev" clsact
    for dir in egress ingress; do
        local obj=$RVS_WORK/vlan_port_${vid}_$dir.o def=-DEGRESS
        [ "$dir" = ingress ] && def=-DINGRESS
        [ -f "$obj" ] || clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -DVID="$vid" "$def" \
            -c "$RVS_ROOT/scripts/bpf/vlan_port.c" -o "$obj"
        tc -n "$ns" filter add dev "$dev" "$dir" bpf direct-action obj "$obj" sec tc
    done
}

# A namespace with one veth into the bridge namespace $sw.
_topo_host_on_bridge() {
    local ns=$1 sw=$2 br=$3 ifc=$4 peer=$5
    rvs_netns_add "$ns"
    ip link add "$ifc" netns "$ns" type veth peer name "$peer" netns "$sw"
    ip -n "$sw" link set "$peer" master "$br" up
    ip -n "$ns" link set "$ifc" up
    ip netns exec "$ns" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
        "net.ipv6.conf.$ifc.accept_dad=0" 2>/dev/null || true
}

# A bridge namespace with rvsd's port: the veth end $host stays in the root
# namespace (rvsd opens it), its peer joins the bridge.
_topo_switch() {
    local sw=$1 br=$2 host=$3
    rvs_netns_add "$sw"
    ip -n "$sw" link add "$br" type bridge
    ip -n "$sw" link set "$br" type bridge stp_state 0 forward_delay 0 2>/dev/null || true
    ip -n "$sw" link set "$br" up
    ip link add "$host" type veth peer name "${host}p" netns "$sw"
    rvs_on_exit "ip link del $host"
    ip -n "$sw" link set "${host}p" master "$br" up
    ip link set "$host" up
    ip link set "$host" promisc on
    ethtool -K "$host" tx off tso off gso off gro off >/dev/null 2>&1 || true
    sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1" || true
    ip netns exec "$sw" ethtool -K "${host}p" tx off tso off gso off gro off >/dev/null 2>&1 || true
}

# The client (in VLAN 10 in the vlan layout).
_topo_client() {
    local id=$1 sw=$2 br=$3 layout=${4:-}
    TOPO_CLIENT_NS=rvs-c-$id
    _topo_host_on_bridge "$TOPO_CLIENT_NS" "$sw" "$br" eth0 "c$id"
    [ "$layout" = vlan ] && topo_vlan_port "$TOPO_CLIENT_NS" eth0 10
    ip -n "$TOPO_CLIENT_NS" addr add "$TOPO_CLIENT4/24" dev eth0
    ip -n "$TOPO_CLIENT_NS" addr add "$TOPO_CLIENT6/64" dev eth0 nodad
}

# Real server N: namespace rvs-rN-ID with an HTTP server answering its name
# (started by the caller), address by layout.
_topo_rs() {
    local layout=$1 id=$2 n=$3 sw=$4 br=$5
    local ns=rvs-r$n-$id
    _topo_host_on_bridge "$ns" "$sw" "$br" eth0 "r$n$id"
    [ "$layout" = vlan ] && [ $((n % 2)) = 1 ] && topo_vlan_port "$ns" eth0 20
    ip -n "$ns" addr add "$(topo_rs4 "$layout" "$n")/24" dev eth0
    ip -n "$ns" addr add "$(topo_rs6 "$layout" "$n")/64" dev eth0 nodad
    case $layout in
    nat | vlan)
        local net4 net6
        net4=$(topo_rs4 "$layout" "$n") net6=$(topo_rs6 "$layout" "$n")
        ip -n "$ns" route add default via "${net4%.*}.1"
        ip -n "$ns" -6 route add default via "${net6%::*}::1"
        ;;
    dr|tun)
        # The VIPs on lo; never answer ARP/ND for them (arp_ignore/announce),
        # so only rvsd does.
        local v
        for v in $(seq 100 109); do ip -n "$ns" addr add "10.231.1.$v/32" dev lo; done
        ip -n "$ns" addr add "$TOPO_VIP6/128" dev lo
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
        ;;
    esac
    if [ "$layout" = tun ]; then
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 \
            net.ipv4.conf.lo.rp_filter=0 net.ipv4.conf.default.rp_filter=0
        tc -n "$ns" qdisc add dev eth0 clsact
        tc -n "$ns" filter add dev eth0 ingress bpf direct-action obj "$TOPO_BPF" sec tc
    fi
}

# Build the tunnel decapsulator once per run.
topo_bpf() {
    TOPO_BPF=$RVS_WORK/tun_decap.o
    [ -f "$TOPO_BPF" ] || clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
        -c "$RVS_ROOT/scripts/bpf/tun_decap.c" -o "$TOPO_BPF"
}

# topo_create LAYOUT ID NSERVERS: build a layout (nat | dr | tun | mtu |
# vlan).
# mtu is nat with jumbo frames on the client side (MTU 8000 on the client's
# links and rvsd's client port) and rvsd's server port at MTU 1400 while
# the real servers' links stay at 1500: client packets over 1400 must be
# fragmented (DF clear) or answered with fragmentation needed / packet too
# big (DF, IPv6) by rvsd.
# Sets TOPO_CLIENT_NS, TOPO_RS_NS (array), TOPO_PORTS (rvsd --port arguments)
# and TOPO_CONFIG (an rvsd config file with the ports and addresses).
topo_create() {
    local layout=$1 id=$2 n=$3 i
    : "${RVS_WORK:?set RVS_WORK to a scratch directory}"
    [ "$layout" = tun ] && topo_bpf
    local swc=rvs-sw-$id brc=br0
    _topo_switch "$swc" "$brc" "rc$id"
    _topo_client "$id" "$swc" "$brc" "$layout"
    TOPO_RS_NS=()
    if [ "$layout" = mtu ]; then
        local l
        ip link set "rc$id" mtu 8000
        for l in "rc${id}p" "c${id}" "$brc"; do ip -n "$swc" link set "$l" mtu 8000; done
        ip -n "$TOPO_CLIENT_NS" link set eth0 mtu 8000
    fi
    if [ "$layout" = nat ] || [ "$layout" = mtu ] || [ "$layout" = vlan ]; then
        local sws=rvs-ss-$id
        _topo_switch "$sws" "$brc" "rs$id"
        local l=nat
        [ "$layout" = vlan ] && l=vlan
        for i in $(seq 1 "$n"); do _topo_rs "$l" "$id" "$i" "$sws" "$brc"; TOPO_RS_NS+=("rvs-r$i-$id"); done
    else
        for i in $(seq 1 "$n"); do _topo_rs "$layout" "$id" "$i" "$swc" "$brc"; TOPO_RS_NS+=("rvs-r$i-$id"); done
    fi
    TOPO_CONFIG=$RVS_WORK/rvsd-$layout.toml
    # The mtu layout's ports are net_pcap: net_af_packet would have the
    # kernel reassemble IPv4 fragments (its fanout defragments) and cut
    # what does not fit its ring frames, so rvsd's own reassembly would
    # never be seen.
    local drv0="net_af_packet0,iface=rc$id" drv1="net_af_packet1,iface=rs$id"
    [ "$layout" = mtu ] && { drv0="net_pcap0,iface=rc$id"; drv1="net_pcap1,iface=rs$id"; }
    {
        echo "[[port]]"
        echo "name = \"client\""
        echo "device = \"$drv0\""
        if [ "$layout" = dr ] || [ "$layout" = tun ]; then echo 'role = "both"'; else echo 'role = "client"'; fi
        [ "$layout" = mtu ] && echo 'mtu = 8000'
        if [ "$layout" = vlan ]; then
            printf '[[port.vlan]]\nid = 10\n'
        fi
        echo 'addresses = ["10.231.1.1/24", "2001:db8:231:1::1/64"]'
        if [ "$layout" = nat ] || [ "$layout" = mtu ] || [ "$layout" = vlan ]; then
            echo "[[port]]"
            echo "name = \"server\""
            echo "device = \"$drv1\""
            echo 'role = "server"'
            [ "$layout" = mtu ] && echo 'mtu = 1400'
            if [ "$layout" = vlan ]; then
                echo 'addresses = ["10.231.3.1/24", "2001:db8:231:3::1/64"]'
                printf '[[port.vlan]]\nid = 20\n'
            fi
            echo 'addresses = ["10.231.2.1/24", "2001:db8:231:2::1/64"]'
        fi
    } >"$TOPO_CONFIG"
}

# Start a tiny HTTP server in each real server namespace answering its name
# on the given TCP ports (IPv4 and IPv6), and a UDP echo server answering
# "<name> <payload>" on the given UDP port.
topo_servers() {
    local tcp_ports=$1 udp_port=$2 i ns
    for i in "${!TOPO_RS_NS[@]}"; do
        ns=${TOPO_RS_NS[$i]}
        ip netns exec "$ns" /usr/bin/python3 "$RVS_ROOT/scripts/lib/rs_server.py" \
            --name "rs$((i + 1))" --tcp "$tcp_ports" --udp "$udp_port" \
            >"$RVS_WORK/$ns.log" 2>&1 &
        rvs_on_exit "kill $!"
    done
    for i in "${!TOPO_RS_NS[@]}"; do
        ns=${TOPO_RS_NS[$i]}
        rvs_wait_for 10 grep -q "^ready" "$RVS_WORK/$ns.log" || { echo "real server $ns did not start" >&2; return 1; }
    done
}

# topo_client_addr ADDR/PREFIX: one more address on the client (a second
# client for persistence and source-hash tests; curl --interface ADDR). It
# is never picked as a source address on its own: IPv4 makes it secondary,
# IPv6 gets it deprecated (preferred_lft 0).
topo_client_addr() {
    case $1 in
    *:*) ip -n "$TOPO_CLIENT_NS" addr add "$1" dev eth0 nodad preferred_lft 0 ;;
    *) ip -n "$TOPO_CLIENT_NS" addr add "$1" dev eth0 ;;
    esac
}
