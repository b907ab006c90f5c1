#!/usr/bin/python3
"""Connected UDP sockets for the e2e suite: N datagrams to ADDR PORT, each
from its own connected socket (a new source port, hence a new connection
for rvsd), optionally bound to a source address; then waits up to WAIT
seconds for what comes back. A connected socket learns of an ICMP port
unreachable as ECONNREFUSED (an unconnected one would not). Prints
"refused=R answered=A silent=S ms=M", M being how long the first refusal
took (or -1)."""
import select
import socket
import sys
import time


def main():
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    src = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    wait = float(sys.argv[5]) if len(sys.argv) > 5 else 2.0
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setblocking(False)
        if src:
            s.bind((src, 0))
        s.connect((addr, port))
        s.send(f"q{i}".encode())
        socks.append(s)
    refused = answered = 0
    first = -1
    pending = set(socks)
    deadline = t0 + wait
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            pending.discard(s)
            try:
                s.recv(65535)
                answered += 1
            except ConnectionRefusedError:
                refused += 1
                if first < 0:
                    first = int((time.monotonic() - t0) * 1000)
            except BlockingIOError:
                pending.add(s)
    for s in socks:
        s.close()
    print(f"refused={refused} answered={answered} silent={len(pending)} ms={first}", flush=True)


if __name__ == "__main__":
    main()
