# The front door: hostile frames (scapy, scripts/e2e/hostile.py) and a
# spoofed SYN flood (hping3) from the client side. Each class of frames
# must raise its drop counters by exactly its count and leave nothing on
# the real servers' segment; after each, NAT over TCP/UDP, IPv4/IPv6 still
# works; every frame stays accounted for.

HOSTILE=$E2E_DIR/hostile.py
PY=/usr/bin/python3

# The layout's id, and its switch namespaces (client side, server side).
hostile_ids() {
    local id=${TOPO_CLIENT_NS#rvs-c-}
    HOSTILE_SWC=rvs-sw-$id
    HOSTILE_SWS=rvs-ss-$id
}

# br_netfilter would drop malformed IP headers at the bridges before rvsd
# sees them: off in the layout's own switch namespaces.
hostile_bridges_raw() {
    local ns
    for ns in "$HOSTILE_SWC" "$HOSTILE_SWS"; do
        ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 \
            net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
    done
}

# counter NAME: one of rvsadm --counters.
counters_now() { admq --counters | awk '{ print $1, $2 }'; }
counter_of() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' <<<"$2"; }

# lb_mac: rvsd's client-port MAC, as the client resolved it.
lb_mac() {
    cl 5 ping -c 1 -W 2 10.231.1.1 >/dev/null 2>&1
    ip -n "$TOPO_CLIENT_NS" neigh show 10.231.1.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'
}

# is_rs NAME: a real server's name.
is_rs() { [[ $1 == rs* ]]; }

# still_works: a NAT request of each kind is answered.
still_works() {
    local what=$1 got
    got=$(http_get "$(url "$TOPO_VIP4")" | awk '{ print $1 }')
    check "after $what: TCP/IPv4 answered ($got)" is_rs "$got"
    got=$(http_get "$(url "$TOPO_VIP6")" | awk '{ print $1 }')
    check "after $what: TCP/IPv6 answered ($got)" is_rs "$got"
    # UDP has no retransmission: one query lost on the veths (net_af_packet
    # does not report its ring losses; seen once in a CI run) is asked
    # again, a service that stopped answering still fails.
    got=$(udp_names 1 "$TOPO_VIP4" 53)
    is_rs "$got" || got=$(udp_names 1 "$TOPO_VIP4" 53)
    check "after $what: UDP/IPv4 answered ($got)" is_rs "$got"
}

# hostile_class NAME: send the class from the client, sniff the server
# segment meanwhile; check the counters it names and the far side.
hostile_class() {
    local name=$1 before after out sniff_out got k v seen
    before=$(counters_now)
    sniff_out=$E2E_CW/sniff-$name
    # The sniffer stops at SIGINT (timeout passes it on), shortly after
    # the last frame was sent.
    timeout -s INT -k 2 60 ip netns exec "$HOSTILE_SWS" "$PY" "$HOSTILE" sniff br0 55 >"$sniff_out" 2>&1 &
    local sniffer=$!
    rvs_wait_for 15 grep -q '^ready' "$sniff_out" || fail "$name: the sniffer did not start"
    out=$(cl 60 "$PY" "$HOSTILE" send eth0 "$name" "$E2E_LB_MAC" ${E2E_CPORT:-} 2>&1) || fail "$name: hostile.py: $out"
    sleep 1
    kill -INT "$sniffer" 2>/dev/null
    wait "$sniffer"
    seen=$(tail -1 "$sniff_out")
    after=$(counters_now)
    say "$name: $(head -1 <<<"$out")"
    while read -r k v; do
        got=$(($(counter_of "drop.$k" "$after") - $(counter_of "drop.$k" "$before")))
        expect_eq "$name: drop.$k raised by" "$got" "$v"
    done < <(awk '$1 == "expect" { print $2, $3 }' <<<"$out")
    case $name in
    valid | frag_valid | vlan_priority) check "$name: the real servers' segment saw it ($seen)" [ "${seen:-0}" -ge 1 ] ;;
    tcp_flags | icmp_errors | icmp_live | ipv6_chains | fuzz) ;;
    *) expect_eq "$name: marked frames on the real servers' segment" "$seen" 0 ;;
    esac
    check "$name: every frame accounted for" rvs_counters_balanced "$E2E_ADM"
    still_works "$name"
}

c_hostile() {
    hostile_ids
    hostile_bridges_raw
    E2E_LB_MAC=$(lb_mac)
    check "rvsd's client-port MAC resolved ($E2E_LB_MAC)" [ -n "$E2E_LB_MAC" ]
    say "NAT services on the VIPs: TCP 80 -> 8080, UDP 53, IPv4 and IPv6"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 8080 -m >/dev/null || return
    svc_up t "$TOPO_VIP6" 80 rr "1 1 1" 8080 -m >/dev/null || return
    svc_up u "$TOPO_VIP4" 53 rr "1 1 1" 53 -m >/dev/null || return
    svc_up u "$TOPO_VIP6" 53 rr "1 1 1" 53 -m >/dev/null || return
    # A download runs through all of it; lying ICMP errors quote it.
    local blob=40000000 sha dl c
    sha=$(blob_sha $blob)
    cl_bg 180 bash -c 'set -o pipefail; curl -sS -f -m 170 --limit-rate 400K "$1" | sha256sum | cut -d" " -f1 >"$2"' _ \
        "$(url "$TOPO_VIP4" 80 "/blob/$blob")" "$E2E_CW/download.sha"
    dl=$!
    bg_on_exit "$dl"
    rvs_wait_for 10 bash -c "timeout 5 $E2E_ADM -Lnc | grep -q ESTABLISHED" || fail "the download did not start"
    E2E_CPORT=$(admq -Lnc | awk '$3 == "ESTABLISHED" { split($4, a, ":"); print a[2]; exit }')
    say "the download's client port: $E2E_CPORT"
    for c in valid icmp_live bad_ip_checksum martian_source martian_destination not_for_us vlan vlan_priority \
        source_route ttl_expired malformed frag_valid fragments tcp_flags icmp_errors ipv6_chains fuzz; do
        hostile_class "$c"
    done
    wait "$dl"
    expect_eq "the download running through it all arrived intact" "$(cat "$E2E_CW/download.sha" 2>/dev/null)" "$sha"
}
e2e_case hostile nat "hostile frames: each class counted exactly, nothing through, service intact"

