#!/usr/bin/python3
"""One scheduler-sequence experiment (scripts/conformance): play a scenario
(tests/conformance/sched/*.scenario) against a director, the kernel's IPVS
driven by ipvsadm or rvsd driven by rvsadm, from the client's network
namespace, and print which real server answered each connection.

  sched_seq.py SCENARIO --side kernel|rvs --clients A,B,.. --vips A,B,..
               --servers A,B,.. --vport P --sport-base B --mark M
               --adm CMD [--barrier CMD] [--iptables CMD] [--sock PATH]

Runs in the client's namespace (it binds the client addresses). --adm is
the command line of the director's ipvsadm (the kernel: nsenter into the
root namespace; rvs: rvsadm, whose unix socket any namespace reaches).
--barrier (rvs) runs after every change: rvsd publishes rules to its
workers asynchronously, and `rvsadm -L -n -c` is answered by every worker
after it took the newest rules. Fwmark services: the kernel's marks are
iptables rules (--iptables, in the root namespace); rvsadm has no -f yet, so
on the rvs side the fwmark service, its real servers and the mark rules go
to rvsd's socket (--sock) as JSON requests of the control protocol.

The scenario, one step a line (# comments, blank lines skipped):

  service [fwmark] OPTS   -A: the service (VIP 1 : vport, or the fwmark
                          service whose mark covers every VIP : vport)
                          with ipvsadm's service options (-s -p -M -b)
  edit-service OPTS       -E, the same key
  server N OPTS           -a: real server N (address N of --servers, port
                          80, masquerading) with -w -x -y
  edit N OPTS / delete N  -e / -d of real server N
  conn CLIENTS [@VIPS] [keep] [xR]
                          for R rounds (default 1), for each client, for
                          each VIP (default 1): one TCP connection from
                          client address C (1-based index into --clients,
                          lists like 1-4,7) to VIP V : vport, from the next
                          source port (sport-base + its number). It sends
                          one HTTP request and reads the answer: the real
                          server's name. Without `keep` it then closes
                          (shutdown, waits for the server's FIN, close):
                          inactive (FIN_WAIT/TIME_WAIT) in the director.
                          With `keep` it stays open: ESTABLISHED, active.
  close NUMS|kept         close kept connections by number (or all of them)
  rvs-only                the kernel has no such scheduler: run on rvs only
  expect-used NAMES       rvs-only scenarios: the set of servers used must
                          be exactly NAMES (randomised schedulers)

Output: the steps and one line per connection, "NNN CLIENT:SPORT VIP:VPORT
SERVER" (SERVER "-" when no server answered: refused or timed out), kept
connections marked "keep". Lines starting with "~" are not compared (a
randomised scheduler's picks). Exit status 0, or 1 when a step failed (an
ipvsadm/rvsadm error, a bad line): the last line says what.
"""
import argparse
import ipaddress
import json
import shlex
import socket
import subprocess
import sys


class Fail(Exception):
    pass


def nums(spec, limit, what):
    """'1-4,7' -> [1, 2, 3, 4, 7], each in 1..limit."""
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise Fail(f"bad {what} list {spec!r}")
        if not (1 <= lo <= hi <= limit):
            raise Fail(f"{what} {part} out of 1..{limit}")
        out.extend(range(lo, hi + 1))
    return out


def service_json(opts):
    """ipvsadm service options (-s -p -M -b) as a control-protocol ServiceSpec part."""
    spec, i = {"scheduler": "wlc"}, 0
    while i < len(opts):
        o = opts[i]
        if o == "-s":
            spec["scheduler"] = opts[i + 1]
            i += 2
        elif o == "-p":
            t = 360
            if i + 1 < len(opts) and opts[i + 1].isdigit():
                t = int(opts[i + 1])
                i += 1
            spec.setdefault("persistent", {"netmask": 32})["timeout"] = t
            i += 1
        elif o == "-M":
            mask = ipaddress.IPv4Network(f"0.0.0.0/{opts[i + 1]}").prefixlen
            spec.setdefault("persistent", {"timeout": 360})["netmask"] = mask
            i += 2
        elif o == "-b":
            spec["flags"] = opts[i + 1].split(",")
            i += 2
        else:
            raise Fail(f"no JSON translation for service option {o}")
    return spec


