# Configuration changes under a steady request load lose no request.

c_config_under_load() {
    say "10 s of back-to-back requests to $TOPO_VIP4:80 while servers and services are added,"
    say "edited, quiesced and removed; a server is removed only after -w 0 and 1 s of draining"
    svc_up t "$TOPO_VIP4" 80 rr "1 1" 80 -m || return
    local svc=(-t "$TOPO_VIP4:80") f=$E2E_CW/load
    : >"$f"  # both the load and the markers append (O_APPEND)
    cl_bg 20 bash -c 'end=$((SECONDS + 10))
        while ((SECONDS < end)); do
            out=$(curl -sS -f -m 3 --connect-timeout 2 "$1" 2>&1) && echo "${out%% *}" || echo "ERR $out"
        done' _ "$(url "$TOPO_VIP4")" >>"$f" </dev/null
    local load=$!
    bg_on_exit $load
    # Markers go before an addition (answers after it may come from the
    # new server) and after a removal (nothing from the server after it).
    sleep 1; echo "--- rs3 added" >>"$f"
    adm -a "${svc[@]}" -r "$(rs4 3):80" -m -w 1
    sleep 1; adm -e "${svc[@]}" -r "$(rs4 1):80" -m -w 3
    adm -A -t 10.231.1.101:80 -s wlc
    adm -a -t 10.231.1.101:80 -r "$(rs4 1):80" -m
    adm -A -u "$TOPO_VIP4:53" -s rr
    adm -a -u "$TOPO_VIP4:53" -r "$(rs4 2):53" -m
    sleep 1; adm -E "${svc[@]}" -s wrr
    sleep 1; adm -e "${svc[@]}" -r "$(rs4 2):80" -m -w 0
    sleep 1; adm -d "${svc[@]}" -r "$(rs4 2):80"
    echo "--- rs2 removed" >>"$f"
    sleep 1; adm -D -t 10.231.1.101:80; adm -D -u "$TOPO_VIP4:53"
    adm -e "${svc[@]}" -r "$(rs4 1):80" -m -w 1
    sleep 1; echo "--- rs2 back" >>"$f"
    adm -a "${svc[@]}" -r "$(rs4 2):80" -m -w 2
    sleep 1; adm -E "${svc[@]}" -s wlc
    wait $load
    local total errs
    total=$(grep -vc '^---' "$f"); errs=$(grep -c '^ERR' "$f")
    check "requests made: $total (at least 50)" [ "$total" -ge 50 ]
    expect_eq "requests lost" "$errs" 0
    [ "$errs" -eq 0 ] || grep '^ERR' "$f" | head -3 | sed 's/^/      /'
    expect_eq "rs3 answered after it was added" \
        "$(sed -n '/^--- rs3 added/,$p' "$f" | grep -c '^rs3' | awk '{ print ($1 > 0) }')" 1
    expect_eq "rs2 answered nothing between its removal and its return" \
        "$(sed -n '/^--- rs2 removed/,/^--- rs2 back/p' "$f" | grep -c '^rs2')" 0
    expect_eq "rs2 answered after it came back" \
        "$(sed -n '/^--- rs2 back/,$p' "$f" | grep -c '^rs2' | awk '{ print ($1 > 0) }')" 1
    say "answers: $(grep '^rs' "$f" | dist)"
}
e2e_case config_under_load nat "rule changes under 10 s of load lose no request"
