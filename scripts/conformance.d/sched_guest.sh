#!/bin/bash
# The kernel's side of the scheduler-sequence experiments (scripts/conformance),
# run in the QEMU guest by `g`: the guest's root namespace is the IPVS director
# (NAT), with the same addresses as rvs's nat layout (scripts/lib/topo.sh), so
# that one scenario makes the same packets on both sides:
#
#   client namespace  eth0 10.231.1.2/24 and .3 .. .9 (the clients),
#                     2001:db8:231:1::2/64 .. ::9
#   director          cl0 10.231.1.1/24, the VIPs 10.231.1.100 .. .109 on lo;
#                     2001:db8:231:1::1/64, the VIPs ::100 .. ::107 on cl0
#                     (IPv6 answers neighbour solicitations only for the
#                     addresses of the interface asked); bridge sbr
#                     10.231.2.1/24, 2001:db8:231:2::1/64; forwarding on
#   real server K     namespace srK, eth0 10.231.2.(10+K)/24 and
#                     2001:db8:231:2::(10+K)/64 on sbr, default routes via
#                     the director; sched_rs.py answering "rsK"
#
#   sched_guest.sh up NSERVERS LOGDIR [PORTS]   (PORTS: sched_rs.py --ports)
#
# Each exec costs about half a second in the TCG guest, so the ip commands
# go in batches (ip -b), one per namespace. The guest is thrown away after
# the run, so nothing here is undone.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

up() {
    local n=$1 logs=$2 ports=${3:-} k rs=()
    mkdir -p "$logs"
    modprobe ip_vs
    sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    # A router with two legs on different networks: no redirects to muddle.
    sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
    {
        echo "netns add sc"
        for k in $(seq 1 "$n"); do echo "netns add sr$k"; done
        echo "link add cl0 type veth peer name eth0 netns sc"
        echo "addr add 10.231.1.1/24 dev cl0"
        echo "addr add 2001:db8:231:1::1/64 dev cl0 nodad"
        echo "link set cl0 up"
        for k in $(seq 100 109); do echo "addr add 10.231.1.$k/32 dev lo"; done
        for k in $(seq 100 107); do echo "addr add 2001:db8:231:1::$k/128 dev cl0 nodad"; done
        echo "link add sbr type bridge stp_state 0 forward_delay 0"
        echo "addr add 10.231.2.1/24 dev sbr"
        echo "addr add 2001:db8:231:2::1/64 dev sbr nodad"
        echo "link set sbr up"
        for k in $(seq 1 "$n"); do
            echo "link add s$k type veth peer name eth0 netns sr$k"
            echo "link set s$k master sbr up"
        done
    } >"$logs/root.ip"
    ip -b "$logs/root.ip"
    {
        echo "link set lo up"
        for k in $(seq 2 9); do echo "addr add 10.231.1.$k/24 dev eth0"; done
        for k in $(seq 2 9); do echo "addr add 2001:db8:231:1::$k/64 dev eth0 nodad"; done
        echo "link set eth0 up"
    } >"$logs/sc.ip"
    ip -n sc -b "$logs/sc.ip"
    for k in $(seq 1 "$n"); do
        printf '%s\n' "link set lo up" "addr add 10.231.2.$((10 + k))/24 dev eth0" \
            "addr add 2001:db8:231:2::$((10 + k))/64 dev eth0 nodad" "link set eth0 up" \
            "route add default via 10.231.2.1" "route add default via 2001:db8:231:2::1" >"$logs/sr$k.ip"
        ip -n "sr$k" -b "$logs/sr$k.ip"
        rs+=("sr$k=rs$k")
    done
    setsid python3 -S -B "$HERE/sched_rs.py" --ports "$ports" "${rs[@]}" </dev/null >"$logs/rs.log" 2>&1 &
    for _ in $(seq 300); do grep -q '^ready' "$logs/rs.log" && break; sleep 0.2; done
    grep -q '^ready' "$logs/rs.log" || { echo "the real servers did not start:"; cat "$logs/rs.log"; return 1; }
}

"$@"
