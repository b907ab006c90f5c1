# Services and real servers by name, as operators write them: rvsadm reads
# host names (through glibc: here a hosts file of the case's own, bound over
# /etc/hosts in a private mount namespace, so nothing on the machine
# changes) and service names (/etc/services), and prints them back without
# -n.

c_names() {
    local hosts=$E2E_CW/hosts l names
    {
        echo "$TOPO_VIP4 vip.e2e.test"
        for i in 1 2 3; do echo "$(rs4 "$i") rs$i.e2e.test"; done
    } >"$hosts"
    # named CMD...: CMD sees the case's hosts file as /etc/hosts.
    named() {
        timeout --foreground -k 2 10 unshare -m bash -c \
            'mount --bind "$1" /etc/hosts && shift && exec "$@"' _ "$hosts" "$@"
    }
    say "# rvsadm -A -t vip.e2e.test:http -s rr; -a ... -r rsN.e2e.test:http -m (names from the case's hosts file)"
    named "$E2E_ADM" -A -t vip.e2e.test:http -s rr || { fail "-A by name exited $?"; return; }
    for i in 1 2 3; do
        named "$E2E_ADM" -a -t vip.e2e.test:http -r "rs$i.e2e.test:http" -m ||
            { fail "-a by name exited $?"; return; }
    done
    adm_sync
    l=$(admq -L -n -t "$TOPO_VIP4:80" | tail -n +3 | awk '{ print $1, $2 }' | paste -sd' ')
    expect_eq "-Ln: the names were read as the addresses and port 80" "$l" \
        "TCP $TOPO_VIP4:80 -> $(rs4 1):80 -> $(rs4 2):80 -> $(rs4 3):80"
    l=$(named "$E2E_ADM" -L -t vip.e2e.test:http | tail -n +3 | awk '{ print $1, $2 }' | paste -sd' ')
    expect_eq "-L without -n prints the names" "$l" \
        "TCP vip.e2e.test:http -> rs1.e2e.test:http -> rs2.e2e.test:http -> rs3.e2e.test:http"
    names=$(http_names 6 "$(url "$TOPO_VIP4")" | dist)
    expect_eq "the service made by name serves: 6 connections round robin" "$names" "rs1=2 rs2=2 rs3=2"
    l=$(named "$E2E_ADM" -a -t vip.e2e.test:http -r nosuch.e2e.test:http -m 2>&1)
    expect_eq "an unknown name is ipvsadm's error" "$l" "illegal real server address[:port] specified"
}
e2e_case names nat "services and real servers by host and service name (rvsadm through glibc), printed without -n"
