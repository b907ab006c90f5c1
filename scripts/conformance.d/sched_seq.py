#!/usr/bin/python3
"""Scheduler-sequence experiments (scripts/conformance): play scenarios
(tests/conformance/sched/*.scenario) against a director, the kernel's IPVS
driven by ipvsadm or rvsd driven by rvsadm, from the client's network
namespace, and write down which real server answered each connection.

  sched_seq.py --side kernel|rvs --out DIR --clients A,B,.. --vips A,B,..
               --servers A,B,.. [--clients6 .. --vips6 .. --servers6 ..]
               --adm CMD [--batch] [--barrier CMD] [--marks CMD]
               [--marks6 CMD] [--sock PATH] [--timeout SECS] SCENARIO ...

For each SCENARIO (a file): DIR/NAME.seq gets the sequence, DIR/NAME.rc
the status, and a line "NAME: N connections, S s" (or what failed) goes to
stdout. One process for them all: in the TCG guest a Python start costs
seconds.

Runs in the client's namespace (it binds the client addresses). --adm is
the command line of the director's ipvsadm (the kernel: nsenter into the
root namespace; rvs: rvsadm, whose unix socket any namespace reaches).
--batch (the kernel): consecutive changes go to one `ipvsadm -R`, which
runs its lines as the separate commands would (an exec costs half a
second in the guest). --barrier (rvs) runs after every change: rvsd
publishes rules to its workers asynchronously, and `rvsadm -L -n -c` is
answered by every worker after it took the newest rules. Fwmark services:
the kernel's marks are iptables rules (--marks: an iptables-restore
--noflush command line, run in the root namespace; --marks6: the same with
ip6tables-restore); rvsadm has no -f yet, so on the rvs side the fwmark
service, its real servers and the mark rules go to rvsd's socket (--sock)
as JSON requests of the control protocol.

The scenario, one step a line (# comments, blank lines skipped):

  number K                (first, 1..45, unique among the scenarios) the
                          scenario's service port is 8000+K, its fwmark
                          100+K, its connections' source ports 20001+1000K
                          on: no two scenarios share a service (the kernel
                          revives a deleted service's real servers from its
                          trash, counts and all) nor a connection (a reply
                          from a real server is matched by the client's
                          address and port), whichever run together
  service [udp] [ipv6] [fwmark] OPTS
                          -A: the service (TCP, or UDP; IPv4, or IPv6 with
                          the *6 addresses; VIP 1 : its port, or the fwmark
                          service whose mark covers every VIP : its port)
                          with ipvsadm's service options (-s -p -M -b -o)
  edit-service OPTS       -E, the same key
  server N[:PORT] OPTS    -a: real server N (address N of --servers, port
                          80 or PORT, masquerading) with -w -x -y; the real
                          servers listen on 80, and on 8000+K for the
                          scenarios that give a port (0, the packet's)
  edit N[:PORT] OPTS / delete N[:PORT]
                          -e / -d of real server N
  conn CLIENTS [@VIPS] [keep] [xR]
                          for R rounds (default 1), for each client, for
                          each VIP (default 1): one TCP connection from
                          client address C (1-based index into --clients,
                          lists like 1-4,7) to VIP V, from the next source
                          port. It sends one HTTP request and reads the
                          answer: the real server's name. Without `keep`
                          it then closes (shutdown, waits for the server's
                          FIN, close): inactive (CLOSE_WAIT, TIME_WAIT) in
                          the director. With `keep` it stays open:
                          ESTABLISHED, active. UDP: one datagram and its
                          answer, from a new socket (no keep); an answer
                          not from the VIP is marked "(from:ADDR:PORT)".
  close NUMS|kept         close kept connections by number (or all of them)
  list                    the director's view of its real servers, from
                          `-L -n` of the service: "- SERVER weight W
                          active A inactive I" each, in ipvsadm's order
                          (by address; also done at the end of every
                          scenario)
  stats                   each real server's connections so far, from
                          `-L -n --stats --exact`: "- SERVER conns C" (one-
                          packet scheduling leaves nothing else to see),
                          after 2.5 s: the kernel's listed counters lag
                          up to 2 s
  rvs-only                the kernel has no such scheduler: run on rvs only
  expect-used NAMES       (first) the set of servers used must be exactly
                          NAMES; the picks themselves are not compared
                          (randomised schedulers)

A sequence: the steps ("= STEP") and one line per connection, "NNN
CLIENT:SPORT VIP:VPORT SERVER" (SERVER "-" when no server answered:
refused or timed out; "(saw:ADDR)" added when the server saw another
client address), kept connections marked "keep". Lines starting with
"~" are not compared (a randomised scheduler's picks). Status 0, or 1 when
a step failed (an ipvsadm/rvsadm error, a bad line): the last line says
what.
"""
import os
import shlex
import socket
import subprocess
import sys
import time


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
            import ipaddress

            mask = ipaddress.IPv4Network(f"0.0.0.0/{opts[i + 1]}").prefixlen
            spec.setdefault("persistent", {"timeout": 360})["netmask"] = mask
            i += 2
        elif o == "-b":
            spec["flags"] = opts[i + 1].split(",")
            i += 2
        elif o == "-o":
            spec["ops"] = True
            i += 1
        else:
            raise Fail(f"no JSON translation for service option {o}")
    return spec


