#!/usr/bin/python3
"""UDP queries for the e2e suite: N queries to ADDR PORT, each from a new
socket (a new source port, hence a new connection for rvsd), optionally
bound to a source address. Prints the answering server per query (the
first word of the echo "<name> <payload>"), or "ERR <why>"."""
import socket
import sys


def main():
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    src = sys.argv[4] if len(sys.argv) > 4 else None
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for i in range(n):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(2)
        if src:
            s.bind((src, 0))
        q = f"q{i}".encode()
        try:
            s.sendto(q, (addr, port))
            data = s.recv(65535)
            name, _, payload = data.partition(b" ")
            lport = s.getsockname()[1]
            print(f"{name.decode()} {lport}" if payload == q else f"ERR bad answer {data!r}", flush=True)
        except OSError as e:
            print(f"ERR {e}", flush=True)
        finally:
            s.close()


if __name__ == "__main__":
    main()
