#!/usr/bin/python3
"""A test real server: HTTP on the given TCP ports answering its own name
(plus the client address it saw), a /blob endpoint streaming N pseudo-random
bytes (random.Random(N), 64 KiB chunks; `--blob-sha N` prints their sha256;
`/blob/N?rate=R` paces the sending at R bytes per second, so that a slow
download is slow at the server and nothing piles up in the client's socket),
POST answering "<name> <sha256 of the body> <length>", every response
carrying an `X-Server: <name>` header, and UDP echo answering
"<name> <payload>". IPv4 and IPv6."""
import argparse
import hashlib
import http.server
import random
import socket
import socketserver
import struct
import threading
import time
import urllib.parse


def blob_chunks(n):
    """The bytes of /blob/N, in the chunks the server writes them."""
    rnd = random.Random(n)
    left = n
    while left:
        chunk = rnd.randbytes(min(left, 1 << 16))
        yield chunk
        left -= len(chunk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blob-sha", type=int, metavar="N", help="print sha256 of /blob/N and exit")
    ap.add_argument("--blob-write", nargs=2, metavar=("N", "FILE"), help="write /blob/N's bytes to FILE and exit")
    ap.add_argument("--name")
    ap.add_argument("--tcp", default="80")
    ap.add_argument("--udp", type=int, default=0)
    a = ap.parse_args()
    if a.blob_sha is not None:
        h = hashlib.sha256()
        for chunk in blob_chunks(a.blob_sha):
            h.update(chunk)
        print(h.hexdigest())
        return
    if a.blob_write:
        with open(a.blob_write[1], "wb") as f:
            for chunk in blob_chunks(int(a.blob_write[0])):
                f.write(chunk)
        return
    if not a.name:
        ap.error("--name is required")
    name = a.name

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/blob/"):
                url = urllib.parse.urlsplit(self.path)
                n = int(url.path.split("/")[2])
                rate = int(urllib.parse.parse_qs(url.query).get("rate", ["0"])[0])
                self.send_response(200)
                self.send_header("X-Server", name)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.flush()
                start, sent = time.monotonic(), 0
                for chunk in blob_chunks(n):
                    # Paced in 8 KiB pieces on an absolute schedule.
                    step = 8192 if rate else len(chunk)
                    for i in range(0, len(chunk), step):
                        piece = chunk[i : i + step]
                        if rate:
                            ahead = start + sent / rate - time.monotonic()
                            if ahead > 0:
                                time.sleep(ahead)
                        self.wfile.write(piece)
                        sent += len(piece)
                return
            body = f"{name} {self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("X-Server", name)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            # An upload: answers "<name> <sha256 of the body> <length>".
            left = int(self.headers.get("Content-Length", 0))
            h = hashlib.sha256()
            got = 0
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                h.update(chunk)
                got += len(chunk)
                left -= len(chunk)
            body = f"{name} {h.hexdigest()} {got}\n".encode()
            self.send_response(200)
            self.send_header("X-Server", name)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class S4(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    class S6(S4):
        address_family = socket.AF_INET6

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    servers = []
    for p in a.tcp.split(","):
        servers.append(S4(("0.0.0.0", int(p)), H))
        servers.append(S6(("::", int(p)), H))
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()

    # UDP answers come from the address the query went to (IP_PKTINFO), as
    # a DR/TUN real server must: a socket bound to the wildcard address
    # would otherwise answer from its interface's address, not the VIP.
    ip_pktinfo = getattr(socket, "IP_PKTINFO", 8)
    ipv6_recvpktinfo = getattr(socket, "IPV6_RECVPKTINFO", 49)
    ipv6_pktinfo = getattr(socket, "IPV6_PKTINFO", 50)

    def udp(family, addr):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.IPPROTO_IPV6, ipv6_recvpktinfo, 1)
        else:
            s.setsockopt(socket.IPPROTO_IP, ip_pktinfo, 1)
        s.bind((addr, a.udp))
        while True:
            data, anc, _flags, peer = s.recvmsg(65535, 256)
            reply = []
            for level, typ, cdata in anc:
                if level == socket.IPPROTO_IP and typ == ip_pktinfo:
                    # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                    reply = [(level, typ, struct.pack("=i4s4s", 0, cdata[8:12], bytes(4)))]
                elif level == socket.IPPROTO_IPV6 and typ == ipv6_pktinfo:
                    # struct in6_pktinfo { in6_addr addr; int ifindex; }
                    reply = [(level, typ, struct.pack("=16si", cdata[:16], 0))]
            s.sendmsg([name.encode() + b" " + data], reply, 0, peer)

    if a.udp:
        threading.Thread(target=udp, args=(socket.AF_INET, "0.0.0.0"), daemon=True).start()
        threading.Thread(target=udp, args=(socket.AF_INET6, "::"), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
