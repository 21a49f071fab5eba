#!/usr/bin/env python3
"""Whole-cycle benchmark: iocwall against what users do today, side by side in one run.

One cycle = fetch a collection of ENTRIES indicators over HTTPS (pages of 10,000 along the
Cursor header, from iocwall-feedsim on a namespace's loopback) after CHURN of them were revoked
and as many new ones added (1%: -1,000 +1,000 at 100k, as in the netlink benchmark), and bring
the kernel's interval set up to date.

  iocwall --once   the agent as cron would run it: a fresh process (reads its set back from
                   the kernel), one transaction with the diff, state saved.
  iocwall daemon   the steady state: the running agent's cycle, triggered by SIGUSR1, timed
                   from the signal to its log line.
  curl + nft -f    the common script: curl every page following the Cursor header, then ONE
                   `nft -f` that flushes the set and adds every entry again (atomic).

Each lane has its own namespace and simulator holding the same collection; every churn is
applied to all of them before the cycles run (in rotating order). Wall time and peak RSS
(ru_maxrss of the process tree; VmHWM, reset before each cycle, for the daemon); the table
prints the median of RUNS. Afterwards the three kernels must hold the same elements.

Root only; creates and deletes its own namespaces, nothing else.
Usage: bench_cycle.py [--entries 100000] [--runs 5] [--churn 0.01] [--seed 1] [--smoke]
"""

import argparse
import ipaddress
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import iocwall_e2e as e2e

BASELINE = r"""#!/bin/bash
# What a user's cron job does: every page with curl, then one nft -f (flush + add all).
# $3: seconds between requests (0.2 keeps to Sekoia's 5 requests per second).
set -euo pipefail
cd "$1"; url="$2"; pace="$3"
cursor=""; : >list
while :; do
  if [ -s list ] && [ "$pace" != 0 ]; then sleep "$pace"; fi
  curl -sS --fail -K auth.cfg --cacert ca.pem -D headers -o page \
    "$url?format=text&limit=10000&skip_expired=true&include_revoked=false${cursor:+&cursor=$cursor}"
  cat page >>list
  n=$(wc -l <page)
  cursor=$(sed -n 's/^[Cc]ursor: *//p' headers | tr -d '\r')
  if [ "$n" -lt 10000 ] || [ -z "$cursor" ]; then break; fi
done
{ echo "flush set inet users blocklist_v4"
  echo "add element inet users blocklist_v4 {"
  sed 's/$/,/' list
  echo "}"; } >update.nft
nft -f update.nft
"""

USERS_TABLE = """table inet users {
  set blocklist_v4 { type ipv4_addr; flags interval; }
  chain input { type filter hook input priority -200; policy accept; ip saddr @blocklist_v4 drop; }
}
"""


def collection(rng, n):
    """n scattered entries: 98% addresses, 2% /24-/28 prefixes, none overlapping (the
    baseline's nft -f would refuse overlaps in an interval set)."""
    taken = set()
    out = []
    while len(out) < n:
        if rng.random() < 0.02:
            length = rng.randrange(24, 29)
            base = rng.randrange(1 << 32) & ~((1 << (32 - length)) - 1)
            net = ipaddress.ip_network((base, length))
            blocks = range(base >> 8, (base + net.num_addresses - 1 >> 8) + 1)
        else:
            net = None
            base = rng.randrange(1 << 32)
            blocks = [base >> 8]
        first = base >> 24
        if first in (0, 10, 127, 169, 172, 192) or first >= 224 or any(b in taken for b in
                                                                        blocks):
            continue
        taken.update(blocks)  # one entry per /24 at most: no overlap, no adjacency
        out.append(str(net) if net else str(ipaddress.ip_address(base)))
    return out, taken


def timed(argv, log):
    """Wall time and peak RSS (MB) of a process tree."""
    with open(log, "a") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, usage.ru_maxrss / 1024.0