def dest_json(addr, port, opts):
    """ipvsadm real-server options (-w -x -y -m) as a DestSpec."""
    d, i = {"address": addr, "port": port, "forward": {"method": "masq"}, "weight": 1}, 0
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

    def __init__(self, a, vport, mark):
        self.a = a
        self.vport, self.mark = vport, mark
        self.adm = shlex.split(a.adm)
        self.fwmark = False
        self.proto = "tcp"
        self.v6 = False
        self.clients, self.vips, self.servers = a.clients, a.vips, a.servers
        self.queue = []  # --batch: ipvsadm lines not run yet

    def run(self, argv, what, stdin=None):
        p = subprocess.run(argv, input=stdin, stdin=None if stdin else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise Fail(f"{what}: {' '.join(argv)}: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")

    def ipvsadm(self, args, what):
        if self.a.batch:
            self.queue.append(args)
        else:
            self.run(self.adm + args, what)

    def flush(self):
        """Run the queued ipvsadm lines (before traffic)."""
        if self.queue:
            lines, self.queue = self.queue, []
            self.run(self.adm + ["-R"], "ipvsadm -R", "".join(" ".join(l) + "\n" for l in lines))

    def barrier(self):
        if self.a.barrier:
            self.run(shlex.split(self.a.barrier), "barrier")

    def json(self, req):
        import json
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
        r = json.loads(buf or b"{}")
        if r.get("result") == "error":
            raise Fail(f"rvsd: {req['op']}: {r.get('message')}")
        return r

    def key(self):
        if self.fwmark:
            return ["-f", str(self.mark)] + (["-6"] if self.v6 else [])
        return ["-u" if self.proto == "udp" else "-t", f"{sockaddr(self.vips[0])}:{self.vport}"]

    def json_key(self):
        return {"protocol": "tcp", "address": "::" if self.v6 else "0.0.0.0", "port": 0, "fwmark": self.mark}

    def mark_rules(self, add):
        if self.a.side == "kernel":
            rules = "".join(f"{'-A' if add else '-D'} PREROUTING -p {self.proto} -d {v} --dport {self.vport}"
                            f" -j MARK --set-mark {self.mark}\n" for v in self.vips)
            self.run(shlex.split(self.a.marks6 if self.v6 else self.a.marks), "mark rules",
                     f"*mangle\n{rules}COMMIT\n")
            return
        for v in self.vips:
            m = {"protocol": self.proto, "address": v, "ports": [self.vport, self.vport]}
            if add:
                self.json({"op": "add-mark", "mark": dict(m, mark=self.mark)})
            else:
                self.json({"op": "delete-mark", "mark": m})

    def rvs_json(self):
        return self.fwmark and self.a.side == "rvs"

    def service(self, opts, edit=False):
        while not edit and opts[:1] and opts[0] in ("udp", "ipv6", "fwmark"):
            if opts[0] == "udp":
                self.proto = "udp"
            elif opts[0] == "fwmark":
                self.fwmark = True
            else:
                self.v6 = True
                self.clients, self.vips, self.servers = self.a.clients6, self.a.vips6, self.a.servers6
                if not self.vips:
                    raise Fail("no IPv6 addresses given")
            opts = opts[1:]
        if self.rvs_json():
            self.json({"op": "edit-service" if edit else "add-service",
                       "service": dict(self.json_key(), **service_json(opts))})
        else:
            self.ipvsadm(["-E" if edit else "-A"] + self.key() + opts, "service")
        if self.fwmark and not edit:
            self.mark_rules(True)
        self.barrier()

    def dest(self, op, n, port, opts):
        addr = self.servers[n - 1]
        if self.rvs_json():
            req = {"op": {"-a": "add-dest", "-e": "edit-dest", "-d": "delete-dest"}[op], "service": self.json_key()}
            req["dest"] = {"address": addr, "port": port} if op == "-d" else dest_json(addr, port, opts)
            self.json(req)
        else:
            argv = [op] + self.key() + ["-r", f"{sockaddr(addr)}:{port}"]
            if op != "-d":
                argv += ["-m"] + opts
            self.ipvsadm(argv, "real server")
        self.barrier()

    def listing(self, name_of, stats=False):
        """The real servers as -L -n lists them: [(name, weight, active,
        inactive)], or with stats as -L -n --stats --exact: [(name, conns)]."""
        self.flush()
        if self.rvs_json():
            # In ipvsadm's order: by address and port.
            r = self.json({"op": "list-services", "service": self.json_key()})
            dests = sorted((x for svc in r.get("services", []) for x in svc["dests"]),
                           key=lambda x: (ip_bytes(x["address"]), x["port"]))
            if stats:
                return [(name_of.get(x["address"], x["address"]), str(x["stats"]["conns"])) for x in dests]
            return [(name_of.get(x["address"], x["address"]), str(x["weight"]), str(x["active_conns"]),
                     str(x["inactive_conns"])) for x in dests]
        more = ["--stats", "--exact"] if stats else []
        p = subprocess.run(self.adm + ["-L", "-n"] + more + self.key(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise Fail(f"list: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")
        rows = []
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 6 and f[0] == "->" and f[1] != "RemoteAddress:Port":
                name = name_of.get(f[1].rsplit(":", 1)[0].strip("[]"), f[1])
                rows.append((name, f[2]) if stats else (name, f[3], f[4], f[5]))
        return rows

    def teardown(self):
        """Undo what the scenario made (best effort; the table is not compared)."""
        self.queue = []
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


def sockaddr(addr):
    """An address as ipvsadm writes it before a port: IPv6 in brackets."""
    return f"[{addr}]" if ":" in addr else addr


def ip_bytes(addr):
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


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
        s.settimeout(3)
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def play(a, path, out):
    """Play one scenario; its sequence to out (a file); True when it ran through."""
    d = None
    kept = {}  # number -> socket
    used = set()
    expect = None
    n = 0
    lineno = 0

    def say(line):
        print(line, file=out, flush=True)

    def names():
        return {addr: f"rs{i}" for i, addr in enumerate(d.servers, 1)}

    def listing():
        for name, w, act, inact in d.listing(names()):
            say(f"- {name} weight {w} active {act} inactive {inact}")

    try:
        with open(path) as f:
            lines = f.read().splitlines()
        for lineno, line in enumerate(lines, 1):
            w = shlex.split(line, comments=True)
            if not w:
                continue
            op, args = w[0], w[1:]
            if op == "number":
                if d or len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 45:
                    raise Fail("number K (1..45) first")
                k = int(args[0])
                vport, sport_base = 8000 + k, 20000 + 1000 * k
                d = Director(a, vport, 100 + k)
                continue
            if not d:
                raise Fail("number K first")
            if op == "rvs-only":
                continue
            if op == "expect-used":
                expect = sorted(args)
                continue
            say(f"= {' '.join(w)}")
            if op == "service":
                d.service(args)
            elif op == "edit-service":
                d.service(args, edit=True)
            elif op in ("server", "edit", "delete"):
                if not args:
                    raise Fail(f"{op} needs a server number")
                which, _, port = args[0].partition(":")
                srv = nums(which, len(d.servers), "server")
                if len(srv) != 1 or not (port or "80").isdigit():
                    raise Fail(f"{op}: one server at a time, N or N:PORT")
                d.dest({"server": "-a", "edit": "-e", "delete": "-d"}[op], srv[0], int(port or 80), args[1:])
            elif op == "conn":
                d.flush()
                if not args:
                    raise Fail("conn needs a client list")
                clients = nums(args[0], len(d.clients), "client")
                vips, keep, rounds = [1], False, 1
                for x in args[1:]:
                    if x.startswith("@"):
                        vips = nums(x[1:], len(d.vips), "VIP")
                    elif x == "keep":
                        keep = True
                    elif x.startswith("x") and x[1:].isdigit():
                        rounds = int(x[1:])
                    else:
                        raise Fail(f"conn: what is {x!r}?")
                if len(vips) > 1 and not d.fwmark:
                    raise Fail("several VIPs need a fwmark service")
                if keep and d.proto == "udp":
                    raise Fail("UDP has no kept connections")
                for _ in range(rounds):
                    for c in clients:
                        for v in vips:
                            n += 1
                            if n >= 1000:
                                raise Fail("more than 999 connections")
                            src, sport, vip = d.clients[c - 1], sport_base + n, d.vips[v - 1]
                            udp = d.proto == "udp"
                            s = socket.socket(socket.AF_INET6 if d.v6 else socket.AF_INET,
                                              socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                            s.bind((src, sport))
                            s.settimeout(a.timeout)
                            try:
                                if udp:
                                    # Not connected: an answer that the director did
                                    # not translate back (one-packet scheduling with
                                    # NAT leaves no connection to do it) still names
                                    # the server; where it came from is noted.
                                    s.sendto(b"who\n", (vip, vport))
                                    data, peer = s.recvfrom(2048)
                                    name, _, saw = data.decode().strip().partition(" ")
                                    if peer[:2] != (vip, vport):
                                        name += f"(from:{peer[0]}:{peer[1]})"
                                    s.close()
                                    s = None
                                else:
                                    s.connect((vip, vport))
                                    name, saw = http_name(s)
                                if saw != src:
                                    name += f"(saw:{saw})"
                            except OSError:
                                s.close()
                                s, name = None, "-"
                            used.add(name)
                            tag = "~" if expect is not None else ""
                            say(f"{tag}{n:03d} {sockaddr(src)}:{sport} {sockaddr(vip)}:{vport} {name}{' keep' if keep and s else ''}")
                            if s and keep:
                                kept[n] = s
                            elif s:
                                close_conn(s)
            elif op == "list":
                listing()
            elif op == "stats":
                # The kernel sums its per-CPU counters into what it lists
                # every 2 s (the rate estimator's tick).
                time.sleep(2.5)
                for name, conns in d.listing(names(), stats=True):
                    say(f"- {name} conns {conns}")
            elif op == "close":
                which = sorted(kept) if args == ["kept"] else nums(",".join(args), n, "connection")
                for c in which:
                    if c not in kept:
                        raise Fail(f"close: connection {c} is not kept open")
                    close_conn(kept.pop(c))
            else:
                raise Fail(f"unknown step {op!r}")
        say("= list (the end)")
        listing()
        if expect is not None:
            got = sorted(used)
            say(f"used: {' '.join(got)}")
            if got != expect:
                raise Fail(f"expected the servers used to be {' '.join(expect)}")
    except Fail as e:
        say(f"FAILED at {path}:{lineno}: {e}")
        return False
    finally:
        for s in kept.values():
            close_conn(s)
        if d:
            d.teardown()
    return True


def main():
    a = type("Args", (), {"batch": False, "barrier": "", "marks": "", "marks6": "", "sock": "", "timeout": 3.0,
                          "clients6": "", "vips6": "", "servers6": ""})()
    todo, argv = [], sys.argv[1:]
    while argv:
        o = argv.pop(0)
        if o == "--batch":
            a.batch = True
        elif o in ("--side", "--out", "--clients", "--vips", "--servers", "--clients6", "--vips6", "--servers6",
                   "--adm", "--barrier", "--marks", "--marks6", "--sock", "--timeout"):
            if not argv:
                sys.exit(f"sched_seq: {o} needs a value")
            setattr(a, o[2:], argv.pop(0))
        elif o.startswith("-"):
            sys.exit(__doc__)
        else:
            todo.append(o)
    for k in ("side", "out", "clients", "vips", "servers", "adm"):
        if not hasattr(a, k):
            sys.exit(f"sched_seq: --{k} is required")
    if a.side not in ("kernel", "rvs"):
        sys.exit("sched_seq: --side kernel|rvs")
    a.timeout = float(a.timeout)
    for k in ("clients", "vips", "servers", "clients6", "vips6", "servers6"):
        setattr(a, k, [x for x in getattr(a, k).split(",") if x])
    os.makedirs(a.out, exist_ok=True)
    bad = 0
    for path in todo:
        name = os.path.basename(path).removesuffix(".scenario")
        t0 = time.monotonic()
        with open(os.path.join(a.out, name + ".seq"), "w") as out:
            ok = play(a, path, out)
        with open(os.path.join(a.out, name + ".seq")) as f:
            seq = f.read().splitlines()
        with open(os.path.join(a.out, name + ".rc"), "w") as f:
            f.write("0\n" if ok else "1\n")
        nconn = sum(1 for l in seq if l[:1].isdigit() or l[:1] == "~")
        print(f"   {name:<15} {nconn:3d} connections, {time.monotonic() - t0:3.0f} s"
              + ("" if ok else f", FAILED: {seq[-1]}"), flush=True)
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
