//! `-h` and `-v` texts.

/// The version line.
pub fn version() -> String {
    format!(
        "rvsadm v{} (ipvsadm 1.31 command line, rvs control protocol v{})\n",
        env!("CARGO_PKG_VERSION"),
        crate::control::proto::PROTOCOL_VERSION
    )
}

/// The help text.
pub fn usage() -> String {
    let p = super::parse::PROGRAM;
    let mut s = version();
    s.push_str(&format!(
        "Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} --ports | --lcores | --counters
  {p} -h

Commands (long or short):
  --add-service     -A        add a virtual service
  --edit-service    -E        replace a virtual service's options
  --delete-service  -D        delete a virtual service
  --clear           -C        delete every virtual service
  --restore         -R        read rules from stdin and install them at once
  --save            -S        print the rules as commands
  --add-server      -a        add a real server
  --edit-server     -e        replace a real server's options
  --delete-server   -d        delete a real server
  --list            -L|-l     list services (or connections, timeouts)
  --zero            -Z        zero the counters of one or all services
  --set tcp tcpfin udp        set timeouts in seconds (0 keeps the current one)
  --ports                     rvs: DPDK ports: driver, queues, RSS, counters
  --lcores                    rvs: worker lcores (JSON)
  --counters                  rvs: global counters
  --help            -h        this text

virtual-service:
  --tcp-service|-t  host[:port]      IPv6 as [addr]:port
  --udp-service|-u  host[:port]
  (--sctp-service and --fwmark-service|-f are parsed but not supported by rvs)

Options:
  --scheduler    -s scheduler         rr|wrr|lc|wlc|sed|nq|sh|dh|mh|fo|ovf|lblc|lblcr|twos,
                                      wlc when not given
  --persistent   -p [timeout]         persistent service (360 s when no timeout given)
  --netmask      -M netmask           persistence granularity (dotted IPv4, IPv6 prefix)
  --sched-flags  -b flags             sh-fallback,sh-port (sh); mh-fallback,mh-port (mh)
  --ops          -o                   one-packet scheduling (UDP)
  --real-server  -r server-address    host[:port]; the port only matters for -m
  --gatewaying   -g                   direct routing (the default)
  --ipip         -i                   tunnelling
  --masquerading -m                   NAT
  --tun-type     type                 ipip|gue|gre (ipip when not given)
  --tun-port     port                 GUE destination port
  --tun-nocsum | --tun-csum | --tun-remcsum   tunnel checksum mode
  --weight       -w weight            0..2147483647, 1 when not given
  --u-threshold  -x uthreshold        upper connection threshold
  --l-threshold  -y lthreshold        lower connection threshold
  --connection   -c                   list connections
  --timeout                           list timeouts (tcp tcpfin udp)
  --daemon                            list sync daemons (rvs has none)
  --stats                             list counters
  --rate                              list rates
  --exact                             do not scale numbers
  --thresholds                        list thresholds
  --persistent-conn                   list persistent connections
  --tun-info                          list tunnel settings
  --nosort                            keep the daemon's order
  --numeric      -n                   numeric output (rvs always is)

rvs options (anywhere after the command):
  --sock PATH                         rvsd's control socket ($RVS_SOCK, else {sock})
  --json                              machine-readable listings
",
        sock = crate::control::client::DEFAULT_SOCKET
    ));
    s
}
