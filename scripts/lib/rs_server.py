#!/usr/bin/python3
"""A test real server: HTTP on the given TCP ports answering its own name
(plus the client address it saw), a /blob endpoint streaming N pseudo-random
bytes, and UDP echo answering "<name> <payload>". IPv4 and IPv6."""
import argparse
import http.server
import random
import socket
import socketserver
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--tcp", default="80")
    ap.add_argument("--udp", type=int, default=0)
    a = ap.parse_args()
    name = a.name

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/blob/"):
                n = int(self.path.split("/")[2])
                self.send_response(200)
                self.send_header("Content-Length", str(n))
                self.end_headers()
                rnd = random.Random(n)
                left = n
                while left:
                    chunk = rnd.randbytes(min(left, 1 << 16))
                    self.wfile.write(chunk)
                    left -= len(chunk)
                return
            body = f"{name} {self.client_address[0]}\n".encode()
            self.send_response(200)
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

    def udp(family, addr):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, a.udp))
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(name.encode() + b" " + data, peer)

    if a.udp:
        threading.Thread(target=udp, args=(socket.AF_INET, "0.0.0.0"), daemon=True).start()
        threading.Thread(target=udp, args=(socket.AF_INET6, "::"), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
