#!/bin/bash
# The kernel's side of the scheduler-sequence experiments (scripts/conformance),
# run in the QEMU guest by `g`: the guest's root namespace is the IPVS director
# (NAT), with the same addresses as rvs's nat layout (scripts/lib/topo.sh), so
# that one scenario makes the same packets on both sides:
#
#   client namespace  eth0 10.231.1.2/24 and .3 .. .9 (the clients)
#   director          cl0 10.231.1.1/24, the VIPs 10.231.1.100 .. .109 on lo;
#                     bridge sbr 10.231.2.1/24, forwarding on
#   real server K     eth0 10.231.2.(10+K)/24 on sbr, default route via .1,
#                     scripts/lib/rs_server.py answering "rsK"
#
#   sched_guest.sh up NSERVERS LOGDIR
#
# The guest is thrown away after the run, so nothing here is undone.
set -euo pipefail
RVS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

up() {
    local n=$1 logs=$2 k v ns
    mkdir -p "$logs"
    modprobe ip_vs
    sysctl -qw net.ipv4.ip_forward=1
    # What the client sees, not the kernel's own ICMP, must decide: no
    # redirects from a router with two legs.
    sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
    ip netns add sc
    ip -n sc link set lo up
    ip link add cl0 type veth peer name eth0 netns sc
    ip addr add 10.231.1.1/24 dev cl0
    ip link set cl0 up
    for k in $(seq 2 9); do ip -n sc addr add "10.231.1.$k/24" dev eth0; done
    ip -n sc link set eth0 up
    for v in $(seq 100 109); do ip addr add "10.231.1.$v/32" dev lo; done
    ip link add sbr type bridge
    ip link set sbr type bridge stp_state 0 forward_delay 0 2>/dev/null || true
    ip addr add 10.231.2.1/24 dev sbr
    ip link set sbr up
    for k in $(seq 1 "$n"); do
        ns=sr$k
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add "s$k" type veth peer name eth0 netns "$ns"
        ip link set "s$k" master sbr up
        ip -n "$ns" addr add "10.231.2.$((10 + k))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via 10.231.2.1
        ip netns exec "$ns" setsid python3 "$RVS_ROOT/scripts/lib/rs_server.py" --name "rs$k" --tcp 80 \
            </dev/null >"$logs/rs$k.log" 2>&1 &
    done
    for k in $(seq 1 "$n"); do
        for _ in $(seq 300); do grep -q '^ready' "$logs/rs$k.log" && break; sleep 0.2; done
        grep -q '^ready' "$logs/rs$k.log" || { echo "real server rs$k did not start:"; cat "$logs/rs$k.log"; return 1; }
    done
    # The first packets of a scenario should not wait for neighbours.
    for k in $(seq 1 "$n"); do ping -c 1 -W 5 "10.231.2.$((10 + k))" >/dev/null || true; done
    ip netns exec sc ping -c 1 -W 5 10.231.1.1 >/dev/null || true
}

"$@"
