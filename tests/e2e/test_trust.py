#!/usr/bin/env python3
"""End to end: "never OK while wrong". Each case is an attack or an accident that used to end
in a confident OK (exit 0, "enforced", "BLOCKED") while the kernel enforced something else, with
a control showing the test would catch it: an administrator's table taken over, a dormant or
flushed table reported OK, two writers undoing each other, guards switched off by a lost
state.json, --restore blocking the host, --dry-run hiding a refusal, a renamed table left
enforcing."""

import ipaddress
import json
import os
import signal
import subprocess
import time

import iocwall_e2e as e2e

DEBIAN_FILTER = """table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    tcp dport 22 accept
  }
}
"""


def blocked_in(ns, address, table="iocwall"):
    a = int(ipaddress.ip_address(address))
    return any(f <= a <= l for f, l in e2e.set_elements(ns, table=table)[4])


class TrustTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.ns = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 300)
        self.list_path = e2e.write_list(self.path("feed.list"), self.feed)

    def agent(self, files=None, **extra):
        conf = e2e.write_config(self.path("iocwall.conf"), files=files or [self.list_path],
                                state_dir=self.state_dir, interval="1h", extra=extra)
        return e2e.Agent(self.ns, conf)

    # -- ownership ------------------------------------------------------------------------------

    def test_an_administrators_table_is_never_taken_over(self):
        self.ns.nft(DEBIAN_FILTER)
        before = self.ns.ruleset()
        agent = self.agent(nftables={"table": "filter"})
        p = agent.run("--check-config", expect=78)
        self.assertIn("not created by iocwall", p.stderr)
        p = agent.run("--dry-run", expect=1)
        self.assertIn("not created by iocwall", p.stdout)
        p = agent.run("--once", expect=1)
        self.assertIn("not created by iocwall", p.stderr)
        agent.run("--restore", expect=1)
        p = agent.run("--flush", expect=1)
        self.assertIn("not created by iocwall", p.stderr)
        self.assertEqual(self.ns.ruleset(), before, "the administrator's table was changed")
        status = agent.run("--status", expect=2)
        self.assertTrue(status.stdout.startswith("iocwall CRITICAL"), status.stdout)
        # Control: under a name of its own, the same configuration enforces and is OK.
        agent = self.agent(nftables={"table": "iocwall"})
        agent.run("--check-config", expect=0)
        agent.run("--once", expect=0)
        agent.run("--status", expect=0)
        self.assertEqual([i for i in self.ns.ruleset() if e2e.belongs(i, "inet", "filter")],
                         [i for i in before if e2e.belongs(i, "inet", "filter")])

    def test_a_dormant_table_is_critical_and_not_blocked_then_repaired(self):
        agent = self.agent()
        agent.run("--once", expect=0)
        p = agent.run("--status", expect=0)
        self.assertIn("verified:", p.stdout)
        p = agent.run("--explain", self.feed[0], expect=0)
        self.assertIn("BLOCKED", p.stdout)
        self.ns.nft("add table inet iocwall { flags dormant; }\n")
        p = agent.run("--status", expect=2)
        self.assertTrue(p.stdout.startswith("iocwall CRITICAL"), p.stdout)
        self.assertIn("dormant", p.stdout)
        p = agent.run("--explain", self.feed[0], expect=1)
        self.assertNotIn("BLOCKED", p.stdout)
        self.assertIn("dormant", p.stdout)
        agent.run("--once", expect=0)
        self.assertIn("dormant", e2e.load_state(self.state_dir)["summary"])
        agent.run("--status", expect=0)
        agent.run("--explain", self.feed[0], expect=0)

    def test_a_flushed_large_set_is_critical_without_a_dump(self):
        # 300,000 separate addresses (every other one), above the 250,000 where --status used
        # to stop counting.
        base = int(ipaddress.IPv4Address("11.0.0.0"))
        big = [str(ipaddress.IPv4Address(base + 2 * i)) for i in range(300000)]
        path = e2e.write_list(self.path("big.list"), big)
        agent = self.agent(files=[path], sync={"max_entries": "2000000"})
        agent.run("--once", expect=0, timeout=300)
        p = agent.run("--status", expect=0)
        self.assertIn("verified:", p.stdout)
        self.assertIn("300000 elements committed", p.stdout)
        self.ns.run(["nft", "flush", "set", "inet", "iocwall", "blocklist_v4"])
        p = agent.run("--status", expect=2)
        self.assertTrue(p.stdout.startswith("iocwall CRITICAL"), p.stdout)
        self.assertIn("sampled elements are not in the kernel", p.stdout)
        j = json.loads(agent.run("--status", "--json", expect=2).stdout)
        self.assertFalse(j["kernel"]["verified"])
        self.assertGreater(len(j["kernel"]["verification"]["failures"]), 0)

    def test_a_table_renamed_by_sighup_is_removed_once_the_new_one_enforces(self):
        conf = self.path("iocwall.conf")
        agent = self.agent()
        log = self.path("daemon.log")
        with open(log, "w") as err:
            proc = self.ns.popen([e2e.IOCWALL, "-c", conf], stdout=subprocess.DEVNULL,
                                 stderr=err)
        e2e.wait_for(lambda: "cycle enforced-fresh" in e2e.read_text(log), 30, "first cycle")
        self.assertIn(("inet", "iocwall"), e2e.tables(self.ns))
        agent = self.agent(nftables={"table": "iocwall_new"})
        proc.send_signal(signal.SIGHUP)
        e2e.wait_for(lambda: e2e.read_text(log).count("cycle enforced-fresh") >= 2, 30,
                     "the cycle after the reload")
        self.assertNotIn(("inet", "iocwall"), e2e.tables(self.ns))
        self.assertTrue(blocked_in(self.ns, self.feed[0], table="iocwall_new"))
        self.assertIn("removed table inet iocwall", e2e.read_text(log))
        proc.terminate()
        proc.wait(timeout=20)
        agent.run("--status", expect=0)

    # -- one writer -----------------------------------------------------------------------------

    def test_a_forced_acceptance_is_handed_to_the_daemon_and_kept(self):
        agent = self.agent()
        log = self.path("daemon.log")
        with open(log, "w") as err:
            proc = self.ns.popen([e2e.IOCWALL, "-c", agent.conf], stdout=subprocess.DEVNULL,
                                 stderr=err)
        e2e.wait_for(lambda: "cycle enforced-fresh" in e2e.read_text(log), 30, "first cycle")
        # The list collapses: the daemon's guard refuses it.
        e2e.write_list(self.list_path, self.feed[:20])
        proc.send_signal(signal.SIGUSR1)
        e2e.wait_for(lambda: "cycle guard-refused" in e2e.read_text(log), 30, "the refusal")
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed]))
        # What the man page says to do: --once --force. It is the daemon that runs it.
        p = agent.run("--once", "--force", expect=0)
        self.assertIn("pid %d" % proc.pid, p.stdout)
        self.assertIn("enforced-fresh", p.stdout)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed[:20]]))
        # The daemon's next cycle stands on the accepted list: nothing is undone.
        proc.send_signal(signal.SIGUSR1)
        e2e.wait_for(lambda: e2e.read_text(log).count("cycle enforced-fresh") >= 3, 30,
                     "the next cycle")
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed[:20]]))
        # Modes that would fight the daemon refuse and say what to do.
        for mode in ("--flush", "--restore"):
            p = agent.run(mode, expect=1)
            self.assertIn("pid %d" % proc.pid, p.stderr)
            self.assertIn("systemctl stop iocwall", p.stderr)
        self.assertIn(("inet", "iocwall"), e2e.tables(self.ns))
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)
        # Control: with the daemon gone, --flush works.
        agent.run("--flush", expect=0)
        self.assertNotIn(("inet", "iocwall"), e2e.tables(self.ns))

    # -- guards that cannot be switched off ----------------------------------------------------

    def shrink_refused_without(self, damage):
        big = e2e.random_ipv4(self.rng, 10001)
        e2e.write_list(self.list_path, big)
        agent = self.agent()
        agent.run("--once", expect=0)
        before = e2e.set_elements(self.ns)
        damage(os.path.join(self.state_dir, "state.json"))
        e2e.write_list(self.list_path, big[:100])
        agent.run("--once", expect=1)
        self.assertEqual(e2e.load_state(self.state_dir)["outcome"], "guard-refused")
        self.assertEqual(e2e.set_elements(self.ns), before)
        return agent

    def test_the_shrink_guard_control(self):
        # Control: with the state intact the same shrink is refused, and with the guard's
        # limit at 100% it is enforced (so the cases above test the baseline, not the list).
        self.shrink_refused_without(lambda p: None)
        big = e2e.random_ipv4(self.rng, 10001)
        e2e.write_list(self.list_path, big)
        agent = self.agent(sync={"max_shrink_percent": "100"})
        agent.run("--once", expect=0)
        e2e.write_list(self.list_path, big[:100])
        agent.run("--once", expect=0)
        self.assertEqual(len(e2e.set_elements(self.ns)[4]), 100)

    def test_the_shrink_guard_survives_a_lost_state_json(self):
        self.shrink_refused_without(os.unlink)

    def test_the_shrink_guard_survives_a_corrupt_state_json(self):
        self.shrink_refused_without(lambda p: e2e.write_file(p, "{garbage", 0o600))

    def test_the_shrink_guard_survives_losing_every_state_file(self):
        import shutil
        self.shrink_refused_without(lambda p: shutil.rmtree(os.path.dirname(p)))

    def test_a_collapsing_source_is_refused_even_when_another_dominates(self):
        big = e2e.random_ipv4(self.rng, 5000)
        small = e2e.random_ipv4(self.rng, 1000, exclude=big)
        big_path = e2e.write_list(self.path("big.list"), big)
        small_path = e2e.write_list(self.path("small.list"), small)
        agent = self.agent(files=[big_path, small_path])
        agent.run("--once", expect=0)
        e2e.write_list(small_path, small[:1])  # -999 of 6000 in total: 17%, under 50%
        agent.run("--once", expect=1)
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["outcome"], "guard-refused")
        self.assertIn("small.list", state["guard_reasons"][0])
        # Control: the same loss spread within the limit passes.
        e2e.write_list(small_path, small[:600])
        agent.run("--once", expect=0)

    # -- restore and dry run --------------------------------------------------------------------

    def test_restore_leaves_out_the_hosts_addresses_of_the_last_good_cycle(self):
        self.ns.run(["ip", "link", "add", "gw0", "type", "veth", "peer", "name", "gw1"])
        self.ns.run(["ip", "addr", "add", "100.64.9.1/32", "dev", "gw0"])
        self.ns.run(["ip", "link", "set", "gw0", "up"])
        e2e.write_list(self.list_path, self.feed + ["100.64.9.1"])
        agent = self.agent()
        agent.run("--once", expect=0)
        self.assertFalse(blocked_in(self.ns, "100.64.9.1"))
        # A reboot: the kernel is empty and the interface is not configured yet.
        agent.run("--flush", expect=0)
        self.ns.run(["ip", "link", "del", "gw0"])
        p = agent.run("--restore", expect=0)
        self.assertIn("100.64.9.1", p.stderr)
        self.assertFalse(blocked_in(self.ns, "100.64.9.1"))
        self.assertTrue(blocked_in(self.ns, self.feed[0]))
        # Control: without the remembered addresses, the restore would block it.
        state_path = os.path.join(self.state_dir, "state.json")
        state = e2e.load_state(self.state_dir)
        state["host_protected"] = []
        e2e.write_file(state_path, json.dumps(state), 0o600)
        agent.run("--flush", expect=0)
        agent.run("--restore", expect=0)
        self.assertTrue(blocked_in(self.ns, "100.64.9.1"))

    def test_dry_run_reports_the_refusal_the_cycle_would_make(self):
        agent = self.agent()
        agent.run("--once", expect=0)
        e2e.write_list(self.list_path, ["# emptied by mistake"])
        before = self.ns.ruleset()
        p = agent.run("--dry-run", expect=1)
        self.assertIn("guard refuses", p.stdout)
        self.assertIn("returned no entries", p.stdout)
        self.assertIn("guard-refused", p.stdout)
        self.assertEqual(self.ns.ruleset(), before)
        self.assertEqual(e2e.load_state(self.state_dir)["outcome"], "enforced-fresh",
                         "a dry run writes no state")
        agent.run("--once", expect=1)
        self.assertEqual(e2e.load_state(self.state_dir)["outcome"], "guard-refused")
        # Control: a list the cycle would accept is a plan with exit 0.
        e2e.write_list(self.list_path, self.feed + ["198.18.0.9"])
        p = agent.run("--dry-run", expect=0)
        self.assertIn("+1 -0", p.stdout)


    # -- what is enforced, listed --------------------------------------------------------------

    def test_list_shows_what_is_enforced_and_agrees_with_the_kernel(self):
        allowed = self.feed[0]
        other = e2e.write_list(self.path("other.list"), ["198.18.4.0/24", "16.0.0.0/4"])
        agent = self.agent(files=[self.list_path, other], allowlist={"prefix": allowed})
        agent.run("--once", expect=0)
        doc = json.loads(agent.run("--list", "--json", expect=0).stdout)
        self.assertEqual(doc["schema_version"], 1)
        mine = [e for e in doc["entries"] if e["entry"].split("/")[0] == allowed]
        self.assertEqual(len(mine), 1, mine)
        self.assertTrue(mine[0]["state"].startswith("not in force"), mine[0])
        self.assertEqual(mine[0]["source"], "file " + self.list_path)
        refused = [e for e in doc["entries"] if e["entry"] == "16.0.0.0/4"]
        self.assertEqual(len(refused), 1)
        self.assertIn("min_prefix_v4", refused[0]["state"])
        # The entries in force, merged, are exactly what the kernel holds.
        blocked = []
        for e in doc["entries"]:
            if e["state"] == "in force":
                net = ipaddress.ip_network(e["entry"])
                blocked.append((int(net.network_address), int(net.broadcast_address)))
        self.assertEqual(e2e.merge(blocked), e2e.set_elements(self.ns)[4])
        # --source narrows it; the text form says how many.
        doc = json.loads(agent.run("--list", "--json", "--source", "other.list", expect=0).stdout)
        self.assertEqual(sorted(e["entry"] for e in doc["entries"]),
                         ["16.0.0.0/4", "198.18.4.0/24"])
        text = agent.run("--list", expect=0).stdout
        self.assertIn("in force in whole or in part", text)
        agent.run("--list", "--top", "3", expect=2)

if __name__ == "__main__":
    e2e.main()
