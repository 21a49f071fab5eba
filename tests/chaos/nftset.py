#!/usr/bin/env python3
"""The kernel oracle of the chaos and hostile tests: reads iocwall's sets with `nft -j` inside
a network namespace and compares them, as sets of addresses, with list files.

  nftset.py match  --netns NS [--table T] LIST...   prints the index of the list the kernel
                                                     holds exactly, or "none" (exit 1) and why
  nftset.py count  --netns NS [--table T]           prints "v4 v6" element counts, -1 if absent
  nftset.py covers --netns NS [--table T] ADDR...   prints the addresses some element covers
  nftset.py gen OUT N SEED [--v6-every K] [--keep FROM --keep-fraction F]
                                                     writes N random public addresses
"""
import argparse
import ipaddress
import json
import random
import subprocess
import sys


def kernel_elements(netns, table, set_name):
    """Elements of one set as (first, last) integer pairs; None when the set is absent."""
    cmd = ["ip", "netns", "exec", netns, "nft", "-j", "list", "set", "inet", table, set_name]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None
    out = []
    for item in json.loads(p.stdout)["nftables"]:
        s = item.get("set")
        if not s:
            continue
        for e in s.get("elem", []):
            if isinstance(e, dict) and "elem" in e:  # with counters: {"elem": {"val": ...}}
                e = e["elem"]["val"]
            if isinstance(e, str):
                a = int(ipaddress.ip_address(e))
                out.append((a, a))
            elif "prefix" in e:
                n = ipaddress.ip_network("%s/%d" % (e["prefix"]["addr"], e["prefix"]["len"]))
                out.append((int(n.network_address), int(n.broadcast_address)))
            elif "range" in e:
                lo, hi = e["range"]
                out.append((int(ipaddress.ip_address(lo)), int(ipaddress.ip_address(hi))))
            else:
                raise SystemExit("unknown element form: %r" % (e,))
    return out


def canonical(ranges):
    """Sorted, merged (adjacent and overlapping joined): equal address sets compare equal."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def kernel_state(netns, table):
    v4 = kernel_elements(netns, table, "blocklist_v4")
    v6 = kernel_elements(netns, table, "blocklist_v6")
    return v4, v6


def list_state(path):
    v4, v6 = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            n = ipaddress.ip_network(line, strict=False)
            (v4 if n.version == 4 else v6).append(
                (int(n.network_address), int(n.broadcast_address)))
    return canonical(v4), canonical(v6)


def cmd_match(a):
    v4, v6 = kernel_state(a.netns, a.table)
    if v4 is None or v6 is None:
        print("none: table inet %s or its sets are absent" % a.table)
        return 1
    got = (canonical(v4), canonical(v6))
    for i, path in enumerate(a.lists):
        if list_state(path) == got:
            print(i)
            return 0
    print("none: kernel holds %d v4 + %d v6 ranges, equal to no list (%s)" %
          (len(got[0]), len(got[1]), ", ".join(
              "%s: %d+%d" % (p, len(s[0]), len(s[1])) for p, s in
              ((p, list_state(p)) for p in a.lists))))
    return 1


def cmd_count(a):
    v4, v6 = kernel_state(a.netns, a.table)
    print(-1 if v4 is None else len(v4), -1 if v6 is None else len(v6))
    return 0


def cmd_covers(a):
    v4, v6 = kernel_state(a.netns, a.table)
    for text in a.addrs:
        ip = ipaddress.ip_address(text)
        ranges = (v4 if ip.version == 4 else v6) or []
        if any(lo <= int(ip) <= hi for lo, hi in ranges):
            print(text)
    return 0


def cmd_gen(a):
    rng = random.Random(a.seed)
    out = set()
    if a.keep:
        with open(a.keep) as f:
            old = [l.strip() for l in f if l.strip()]
        rng.shuffle(old)
        out.update(old[:int(len(old) * a.keep_fraction)])
    # Public unicast space only, away from every range iocwall always protects and from the
    # test's own 10.x addresses.
    firsts = [23, 31, 45, 62, 77, 91, 103, 141, 176, 185, 194, 212]
    while len(out) < a.n:
        if a.v6_every and rng.randrange(a.v6_every) == 0:
            out.add("2a0%x:%x:%x::%x" % (rng.randrange(16), rng.randrange(65536),
                                         rng.randrange(65536), rng.randrange(1, 65536)))
        else:
            out.add("%d.%d.%d.%d" % (rng.choice(firsts), rng.randrange(256), rng.randrange(256),
                                     rng.randrange(1, 255)))
    with open(a.out, "w") as f:
        f.write("\n".join(sorted(out)) + "\n")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("match", "count", "covers"):
        s = sub.add_parser(name)
        s.add_argument("--netns", required=True)
        s.add_argument("--table", default="iocwall")
        if name == "match":
            s.add_argument("lists", nargs="+")
        if name == "covers":
            s.add_argument("addrs", nargs="+")
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("n", type=int)
    g.add_argument("seed", type=int)
    g.add_argument("--v6-every", type=int, default=0)
    g.add_argument("--keep")
    g.add_argument("--keep-fraction", type=float, default=0.5)
    a = p.parse_args()
    return {"match": cmd_match, "count": cmd_count, "covers": cmd_covers, "gen": cmd_gen}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
