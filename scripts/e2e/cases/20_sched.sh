# Schedulers: which real server gets each new connection. The clients make
# sequential short connections (each closed before the next starts, so it
# is inactive - FIN_WAIT/TIME_WAIT - by then, and no server has an active
# connection when the next one is scheduled). Real servers rs1, rs2, rs3
# are added in that order, so the kernel's list order is rs3 rs2 rs1
# (newest first); ties go to the first in that order.

MODEL=$E2E_DIR/model.py
SVC4=(-t "$TOPO_VIP4:80")

# sched_svc SCHED "W1 W2 W3" [-- SERVICE-OPTS]: NAT TCP service on VIP4:80.
sched_svc() {
    local s=$1 w=$2; shift 2
    svc_up t "$TOPO_VIP4" 80 "$s" "$w" 80 -m "$@"
}

# names_of N [curl args]: N requests to VIP4:80.
names_of() { http_names "$1" "$(url "$TOPO_VIP4")" "${@:2}"; }

# slow_bg N: N concurrent slow downloads from VIP4:80 (kept open ~10 s),
# stopped at the end of the case; waits until rvsd lists N active
# connections on the service.
slow_bg() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        cl_bg 20 curl -s -m 15 --limit-rate 100K -o /dev/null "$(url "$TOPO_VIP4" 80 /blob/1000000)" </dev/null >/dev/null
        bg_on_exit $!
    done
    rvs_wait_for 5 bash -c "[ \"\$($E2E_ADM -L -t $TOPO_VIP4:80 -n | awk '\$1 == \"->\" { a += \$5 } END { print a + 0 }')\" -ge $n ]" \
        || fail "$n slow downloads did not become active connections"
}

c_sched_rr() {
    say "rr: strict rotation in list order (rs3 rs2 rs1, newest first); weights ignored except 0"
    sched_svc rr "1 2 3" || return
    local names; names=$(names_of 30)
    expect_eq "30 connections: 10 each" "$(dist <<<"$names")" "rs1=10 rs2=10 rs3=10"
    expect_eq "order of the first six" "$(head -6 <<<"$names" | paste -sd' ')" "rs3 rs2 rs1 rs3 rs2 rs1"
    adm -e "${SVC4[@]}" -r "$(rs4 2):80" -m -w 0
    names=$(names_of 10)
    expect_eq "rs2 quiesced (-w 0): 10 connections skip it" "$(dist <<<"$names")" "rs1=5 rs3=5"
}
e2e_case sched_rr nat "rr: rotation in list order, weight 0 skipped"

c_sched_wrr() {
    say "wrr, weights 1 2 3: 60 connections split exactly 10:20:30"
    sched_svc wrr "1 2 3" || return
    expect_eq "60 connections" "$(names_of 60 | dist)" "rs1=10 rs2=20 rs3=30"
}
e2e_case sched_wrr nat "wrr: weights 1,2,3 -> 10:20:30 of 60"

c_sched_wlc() {
    say "wlc, weights 1 2 3: least (256*active + inactive)/weight; closed connections stay"
    say "inactive (TIME_WAIT), so 60 sequential connections split exactly 10:20:30"
    sched_svc wlc "1 2 3" || return
    expect_eq "60 connections" "$(names_of 60 | dist)" "rs1=10 rs2=20 rs3=30"
}
e2e_case sched_wlc nat "wlc: weights 1,2,3 -> 10:20:30 of 60"

c_sched_lc() {
    say "lc, weights 1 2 3: least connections, weight ignored: 60 connections split 20:20:20"
    sched_svc lc "1 2 3" || return
    expect_eq "60 connections" "$(names_of 60 | dist)" "rs1=20 rs2=20 rs3=20"
}
e2e_case sched_lc nat "lc: weights ignored -> 20:20:20 of 60"

c_sched_sed() {
    say "sed, weights 3 2 1: least (active+1)/weight; with no active connection that is always"
    say "the highest weight (rs1), although it is last in list order"
    sched_svc sed "3 2 1" || return
    expect_eq "20 connections" "$(names_of 20 | dist)" "rs1=20"
}
e2e_case sched_sed nat "sed: no active conns -> always the highest weight"

c_sched_nq() {
    say "nq, weights 3 2 1: the first idle server in list order wins regardless of weight (rs3);"
    say "while rs3 holds an active connection, the next idle one (rs2)"
    sched_svc nq "3 2 1" || return
    expect_eq "20 sequential connections" "$(names_of 20 | dist)" "rs3=20"
    slow_bg 1
    expect_eq "rs3 busy with a download: 5 connections" "$(names_of 5 | dist)" "rs2=5"
}
e2e_case sched_nq nat "nq: first idle server in list order"

c_sched_fo() {
    say "fo, weights 1 3 2: always the highest weight (rs2); quiesce it and the next highest (rs3)"
    sched_svc fo "1 3 2" || return
    expect_eq "20 connections" "$(names_of 20 | dist)" "rs2=20"
    adm -e "${SVC4[@]}" -r "$(rs4 2):80" -m -w 0
    expect_eq "rs2 at weight 0: 10 connections" "$(names_of 10 | dist)" "rs3=10"
}
e2e_case sched_fo nat "fo: highest weight, then the next"

