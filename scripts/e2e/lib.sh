# Helpers for the rvs end-to-end suite (scripts/e2e/run). Source after
# scripts/lib/common.sh and scripts/lib/topo.sh; do not run.
#
# Conventions: every command that talks to a namespace is bounded by a
# timeout; a case narrates what it checks with `say`, and records each
# assertion with `check`/`expect_eq` (a failed assertion does not stop the
# case, so its output shows everything that went wrong; the case fails if
# any did).

E2E_RVSD=$RVS_ROOT/target/release/rvsd
E2E_ADM=$RVS_ROOT/target/release/rvsadm
E2E_FAILS=0

# The second client address (persistence, source hashing).
CLIENT4B=10.231.1.3
CLIENT6B=2001:db8:231:1::3

say() { printf '    %s\n' "$*"; }

# check WHAT CMD...: CMD must succeed.
check() {
    local what=$1; shift
    if "$@"; then say "ok    $what"; else say "FAIL  $what"; E2E_FAILS=$((E2E_FAILS + 1)); fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        say "ok    $1: $2"
    else
        say "FAIL  $1: got '$2', want '$3'"; E2E_FAILS=$((E2E_FAILS + 1))
    fi
}

fail() { say "FAIL  $*"; E2E_FAILS=$((E2E_FAILS + 1)); }

# rvsadm against this layout's rvsd (RVS_SOCK is exported by the runner).
# Echoes the command so the output shows the configuration a case used.
#
# rvsd applies a rule change asynchronously: rvsadm returns once the control
# thread has published the new rules, and each worker adopts them at its
# next loop. On this shared 2-core machine a worker can be off the CPU for
# milliseconds, so a connection made right after rvsadm returned could still
# be scheduled by the old rules (seen: rr's first pick, lblc's server, a
# -M change, all off by one snapshot). `adm` therefore ends every change
# with a barrier: `rvsadm -Lnc` is answered by every worker from its loop
# after it has picked up the newest rules.
adm() {
    say "# rvsadm $*"
    timeout --foreground -k 2 10 "$E2E_ADM" "$@" || { fail "rvsadm $* exited $?"; return 1; }
    case $1 in -L | -l | -S | --save | --list) ;; *) adm_sync ;; esac
}
adm_sync() { timeout --foreground -k 2 10 "$E2E_ADM" -L -n -c >/dev/null 2>&1; }
# The same, quietly (listings parsed by the case).
admq() { timeout --foreground -k 2 10 "$E2E_ADM" "$@"; }

# cl SECS CMD...: run CMD in the client namespace, at most SECS seconds.
cl() {
    local t=$1; shift
    timeout --foreground -k 2 "$t" ip netns exec "$TOPO_CLIENT_NS" "$@"
}

# cl_bg SECS CMD...: the same in the background; $! is then the timeout
# process, which passes a TERM on to CMD (a function run with & would give
# the pid of a subshell, whose death leaves CMD running).
cl_bg() {
    local t=$1; shift
    timeout --foreground -k 2 "$t" ip netns exec "$TOPO_CLIENT_NS" "$@" &
}

# url ADDR [PORT] [PATH]: an HTTP URL (IPv6 in brackets).
url() {
    local a=$1 p=${2:-80} path=${3:-/}
    case $a in *:*) a="[$a]" ;; esac
    echo "http://$a:$p$path"
}

# http_names N URL [curl args...]: N sequential HTTP requests from the
# client (a new connection, hence a new source port, each); prints one
# line per request: the answering server's name, or ERR.
http_names() {
    local n=$1 u=$2; shift 2
    cl $((n * 3 + 5)) bash -c '
        n=$1 u=$2; shift 2
        for ((i = 0; i < n; i++)); do
            out=$(curl -sS -f -m 2 --connect-timeout 2 -w " %{local_port}" "$@" "$u" 2>&1) \
                && echo "${out%% *} ${out##* }" || echo "ERR $out"
        done' _ "$n" "$u" "$@" | e2e_log_requests "http $u $*"
}

# e2e_log_requests WHAT: pass "server [client port]" lines through, printing
# only the server (first word); keep the whole lines in the case's
# requests.log, which the runner shows when the case fails.
e2e_log_requests() {
    local line
    { echo "## $1"; } >>"${E2E_CW:-/dev/null}/requests.log" 2>/dev/null
    while IFS= read -r line; do
        echo "$line" >>"${E2E_CW:-/dev/null}/requests.log" 2>/dev/null
        echo "${line%% *}"
    done
}

