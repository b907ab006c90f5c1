#!/usr/bin/python3
"""UDP datagrams (18 bytes of payload, 60-byte frames) to HOST:9 as fast as
one process sends them, for SECS seconds; prints how many it sent. The
kernel-side generator of scripts/bench-twin (hping3 --flood sends a third
as many)."""
import socket
import sys
import time

dst = (sys.argv[1], 9)
secs = float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
msg = b"x" * 18
send = s.sendto
n = 0
end = time.monotonic() + secs
while time.monotonic() < end:
    for _ in range(1000):
        try:
            send(msg, dst)
        except OSError:
            pass
    n += 1000
print(n)
