#!/usr/bin/python3
"""Hostile frames for the e2e suite's front-door cases (cases/80_hostile.sh).

    hostile.py send IFACE CLASS LB_MAC [CPORT]
                                         send one class of frames (CPORT: a
                                         live connection's client port); prints
                                         "sent N" and, per drop counter the
                                         class must raise, "expect NAME N"
    hostile.py sniff IFACE SECS          count frames carrying the marker
                                         seen on IFACE until SIGINT (SECS at most)

Every frame carries MARK in its payload where it has one, so that the far
side can tell whether anything of a class got through. Addresses follow
scripts/lib/topo.sh (client network 10.231.1.0/24, VIP .100).
"""
import functools
import random
import signal
import sys
import threading

from scapy.all import (  # noqa: F401 (layers register themselves)
    ICMP, IP, TCP, UDP, Dot1Q, Ether, IPOption_LSRR, IPOption_SSRR, IPv6,
    IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
    AsyncSniffer, Raw, conf, fuzz, raw, sendp,
)

MARK = b"RVSHOSTILE"
CLIENT = "10.231.1.2"
CLIENT6 = "2001:db8:231:1::2"
VIP = "10.231.1.100"
VIP6 = "2001:db8:231:1::100"
OWN = "10.231.1.1"
RS1 = "10.231.2.11"
PEER_MAC = "02:00:5e:00:53:01"


def syn(src=CLIENT, dst=VIP, sport=None, **ip):
    return IP(src=src, dst=dst, **ip) / TCP(sport=sport or random.randint(20000, 60000),
                                              dport=80, flags="S") / MARK


