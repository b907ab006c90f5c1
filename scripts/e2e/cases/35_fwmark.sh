# fwmark services (-f): rvs's mark table marks two ports of the VIP, one
# persistent fwmark service takes both, so a client's connections to
# either port stick to one real server (what keepalived's fwmark virtual
# servers are for); IPv6 the same way; marks saved and restored with the
# rules.

c_fwmark() {
    local a b u t s6 rules again
    say "mark 1 = TCP $TOPO_VIP4:80 and :8080; -A -f 1 -s rr -p 60; three NAT real servers at port 0 (the packet's own)"
    adm --add-mark -t "$TOPO_VIP4:80" -f 1 || return
    adm --add-mark -t "$TOPO_VIP4:8080" -f 1 || return
    adm -A -f 1 -s rr -p 60 || return
    for i in 1 2 3; do adm -a -f 1 -r "$(rs4 "$i")" -m || return; done
    expect_eq "-Ln lists the fwmark service" "$(admq -Ln | grep '^FWM')" "FWM  1 rr persistent 60"

    a=$( { http_names 5 "$(url "$TOPO_VIP4" 80)"; http_names 5 "$(url "$TOPO_VIP4" 8080)"; } | dist)
    check "client $TOPO_CLIENT4: ports 80 and 8080, 10 connections, one server ($a)" \
        [ "$(wc -w <<<"$a")" -eq 1 -a "${a#rs?=}" = 10 ]
    b=$( { http_names 5 "$(url "$TOPO_VIP4" 8080)" --interface "$CLIENT4B"
           http_names 5 "$(url "$TOPO_VIP4" 80)" --interface "$CLIENT4B"; } | dist)
    check "client $CLIENT4B: both ports, one server ($b)" [ "$(wc -w <<<"$b")" -eq 1 -a "${b#rs?=}" = 10 ]
    check "the two clients on different servers (rr of the templates)" [ "${a%=*}" != "${b%=*}" ]
    t=$(conn_rows | awk '$1 == "IP" { print $4, $5 }' | sort | paste -sd' ')
    expect_eq "-Lnc: one template per client, protocol IP, the mark as virtual address" \
        "$t" "$TOPO_CLIENT4:0 0.0.0.1:0 $CLIENT4B:0 0.0.0.1:0"
    u=$(http_names 1 "$(url "$TOPO_VIP4" 81)")
    expect_eq "an unmarked port has no service" "$u" "ERR"

    say "IPv6: mark 1 = TCP [$TOPO_VIP6]:80; -A -f 1 -6 -s rr (no persistence): round robin"
    adm --add-mark -t "[$TOPO_VIP6]:80" -f 1 || return
    adm -A -f 1 -6 -s rr || return
    # ipvsadm wants a port after an IPv6 address in brackets.
    for i in 1 2 3; do adm -a -f 1 -6 -r "[$(rs6 "$i")]:80" -m || return; done
    s6=$(http_names 6 "$(url "$TOPO_VIP6")" | dist)
    expect_eq "6 IPv6 connections spread over the three" "$s6" "rs1=2 rs2=2 rs3=2"

    say "the marks go with the rules: -S, -C (rules and marks), -R, -S again"
    rules=$(admq -S -n)
    check "-S writes the mark rules as --add-mark lines" grep -qx -- "--add-mark -t $TOPO_VIP4:80 -f 1" <<<"$rules"
    adm -C || return
    expect_eq "-C leaves no mark rule" "$(admq --marks | tail -n +2)" ""
    timeout --foreground -k 2 10 "$E2E_ADM" -R <<<"$rules" || fail "rvsadm -R of the saved rules exited $?"
    adm_sync
    again=$(admq -S -n)
    expect_eq "-R of -S gives the same rules" "$again" "$rules"
    a=$(http_names 4 "$(url "$TOPO_VIP4" 8080)" | dist)
    check "after the restore, marked traffic is served again ($a)" [ "$(wc -w <<<"$a")" -eq 1 -a "${a#rs?=}" = 4 ]
}
e2e_case fwmark nat "fwmark services: two marked ports, one persistent service; IPv6; marks saved and restored"