# legit_conns N URL: N new connections, one after the other; prints each
# one's connect time in ms, or FAIL.
legit_conns() {
    cl $(($1 * 4 + 10)) bash -c '
        for ((i = 0; i < $1; i++)); do
            t=$(curl -sS -o /dev/null -m 3 --connect-timeout 3 -w "%{time_connect}" "$2" 2>/dev/null) \
                && echo "$t" | awk "{ printf \"%.2f\n\", \$1 * 1000 }" || echo FAIL
        done' _ "$1" "$2"
}

# conn_summary LABEL: reads legit_conns' lines; says the success rate and
# the connect-time median and maximum. The goal is 99 %; measured runs
# give 99-100 %, the odd failure being a SYN or SYN-ACK lost in the flood
# (af_packet's ring, a handshake slower than the table's refill), so the
# check asks 97 % of many tries, which only a broken defence misses.
conn_summary() {
    local label=$1 lines n ok med max
    lines=$(cat)
    n=$(wc -l <<<"$lines")
    ok=$(grep -vc FAIL <<<"$lines")
    med=$(grep -v FAIL <<<"$lines" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    max=$(grep -v FAIL <<<"$lines" | sort -n | tail -1)
    check "$label: $ok of $n new connections succeeded (connect median ${med} ms, max ${max} ms)" \
        [ $((ok * 100)) -ge $((n * 97)) ]
}

c_synflood() {
    local vip2=10.231.1.101 blob=45000000 before after dl flood sha rx secs t0
    say "NAT on two VIPs; a download runs through the flood; hping3 floods $TOPO_VIP4:80 with spoofed SYNs"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 8080 -m >/dev/null || return
    svc_up t "$vip2" 80 rr "1 1 1" 8080 -m >/dev/null || return
    sha=$(blob_sha $blob)
    before=$(counters_now)
    cl_bg 60 bash -c 'set -o pipefail; curl -sS -f -m 55 --limit-rate 3M "$1" | sha256sum | cut -d" " -f1 >"$2"' _ \
        "$(url "$TOPO_VIP4" 80 "/blob/$blob")" "$E2E_CW/download.sha"
    dl=$!
    bg_on_exit "$dl"
    sleep 1
    t0=$(date +%s.%N)
    # The attacker is another host on the client segment (the client's own
    # interface queue stays the client's).
    local attacker=rvs-a-${TOPO_CLIENT_NS#rvs-c-}
    _topo_host_on_bridge "$attacker" "rvs-sw-${TOPO_CLIENT_NS#rvs-c-}" br0 eth0 "a${TOPO_CLIENT_NS#rvs-c-}"
    ip -n "$attacker" addr add 10.231.1.66/24 dev eth0
    timeout --foreground -k 2 40 ip netns exec "$attacker" hping3 -S --flood --rand-source -p 80 -q "$TOPO_VIP4" \
        >/dev/null 2>&1 &
    flood=$!
    bg_on_exit "$flood"
    # Until the table is full and handshakes are being given up.
    rvs_wait_for 20 bash -c "[ \"\$(timeout 5 $E2E_ADM --counters | awk '\$1 == \"lb.embryonic_evicted\" { print \$2 }')\" -gt 0 ]" \
        || fail "the flood never filled the connection table"
    conn_summary "under flood, the attacked VIP" < <(legit_conns 300 "$(url "$TOPO_VIP4")")
    conn_summary "under flood, another VIP" < <(legit_conns 100 "$(url "$vip2")")
    kill "$flood" 2>/dev/null; wait "$flood" 2>/dev/null
    secs=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
    after=$(counters_now)
    rx=$(($(counter_of worker.rx "$after") - $(counter_of worker.rx "$before")))
    say "flood: $rx frames in $secs s ($(python3 -c "print(int($rx / $secs))") frames/s into rvsd)," \
        "$(($(counter_of lb.embryonic_evicted "$after") - $(counter_of lb.embryonic_evicted "$before"))) handshakes given up," \
        "$(($(counter_of drop.martian_source "$after") - $(counter_of drop.martian_source "$before"))) martian sources"
    expect_eq "no new connection refused for a full table (drop.table_full)" \
        "$(($(counter_of drop.table_full "$after") - $(counter_of drop.table_full "$before")))" 0
    wait "$dl"
    expect_eq "the download running through the flood arrived intact" "$(cat "$E2E_CW/download.sha" 2>/dev/null)" "$sha"
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case synflood nat "spoofed SYN flood: new connections to every VIP and a running download go on"