def classes(lb, cport=40000):
    e = Ether(dst=lb, src=PEER_MAC)
    c = {}
    # Positive control: a real SYN must reach a real server.
    c["valid"] = ([e / syn()], {})
    c["bad_ip_checksum"] = ([e / syn(chksum=0x1234) for _ in range(20)],
                            {"bad_ip_checksum": 20})
    martians = ["127.0.0.1", "0.1.2.3", "224.0.0.5", "240.0.0.9", "255.255.255.255", OWN]
    land = e / IP(src=VIP, dst=VIP) / UDP(sport=53, dport=53) / MARK
    c["martian_source"] = ([e / syn(src=s) for s in martians] + [land]
                           + [e / IPv6(src=s, dst=VIP6) / TCP(dport=80, flags="S") / MARK
                              for s in ["::1", "ff02::1", "::ffff:10.231.1.2", "fe80::7", VIP6]],
                           {"martian_source": len(martians) + 6})
    c["martian_destination"] = ([e / syn(dst=d) for d in ["239.1.2.3", "255.255.255.255", "127.0.0.1", "0.0.0.9"]]
                                + [e / IPv6(src=CLIENT6, dst=d) / TCP(dport=80, flags="S") / MARK
                                   for d in ["::1", "ff02::1", "::ffff:10.231.1.100"]],
                                {"martian_destination": 7})
    c["not_for_us"] = ([Ether(dst=m, src=PEER_MAC) / syn()
                        for m in ["02:99:99:99:99:99", "ff:ff:ff:ff:ff:ff", "01:00:5e:01:02:03",
                                  "33:33:00:00:00:01"]],
                       {"not_for_us": 4})
    # The client port carries no VLAN: tags, QinQ and an 802.1ad tag are
    # refused; a priority tag (VLAN id 0) is untagged and gets through.
    c["vlan"] = ([e / Dot1Q(vlan=7) / syn(), e / Dot1Q(vlan=7) / Dot1Q(vlan=8) / syn(),
                  Ether(dst=lb, src=PEER_MAC, type=0x88A8) / Dot1Q(vlan=7) / syn()],
                 {"vlan_unknown": 3})
    c["vlan_priority"] = ([e / Dot1Q(vlan=0, prio=5) / syn()], {})
    c["source_route"] = ([e / syn(options=[IPOption_LSRR(routers=[RS1])]),
                          e / syn(options=[IPOption_SSRR(routers=[RS1])]),
                          e / IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrRouting(addresses=["2001:db8::1"], segleft=1)
                          / TCP(dport=80, flags="S") / MARK],
                         {"source_route": 3})
    # TTL 1 from one (spoofed, on-link) source: six time-exceeded at once,
    # then the per-destination limit.
    c["ttl_expired"] = ([e / syn(src="10.231.1.77", ttl=1) for _ in range(60)],
                        {"icmp_rate_limited": 54})
    trunc = [raw(e / syn())[:n] for n in (14, 20, 33, 40, 53)]
    bad_len = e / IP(src=CLIENT, dst=VIP, len=2000) / TCP(dport=80, flags="S") / MARK
    bad_ihl = e / IP(src=CLIENT, dst=VIP, ihl=4) / TCP(dport=80, flags="S") / MARK
    bad_doff = e / IP(src=CLIENT, dst=VIP) / TCP(dport=80, flags="S", dataofs=2) / MARK
    c["malformed"] = ([Ether(t) for t in trunc] + [bad_len, bad_ihl, bad_doff], {"malformed": 8})
    # Every combination of TCP flags, without a connection: only those a
    # connection can start from get through (SYN without RST/FIN/ACK).
    c["tcp_flags"] = ([e / IP(src=CLIENT, dst=VIP) / TCP(sport=30000 + f, dport=80, flags=f) / MARK
                       for f in range(256)], {})
    # ICMP errors quoting connections that do not exist, and lying about it.
    quotes = [IP(src=VIP, dst=CLIENT) / TCP(sport=80, dport=p) for p in range(40000, 40010)]
    quotes += [IP(src=VIP, dst="198.51.100.1", ihl=15) / UDP(), IP(src=OWN, dst=VIP) / ICMP()]
    c["icmp_errors"] = ([e / IP(src=CLIENT, dst=VIP) / ICMP(type=3, code=4) / raw(q)[:28] for q in quotes], {})
    # ICMP errors about a live connection (the client's port `cport` to
    # VIP:80), most of them lying: a bad inner length or checksum, another
    # protocol, cut short, a frag-needed asking for an MTU of 68 or 0.
    live = IP(src=VIP, dst=CLIENT) / TCP(sport=80, dport=cport, flags="A")
    lies = [raw(live)[:28], raw(IP(src=VIP, dst=CLIENT, len=9) / TCP(sport=80, dport=cport))[:28],
            raw(IP(src=VIP, dst=CLIENT, chksum=1) / TCP(sport=80, dport=cport))[:28],
            raw(IP(src=VIP, dst=CLIENT, proto=17) / UDP(sport=80, dport=cport))[:28],
            raw(live)[:22], raw(IP(src=VIP, dst=CLIENT, ihl=6) / TCP(sport=80, dport=cport))[:28]]
    c["icmp_live"] = ([e / IP(src=CLIENT, dst=VIP) / ICMP(type=3, code=4, nexthopmtu=m) / q
                       for q in lies for m in (68, 0)]
                      + [e / IP(src=CLIENT, dst=VIP) / ICMP(type=t, code=0) / raw(live)[:28] for t in (4, 5, 11, 12)],
                      {})
    # IPv6 extension-header chains, long and odd.
    chains = [IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt(),
              IPv6ExtHdrFragment(m=1) / IPv6ExtHdrDestOpt(),
              IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop(),
              functools.reduce(lambda a, b: a / b, [IPv6ExtHdrDestOpt() for _ in range(9)])]
    c["ipv6_chains"] = ([e / IPv6(src=CLIENT6, dst=VIP6) / ch / TCP(dport=80, flags="A") / MARK
                         for ch in chains], {})
    # IPv6 fragments (net_af_packet defragments IPv4 in the kernel, so
    # IPv6 is what rvsd's reassembly sees here): a datagram in four pieces
    # out of order must arrive whole; overlapping pieces drop their
    # datagram, and a piece not a multiple of 8 bytes before the last is
    # refused.
    def frag6(ident, offset, more, data):
        return (e / IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrFragment(nh=17, id=ident, offset=offset, m=more)
                / Raw(data))
    dgram = raw(IPv6(src=CLIENT6, dst=VIP6) / UDP(sport=5353, dport=53) / (MARK * 20))[40:]
    pieces = [frag6(0x5151, i // 8, int(i + 64 < len(dgram)), dgram[i:i + 64]) for i in range(0, len(dgram), 64)]
    c["frag_valid"] = (pieces[::-1], {})
    c["fragments"] = ([frag6(0x5252, 0, 1, dgram[:16]), frag6(0x5252, 1, 0, dgram[8:24]),
                       frag6(0x5353, 1, 1, dgram[8:15])],
                      {"frag_overlap": 2, "fragment": 1})
    random.seed(7)
    c["fuzz"] = ([e / fuzz(IP(dst=VIP) / TCP(dport=80)) for _ in range(1500)]
                 + [e / fuzz(IPv6(dst=VIP6) / UDP(dport=53)) for _ in range(500)]
                 + [e / fuzz(IP(dst=VIP) / ICMP()) for _ in range(500)], {})
    return c


def main():
    conf.verb = 0
    if sys.argv[1] == "sniff":
        iface, secs = sys.argv[2], float(sys.argv[3])
        done = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: done.set())
        s = AsyncSniffer(iface=iface, lfilter=lambda p: MARK in raw(p),
                         started_callback=lambda: print("ready", flush=True))
        s.start()
        done.wait(secs)
        print(len(s.stop() or []), flush=True)
        return
    iface, name, lb = sys.argv[2], sys.argv[3], sys.argv[4]
    cport = int(sys.argv[5]) if len(sys.argv) > 5 else 40000
    frames, expect = classes(lb, cport)[name]
    sendp(frames, iface=iface, inter=0.0005)
    print("sent", len(frames))
    for k, v in expect.items():
        print("expect", k, v)


if __name__ == "__main__":
    main()
