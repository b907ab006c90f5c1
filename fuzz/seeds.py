#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora into fuzz/seeds/<target>/.

The frames are built with scapy (an independent packet builder, as for the
golden fixtures), addressed to the configurations the targets run:

- wire, forward: any frames (forward rewrites toward the packet's own
  destination, src/lb/forward/fuzz.rs);
- classify: the port of src/net/fuzzkit.rs (10.0.0.2/24, 2001:db8::2/64,
  VIPs 10.0.0.100 and 2001:db8::100, MAC 02:00:00:00:00:01);
- datapath: the two-port, two-worker configuration of
  src/datapath/fuzzkit.rs, in its record format.

Deterministic: running it again gives the same files. Run it after changing
either configuration: ./fuzz/seeds.py (needs python3-scapy).
"""

import hashlib
import os
import shutil
import struct
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.packet import Raw

HERE = os.path.dirname(os.path.abspath(__file__))


def b(p):
    return bytes(p)


# ---- wire and forward: frames of every kind the parsers know ----

def frames():
    mac_a, mac_b = "52:54:00:00:00:01", "02:00:00:00:00:fe"
    c, v, r = "10.0.0.1", "10.0.0.100", "192.168.10.5"
    c6, v6, r6 = "2001:db8::1", "2001:db8:100::1", "fd00:10::5"
    e = Ether(src=mac_a, dst=mac_b)
    inner_tcp = IP(src=v, dst=c, id=7) / TCP(sport=80, dport=40000, flags="SA", seq=1)
    inner_udp6 = IPv6(src=c6, dst=r6) / UDP(sport=40000, dport=8080) / Raw(b"q" * 8)
    return {
        "tcp4-get": e / IP(src=c, dst=v, id=1) / TCP(sport=40000, dport=80, flags="PA", seq=1000, ack=1)
        / Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "tcp4-syn-options": e / IP(src=c, dst=v, id=2) / TCP(
            sport=40001, dport=80, flags="S", seq=5,
            options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]),
        "tcp4-ttl1": e / IP(src=c, dst=v, ttl=1, id=3) / TCP(sport=40002, dport=80, flags="S"),
        "tcp4-big-df": e / IP(src=c, dst=v, flags="DF", id=4) / TCP(sport=40003, dport=80, flags="A")
        / Raw(b"\x01" * 1460),
        "ip4-options": e / IP(src=c, dst=v, options=[IPOption_RR(routers=["10.0.0.9"])], id=5)
        / TCP(sport=40004, dport=80, flags="S"),
        "ip4-fragment": e / IP(src=c, dst=v, flags="MF", frag=0, id=6) / UDP(sport=5353, dport=53)
        / Raw(b"f" * 16),
        "udp4-zero-csum": e / IP(src=r, dst=c, id=8) / UDP(sport=8080, dport=40000, chksum=0) / Raw(b"answer"),
        "udp4-vlan": Ether(src=mac_a, dst=mac_b) / Dot1Q(vlan=3) / IP(src=c, dst=v, id=9)
        / UDP(sport=5353, dport=53) / Raw(b"dns?"),
        "udp4-qinq": Ether(src=mac_a, dst=mac_b, type=0x88A8) / Dot1Q(vlan=10) / Dot1Q(vlan=20)
        / IP(src=c, dst=v, id=10) / UDP(sport=5353, dport=53),
        "icmp4-echo": e / IP(src=c, dst=v, id=11) / ICMP(type=8, id=1, seq=1) / Raw(b"ping" * 4),
        "icmp4-frag-needed": e / IP(src="10.0.0.254", dst=v, id=12) / ICMP(type=3, code=4, nexthopmtu=1400)
        / inner_tcp,
        "icmp4-port-unreach-short": e / IP(src=r, dst=c, id=13) / ICMP(type=3, code=3)
        / b(IP(src=c, dst=r, id=14) / UDP(sport=1, dport=8080))[:28],
        "ipip": e / IP(src="10.0.0.254", dst=r, proto=4, id=15) / IP(src=c, dst=v, id=16)
        / TCP(sport=40005, dport=80, flags="S"),
        "gre": e / IP(src="10.0.0.254", dst=r, id=17) / GRE(proto=0x0800) / IP(src=c, dst=v, id=18)
        / TCP(sport=40006, dport=80, flags="S"),
        "gue": e / IP(src="10.0.0.254", dst=r, id=19) / UDP(sport=50000, dport=6080)
        / Raw(b"\x00\x04\x00\x00") / IP(src=c, dst=v, id=20) / TCP(sport=40007, dport=80, flags="S"),
        "tcp6-syn": Ether(src=mac_a, dst=mac_b) / IPv6(src=c6, dst=v6) / TCP(sport=40000, dport=80, flags="S"),
        "tcp6-hop1": Ether(src=mac_a, dst=mac_b) / IPv6(src=c6, dst=v6, hlim=1)
        / TCP(sport=40001, dport=80, flags="S"),
        "udp6-reply": Ether(src=mac_a, dst=mac_b) / IPv6(src=r6, dst=c6) / UDP(sport=8080, dport=40000)
        / Raw(b"reply"),
        "ip6-hbh": Ether(src=mac_a, dst=mac_b) / IPv6(src=c6, dst=v6) / IPv6ExtHdrHopByHop()
        / UDP(sport=40002, dport=53),
        "ip6-fragment": Ether(src=mac_a, dst=mac_b) / IPv6(src=c6, dst=v6) / IPv6ExtHdrFragment(id=1, m=1)
        / UDP(sport=40003, dport=53) / Raw(b"x" * 8),
        "icmp6-too-big": Ether(src=mac_a, dst=mac_b) / IPv6(src="2001:db8::fe", dst=v6)
        / ICMPv6PacketTooBig(mtu=1280) / (IPv6(src=v6, dst=c6) / TCP(sport=80, dport=40000, flags="A")),
        "icmp6-unreach": Ether(src=mac_a, dst=mac_b) / IPv6(src=r6, dst=c6) / ICMPv6DestUnreach(code=4)
        / inner_udp6,
        "arp-request": Ether(src=mac_a, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac_a, psrc=c, pdst=v)
        / Raw(b"\x00" * 18),
        "ns": Ether(src=mac_a, dst="33:33:ff:00:00:01") / IPv6(src="fe80::2", dst="ff02::1:ff00:1", hlim=255)
        / ICMPv6ND_NS(tgt="fe80::1") / ICMPv6NDOptSrcLLAddr(lladdr=mac_a),
    }


# ---- classify: the port of src/net/fuzzkit.rs ----

def classify():
    our, peer = "02:00:00:00:00:01", "52:54:00:12:34:56"
    bc = "ff:ff:ff:ff:ff:ff"
    to_us = Ether(src=peer, dst=our)

    def arp(op, tpa, dst=bc, psrc="10.0.0.1"):
        return Ether(src=peer, dst=dst) / ARP(op=op, hwsrc=peer, psrc=psrc, pdst=tpa) / Raw(b"\x00" * 18)

    def ns(src, tgt, dst, sll=True):
        p = Ether(src=peer, dst="33:33:ff:00:00:02") / IPv6(src=src, dst=dst, hlim=255) / ICMPv6ND_NS(tgt=tgt)
        return p / ICMPv6NDOptSrcLLAddr(lladdr=peer) if sll else p

    return {
        "arp-for-vip": arp(1, "10.0.0.100"),
        "arp-for-own": arp(1, "10.0.0.2"),
        "arp-reply": arp(2, "10.0.0.2", dst=our),
        "arp-for-other": arp(1, "10.0.0.77"),
        "arp-gratuitous": arp(1, "10.0.0.1"),
        "echo4-own": to_us / IP(src="10.0.0.1", dst="10.0.0.2", id=1) / ICMP(type=8, id=7, seq=1) / Raw(b"abc"),
        "echo4-vip": to_us / IP(src="10.0.0.1", dst="10.0.0.100", id=2) / ICMP(type=8, id=7, seq=2)
        / Raw(b"\x00" * 57),
        "echo4-off-link": to_us / IP(src="198.51.100.7", dst="10.0.0.2", id=3) / ICMP(type=8),
        "echo6-vip": to_us / IPv6(src="2001:db8::1", dst="2001:db8::100") / ICMPv6EchoRequest(id=1, seq=1,
                                                                                              data=b"hello"),
        "echo6-link-local": to_us / IPv6(src="fe80::1", dst="fe80::ff:fe00:1")
        / ICMPv6EchoRequest(id=2, seq=1),
        "ns-own": ns("2001:db8::1", "2001:db8::2", "ff02::1:ff00:2"),
        "ns-vip-no-option": ns("2001:db8::1", "2001:db8::100", "ff02::1:ff00:100", sll=False),
        "ns-dad": ns("::", "2001:db8::100", "ff02::1:ff00:100", sll=False),
        "ns-unicast": Ether(src=peer, dst=our) / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8::2") / ICMPv6NDOptSrcLLAddr(lladdr=peer),
        "na-solicited": to_us / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=255)
        / ICMPv6ND_NA(tgt="2001:db8::1", S=1, R=0, O=0) / ICMPv6NDOptDstLLAddr(lladdr=peer),
        "na-unsolicited": Ether(src=peer, dst="33:33:00:00:00:01") / IPv6(src="2001:db8::1", dst="ff02::1",
                                                                           hlim=255)
        / ICMPv6ND_NA(tgt="2001:db8::1", S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=peer),
        "rs": Ether(src=peer, dst="33:33:00:00:00:02") / IPv6(src="fe80::1", dst="ff02::2", hlim=255)
        / ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr=peer),
        "ra": Ether(src=peer, dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1", hlim=255)
        / ICMPv6ND_RA() / ICMPv6NDOptSrcLLAddr(lladdr=peer),
        "tcp4-own-ssh": to_us / IP(src="10.0.0.1", dst="10.0.0.2", id=4) / TCP(sport=50000, dport=22, flags="S"),
        "udp6-own": to_us / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5000, dport=5001),
        "ns-vlan": Ether(src=peer, dst="33:33:ff:00:01:00") / Dot1Q(vlan=7)
        / IPv6(src="2001:db8::1", dst="ff02::1:ff00:100", hlim=255) / ICMPv6ND_NS(tgt="2001:db8::100")
        / ICMPv6NDOptSrcLLAddr(lladdr=peer),
    }


# ---- datapath: records for src/datapath/fuzzkit.rs ----

CLI_MAC, SRV_MAC = "02:00:00:00:00:fe", "02:00:00:00:01:fe"
GW_MAC = "02:00:00:00:00:01"  # 10.0.0.1, known from the start
RS_MAC = {
    "10.1.0.11": "02:00:00:00:11:11",  # known from the start
    "10.1.0.12": "02:00:00:00:12:12",
    "10.1.0.13": "02:00:00:00:13:13",
    "10.1.0.14": "02:00:00:00:14:14",
    "10.1.0.15": "02:00:00:00:15:15",
    "10.1.0.16": "02:00:00:00:16:16",
    "10.2.0.13": "02:00:00:00:23:13",  # on VLAN 7 of port 1
    "fd00:1::11": "02:00:00:00:61:11",
    "fd00:1::13": "02:00:00:00:61:13",
    "fd00:1::15": "02:00:00:00:61:15",
}
ADVANCE = {0: 0, 1: 1, 3: 2, 10: 3, 100: 4, 1000: 5, 30000: 6, 600000: 7}
SWAP, LIST, NEIGH_EXPIRE, DRAIN = 0x1000, 0x2000, 0x4000, 0x8000


class Records:
    def __init__(self):
        self.out = bytearray()

    def add(self, frame, port=0, worker=0, end=True, advance=1, learn=False, ops=0):
        f = b(frame)[:0x0FFF]
        ctl = (port & 1) | (worker & 1) << 1 | end << 3 | ADVANCE[advance] << 4 | learn << 7
        self.out += struct.pack(">BH", ctl, len(f) | ops) + f
        return self


def client(src, dst, sport, dport, flags, payload=b"", v6=False, seq=1000, ack=0):
    if v6:
        return Ether(src=GW_MAC, dst=CLI_MAC) / IPv6(src=src, dst=dst) / TCP(
            sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / Raw(payload)
    return Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=src, dst=dst, id=sport & 0xFFFF) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / Raw(payload)


def server(rs, dst, sport, dport, flags, payload=b"", v6=False, seq=5000, ack=0):
    ip = IPv6(src=rs, dst=dst) if v6 else IP(src=rs, dst=dst, id=sport)
    return Ether(src=RS_MAC[rs], dst=SRV_MAC) / ip / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                                          ack=ack) / Raw(payload)


def arp_reply(rs):
    return Ether(src=RS_MAC[rs], dst=SRV_MAC) / ARP(op=2, hwsrc=RS_MAC[rs], psrc=rs, hwdst=SRV_MAC,
                                                    pdst="10.1.0.254") / Raw(b"\x00" * 18)


def na(rs):
    return Ether(src=RS_MAC[rs], dst=SRV_MAC) / IPv6(src=rs, dst="fd00:1::fe", hlim=255) / ICMPv6ND_NA(
        tgt=rs, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=RS_MAC[rs])


def datapath():
    vip, vip6, cl, cl6 = "10.0.0.100", "2001:db8::100", "192.0.2.10", "2001:db8:5::10"
    seeds = {}

    # NAT :80: wrr picks 10.1.0.14 (weight 2) first, whose MAC its ARP
    # reply teaches; a whole connection, on both workers.
    r = Records()
    r.add(arp_reply("10.1.0.14"), port=1, learn=True)
    r.add(client(cl, vip, 4000, 80, "S"), worker=0)
    r.add(server("10.1.0.14", cl, 8080, 4000, "SA", ack=1001), port=1, worker=1)
    r.add(client(cl, vip, 4000, 80, "A", seq=1001, ack=5001), worker=1)
    r.add(client(cl, vip, 4000, 80, "PA", b"GET / HTTP/1.0\r\n\r\n", seq=1001, ack=5001), worker=0)
    r.add(server("10.1.0.14", cl, 8080, 4000, "FA", b"200 OK", ack=1019), port=1, worker=0, advance=100)
    r.add(client(cl, vip, 4000, 80, "FA", seq=1019, ack=5008), worker=1, advance=1000, ops=DRAIN)
    seeds["nat-connection"] = r

    # DR :81 to 10.1.0.12 (MAC unknown): held, ARP request, reply learned, released.
    r = Records()
    r.add(client(cl, vip, 4001, 81, "S"), end=False)
    r.add(client("198.51.100.3", vip, 4002, 81, "S"))
    r.add(arp_reply("10.1.0.12"), port=1, learn=True, advance=10)
    r.add(client(cl, vip, 4001, 81, "A", seq=1001, ack=1), ops=DRAIN)
    seeds["dr-hold-and-release"] = r

    # Tunnels: IPIP :82 and GUE :83, a too-big frame for the tunnel, then learned.
    r = Records()
    r.add(client(cl, vip, 4003, 82, "S"), end=False)
    r.add(client(cl, vip, 4004, 83, "S"))
    r.add(client(cl, vip, 4003, 82, "A", b"\x00" * 1460, seq=1001, ack=1))
    r.add(arp_reply("10.1.0.15"), port=1, learn=True, end=False)
    r.add(arp_reply("10.1.0.16"), port=1, learn=True, advance=1000)
    seeds["tunnels"] = r

    # Persistence :443, several connections of one client, config swapped between.
    r = Records()
    for k in range(4):
        r.add(client(cl, vip, 5000 + k, 443, "S"), worker=k & 1, end=k == 3,
              ops=SWAP if k == 3 else 0)
    r.add(client(cl, vip, 5004, 443, "S"), advance=30000)
    r.add(client(cl, "10.0.0.101", 5005, 80, "S"), ops=LIST)
    r.add(client(cl, vip, 5006, 81, "S"), ops=SWAP | DRAIN, advance=600000)
    seeds["persistence-and-swap"] = r

    # UDP :53 to 10.1.0.13 (unknown), the answer, a neighbour expiry.
    r = Records()
    q = Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst=vip, id=1) / UDP(sport=3333, dport=53) / Raw(b"q" * 20)
    r.add(q)
    r.add(arp_reply("10.1.0.13"), port=1, learn=True)
    a = Ether(src=RS_MAC["10.1.0.13"], dst=SRV_MAC) / IP(src="10.1.0.13", dst=cl, id=2) / UDP(sport=53, dport=3333)
    r.add(a / Raw(b"a" * 40), port=1, advance=30000, ops=NEIGH_EXPIRE)
    seeds["udp"] = r

    # UDP :54 to 10.2.0.13 on VLAN 7 of the server port: the ARP request
    # leaves tagged, the tagged reply is learned, the query leaves tagged,
    # the tagged answer goes back untagged; a priority tag and VLAN 8 too.
    r = Records()
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst=vip, id=21) / UDP(sport=3334, dport=54) / Raw(b"q" * 20))
    r.add(Ether(src=RS_MAC["10.2.0.13"], dst=SRV_MAC) / Dot1Q(vlan=7)
          / ARP(op=2, hwsrc=RS_MAC["10.2.0.13"], psrc="10.2.0.13", hwdst=SRV_MAC, pdst="10.2.0.254")
          / Raw(b"\x00" * 18), port=1, learn=True, advance=10)
    a = Ether(src=RS_MAC["10.2.0.13"], dst=SRV_MAC) / Dot1Q(vlan=7) / IP(src="10.2.0.13", dst=cl, id=22) / UDP(
        sport=53, dport=3334)
    r.add(a / Raw(b"a" * 40), port=1, end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / Dot1Q(vlan=0, prio=5) / IP(src=cl, dst=vip, id=23)
          / UDP(sport=3334, dport=54) / Raw(b"q"), end=False)
    r.add(Ether(src=RS_MAC["10.2.0.13"], dst=SRV_MAC) / Dot1Q(vlan=8) / IP(src="10.2.0.13", dst=cl, id=24)
          / UDP(sport=53, dport=3334), port=1, advance=30000, ops=DRAIN)
    seeds["vlan"] = r

    # IPv6: NS and ping for the VIP, TCP to [VIP]:80, UDP :53, GRE :82, NAs learned.
    r = Records()
    r.add(Ether(src=GW_MAC, dst="33:33:ff:00:01:00") / IPv6(src="2001:db8::1", dst="ff02::1:ff00:100", hlim=255)
          / ICMPv6ND_NS(tgt=vip6) / ICMPv6NDOptSrcLLAddr(lladdr=GW_MAC), end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IPv6(src=cl6, dst=vip6) / ICMPv6EchoRequest(id=1, seq=1, data=b"p"),
          end=False)
    r.add(client(cl6, vip6, 4000, 80, "S", v6=True), end=False)
    r.add(client(cl6, vip6, 4001, 82, "S", v6=True), end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IPv6(src=cl6, dst=vip6) / UDP(sport=3333, dport=53) / Raw(b"q"))
    r.add(na("fd00:1::11"), port=1, learn=True, end=False)
    r.add(na("fd00:1::13"), port=1, learn=True, end=False)
    r.add(na("fd00:1::15"), port=1, learn=True, advance=10)
    r.add(server("fd00:1::11", cl6, 8080, 4000, "SA", v6=True, ack=1001), port=1, ops=DRAIN)
    seeds["ipv6"] = r

    # Local traffic: ARP for the VIP and for our address, pings, to the wrong MAC.
    r = Records()
    r.add(Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GW_MAC, psrc="10.0.0.1", pdst=vip)
          / Raw(b"\x00" * 18), end=False)
    r.add(Ether(src=RS_MAC["10.1.0.14"], dst="ff:ff:ff:ff:ff:ff")
          / ARP(op=1, hwsrc=RS_MAC["10.1.0.14"], psrc="10.1.0.14", pdst="10.1.0.254") / Raw(b"\x00" * 18),
          port=1, end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst="10.0.0.254", id=3) / ICMP(type=8, id=3, seq=1), end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst=vip, id=4) / ICMP(type=8, id=3, seq=2))
    r.add(Ether(src=GW_MAC, dst="02:00:00:00:99:99") / IP(src=cl, dst=vip, id=5) / TCP(sport=1, dport=80),
          learn=True)
    seeds["local"] = r

    # ICMP errors about connections, fragments, VLAN, garbage.
    r = Records()
    r.add(client(cl, vip, 4010, 80, "S"))
    quoted = IP(src=vip, dst=cl, id=9) / TCP(sport=80, dport=4010, flags="SA")
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src="10.0.0.1", dst=vip, id=6) / ICMP(type=3, code=4, nexthopmtu=576)
          / quoted, end=False)
    quoted_rs = IP(src="10.1.0.11", dst=cl, id=10) / TCP(sport=8080, dport=4010, flags="SA")
    r.add(Ether(src=RS_MAC["10.1.0.11"], dst=SRV_MAC) / IP(src="10.1.0.11", dst="10.1.0.254", id=7)
          / ICMP(type=3, code=3) / b(quoted_rs)[:28], port=1, end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst=vip, flags="MF", id=8) / UDP(sport=1, dport=53)
          / Raw(b"z" * 8), end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / Dot1Q(vlan=5) / IP(src=cl, dst=vip, id=11)
          / TCP(sport=4011, dport=80, flags="S"), end=False)
    r.add(Ether(src=GW_MAC, dst=CLI_MAC) / IP(src=cl, dst=vip, ttl=1, id=12) / TCP(sport=4012, dport=80, flags="S"),
          end=False)
    r.add(Raw(b"\xff" * 20))
    r.add(client(cl, vip, 4010, 80, "R", seq=1001), worker=1, ops=DRAIN)
    seeds["errors-and-odd-frames"] = r

    # A burst of 32 SYNs from many clients in a tight buffer and not.
    r = Records()
    for k in range(32):
        r.add(client("192.0.2.%d" % (k + 1), vip, 6000 + k, 80, "S"), worker=k & 1, end=k == 31)
    r.add(client("192.0.2.1", vip, 6000, 80, "S"), advance=600000)
    out = bytearray(r.out)
    out[0] |= 4  # the first frame without head- or tailroom
    r.out = out
    seeds["full-burst"] = r

    return {k: v.out for k, v in seeds.items()}


def write(target, named):
    d = os.path.join(HERE, "seeds", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in sorted(named.items()):
        data = b(data) if not isinstance(data, (bytes, bytearray)) else bytes(data)
        h = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(d, "%s-%s" % (name, h)), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (target, len(named)))


def main():
    f = frames()
    write("wire", f)
    write("forward", f)
    write("classify", classify())
    write("datapath", datapath())


if __name__ == "__main__":
    sys.exit(main())