def dest_json(addr, opts):
    """ipvsadm real-server options (-w -x -y -m) as a DestSpec."""
    d, i = {"address": addr, "port": 80, "forward": {"method": "masq"}, "weight": 1}, 0
    names = {"-w": "weight", "-x": "u_threshold", "-y": "l_threshold"}
    while i < len(opts):
        o = opts[i]
        if o in names:
            d[names[o]] = int(opts[i + 1])
            i += 2
        elif o == "-m":
            i += 1
        else:
            raise Fail(f"no JSON translation for real-server option {o}")
    return d


class Director:
    """The director's configuration, by the side's own tools."""

    def __init__(self, a):
        self.a = a
        self.adm = shlex.split(a.adm)
        self.fwmark = False
        self.marks = []  # what to undo at the end

    def run(self, argv, what):
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise Fail(f"{what}: {' '.join(argv)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")

    def barrier(self):
        if self.a.barrier:
            self.run(shlex.split(self.a.barrier), "barrier")

    def json(self, req):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(self.a.sock)
            s.sendall((json.dumps(dict(v=1, **req)) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        r = json.loads(buf)
        if r.get("result") == "error":
            raise Fail(f"rvsd: {req['op']}: {r.get('message')}")

    def key(self):
        if self.fwmark:
            return ["-f", str(self.a.mark)]
        return ["-t", f"{self.a.vips[0]}:{self.a.vport}"]

    def json_key(self):
        return {"protocol": "tcp", "address": "0.0.0.0", "port": 0, "fwmark": self.a.mark}

    def mark_rules(self, add):
        for v in self.a.vips:
            if self.a.side == "kernel":
                self.run(shlex.split(self.a.iptables) + ["-t", "mangle", "-A" if add else "-D", "PREROUTING",
                         "-p", "tcp", "-d", v, "--dport", str(self.a.vport), "-j", "MARK", "--set-mark",
                         str(self.a.mark)], "mark rule")
            else:
                m = {"protocol": "tcp", "address": v, "ports": [self.a.vport, self.a.vport]}
                if add:
                    self.json({"op": "add-mark", "mark": dict(m, mark=self.a.mark)})
                else:
                    self.json({"op": "delete-mark", "mark": m})

    def rvs_json(self):
        return self.fwmark and self.a.side == "rvs"

    def service(self, opts, edit=False):
        if not edit and opts[:1] == ["fwmark"]:
            self.fwmark, opts = True, opts[1:]
        if self.rvs_json():
            self.json({"op": "edit-service" if edit else "add-service",
                       "service": dict(self.json_key(), **service_json(opts))})
        else:
            self.run(self.adm + ["-E" if edit else "-A"] + self.key() + opts, "service")
        if self.fwmark and not edit:
            self.mark_rules(True)
        self.barrier()

    def dest(self, op, n, opts):
        addr = self.a.servers[n - 1]
        if self.rvs_json():
            req = {"op": {"-a": "add-dest", "-e": "edit-dest", "-d": "delete-dest"}[op], "service": self.json_key()}
            req["dest"] = {"address": addr, "port": 80} if op == "-d" else dest_json(addr, opts)
            self.json(req)
        else:
            argv = self.adm + [op] + self.key() + ["-r", f"{addr}:80"]
            if op != "-d":
                argv += ["-m"] + opts
            self.run(argv, "real server")
        self.barrier()

    def teardown(self):
        """Undo what the scenario made (best effort; the table is not compared)."""
        try:
            if self.fwmark:
                self.mark_rules(False)
            if self.rvs_json():
                self.json({"op": "delete-service", "service": self.json_key()})
            else:
                self.run(self.adm + ["-D"] + self.key(), "teardown")
            self.barrier()
        except Fail as e:
            print(f"sched_seq: teardown: {e}", file=sys.stderr)


def http_name(s):
    """Send one GET on s and return the server's name and the client address it saw."""
    s.sendall(b"GET / HTTP/1.1\r\nHost: rvs\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed before the answer")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed within the answer")
        body += chunk
    name, _, saw = body.decode().strip().partition(" ")
    return name, saw


def close_conn(s):
    """Close first and see the server's FIN, so that the director has seen
    both before the next step: the connection is inactive there."""
    try:
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--side", choices=["kernel", "rvs"], required=True)
    ap.add_argument("--clients", required=True)
    ap.add_argument("--vips", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--vport", type=int, required=True)
    ap.add_argument("--sport-base", type=int, required=True)
    ap.add_argument("--mark", type=int, default=1)
    ap.add_argument("--adm", required=True)
    ap.add_argument("--barrier", default="")
    ap.add_argument("--iptables", default="iptables")
    ap.add_argument("--sock", default="")
    ap.add_argument("--timeout", type=float, default=3.0, help="connect/answer timeout, seconds")
    a = ap.parse_args()
    for k in ("clients", "vips", "servers"):
        setattr(a, k, getattr(a, k).split(","))

    d = Director(a)
    kept = {}  # number -> socket
    used = set()
    expect = None
    n = 0
    lineno = 0
    try:
        with open(a.scenario) as f:
            lines = f.read().splitlines()
        for lineno, line in enumerate(lines, 1):
            w = shlex.split(line, comments=True)
            if not w:
                continue
            op, args = w[0], w[1:]
            if op == "rvs-only":
                continue
            if op == "expect-used":
                expect = sorted(args)
                continue
            print(f"= {' '.join(w)}", flush=True)
            if op == "service":
                d.service(args)
            elif op == "edit-service":
                d.service(args, edit=True)
            elif op in ("server", "edit", "delete"):
                if not args:
                    raise Fail(f"{op} needs a server number")
                srv = nums(args[0], len(a.servers), "server")
                if len(srv) != 1:
                    raise Fail(f"{op}: one server at a time")
                d.dest({"server": "-a", "edit": "-e", "delete": "-d"}[op], srv[0], args[1:])
            elif op == "conn":
                if not args:
                    raise Fail("conn needs a client list")
                clients = nums(args[0], len(a.clients), "client")
                vips, keep, rounds = [1], False, 1
                for x in args[1:]:
                    if x.startswith("@"):
                        vips = nums(x[1:], len(a.vips), "VIP")
                    elif x == "keep":
                        keep = True
                    elif x.startswith("x") and x[1:].isdigit():
                        rounds = int(x[1:])
                    else:
                        raise Fail(f"conn: what is {x!r}?")
                if len(vips) > 1 and not d.fwmark:
                    raise Fail("several VIPs need a fwmark service")
                for _ in range(rounds):
                    for c in clients:
                        for v in vips:
                            n += 1
                            if n >= 1000:
                                raise Fail("more than 999 connections")
                            src, sport, vip = a.clients[c - 1], a.sport_base + n, a.vips[v - 1]
                            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                            s.bind((src, sport))
                            s.settimeout(a.timeout)
                            try:
                                s.connect((vip, a.vport))
                                name, saw = http_name(s)
                                if saw != src:
                                    name += f"(saw:{saw})"
                            except OSError:
                                s.close()
                                s, name = None, "-"
                            used.add(name)
                            tag = "~" if expect is not None else ""
                            print(f"{tag}{n:03d} {src}:{sport} {vip}:{a.vport} {name}{' keep' if keep and s else ''}",
                                  flush=True)
                            if s and keep:
                                kept[n] = s
                            elif s:
                                close_conn(s)
            elif op == "close":
                which = sorted(kept) if args == ["kept"] else nums(",".join(args), n, "connection")
                for k in which:
                    if k not in kept:
                        raise Fail(f"close: connection {k} is not kept open")
                    close_conn(kept.pop(k))
            else:
                raise Fail(f"unknown step {op!r}")
        if expect is not None:
            got = sorted(used)
            print(f"used: {' '.join(got)}")
            if got != expect:
                raise Fail(f"expected the servers used to be {' '.join(expect)}")
    except Fail as e:
        print(f"FAILED at {a.scenario}:{lineno}: {e}", flush=True)
        return 1
    finally:
        for s in kept.values():
            close_conn(s)
        d.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
