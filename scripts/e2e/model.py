#!/usr/bin/python3
"""What Linux IPVS would pick, for the e2e suite's hash-scheduler checks.

  model.py sh ADDR [PORT] NAME:WEIGHT ...   source hashing (ip_vs_sh.c)
  model.py dh ADDR NAME ...                 destination hashing (ip_vs_dh.c)

Servers are given in the kernel's list order (newest first). PORT is the
source port for sh-port, else 0. Prints the chosen server's name.
"""
import ipaddress
import sys

TAB_BITS = 8
TAB_SIZE = 1 << TAB_BITS


def hash_32(val, bits=TAB_BITS):
    """include/linux/hash.h: (val * GOLDEN_RATIO_32) >> (32 - bits)."""
    return ((val * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


def addr_fold(addr):
    """The host-order 32-bit fold of an address (IPv6: xor of its words)."""
    a = ipaddress.ip_address(addr)
    if a.version == 4:
        return int(a)
    v = int(a)
    return (v >> 96 ^ v >> 64 ^ v >> 32 ^ v) & 0xFFFFFFFF


def sh_table(dests):
    """ip_vs_sh_reassign: each server takes `weight` consecutive buckets
    (at least one), in list order, round and round."""
    table, p, count = [], 0, 0
    for _ in range(TAB_SIZE):
        name, weight = dests[p]
        table.append(name)
        count += 1
        if count >= weight:
            p = (p + 1) % len(dests)
            count = 0
    return table


def main():
    kind, rest = sys.argv[1], sys.argv[2:]
    if kind == "sh":
        addr = rest.pop(0)
        port = int(rest.pop(0)) if rest and ":" not in rest[0] else 0
        dests = [(n, int(w)) for n, w in (d.split(":") for d in rest)]
        key = hash_32((port + addr_fold(addr)) & 0xFFFFFFFF)
        print(sh_table(dests)[key])
    elif kind == "dh":
        addr = rest.pop(0)
        # ip_vs_dh_reassign: bucket i gets the next server in turn.
        print(rest[hash_32(addr_fold(addr)) % len(rest)])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
