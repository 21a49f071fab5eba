#!/usr/bin/env python3
"""End to end: the agent's other modes. `--status` (text and JSON, each health level and its
exit code), `--explain`, `--dry-run` (changes nothing, kernel or state), `--flush` (iocwall's
table and nothing else), `--check-config` (file:line:key in its messages, every path problem,
exit 78), and an API key file that others can read (refused before anything is sent)."""

import hashlib
import json
import os
import re

import iocwall_e2e as e2e


class ModesTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.ns = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 800) + ["198.51.100.0/24", "2a0b:5::/48"]
        self.allow = ["198.51.100.77"]
        self.sim = e2e.Sim(self.ns, self.work, self.key,
                           {"feed": e2e.write_list(self.path("feed.txt"), self.feed)})
        self.conf = e2e.write_config(self.path("iocwall.conf"), url=self.sim.url, key=self.key,
                                     ca=self.sim.ca, collections=["feed"], allow=self.allow,
                                     state_dir=self.state_dir)
        self.agent = e2e.Agent(self.ns, self.conf)

    def status_json(self, expect):
        p = self.agent.run("--status", "--json", expect=expect)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["exit_code"], expect)
        return doc

    def test_status_levels_and_json(self):
        # Before anything: no table is CRITICAL (2).
        doc = self.status_json(2)
        self.assertEqual(doc["health"], "CRITICAL")
        self.assertFalse(doc["kernel"]["table_present"])
        self.assertNotIn("last_cycle", doc)

        self.agent.run("--once", expect=0)
        doc = self.status_json(0)
        got = e2e.set_elements(self.ns)
        self.assertEqual(doc["health"], "OK")
        self.assertEqual(doc["reasons"], [])
        self.assertEqual(doc["table"], "iocwall")
        k = doc["kernel"]
        self.assertTrue(k["readable"] and k["table_present"] and k["sets_present"]
                        and k["chains_present"])
        self.assertEqual(doc["schema_version"], 2)
        # Not counted (a dump is quadratic in the kernel): verified against the commit.
        self.assertTrue(k["verified"], k)
        self.assertEqual(k["elements"], [])
        self.assertEqual(k["elements_committed"], [
            {"set": "blocklist_v4", "family": "ipv4", "elements": len(got[4])},
            {"set": "blocklist_v6", "family": "ipv6", "elements": len(got[6])}])
        self.assertGreater(k["generation"], 0)
        self.assertIn({"name": "input_v4_saddr", "hook": "input", "family": "ipv4",
                       "direction": "saddr", "packets": 0, "bytes": 0}, k["counters"])
        cycle = doc["last_cycle"]
        self.assertEqual(cycle["outcome"], "enforced-fresh")
        self.assertEqual(cycle["enforced_elements"], len(got[4]) + len(got[6]))
        self.assertEqual([s["name"] for s in cycle["sources"]], ["collection feed"])
        self.assertEqual(cycle["sources"][0]["entries"], len(self.feed))
        self.assertTrue(0 <= doc["enforced_age_seconds"] < 120)
        self.assertEqual(doc["top"], [])
        text = self.agent.run("--status", expect=0).stdout
        self.assertTrue(text.startswith("iocwall OK - "), text)
        # Line 1 is a monitoring plugin's output: state, reason, performance data.
        self.assertRegex(text.splitlines()[0],
                         r"^iocwall OK - \d+ elements enforced from 1 source, list fetched "
                         r"\d+s ago \| elements=%d;;;0 age=\d+s;;86400;0 sources_failed=0;;;0;1 "
                         r"dropped=\d+c$" % (len(got[4]) + len(got[6])))
        # The two runs are apart in time: the list's age may have ticked between them.
        ticked = lambda line: re.sub(r"fetched \d+s ago", "fetched Ns ago", line.split(" | ")[0])
        self.assertEqual(ticked(doc["plugin_output"]), ticked(text.splitlines()[0]))
        self.assertIn("blocklist_v4  %d elements" % len(got[4]), text)
        # --top without per-element counters: the same output and exit code, and on stderr
        # the key that turns them on.
        p = self.agent.run("--status", "--top", "3", expect=0)
        self.assertTrue(p.stdout.startswith("iocwall OK - "), p.stdout)
        self.assertNotIn("most hit entries", p.stdout)
        self.assertIn("set element_counters = true in the [nftables] section of %s" % self.conf,
                      p.stderr)

        # A failed fetch: WARNING (1).
        self.sim.fault(status=401, times=1)
        self.agent.run("--once", expect=1)
        doc = self.status_json(1)
        self.assertEqual(doc["health"], "WARNING")
        self.assertTrue(any("HTTP 401" in r for r in doc["reasons"]), doc["reasons"])

        # Someone deleted the table: CRITICAL (2) until the next cycle repairs it.
        self.ns.run(["nft", "delete", "table", "inet", "iocwall"])
        doc = self.status_json(2)
        self.assertTrue(any("absent" in r for r in doc["reasons"]), doc["reasons"])
        self.agent.run("--once", expect=0)
        self.status_json(0)

        # The kernel cannot be read (no CAP_NET_ADMIN): UNKNOWN (3).
        p = self.ns.run(["setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin",
                         e2e.IOCWALL, "-c", self.conf, "--status", "--json"], check=False)
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["health"], "UNKNOWN")
        self.assertFalse(doc["kernel"]["readable"])

    def test_explain(self):
        self.agent.run("--once", expect=0)
        listed = self.feed[5]
        p = self.agent.run("--explain", listed, expect=0)
        self.assertIn("kernel: BLOCKED by element %s of set blocklist_v4" % listed, p.stdout)
        self.assertIn("listed by collection feed as %s, since " % listed, p.stdout)

        p = self.agent.run("--explain", "198.51.100.5", expect=0)
        self.assertIn("BLOCKED by element 198.51.100.0-198.51.100.76", p.stdout)
        self.assertIn("listed by collection feed as 198.51.100.0/24", p.stdout)

        p = self.agent.run("--explain", "198.51.100.77", expect=1)
        self.assertIn("allowlisted by [allowlist] prefix 198.51.100.77", p.stdout)
        self.assertIn("kernel: not blocked", p.stdout)

        p = self.agent.run("--explain", "127.0.0.1", expect=1)
        self.assertIn("always-protected range 127.0.0.0/8", p.stdout)

        p = self.agent.run("--explain", "2a0b:5::1234", expect=0)
        self.assertIn("2a0b:5::/48", p.stdout)

        p = self.agent.run("--explain", "192.0.2.200", expect=1)
        self.assertIn("not listed by any source's last good list", p.stdout)
        self.assertIn("kernel: not blocked", p.stdout)

        self.agent.run("--explain", "198.51.100.0/24", expect=2)

    def test_explain_names_a_refused_feed_line(self):
        # The analyst wrote 10.0.0.0/4: taken as 0.0.0.0/4 (host bits set), refused whole as
        # shorter than min_prefix_v4. --explain quotes the feed and names the minimum.
        self.sim.add("feed", ["10.0.0.0/4"])
        self.agent.run("--once", expect=0)
        p = self.agent.run("--explain", "10.1.2.3", expect=1)
        self.assertIn("listed by collection feed as 0.0.0.0/4", p.stdout)
        self.assertIn('the feed wrote "10.0.0.0/4"', p.stdout)
        self.assertIn("refused: /4 is shorter than [sync] min_prefix_v4 = 8", p.stdout)
        self.assertIn("kernel: not blocked", p.stdout)
        # An allowlisted address under a listed prefix: the listing says why, too.
        p = self.agent.run("--explain", "198.51.100.77", expect=1)
        self.assertIn("not blocked here: allowlisted by [allowlist] prefix 198.51.100.77",
                      p.stdout)

    def state_digest(self):
        h = hashlib.sha256()
        for root, _dirs, files in sorted(os.walk(self.state_dir)):
            for name in sorted(files):
                path = os.path.join(root, name)
                h.update(path.encode())
                with open(path, "rb") as f:
                    h.update(f.read())
        return h.hexdigest()

    def test_dry_run_changes_nothing(self):
        # Before any cycle: says the table would be created, creates nothing.
        p = self.agent.run("--dry-run", expect=0)
        self.assertIn("table inet iocwall is absent: it would be created", p.stdout)
        self.assertIn("dry run: nothing was changed", p.stdout)
        self.assertEqual(e2e.tables(self.ns), [])
        self.assertFalse(os.path.exists(os.path.join(self.state_dir, "state.json")))

        self.agent.run("--once", expect=0)
        new = e2e.random_ipv4(self.rng, 7, exclude=self.feed)
        self.sim.add("feed", new)
        self.sim.revoke("feed", self.feed[:3])
        before, digest = self.ns.ruleset(), self.state_digest()
        p = self.agent.run("--dry-run", expect=0)
        self.assertIn("set blocklist_v4: %d elements wanted, +7 -3" %
                      len(e2e.expected_sets([self.feed[3:] + new], allow=self.allow)[4]),
                      p.stdout)
        for a in new:
            self.assertIn("  + %s\n" % a, p.stdout)
        self.assertIn("dry run: nothing was changed", p.stdout)
        self.assertEqual(self.ns.ruleset(), before)
        self.assertEqual(self.state_digest(), digest)

    def test_flush_removes_only_iocwall_table(self):
        self.agent.run("--once", expect=0)
        # Someone else's tables, one of them also called iocwall but in another family.
        self.ns.nft("""
table inet other {
  set keep { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }
  chain c { type filter hook input priority 0; policy accept; ip saddr @keep counter; }
}
table ip iocwall {
  chain mine { type filter hook output priority 10; policy accept; }
}
table inet iocwall2 {
}
""")
        others = [i for i in self.ns.ruleset() if not e2e.belongs(i, "inet", "iocwall")]
        p = self.agent.run("--flush", expect=0)
        self.assertIn("removed", p.stdout)
        self.assertEqual(e2e.tables(self.ns),
                         [("inet", "iocwall2"), ("inet", "other"), ("ip", "iocwall")])
        self.assertEqual(self.ns.ruleset(), others)
        # Flushing again is harmless.
        self.agent.run("--flush", expect=0)
        self.assertEqual(self.ns.ruleset(), others)

    def test_check_config(self):
        p = self.agent.run("--check-config", expect=0)
        self.assertIn("is valid", p.stdout)
        text = e2e.read_text(self.conf)
        line_of = {l.split("=")[0].strip(): n + 1 for n, l in enumerate(text.splitlines())}

        bad = e2e.write_file(self.path("unknown-key.conf"), text + "[sync]\nintervall = 5m\n")
        p = e2e.Agent(self.ns, bad).run("--check-config", expect=78)
        self.assertIn("%s:%d:" % (bad, text.count("\n") + 2), p.stderr)
        self.assertIn("intervall", p.stderr)
        # As a monitoring plugin, the same file is UNKNOWN, said on the plugin's line.
        p = e2e.Agent(self.ns, bad).run("--status", expect=3)
        self.assertTrue(p.stdout.startswith("iocwall UNKNOWN - %s:" % bad), p.stdout)

        bad = e2e.write_file(self.path("bad-value.conf"),
                             text.replace("interval = 10s", "interval = 5s"))
        p = e2e.Agent(self.ns, bad).run("--check-config", expect=78)
        self.assertIn("%s:%d: [sync] interval" % (bad, line_of["interval"]), p.stderr)

        bad = e2e.write_file(self.path("bad-allow.conf"),
                             text.replace("prefix = 198.51.100.77", "prefix = 198.51.100.777"))
        p = e2e.Agent(self.ns, bad).run("--check-config", expect=78)
        self.assertIn("%s:%d: [allowlist] prefix" % (bad, line_of["prefix"]), p.stderr)

        bad = e2e.write_file(self.path("http.conf"),
                             text.replace("url = https://", "url = http://"))
        p = e2e.Agent(self.ns, bad).run("--check-config", expect=78)
        self.assertIn("plain http", p.stderr)
        self.assertEqual(e2e.tables(self.ns), [])  # none of this touched the kernel

    def test_check_config_reports_every_path_problem(self):
        missing, ca = self.path("missing.txt"), self.path("no-ca.pem")
        metrics_dir = self.path("absent")
        conf = e2e.write_config(self.path("paths.conf"), url=self.sim.url, key=self.key, ca=ca,
                                collections=["feed"], files=[missing, self.work],
                                state_dir=self.state_dir,
                                extra={"metrics": {"textfile": metrics_dir + "/iocwall.prom"}})
        p = e2e.Agent(self.ns, conf).run("--check-config", expect=78)
        lines = p.stderr.splitlines()
        for want in ("[files] path %s does not exist" % missing,
                     "[files] path %s is a directory, not a file" % self.work,
                     "[api] ca_file %s does not exist" % ca,
                     "[metrics] textfile: metrics directory %s does not exist" % metrics_dir):
            self.assertEqual(len([l for l in lines if want in l]), 1, p.stderr)
        self.assertNotIn("is valid", p.stdout)
        # The same file, written for another host: its paths left out, it is valid.
        p = e2e.Agent(self.ns, conf).run("--check-config", "--no-path-check", expect=0)
        self.assertIn("is valid", p.stdout)
        self.assertEqual(e2e.tables(self.ns), [])

    def test_world_readable_key_is_refused(self):
        os.chmod(self.key, 0o644)
        p = self.agent.run("--check-config", expect=78)
        self.assertIn(self.key, p.stderr)
        self.assertIn("accessible by group or others (mode 0644)", p.stderr)
        p = self.agent.run("--once", expect=1)
        self.assertEqual(self.sim.requests(), [])  # the key was never sent anywhere
        self.assertEqual(e2e.tables(self.ns), [])
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["sources"][0]["error_class"], "secret", state["sources"][0])
        secret = e2e.read_text(self.key).strip()
        self.assertNotIn(secret, p.stdout + p.stderr)
        os.chmod(self.key, 0o600)
        self.agent.run("--once", expect=0)


if __name__ == "__main__":
    e2e.main()
