# VLAN sub-interfaces (layout vlan, scripts/lib/topo.sh): the client
# reaches rvsd in VLAN 10 of a port that carries VLANs only; real server 1
# sits in VLAN 20 of the server port, real server 2 on the same port
# untagged. Every host has its addresses on its VLAN device alone and Linux
# drops frames of VLANs it has no device for, so each answer proves the
# tags were right both ways.

# no_lladdr NS ADDR DEV: NS has not learned ADDR's MAC on DEV.
no_lladdr() { ! ip -n "$1" neigh show "$2" dev "$3" | grep -q lladdr; }

# vlan_drops: rvsd's drop.vlan_unknown.
vlan_drops() { admq --counters | awk '$1 == "drop.vlan_unknown" { print $2 }'; }

c_vlan_nat() {
    local BIG=20000000 UP=5000000 vip
    for vip in "$TOPO_VIP4" "$TOPO_VIP6"; do
        adm -C >/dev/null
        svc_up t "$vip" 80 rr "1 1" 8080 -m || return
        expect_eq "TCP $vip: rr over the VLAN-20 server and the untagged one" \
            "$(http_names 4 "$(url "$vip")" | dist)" "rs1=2 rs2=2"
        svc_up u "$vip" 53 rr "1 1" 53 -m || return
        expect_eq "UDP $vip: rr over the VLAN-20 server and the untagged one" \
            "$(udp_names 4 "$vip" 53 | dist)" "rs1=2 rs2=2"
    done
    # A long transfer each way to the VLAN-20 server (transfer_check uses rs1).
    integrity_prep
    transfer_check "VLAN 10 to VLAN 20, IPv4" "$TOPO_VIP4" - -m
    transfer_check "VLAN 10 to VLAN 20, IPv6" "$TOPO_VIP6" - -m
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case vlan_nat vlan "NAT from VLAN 10 to a server in VLAN 20 and an untagged one, TCP+UDP, IPv4+IPv6, 20 MB down, 5 MB up"

c_vlan_refused() {
    local before after got id=${TOPO_CLIENT_NS#rvs-c-} a
    svc_up t "$TOPO_VIP4" 80 rr "1 1" 8080 -m || return
    expect_eq "the VIP answers in VLAN 10" "$(http_names 1 "$(url "$TOPO_VIP4")" | grep -c '^rs')" 1
    # Two more hosts on the client segment: one untagged (the client port
    # carries VLANs only), one in VLAN 30 (no port carries it).
    before=$(vlan_drops)
    for a in untagged 30; do
        local ns=rvs-v$a-$id addr=10.231.1.66
        _topo_host_on_bridge "$ns" "rvs-sw-$id" br0 eth0 "v${a:0:2}$id"
        if [ "$a" = 30 ]; then topo_vlan_port "$ns" eth0 30; addr=10.231.1.67; fi
        ip -n "$ns" addr add "$addr/24" dev eth0
        got=$(timeout --foreground -k 2 10 ip netns exec "$ns" curl -sS -m 3 --connect-timeout 3 \
            "$(url "$TOPO_VIP4")" 2>&1 || true)
        check "$a: the VIP does not answer ($got)" [ -z "$(grep -o '^rs[0-9]' <<<"$got")" ]
        check "$a: rvsd's MAC not learned" no_lladdr "$ns" "$TOPO_VIP4" eth0
    done
    after=$(vlan_drops)
    check "drop.vlan_unknown counted their ARP requests ($before -> $after)" \
        test "$((after - before))" -ge 2
    expect_eq "VLAN 10 still served" "$(http_names 2 "$(url "$TOPO_VIP4")" | grep -c '^rs')" 2
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case vlan_refused vlan "untagged frames on a VLAN-only port and an unknown VLAN: dropped and counted"
