# Graceful drain (-e -w 0), removal of a server (-d), of a service (-D),
# of everything (-C).

# slow_fetch N RATE FILE-PREFIX [curl args]: a background download of
# /blob/N from VIP4:80 that the server paces at RATE bytes per second (a
# client-side limit would let data received before a rule change sit in
# the client's socket buffer and trickle out afterwards); headers to
# PREFIX.hdr, body to PREFIX.body.
# Waits for the headers; sets FETCH_PID (wait for it to get curl's exit
# status) and FETCH_SERVER (the answering server's name).
slow_fetch() {
    local n=$1 rate=$2 f=$3; shift 3
    cl_bg 40 curl -sS -m 35 -D "$f.hdr" -o "$f.body" "$@" \
        "$(url "$TOPO_VIP4" 80 "/blob/$n?rate=$rate")" 2>"$f.err" </dev/null >/dev/null
    FETCH_PID=$!
    bg_on_exit "$FETCH_PID"
    rvs_wait_for 5 grep -q '^X-Server:' "$f.hdr" || { fail "the download did not start"; return 1; }
    FETCH_SERVER=$(awk '/^X-Server:/ { print $2 }' "$f.hdr" | tr -d '\r')
}

c_drain_quiesce() {
    say "a 4 MB download at 1 MB/s; its server is set to weight 0 (-e -w 0) after the first bytes:"
    say "new connections avoid it, the download finishes intact"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 80 -m || return
    local n=4000000 want s names act
    want=$(blob_sha $n)
    slow_fetch $n 1000000 "$E2E_CW/dl" || return
    s=$FETCH_SERVER
    say "download on $s"
    adm -e -t "$TOPO_VIP4:80" -r "$(rs4 "${s#rs}"):80" -m -w 0
    names=$(names_of 10)
    check "10 new connections, none to $s ($(dist <<<"$names"))" \
        bash -c "! grep -q '^$s\$\|ERR' <<<'$names' && [ \$(wc -l <<<'$names') -eq 10 ]"
    act=$(active_of "$(rs4 "${s#rs}"):80" -t "$TOPO_VIP4:80")
    expect_eq "-Ln: $s weight 0 still has the download active (ActiveConn InActConn)" "${act%% *}" 1
    wait "$FETCH_PID"
    expect_eq "download exit status" "$?" 0
    expect_eq "download bytes" "$(stat -c %s "$E2E_CW/dl.body")" "$n"
    expect_eq "download sha256" "$(sha256sum <"$E2E_CW/dl.body" | cut -d' ' -f1)" "$want"
}
e2e_case drain_quiesce nat "-e -w 0: a running download finishes, new conns elsewhere"

c_drain_delete() {
    say "a slow download; its server is deleted (-d): its connections are dropped (the download"
    say "stalls: no byte arrives between 1 s and 3 s after -d), new connections go to the others"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 80 -m || return
    local n=4000000 s names b1 b2
    slow_fetch $n 500000 "$E2E_CW/dl" || return
    s=$FETCH_SERVER
    say "download on $s"
    sleep 0.5
    adm -d -t "$TOPO_VIP4:80" -r "$(rs4 "${s#rs}"):80"
    names=$(names_of 10)
    check "10 new connections, none to $s ($(dist <<<"$names"))" \
        bash -c "! grep -q '^$s\$\|ERR' <<<'$names' && [ \$(wc -l <<<'$names') -eq 10 ]"
    sleep 1; b1=$(stat -c %s "$E2E_CW/dl.body")
    sleep 2; b2=$(stat -c %s "$E2E_CW/dl.body")
    check "the download stalled ($b1 then $b2 of $n bytes, 1 s and 3 s after -d)" [ "$b1" -eq "$b2" -a "$b2" -lt "$n" ]
    kill "$FETCH_PID" 2>/dev/null
}
e2e_case drain_delete nat "-d: the server's connections drop, new conns elsewhere"

# refused URL: a connection attempt gets no answer (or an error) within 1 s.
refused() { ! cl 5 curl -s -m 2 --connect-timeout 1 -o /dev/null "$1"; }

c_delete_clear() {
    say "three services; -D removes one (its VIP stops answering, the others go on); -C removes all"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 80 -m || return
    svc_up u "$TOPO_VIP4" 53 rr "1 1 1" 53 -m || return
    svc_up t 10.231.1.101 80 rr "1 1 1" 80 -m || return
    expect_eq "TCP $TOPO_VIP4:80 answers" "$(names_of 3 | grep -c '^rs')" 3
    expect_eq "UDP $TOPO_VIP4:53 answers" "$(udp_names 3 "$TOPO_VIP4" 53 | grep -c '^rs')" 3
    expect_eq "TCP 10.231.1.101:80 answers" "$(http_names 3 "$(url 10.231.1.101)" | grep -c '^rs')" 3
    adm -D -t "$TOPO_VIP4:80"
    check "TCP $TOPO_VIP4:80 no longer answers" refused "$(url "$TOPO_VIP4")"
    expect_eq "UDP $TOPO_VIP4:53 still answers" "$(udp_names 3 "$TOPO_VIP4" 53 | grep -c '^rs')" 3
    expect_eq "TCP 10.231.1.101:80 still answers" "$(http_names 3 "$(url 10.231.1.101)" | grep -c '^rs')" 3
    expect_eq "-Ln lists the two others" "$(admq -Ln | awk '$1 ~ /^(TCP|UDP)$/ { print $1, $2 }' | paste -sd,)" \
        "TCP 10.231.1.101:80,UDP $TOPO_VIP4:53"
    adm -C
    check "TCP 10.231.1.101:80 no longer answers" refused "$(url 10.231.1.101)"
    expect_eq "UDP $TOPO_VIP4:53 no longer answers" "$(udp_names 1 "$TOPO_VIP4" 53 | grep -c '^rs')" 0
    expect_eq "-Ln lists no service" "$(admq -Ln | awk '$1 ~ /^(TCP|UDP)$/' | wc -l)" 0
}
e2e_case delete_clear nat "-D and -C: the VIPs stop answering"
