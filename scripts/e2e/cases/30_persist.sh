# Persistence (-p, -M): one client's connections (different source ports)
# reach one server; other clients spread; the netmask groups clients.

c_persist() {
    say "TCP, rr -p 60: each client's 10 connections stick to one server (its template);"
    say "the second client's template is the next rr pick, so the clients spread"
    svc_up t "$TOPO_VIP4" 80 rr "1 1 1" 80 -m -- -p 60 || return
    local a b c u
    a=$(names_of 10 --interface "$TOPO_CLIENT4" | dist)
    b=$(names_of 10 --interface "$CLIENT4B" | dist)
    check "client $TOPO_CLIENT4: one server ($a)" [ "$(wc -w <<<"$a")" -eq 1 -a "${a#rs?=}" = 10 ]
    check "client $CLIENT4B: one server ($b)" [ "$(wc -w <<<"$b")" -eq 1 -a "${b#rs?=}" = 10 ]
    check "the two clients on different servers" [ "${a%=*}" != "${b%=*}" ]
    c=$(conn_rows | awk '$1 == "TCP" && $4 ~ /:0$/ { print $4 }' | sort | paste -sd' ')
    expect_eq "-Lnc lists one template (client port 0) per client" "$c" "$TOPO_CLIENT4:0 $CLIENT4B:0"

    say "UDP, rr -p 60: the same for datagrams from new source ports"
    svc_up u "$TOPO_VIP4" 53 rr "1 1 1" 53 -m -- -p 60 || return
    a=$(udp_names 6 "$TOPO_VIP4" 53 "$TOPO_CLIENT4" | dist)
    b=$(udp_names 6 "$TOPO_VIP4" 53 "$CLIENT4B" | dist)
    check "client $TOPO_CLIENT4: one server ($a)" [ "$(wc -w <<<"$a")" -eq 1 -a "${a#rs?=}" = 6 ]
    check "client $CLIENT4B: one server ($b)" [ "$(wc -w <<<"$b")" -eq 1 -a "${b#rs?=}" = 6 ]
    check "the two clients on different servers" [ "${a%=*}" != "${b%=*}" ]

    say "-E ... -M 255.255.255.0: the whole /24 is one persistence client"
    adm -E -t "$TOPO_VIP4:80" -s rr -p 60 -M 255.255.255.0
    u=$( { names_of 10 --interface "$TOPO_CLIENT4"; names_of 10 --interface "$CLIENT4B"; } | dist)
    check "both clients, 20 connections, one server ($u)" [ "$(wc -w <<<"$u")" -eq 1 -a "${u#rs?=}" = 20 ]
    c=$(admq -L -t "$TOPO_VIP4:80" -n | grep '^TCP')
    expect_eq "-Ln shows the service's persistence" "$c" "TCP  $TOPO_VIP4:80 rr persistent 60 mask 255.255.255.0"

    say "IPv6, rr -p 60 -M 64: both client addresses share the /64, hence one server"
    svc_up t "$TOPO_VIP6" 80 rr "1 1 1" 80 -m -- -p 60 -M 64 || return
    u=$( { http_names 6 "$(url "$TOPO_VIP6")" --interface "$TOPO_CLIENT6"
           http_names 6 "$(url "$TOPO_VIP6")" --interface "$CLIENT6B"; } | dist)
    check "both IPv6 clients, 12 connections, one server ($u)" [ "$(wc -w <<<"$u")" -eq 1 -a "${u#rs?=}" = 12 ]
}
e2e_case persist nat "-p/-M: per-client stickiness, TCP+UDP, netmask, IPv6 /64"
