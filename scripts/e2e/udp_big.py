#!/usr/bin/python3
"""One big UDP datagram to ADDR PORT and its echo back ("<name> <payload>"
from the real servers' UDP echo), retried a few times: the first try may
only teach the sender the path MTU (IPv6, packet too big). With --no-df,
IPv4 goes out with DF clear (IP_PMTUDISC_DONT). Prints "<name> <bytes
echoed>" when the echo carries the payload intact, or "ERR <why>"."""
import os
import socket
import sys

IP_MTU_DISCOVER, IP_PMTUDISC_DONT = 10, 0


def main():
    addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if "--no-df" in sys.argv and fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
    s.settimeout(1.5)
    payload = os.urandom(size)
    why = "no answer"
    for _ in range(5):
        try:
            s.sendto(payload, (addr, port))
            data = s.recv(70000)
        except OSError as e:
            why = str(e)
            continue
        name, _, echoed = data.partition(b" ")
        if echoed == payload:
            print(f"{name.decode()} {len(echoed)}")
            return
        why = f"bad echo of {len(echoed)} bytes"
    print(f"ERR {why}")


if __name__ == "__main__":
    main()
