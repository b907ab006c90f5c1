# -Ln --stats, --rate and -Lnc reflect the traffic really made.

# A VIP of its own: connections of earlier cases (TIME_WAIT for 120 s, kept
# after -C like the kernel keeps them) must not show up in its -Lnc counts.
STATS_VIP=10.231.1.109

c_stats() {
    say "12 HTTP requests and 5 UDP queries on fresh services: --stats counts exactly them,"
    say "-Lnc lists each connection; then 6 s of load: --rate non-zero (2 s estimator), -Z zeroes"
    svc_up t "$STATS_VIP" 80 rr "1 1 1" 80 -m || return
    svc_up u "$STATS_VIP" 53 rr "1 1 1" 53 -m || return
    local t=(-t "$STATS_VIP:80") u=(-u "$STATS_VIP:53") row i d names conns
    names=$(http_names 12 "$(url "$STATS_VIP")")
    expect_eq "HTTP answers" "$(dist <<<"$names")" "rs1=4 rs2=4 rs3=4"
    row=($(stats_row "${t[@]}"))
    expect_eq "TCP service Conns" "${row[0]}" 12
    check "TCP InPkts ${row[1]} >= 12 * 5 (SYN, ACK, request, ACK, FIN...)" [ "${row[1]}" -ge 60 ]
    check "TCP OutPkts ${row[2]} >= 12 * 4" [ "${row[2]}" -ge 48 ]
    check "TCP InBytes ${row[3]} and OutBytes ${row[4]} > 0" [ "${row[3]}" -gt 0 -a "${row[4]}" -gt 0 ]
    for i in 1 2 3; do
        d=$(stats_dest "$(rs4 $i):80" "${t[@]}" | awk '{ print $1 }')
        expect_eq "Conns of rs$i" "$d" 4
    done
    names=$(udp_names 5 "$STATS_VIP" 53)
    expect_eq "UDP answers" "$(grep -c '^rs' <<<"$names")" 5
    # Queries "q0".."q4": 20 + 8 + 2 bytes; answers "rsN qK": 20 + 8 + 6.
    expect_eq "UDP Conns InPkts OutPkts InBytes OutBytes" "$(stats_row "${u[@]}")" "5 5 5 150 170"
    conns=$(conn_rows)
    expect_eq "-Lnc: TCP connections from the client to the VIP" \
        "$(awk -v s="$TOPO_CLIENT4:" -v v="$STATS_VIP:80" '$1 == "TCP" && index($4, s) == 1 && $5 == v' <<<"$conns" | wc -l)" 12
    expect_eq "-Lnc: their states" \
        "$(awk -v v="$STATS_VIP:80" '$1 == "TCP" && $5 == v { print $3 }' <<<"$conns" | sort | uniq -c | awk '{ print $2 "=" $1 }' | paste -sd' ')" \
        "TIME_WAIT=12"
    expect_eq "-Lnc: their destinations" \
        "$(awk -v v="$STATS_VIP:80" '$1 == "TCP" && $5 == v { print $6 }' <<<"$conns" | sort | uniq -c | awk '{ print $1 }' | paste -sd' ')" \
        "4 4 4"
    expect_eq "-Lnc: UDP connections" \
        "$(awk -v v="$STATS_VIP:53" '$1 == "UDP" && $5 == v && $3 == "UDP"' <<<"$conns" | wc -l)" 5

    adm -Z
    expect_eq "after -Z: TCP stats" "$(stats_row "${t[@]}")" "0 0 0 0 0"
    local f=$E2E_CW/load
    cl_bg 14 bash -c 'end=$((SECONDS + 8))
        while ((SECONDS < end)); do
            out=$(curl -sS -f -m 3 "$1" 2>&1) && echo "${out%% *}" || echo "ERR $out"; sleep 0.02
        done' _ "$(url "$STATS_VIP")" >"$f" </dev/null
    local load=$!
    bg_on_exit $load
    # The estimator samples every 2 s and its first sample after -Z is the
    # baseline: on a busy machine the rates may need a third sample, so
    # they are read until all are up, while the load runs.
    sleep 2.5
    local try
    for try in $(seq 10); do
        row=($(rate_row "${t[@]}"))
        [ "${row[0]:-0}" -gt 0 -a "${row[1]:-0}" -gt 0 -a "${row[2]:-0}" -gt 0 -a "${row[3]:-0}" -gt 0 \
            -a "${row[4]:-0}" -gt 0 ] && break
        sleep 0.5
    done
    say "--rate during the load: CPS ${row[0]} InPPS ${row[1]} OutPPS ${row[2]} InBPS ${row[3]} OutBPS ${row[4]}"
    check "all five rates non-zero while traffic runs" \
        [ "${row[0]}" -gt 0 -a "${row[1]}" -gt 0 -a "${row[2]}" -gt 0 -a "${row[3]}" -gt 0 -a "${row[4]}" -gt 0 ]
    wait $load
    local made; made=$(grep -c '^rs' "$f")
    expect_eq "failed requests during the load" "$(grep -c '^ERR' "$f")" 0
    grep '^ERR' "$f" | head -3 | sed 's/^/      /'
    expect_eq "Conns after the load = requests made ($made)" "$(stats_row "${t[@]}" | awk '{ print $1 }')" "$made"
}
e2e_case stats nat "--stats, --rate, -Lnc, -Z match the traffic"