class Lane:
    def __init__(self, name, work, key, listing, extra=None):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.ns = e2e.Netns()
        self.sim = e2e.Sim(self.ns, self.dir, key, {"bench": listing},
                           tls=e2e.make_ca(os.path.join(work, "tls")))
        self.conf = e2e.write_config(os.path.join(self.dir, "iocwall.conf"), url=self.sim.url,
                                     key=key, ca=self.sim.ca, collections=["bench"],
                                     state_dir=os.path.join(self.dir, "state"), interval="1h",
                                     extra=extra)
        self.log = os.path.join(self.dir, "log")
        self.results = []  # (wall s, peak RSS MB)
        self.details = []  # iocwall's own clock: (fetch s, apply s)

    def record_details(self):
        state = e2e.load_state(os.path.join(self.dir, "state"))
        self.details.append((state["sources"][0]["seconds"], state["apply"]["seconds"]))
        return state

    def churn(self, gone, new):
        self.sim.revoke("bench", gone)
        self.sim.add("bench", new)


class OnceLane(Lane):
    def setup(self):
        e2e.Agent(self.ns, self.conf).run("--once", expect=0)

    def cycle(self):
        rc, wall, rss = timed(self.ns.argv([e2e.IOCWALL, "-c", self.conf, "--once"]), self.log)
        if rc != 0:
            raise SystemExit("iocwall --once failed: see " + self.log)
        return wall, rss


class DaemonLane(Lane):
    def setup(self):
        self.err = open(self.log, "w")
        self.proc = self.ns.popen([e2e.IOCWALL, "-c", self.conf], stdout=subprocess.DEVNULL,
                                  stderr=self.err)
        self.cycles = 1
        self.wait_cycle()

    def count(self, outcome=""):
        # A "<6>" priority prefix only when stderr is the journal, not this file.
        return sum(1 for line in e2e.read_text(self.log).splitlines()
                   if re.sub(r"^<\d>", "", line).startswith("cycle " + outcome))

    def wait_cycle(self):
        def done():
            if self.proc.poll() is not None:
                raise SystemExit("the daemon exited: see " + self.log)
            return self.count() >= self.cycles
        e2e.wait_for(done, 120, "the daemon's cycle", interval=0.002)
        if self.count("enforced-fresh") < self.cycles:
            raise SystemExit("the daemon's cycle failed: see " + self.log)

    def cycle(self):
        with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
            f.write("5")  # resets VmHWM: this cycle's peak, not the first load's
        self.cycles += 1
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_cycle()
        wall = time.perf_counter() - t0
        hwm = [l for l in e2e.read_text("/proc/%d/status" % self.proc.pid).splitlines()
               if l.startswith("VmHWM:")][0]
        return wall, int(hwm.split()[1]) / 1024.0