c_sched_ovf() {
    say "ovf, weights 1 1 2: the highest weight (rs3) while its active connections <= weight;"
    say "with 3 active downloads on rs3 it overflows to the next highest, first in list order (rs2)"
    sched_svc ovf "1 1 2" || return
    expect_eq "10 sequential connections" "$(names_of 10 | dist)" "rs3=10"
    slow_bg 3
    expect_eq "rs3 with 3 active (> weight 2): 5 connections" "$(names_of 5 | dist)" "rs2=5"
}
e2e_case sched_ovf nat "ovf: highest weight until active > weight"

# hash_check SCHED: each client's 12 connections (new source ports) reach
# one server; with the model, the server the kernel would pick.
c_sched_sh() {
    say "sh, weights 1 1 1: the source address picks the server (hash_32(addr) bucket, 256 buckets)"
    sched_svc sh "1 1 1" || return
    local c want got
    for c in "$TOPO_CLIENT4" "$CLIENT4B"; do
        want=$(python3 "$MODEL" sh "$c" rs3:1 rs2:1 rs1:1)
        got=$(names_of 12 --interface "$c" | dist)
        expect_eq "client $c, 12 connections (kernel: $want)" "$got" "$want=12"
    done
    say "sh with -b sh-port: the source port joins the hash, so one client spreads"
    adm -E "${SVC4[@]}" -s sh -b sh-port
    got=$(names_of 24 | dist)
    check "client $TOPO_CLIENT4, 24 connections over more than one server ($got)" \
        [ "$(wc -w <<<"$got")" -gt 1 -a "${got/ERR/}" = "$got" ]
}
e2e_case sched_sh nat "sh: same client -> the kernel's server; sh-port spreads"

c_sched_dh() {
    say "dh: the destination address picks the server; one dh service per VIP 10.231.1.100-105,"
    say "each VIP's connections all go to the server the kernel's hash gives"
    local v vip want got
    for v in 100 101 102 103 104 105; do
        vip=10.231.1.$v
        svc_up t "$vip" 80 dh "1 1 1" 80 -m >/dev/null || return
        want=$(python3 "$MODEL" dh "$vip" rs3 rs2 rs1)
        got=$(http_names 4 "$(url "$vip")" | dist)
        expect_eq "VIP $vip, 4 connections" "$got" "$want=4"
    done
}
e2e_case sched_dh nat "dh: one server per destination, as the kernel hashes"

c_sched_mh() {
    say "mh (Maglev), weights 1 1 1: each client's connections stay on one server"
    sched_svc mh "1 1 1" || return
    local c got
    for c in "$TOPO_CLIENT4" "$CLIENT4B" "10.231.1.4" "10.231.1.5"; do
        [ "$c" = 10.231.1.4 ] && { topo_client_addr 10.231.1.4/24; topo_client_addr 10.231.1.5/24; }
        got=$(names_of 8 --interface "$c" | dist)
        check "client $c, 8 connections, one server ($got)" [ "$(wc -w <<<"$got")" -eq 1 -a "${got/ERR/}" = "$got" ]
    done
    say "mh with -b mh-port: the source port joins the hash, so one client spreads"
    adm -E "${SVC4[@]}" -s mh -b mh-port
    got=$(names_of 24 | dist)
    check "client $TOPO_CLIENT4, 24 connections over more than one server ($got)" \
        [ "$(wc -w <<<"$got")" -gt 1 -a "${got/ERR/}" = "$got" ]
}
e2e_case sched_mh nat "mh: consistent per client; mh-port spreads"

c_sched_lblc() {
    say "lblc, weights 1 2 3: the first connection to the VIP picks by wlc (rs3, the first in list"
    say "order with the least load per weight); the VIP then sticks to it while not overloaded"
    sched_svc lblc "1 2 3" || return
    expect_eq "20 connections" "$(names_of 20 | dist)" "rs3=20"
    say "4 active downloads on rs3 (> weight 3, while rs1 has 2*0 < 1): overloaded, so the VIP is"
    say "rescheduled by wlc to rs2 (least load per weight, first in list order) and sticks there"
    slow_bg 4
    expect_eq "5 connections" "$(names_of 5 | dist)" "rs2=5"
}
e2e_case sched_lblc nat "lblc: one server per destination while not overloaded"

c_sched_lblcr() {
    say "lblcr, weights 1 2 3: like lblc, a server set per destination; sequential connections"
    say "never overload it, so the set stays {rs3}"
    sched_svc lblcr "1 2 3" || return
    expect_eq "20 connections" "$(names_of 20 | dist)" "rs3=20"
    say "4 active downloads on rs3 overload it: wlc adds rs2 to the set, and the least loaded"
    say "member of the set {rs3, rs2} is rs2 from then on"
    slow_bg 4
    expect_eq "5 connections" "$(names_of 5 | dist)" "rs2=5"
}
e2e_case sched_lblcr nat "lblcr: one server set per destination"

c_sched_twos() {
    say "twos, weights 0 1 2: two random choices by weight, the less loaded per weight wins;"
    say "rs1 (weight 0) never chosen, rs2 and rs3 both used"
    sched_svc twos "0 1 2" || return
    local got; got=$(names_of 40 | dist)
    check "40 connections: none to rs1, some to rs2 and rs3, none failed ($got)" \
        bash -c "[[ '$got' =~ ^rs2=[0-9]+\ rs3=[0-9]+$ ]]"
}
e2e_case sched_twos nat "twos: random by weight, weight 0 never"
