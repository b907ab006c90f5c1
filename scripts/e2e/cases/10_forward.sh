# Forwarding methods: TCP (HTTP, curl) and UDP (echo, socat), IPv4 and
# IPv6, through NAT (two-arm), DR and TUN (one-arm).

VIP4=$TOPO_VIP4
VIP6=$TOPO_VIP6

# hp ADDR PORT: host:port as rvsadm wants it (IPv6 in brackets).
hp() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }

# rs N FAMILY-OF-ADDR: real server N's address in the family of ADDR.
rs_like() { case $2 in *:*) rs6 "$1" ;; *) rs4 "$1" ;; esac; }

# svc_up PROTO(t|u) VIP VPORT SCHED "W1 W2 W3" RPORT METHOD-OPTS... [-- SERVICE-OPTS...]:
# a service and real servers rs1.. with the given weights, added in order
# (so the kernel's list order, newest first, is rs3 rs2 rs1).
svc_up() {
    local p=$1 vip=$2 vport=$3 sched=$4 weights=$5 rport=$6; shift 6
    local mopts=() sopts=() i=0 w
    while [ $# -gt 0 ] && [ "$1" != -- ]; do mopts+=("$1"); shift; done
    [ "${1:-}" = -- ] && { shift; sopts=("$@"); }
    adm -A "-$p" "$(hp "$vip" "$vport")" -s "$sched" "${sopts[@]}" || return 1
    for w in $weights; do
        i=$((i + 1))
        adm -a "-$p" "$(hp "$vip" "$vport")" -r "$(hp "$(rs_like "$i" "$vip")" "$rport")" "${mopts[@]}" -w "$w" || return 1
    done
}

# fwd_check LABEL PROTO(t|u) VIP METHOD-OPTS...: rr over rs1..rs3, six
# requests: every one answered, two by each server; for TCP the server saw
# the client's own address (no source NAT); returns the service's stats.
fwd_check() {
    local label=$1 p=$2 vip=$3; shift 3
    local port names client=$TOPO_CLIENT4 rport
    [ "$p" = t ] && port=80 || port=53
    rport=$port
    # NAT maps the port: TCP 80 -> 8080 (the real servers listen on both).
    [ "$1" = -m ] && [ "$p" = t ] && rport=8080
    case $vip in *:*) client=$TOPO_CLIENT6 ;; esac
    svc_up "$p" "$vip" "$port" rr "1 1 1" "$rport" "$@" || return
    if [ "$p" = t ]; then
        names=$(http_names 6 "$(url "$vip" "$port")")
    else
        names=$(udp_names 6 "$vip" "$port")
    fi
    expect_eq "$label: 6 new connections, round robin" "$(dist <<<"$names")" "rs1=2 rs2=2 rs3=2"
    if [ "$p" = t ]; then
        local seen; seen=$(http_get "$(url "$vip" "$port")" | awk '{ print $2 }')
        expect_eq "$label: the real server saw the client's address" "$seen" "$client"
    fi
}

# out_pkts PROTO VIP PORT: the OutPkts counter of a service.
out_pkts() { stats_row "-$1" "$(hp "$2" "$3")" | awk '{ print $3 }'; }
in_pkts() { stats_row "-$1" "$(hp "$2" "$3")" | awk '{ print $2 }'; }

c_fwd_nat() {
    say "NAT (-m), two-arm: rvsd rewrites both directions; VIP:80 -> RS:8080 for TCP"
    fwd_check "TCP/IPv4" t "$VIP4" -m
    fwd_check "UDP/IPv4" u "$VIP4" -m
    fwd_check "TCP/IPv6" t "$VIP6" -m
    fwd_check "UDP/IPv6" u "$VIP6" -m
    local s
    for s in "t $VIP4 80" "u $VIP4 53" "t $VIP6 80" "u $VIP6 53"; do
        # shellcheck disable=SC2086
        check "replies came back through rvsd (OutPkts $(out_pkts $s) > 0 for $s)" [ "$(out_pkts $s)" -gt 0 ]
    done
}
e2e_case fwd_nat nat "NAT, TCP+UDP, IPv4+IPv6"

# direct_check PROTO VIP PORT: inbound counted, nothing outbound (the real
# servers answered the client directly).
direct_check() {
    local i o
    i=$(in_pkts "$1" "$2" "$3"); o=$(out_pkts "$1" "$2" "$3")
    check "replies bypassed rvsd for -$1 $2 ($i packets in, $o out)" [ "$i" -gt 0 -a "$o" -eq 0 ]
}

c_fwd_dr() {
    say "DR (-g), one-arm: rvsd only rewrites the MAC; the real servers (VIP on lo) answer the client directly"
    fwd_check "TCP/IPv4" t "$VIP4" -g
    fwd_check "UDP/IPv4" u "$VIP4" -g
    fwd_check "TCP/IPv6" t "$VIP6" -g
    fwd_check "UDP/IPv6" u "$VIP6" -g
    direct_check t "$VIP4" 80; direct_check u "$VIP4" 53
    direct_check t "$VIP6" 80; direct_check u "$VIP6" 53
}
e2e_case fwd_dr tun "DR, TCP+UDP, IPv4+IPv6, direct replies"

c_fwd_tun_ipip() {
    say "TUN (-i, ipip), one-arm: IPv4 in IPv4 (IPIP) and IPv6 in IPv6; tc-BPF decapsulates on the real servers"
    fwd_check "TCP/IPv4 (ipip)" t "$VIP4" -i
    fwd_check "UDP/IPv4 (ipip)" u "$VIP4" -i
    fwd_check "TCP/IPv6 (6in6)" t "$VIP6" -i
    fwd_check "UDP/IPv6 (6in6)" u "$VIP6" -i
    direct_check t "$VIP4" 80; direct_check u "$VIP4" 53
    direct_check t "$VIP6" 80; direct_check u "$VIP6" 53
}
e2e_case fwd_tun_ipip tun "TUN ipip/6in6, TCP+UDP, IPv4+IPv6"

c_fwd_tun_gre() {
    say "TUN (-i --tun-type gre), IPv4: without and with the GRE checksum"
    fwd_check "TCP/IPv4 (gre)" t "$VIP4" -i --tun-type gre
    fwd_check "UDP/IPv4 (gre, csum)" u "$VIP4" -i --tun-type gre --tun-csum
    direct_check t "$VIP4" 80; direct_check u "$VIP4" 53
}
e2e_case fwd_tun_gre tun "TUN gre (+csum), TCP+UDP, IPv4"

c_fwd_tun_gue() {
    say "TUN (-i --tun-type gue --tun-port 6080), IPv4"
    fwd_check "TCP/IPv4 (gue)" t "$VIP4" -i --tun-type gue --tun-port 6080
    fwd_check "UDP/IPv4 (gue)" u "$VIP4" -i --tun-type gue --tun-port 6080
    direct_check t "$VIP4" 80; direct_check u "$VIP4" 53
}
e2e_case fwd_tun_gue tun "TUN gue, TCP+UDP, IPv4"