class BaselineLane(Lane):
    def __init__(self, name, work, key, listing, pace):
        super().__init__(name, work, key, listing)
        self.pace = pace

    def setup(self):
        self.ns.nft(USERS_TABLE)
        e2e.write_file(os.path.join(self.dir, "baseline.sh"), BASELINE, 0o755)
        os.symlink(self.sim.ca, os.path.join(self.dir, "ca.pem"))
        key = e2e.read_text(self.sim.key).strip()
        e2e.write_file(os.path.join(self.dir, "auth.cfg"), 'user = "user:%s"\n' % key, 0o600)
        self.cycle()

    def cycle(self):
        url = self.sim.url + "/v2/inthreat/collections/bench/objects"
        rc, wall, rss = timed(self.ns.argv(["bash", os.path.join(self.dir, "baseline.sh"),
                                            self.dir, url, str(self.pace)]), self.log)
        if rc != 0:
            raise SystemExit("the curl + nft -f script failed: see " + self.log)
        return wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--churn", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--smoke", action="store_true",
                    help="5,000 entries, 1 run: checks that every lane works and agrees")
    args = ap.parse_args()
    if args.smoke:
        args.entries, args.runs = 5000, 1
    e2e.check_environment()

    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="iocwall-bench-cycle.")
    try:
        key = e2e.new_key(os.path.join(work, "api_key"))
        entries, taken = collection(rng, args.entries)
        listing = e2e.write_list(os.path.join(work, "bench.txt"), entries)
        lanes = [OnceLane("iocwall --once", work, key, listing),
                 DaemonLane("iocwall daemon (SIGUSR1)", work, key, listing),
                 # A local mirror or caching proxy needs no WAF pacing: the same daemon with
                 # [api] rate_limit = 0 shows what the cycle itself costs.
                 DaemonLane("iocwall daemon, rate_limit = 0 (SIGUSR1)", work, key, listing,
                            extra={"api": {"rate_limit": "0"}}),
                 BaselineLane("curl + nft -f (flush + add all)", work, key, listing, 0),
                 BaselineLane("same, curl paced to 5 requests/s", work, key, listing, 0.2)]
        for lane in lanes:
            lane.setup()
        live = list(entries)
        per_run = max(1, int(args.entries * args.churn))
        for run in range(args.runs):
            gone = rng.sample(live, per_run)
            new, _ = collection(rng, per_run * 3)
            new = [x for x in new if int(ipaddress.ip_network(x).network_address) >> 8
                   not in taken][:per_run]
            for x in new:
                taken.add(int(ipaddress.ip_network(x).network_address) >> 8)
            gone_set = set(gone)
            live = [x for x in live if x not in gone_set] + new
            for lane in lanes:
                lane.churn(gone, new)
            for i in range(len(lanes)):  # rotating order: no lane always goes first
                lane = lanes[(run + i) % len(lanes)]
                lane.results.append(lane.cycle())
                if not isinstance(lane, BaselineLane):
                    lane.record_details()
            print("run %d: %s" % (run + 1, ", ".join(
                "%s %.3f s" % (l.name.split(" (")[0], l.results[-1][0]) for l in lanes)),
                flush=True)

        # Every lane must enforce the same list, the oracle's.
        expected = e2e.expected_sets([live])[4]
        for lane in lanes:
            table = "users" if isinstance(lane, BaselineLane) else "iocwall"
            got = e2e.merge(e2e.set_elements(lane.ns, table=table,
                                             sets={4: "blocklist_v4"})[4])
            if got != expected:
                raise SystemExit("%s: the kernel set differs from the list (%d vs %d ranges)"
                                 % (lane.name, len(got), len(expected)))
        state = e2e.load_state(os.path.join(lanes[0].dir, "state"))
        print("%d entries, %d pages a cycle, churn %d removed + %d added a run, median of %d "
              "runs" % (len(live), state["sources"][0]["pages"], per_run, per_run, args.runs))
        base = [statistics.median(w for w, _ in lane.results) for lane in lanes
                if isinstance(lane, BaselineLane)]
        print("| cycle | wall s | peak RSS MB | vs curl + nft -f | vs paced | iocwall's clock: "
              "fetch / apply s |")
        print("|---|---|---|---|---|---|")
        for lane in lanes:
            wall = statistics.median(w for w, _ in lane.results)
            rss = statistics.median(r for _, r in lane.results)
            detail = ("%.3f / %.3f" % (statistics.median(f for f, _ in lane.details),
                                        statistics.median(a for _, a in lane.details))
                      if lane.details else "")
            print("| %s | %.3f | %.1f | %.2fx | %.2fx | %s |" %
                  (lane.name, wall, rss, wall / base[0], wall / base[1], detail))
        print("iocwall --once, last cycle: +%d -%d elements in %d messages" %
              (state["apply"]["added"], state["apply"]["removed"], state["apply"]["messages"]))
    finally:
        for lane in locals().get("lanes", []):
            lane.ns.close()
        e2e._close_all()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
