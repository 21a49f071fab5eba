#!/usr/bin/env python3
"""A full format=json fetch of realistic (about 3 KB) STIX indicators, before vs after, side by
side in one run: each run starts two fresh `bench_feeds --runs 1` processes (one per build, in
alternating order so that neither always gets the quieter moment), each with its own simulator
serving the same collection over HTTPS on loopback. Wall time is the client's own fetch time;
peak RSS is the client process's (GNU time's %M; the simulator is another process).

  python3 tests/feeds/bench_json.py --before /tmp/before/bin/bench_feeds \
      --after build/bin/bench_feeds [--entries 500000] [--runs 3]
"""
import argparse
import re
import statistics
import subprocess
import sys


def one(binary, entries):
    cmd = [binary, "--runs", "1", "--entries", str(entries), "--stix-items", "--no-rate-limit",
           "--compression", "gzip", "--max-body", str(8 << 30)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{binary} failed ({p.returncode}): {p.stdout}{p.stderr}")
    rss = float(re.search(r"peak RSS: ([0-9.]+) MB", p.stdout).group(1))
    wall = float(re.search(r"wall: median ([0-9.]+) s", p.stdout).group(1))
    got = re.search(r"entries (\d+) of (\d+), pages (\d+), body ([0-9.]+) MB", p.stdout)
    cpu = float(re.search(r"client CPU per fetch: ([0-9.]+) s", p.stdout).group(1))
    return {"wall": wall, "rss": rss, "cpu": cpu, "entries": int(got.group(1)),
            "pages": int(got.group(3)), "mb": float(got.group(4))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--entries", type=int, default=500000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    res = {"before": [], "after": []}
    for r in range(a.runs):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for name in order:
            m = one(getattr(a, name), a.entries)
            res[name].append(m)
            print(f"run {r + 1} {name}: wall {m['wall']:.2f} s, CPU {m['cpu']:.2f} s, "
                  f"peak RSS {m['rss']:.1f} MB, {m['entries']} entries, {m['pages']} pages, "
                  f"{m['mb']:.1f} MB decoded", flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("wall", "cpu", "rss")}
           for k, v in res.items()}
    print(f"\n| build | wall (median of {a.runs}) | client CPU | peak RSS |")
    print("|---|---|---|---|")
    for k in ("before", "after"):
        print(f"| {k} | {med[k]['wall']:.2f} s | {med[k]['cpu']:.2f} s | {med[k]['rss']:.1f} MB |")
    print(f"| after / before | {med['after']['wall'] / med['before']['wall']:.2f}x | "
          f"{med['after']['cpu'] / med['before']['cpu']:.2f}x | "
          f"{med['after']['rss'] / med['before']['rss']:.2f}x |")


if __name__ == "__main__":
    main()
