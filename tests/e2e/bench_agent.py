#!/usr/bin/env python3
"""Product-level benchmark: the iocwall binary itself at a million indicators, every mode a
gateway runs, side by side with the from-empty load of the same run (ratios hold on a noisy
machine; absolute times do not).

One run = a fresh network namespace and iocwall-feedsim serving ENTRIES scattered IPv4
addresses as text pages of 10,000 over HTTPS on the namespace's loopback, unpaced
([api] rate_limit = 0), then:

  from empty     iocwall --once into an empty kernel
  unchanged      iocwall --once again, nothing changed (a restart, or cron)
  churn 1%       iocwall --once after CHURN of the collection was revoked and as many added
  restore        iocwall --restore over the intact table (early boot, service restart)
  status         iocwall --status

After the cases, the kernel's own floor for the from-empty transaction, in the same run:
bench_netlink (when built beside iocwall) applying a random list of the same size from empty
in one NftBackend::Reconcile, in a namespace of its own; the from-empty --once is compared
with it (issue 13: at most 1.5x).

Wall time and peak RSS (GNU time's %M of iocwall) of each; the machine settles SETTLE seconds
between cases (the kernel frees a million-element set in the background). The table prints
the median of RUNS and the ratio to the from-empty median. Root only; creates and deletes its
own namespaces.

--format json serves the same addresses as format=json pages of 2,000 full STIX indicators
(about 3 KB each, as Sekoia serves them: iocwall-feedsim --stix-items) and configures the agent
for them ([api] format = json, max_body raised: 500,000 such indicators are about 1.5 GB).

Usage: bench_agent.py [--entries 1000000] [--runs 3] [--churn 0.01] [--settle 5]
                      [--format text|json] [--smoke]
"""

import argparse
import ipaddress
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import iocwall_e2e as e2e

CASES = ["from empty", "unchanged", "churn", "restore", "status"]
BENCH_NETLINK = os.path.join(e2e.BIN_DIR, "bench_netlink")


def kernel_floor(entries):
    """Wall seconds of bench_netlink's from-empty load of `entries` (None when not built)."""
    if not os.path.exists(BENCH_NETLINK):
        return None
    p = subprocess.run([BENCH_NETLINK, "--sizes", str(entries), "--no-nft"],
                       capture_output=True, text=True, timeout=1800)
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 6 and cells[1] == "iocwall" and cells[2] == "from empty":
            return float(cells[5])
    raise AssertionError("bench_netlink printed no from-empty row\n" + p.stdout[-2000:] +
                         p.stderr[-2000:])


def scattered(rng, n, exclude=frozenset()):
    """n distinct public-looking IPv4 addresses, none adjacent to another (n kernel ranges)."""
    out, seen = [], set(exclude)
    while len(out) < n:
        a = rng.randrange(int(ipaddress.IPv4Address("20.0.0.0")) // 2,
                          int(ipaddress.IPv4Address("120.0.0.0")) // 2) * 2
        if a not in seen:
            seen.add(a)
            out.append(a)
    return [str(ipaddress.IPv4Address(a)) for a in out]


def timed(ns, argv, expect=0):
    """Wall time and peak RSS (MB) of one run of argv in the namespace. GNU time forks the
    agent from a small process: the peak RSS that a child of this Python process reports
    would include the pages it shares with Python at fork (kept across exec)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        t0 = time.monotonic()
        p = subprocess.run(ns.argv(["/usr/bin/time", "-o", rss_file.name, "-f", "%M"] + argv),
                           capture_output=True, text=True, timeout=1800)
        wall = time.monotonic() - t0
        if p.returncode != expect:
            raise AssertionError("%s exited %d\n%s%s" % (" ".join(argv), p.returncode,
                                                         p.stdout[-2000:], p.stderr[-2000:]))
        lines = [x for x in open(rss_file.name).read().split() if x.isdigit()]
        return wall, int(lines[-1]) / 1024.0


def one_run(args, rng, work):
    entries = scattered(rng, args.entries)
    feed = e2e.write_list(os.path.join(work, "feed.txt"), entries)
    key = e2e.new_key(os.path.join(work, "api_key"))
    ns = e2e.Netns()
    try:
        json_pages = args.format == "json"
        sim = e2e.Sim(ns, work, key, {"feed": feed},
                      extra_args=["--stix-items"] if json_pages else ())
        api = {"rate_limit": "0"}
        if json_pages:
            api.update({"format": "json", "max_body": str(8 << 30), "fetch_timeout": "30m"})
        conf = e2e.write_config(os.path.join(work, "iocwall.conf"), url=sim.url, key=key,
                                ca=sim.ca, collections=["feed"],
                                state_dir=os.path.join(work, "state"),
                                extra={"api": api, "sync": {"max_entries": "5000000"}})
        base = [e2e.IOCWALL, "-c", conf]
        out = {}
        out["from empty"] = timed(ns, base + ["--once"])[:2]
        time.sleep(args.settle)
        out["unchanged"] = timed(ns, base + ["--once"])[:2]
        n = max(1, int(args.entries * args.churn))
        sim.revoke("feed", entries[:n])
        sim.add("feed", scattered(rng, n, exclude={int(ipaddress.IPv4Address(a))
                                                   for a in entries}))
        time.sleep(args.settle)
        out["churn"] = timed(ns, base + ["--once"])[:2]
        time.sleep(args.settle)
        out["status"] = timed(ns, base + ["--status"])[:2]
        out["restore"] = timed(ns, base + ["--restore"])[:2]
        got = e2e.set_elements(ns) if args.smoke else None
        if got is not None and len(got[4]) != args.entries:
            raise AssertionError("the kernel holds %d ranges, expected %d" %
                                 (len(got[4]), args.entries))
        return out
    finally:
        ns.close()
        time.sleep(args.settle)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--churn", type=float, default=0.01)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["text", "json"], default="text",
                    help="json: pages of 2,000 full STIX indicators (about 3 KB each)")
    ap.add_argument("--smoke", action="store_true", help="20,000 entries, one run, no settling")
    args = ap.parse_args()
    if args.smoke:
        args.entries, args.runs, args.settle = 20000, 1, 0
    e2e.check_environment()
    rng = random.Random(args.seed)
    results = {c: [] for c in CASES}
    floors = []
    for r in range(args.runs):
        work = tempfile.mkdtemp(prefix="iocwall-bench-agent.")
        try:
            out = one_run(args, rng, work)
        finally:
            shutil.rmtree(work, True)
        for c in CASES:
            results[c].append(out[c])
        floor = None if args.smoke else kernel_floor(args.entries)
        if floor is not None:
            floors.append(floor)
        print("run %d: %s%s" % (r + 1, ", ".join("%s %.2f s" % (c, out[c][0]) for c in CASES),
                                "" if floor is None else ", kernel floor %.2f s" % floor),
              flush=True)
    empty = statistics.median(w for w, _ in results["from empty"])
    print("\n%d entries (format %s), %d runs, median wall, ratio to from-empty, "
          "peak RSS (max of runs)" % (args.entries, args.format, args.runs))
    print("| case | wall (median) | ratio | peak RSS |")
    print("|---|---|---|---|")
    for c in CASES:
        wall = statistics.median(w for w, _ in results[c])
        rss = max(m for _, m in results[c])
        print("| %s | %.2f s | %.2fx | %.0f MB |" % (c, wall, wall / empty, rss))
    if floors:
        floor = statistics.median(floors)
        print("\nkernel floor (bench_netlink, from empty, median): %.2f s; from-empty --once / "
              "floor: %.2fx" % (floor, empty / floor))
    return 0


if __name__ == "__main__":
    sys.exit(main())
