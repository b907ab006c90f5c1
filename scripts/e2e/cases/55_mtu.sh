# MTU, fragmentation and reassembly (layout mtu: jumbo frames on the
# client side, rvsd's server port at MTU 1400, the real server at 1500).
# TCP: the client's full-size segments (the server's MSS is 1460) must
# teach it the path MTU through rvsd's fragmentation needed / packet too
# big. UDP: datagrams larger than every MTU on the way are fragmented by
# rvsd (IPv4, DF clear) or by the sender, reassembled by rvsd in both
# directions, and the echo comes back whole in one jumbo frame.

UDP_BIG=$E2E_DIR/udp_big.py

c_mtu_tcp() {
    # The integrity case's transfers, smaller.
    local BIG=20000000 UP=5000000
    integrity_prep
    transfer_check "NAT IPv4 to a server port of MTU 1400" "$TOPO_VIP4" 1400 -m
    transfer_check "NAT IPv6 to a server port of MTU 1400" "$TOPO_VIP6" 1400 -m
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case mtu_tcp mtu "path MTU discovery through rvsd: frag needed / packet too big, 20 MB down, 5 MB up"

# big_echo LABEL VIP SIZE [--no-df]: one datagram of SIZE bytes echoed
# whole; worker.reassembled must grow.
big_echo() {
    local label=$1 vip=$2 size=$3; shift 3
    local before after got
    before=$(admq --counters | awk '$1 == "worker.reassembled" { print $2 }')
    got=$(cl 20 /usr/bin/python3 "$UDP_BIG" "$vip" 53 "$size" "$@")
    expect_eq "$label: $size bytes echoed whole" "$got" "rs1 $size"
    after=$(admq --counters | awk '$1 == "worker.reassembled" { print $2 }')
    check "$label: rvsd reassembled fragments ($before -> $after)" test "${after:-0}" -gt "${before:-0}"
}

c_mtu_udp() {
    local c k
    svc_up u "$TOPO_VIP4" 53 rr 1 53 -m || return
    svc_up u "$TOPO_VIP6" 53 rr 1 53 -m || return
    # IPv4, DF clear: one jumbo frame in, fragments of 1400 to the server;
    # its echo comes back in fragments of 1500, leaves whole.
    big_echo "IPv4, DF clear" "$TOPO_VIP4" 4000 --no-df
    # IPv4 larger than the client's MTU: fragmented by the client too.
    big_echo "IPv4 over every MTU" "$TOPO_VIP4" 20000 --no-df
    # IPv6: the first try earns a packet too big (1400); the retry is
    # fragmented by the client, reassembled and refragmented by rvsd.
    big_echo "IPv6" "$TOPO_VIP6" 4000
    c=$(admq --counters)
    for k in frag_overlap frag_evicted frag_no_buffer fragment; do
        expect_eq "no drop.$k" "$(awk -v k="drop.$k" '$1 == k { print $2 }' <<<"$c")" 0
    done
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case mtu_udp mtu "UDP over the MTU: fragmented, reassembled both ways, jumbo frames, IPv4+IPv6"
