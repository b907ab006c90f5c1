#!/usr/bin/python3
"""The real servers of the scheduler-sequence experiments (scripts/conformance):
one process listening on TCP port 80 in several network namespaces, each
listener answering as its own real server.

  sched_rs.py [--ports P,Q,..] NETNS=NAME ...   (NETNS as `ip netns` names it)

Each request (anything up to a blank line) gets "HTTP/1.1 200 OK" with the
body "NAME CLIENT-ADDRESS\\n", and the connection stays open for the next
one (the client keeps it, so the director counts it active) until the
client closes; then it is closed at once. --ports: more TCP ports to
listen on (IPv4 and IPv6), besides 80. A UDP datagram to port 80 gets
"NAME CLIENT-ADDRESS\\n" back. IPv4 and IPv6. It answers what
scripts/lib/rs_server.py answers to a GET, but with nothing else to import
(socket, select, ctypes): in the TCG guest each Python module costs a
visible fraction of a second, http.server's imports tens of seconds, and
one process serves every namespace. Prints "ready" once listening.
"""
import ctypes
import os
import select
import socket
import sys

CLONE_NEWNET = 0x40000000


def listen_in(netns, more):
    """Listening TCP sockets and UDP sockets on port 80, IPv4 and IPv6,
    created inside netns (a socket stays in the namespace it was created
    in)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
    finally:
        os.close(fd)
    tcp, udp = [], []
    for family, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        u = socket.socket(family, socket.SOCK_DGRAM)
        for x in (s, u):
            if family == socket.AF_INET6:
                x.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            x.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            x.bind((any_addr, 80))
        s.listen(128)
        s.setblocking(False)
        tcp.append(s)
        udp.append(u)
        for port in more:
            s = socket.socket(family, socket.SOCK_STREAM)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((any_addr, port))
            s.listen(128)
            s.setblocking(False)
            tcp.append(s)
    return tcp, udp


def main():
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    listeners, udp = {}, {}
    args, more = sys.argv[1:], []
    if args[:1] == ["--ports"]:
        more = [int(p) for p in args[1].split(",") if p]
        args = args[2:]
    for arg in args:
        ns, _, name = arg.partition("=")
        tcp, udps = listen_in(ns, more)
        listeners.update((s, name) for s in tcp)
        udp.update((u, name) for u in udps)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns(home, CLONE_NEWNET)
    conns = {}  # socket -> [name, peer, buffer]
    print("ready", flush=True)
    while True:
        r, _, _ = select.select(list(listeners) + list(udp) + list(conns), [], [])
        for s in r:
            if s in udp:
                try:
                    _, peer = s.recvfrom(2048)
                    s.sendto(f"{udp[s]} {peer[0]}\n".encode(), peer)
                except OSError:
                    pass
                continue
            if s in listeners:
                try:
                    c, peer = s.accept()
                except OSError:
                    continue
                c.setblocking(True)
                conns[c] = [listeners[s], peer[0], b""]
                continue
            st = conns[s]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                del conns[s]
                s.close()
                continue
            st[2] += data
            while b"\r\n\r\n" in st[2]:
                _, st[2] = st[2].split(b"\r\n\r\n", 1)
                body = f"{st[0]} {st[1]}\n".encode()
                head = f"HTTP/1.1 200 OK\r\nX-Server: {st[0]}\r\nContent-Length: {len(body)}\r\n\r\n"
                try:
                    s.sendall(head.encode() + body)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