# http_get URL [curl args...]: one request; prints the full answer
# ("<server> <client address it saw>") or ERR.
http_get() {
    local u=$1; shift
    cl 5 curl -sS -f -m 3 --connect-timeout 2 "$@" "$u" 2>&1 || echo "ERR"
}

# udp_names N ADDR PORT [SOURCE]: N UDP queries, each from a new socket
# (new source port); prints the answering server per query, or ERR.
udp_names() {
    cl $(($1 * 3 + 5)) python3 "$E2E_DIR/udp_client.py" "$2" "$3" "$1" ${4:+"$4"} | e2e_log_requests "udp $*"
}

# dist: reads server names (one a line) and prints "rs1=A rs2=B ...",
# sorted by name, with ERR=n when requests failed.
dist() {
    awk '{ n[$1]++ } END { for (k in n) printf "%s=%d\n", k, n[k] }' | sort | paste -sd' '
}

# only_one: the names on stdin are all the same server (prints it).
only_one() {
    local names; names=$(sort -u)
    [ "$(wc -l <<<"$names")" -eq 1 ] && [[ $names == rs* ]] && echo "$names"
}

# stats_row -t|-u ADDR:PORT: the `-Ln --stats --exact` numbers of a
# service: "conns inpkts outpkts inbytes outbytes".
stats_row() {
    admq -L "$@" --stats --exact -n | awk 'NR > 1 && $1 ~ /^(TCP|UDP)$/ { print $3, $4, $5, $6, $7; exit }'
}

# stats_dest DEST -t|-u ADDR:PORT: the same numbers for one real server.
stats_dest() {
    local d=$1; shift
    admq -L "$@" --stats --exact -n | awk -v d="$d" '$1 == "->" && $2 == d { print $3, $4, $5, $6, $7; exit }'
}

# rate_row -t|-u ADDR:PORT: "cps inpps outpps inbps outbps".
rate_row() {
    admq -L "$@" --rate --exact -n | awk 'NR > 1 && $1 ~ /^(TCP|UDP)$/ { print $3, $4, $5, $6, $7; exit }'
}

# active_of DEST -t|-u ADDR:PORT: "ActiveConn InActConn" of a real server.
active_of() {
    local d=$1; shift
    admq -L "$@" -n | awk -v d="$d" '$1 == "->" && $2 == d { print $5, $6; exit }'
}

# conn_rows: -Lnc without its two title lines.
conn_rows() { admq -L -n -c | tail -n +3; }

# blob_sha N: the sha256 of the real servers' /blob/N.
blob_sha() { python3 "$RVS_ROOT/scripts/lib/rs_server.py" --blob-sha "$1"; }

# bg_on_exit PID: stop a background job of this case at its end.
bg_on_exit() { rvs_on_exit "kill $1 2>/dev/null; wait $1 2>/dev/null"; }

# rs_addr N / rs_addr6 N: real server N's address in this layout.
rs4() { topo_rs4 "$E2E_TOPO" "$1"; }
rs6() { topo_rs6 "$E2E_TOPO" "$1"; }

# Bring up a layout (nat | tun; the tun layout is the one-arm layout with
# the tunnel decapsulator on every real server, and also serves DR) with N
# real servers (HTTP on 80 and 8080, UDP echo on 53), a second client
# address, and rvsd on it. Sets RVS_SOCK, E2E_RVSD_PID, E2E_TOPO.
e2e_layout_up() {
    local layout=$1 id=$2 n=$3
    E2E_TOPO=$layout
    topo_create "$layout" "$id" "$n"
    topo_client_addr "$CLIENT4B/24"
    topo_client_addr "$CLIENT6B/64"
    topo_servers 80,8080 53
    # A small connection table, so that the SYN flood case fills it.
    printf '[lb]\nconnections = %s\n' "${E2E_CONNS:-131072}" >>"$TOPO_CONFIG"
    rvs_eal_args "rvs-e2e-$id"
    export RVS_SOCK=$RVS_WORK/rvsd-$id.sock
    "$E2E_RVSD" -c "$TOPO_CONFIG" --sock "$RVS_SOCK" -- -l 0,1 "${RVS_EAL[@]}" \
        >"$RVS_WORK/rvsd-$id.out" 2>"$RVS_WORK/rvsd-$id.err" &
    E2E_RVSD_PID=$!
    rvs_on_exit "rvs_stop_pid $E2E_RVSD_PID"
    if ! rvs_wait_for 30 "$E2E_ADM" -Ln; then
        echo "rvsd did not come up:" >&2
        cat "$RVS_WORK/rvsd-$id.err" >&2
        return 1
    fi
}

e2e_rvsd_alive() { kill -0 "$E2E_RVSD_PID" 2>/dev/null; }
