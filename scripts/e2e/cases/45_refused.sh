# No real server can take a new connection (every one at weight 0): rvsd
# answers as IPVS's ip_vs_leave does, with ICMP port unreachable from the
# VIP, so that the client's connection is refused at once, TCP and UDP
# alike; the answers are rate limited; a weight above 0 brings the service
# back.

UDP_REFUSED=$E2E_DIR/udp_refused.py

# refused_counter NAME: one of rvsadm --counters (0 when absent). The
# workers publish theirs every 100 ms: read after that.
refused_counter() {
    sleep 0.3
    admq --counters | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

# refused_curl VIP: curl's verdict on http://VIP/: "EXIT MS REFUSED?".
refused_curl() {
    local t0 out rc
    t0=$(date +%s%N)
    out=$(cl 15 curl -v -sS -m 10 --connect-timeout 10 -o /dev/null "$(url "$1")" 2>&1)
    rc=$?
    echo "$rc $((($(date +%s%N) - t0) / 1000000)) $(grep -c 'Connection refused' <<<"$out")"
}

c_refused() {
    say "every real server at weight 0 (TCP :80 and UDP :53, IPv4 and IPv6): curl fails at once"
    say "with 'Connection refused' (exit 7), a connected UDP socket gets ECONNREFUSED; nothing is"
    say "created; answers are rate limited (six at once per client and worker); weight 1: served"
    local vip rc ms n got sent0 lim0 sent1 lim1 refused
    for vip in "$TOPO_VIP4" "$TOPO_VIP6"; do
        svc_up t "$vip" 80 wlc "0 0 0" 80 -m || return
        svc_up u "$vip" 53 wlc "0 0 0" 53 -m || return
    done
    # Earlier cases on this rvsd may have spent the clients' ICMP budgets
    # (six errors at once, one more a second): full again after 6 s.
    sleep 6
    sent0=$(refused_counter icmp.port_unreachable)
    lim0=$(refused_counter icmp.port_unreachable_limited)
    for vip in "$TOPO_VIP4" "$TOPO_VIP6"; do
        read -r rc ms n < <(refused_curl "$vip")
        expect_eq "curl $(url "$vip"): exit status (7: could not connect)" "$rc" 7
        check "curl $(url "$vip"): 'Connection refused', after $ms ms (< 1000)" [ "$n" -ge 1 -a "$ms" -lt 1000 ]
        got=$(cl 10 python3 "$UDP_REFUSED" "$vip" 53 1 "" 3)
        check "UDP $vip:53 from a connected socket: ECONNREFUSED ($got)" \
            bash -c "[[ '$got' == 'refused=1 answered=0 silent=0 '* ]] && [ ${got##*ms=} -lt 1000 ]"
    done
    sent1=$(refused_counter icmp.port_unreachable)
    expect_eq "icmp.port_unreachable went up by one per attempt" "$((sent1 - sent0))" 4
    for vip in "$TOPO_VIP4" "[$TOPO_VIP6]"; do
        expect_eq "-Ln --stats -t $vip:80: no connection, no packet (conns inpkts)" \
            "$(stats_row -t "$vip:80" | cut -d' ' -f1,2)" "0 0"
        expect_eq "-Ln --stats -u $vip:53: no connection, no packet (conns inpkts)" \
            "$(stats_row -u "$vip:53" | cut -d' ' -f1,2)" "0 0"
    done

    say "40 UDP clients at once from $CLIENT4B: six answers per worker at most, the rest held back"
    got=$(cl 10 python3 "$UDP_REFUSED" "$TOPO_VIP4" 53 40 "$CLIENT4B" 1)
    refused=$(sed 's/.*refused=\([0-9]*\).*/\1/' <<<"$got")
    check "between 6 and 14 refused, none answered ($got)" \
        bash -c "[ '$refused' -ge 6 -a '$refused' -le 14 ] && [[ '$got' == *' answered=0 '* ]]"
    sent1=$(refused_counter icmp.port_unreachable)
    lim1=$(refused_counter icmp.port_unreachable_limited)
    expect_eq "icmp.port_unreachable: the answers" "$((sent1 - sent0 - 4))" "$refused"
    expect_eq "icmp.port_unreachable_limited: the others" "$((lim1 - lim0))" "$((40 - refused))"

    say "rs1 back at weight 1: served again"
    adm -e -t "$TOPO_VIP4:80" -r "$(rs4 1):80" -m -w 1
    adm -e -u "$TOPO_VIP4:53" -r "$(rs4 1):53" -m -w 1
    adm -e -t "[$TOPO_VIP6]:80" -r "[$(rs6 1)]:80" -m -w 1
    expect_eq "TCP $TOPO_VIP4:80" "$(http_get "$(url "$TOPO_VIP4")" | awk '{ print $1 }')" rs1
    expect_eq "TCP [$TOPO_VIP6]:80" "$(http_get "$(url "$TOPO_VIP6")" | awk '{ print $1 }')" rs1
    expect_eq "UDP $TOPO_VIP4:53" "$(udp_names 1 "$TOPO_VIP4" 53)" rs1
    check "every frame accounted for" rvs_counters_balanced "$E2E_ADM"
}
e2e_case refused nat "all real servers at weight 0: connection refused at once (port unreachable), TCP+UDP, IPv4+IPv6, rate limited"
