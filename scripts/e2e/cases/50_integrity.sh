# Integrity: 100 MB downloads through every method arrive with the sha256
# of what the real servers sent (/blob/N: random.Random(N)); 20 MB uploads
# (client -> real server, full-size packets through rvsd; for TUN they no
# longer fit the MTU once encapsulated, so this also exercises path-MTU
# discovery) arrive with the sha256 the client sent.

BIG=100000000
UP=20000000

# transfer_check LABEL VIP PMTU [METHOD-OPTS...]: one service with rs1
# only, a download and an upload through it; PMTU (if not -) is the path
# MTU the client must have learned from rvsd's "fragmentation needed" /
# "packet too big" by the end of the upload.
transfer_check() {
    local label=$1 vip=$2 pmtu=$3; shift 3
    local t0 t1 got secs rport=80
    [ "$1" = -m ] && rport=8080
    adm -C >/dev/null
    svc_up t "$vip" 80 rr "1" "$rport" "$@" >/dev/null || return
    t0=$(date +%s.%N)
    got=$(cl 90 bash -c 'set -o pipefail; curl -sS -f -m 80 "$1" | sha256sum | cut -d" " -f1' _ \
        "$(url "$vip" 80 "/blob/$BIG")" 2>&1)
    t1=$(date +%s.%N)
    secs=$(python3 -c "print(f'{$t1 - $t0:.1f} s, {$BIG / ($t1 - $t0) / 1e6:.0f} MB/s')")
    expect_eq "$label: $((BIG / 1000000)) MB download sha256 ($secs)" "$got" "$E2E_BIG_SHA"
    t0=$(date +%s.%N)
    got=$(cl 90 curl -sS -f -m 80 --data-binary "@$E2E_UP_FILE" -H 'Content-Type: application/octet-stream' \
        "$(url "$vip")" 2>&1 | cut -d' ' -f2,3)
    t1=$(date +%s.%N)
    secs=$(python3 -c "print(f'{$t1 - $t0:.1f} s')")
    expect_eq "$label: $((UP / 1000000)) MB upload sha256 and length ($secs)" "$got" "$E2E_UP_SHA $UP"
    if [ "$pmtu" != - ]; then
        got=$(ip -n "$TOPO_CLIENT_NS" route get "$vip" | grep -o 'mtu [0-9]*' | awk '{ print $2 }')
        expect_eq "$label: the client learned the path MTU to the VIP from rvsd's ICMP" "$got" "$pmtu"
    fi
    ip -n "$TOPO_CLIENT_NS" -4 route flush cache; ip -n "$TOPO_CLIENT_NS" -6 route flush cache
}

integrity_prep() {
    E2E_BIG_SHA=$(blob_sha $BIG)
    E2E_UP_FILE=$E2E_CW/up.bin
    python3 "$RVS_ROOT/scripts/lib/rs_server.py" --blob-write $UP "$E2E_UP_FILE"
    E2E_UP_SHA=$(sha256sum <"$E2E_UP_FILE" | cut -d' ' -f1)
    say "expected: /blob/$BIG sha256 $E2E_BIG_SHA; upload sha256 $E2E_UP_SHA"
}

c_integrity_nat() {
    integrity_prep
    transfer_check "NAT IPv4" "$TOPO_VIP4" - -m
    transfer_check "NAT IPv6" "$TOPO_VIP6" - -m
}
e2e_case integrity_nat nat "100 MB down, 20 MB up through NAT, sha256, IPv4+IPv6"

c_integrity_dr() {
    integrity_prep
    transfer_check "DR IPv4" "$TOPO_VIP4" - -g
    transfer_check "DR IPv6" "$TOPO_VIP6" - -g
}
e2e_case integrity_dr tun "100 MB down, 20 MB up through DR, sha256, IPv4+IPv6"

c_integrity_tun() {
    integrity_prep
    transfer_check "TUN ipip" "$TOPO_VIP4" 1480 -i
    transfer_check "TUN 6in6" "$TOPO_VIP6" 1460 -i
    transfer_check "TUN gre" "$TOPO_VIP4" 1476 -i --tun-type gre
    transfer_check "TUN gue" "$TOPO_VIP4" 1468 -i --tun-type gue --tun-port 6080
}
e2e_case integrity_tun tun "100 MB down, 20 MB up through TUN ipip/6in6/gre/gue, sha256"
