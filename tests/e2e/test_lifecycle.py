#!/usr/bin/env python3
"""End to end: the seed's loop with `[api] format = json`. An analyst's add becomes a block
within one cycle, a revocation lifts it within one cycle, a renewed validity is refreshed in the
kernel element's timeout, and cycles after the first fetch changes only (modified_after), with
their pages and bytes in --status; --explain names the indicator."""

import datetime

import iocwall_e2e as e2e


def rfc3339(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class LifecycleTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.ns = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 3000)
        # The collection was filled 20 minutes ago (the simulator's clock runs behind until the
        # test moves it to now), so that a changes fetch, which overlaps by 5 minutes to allow
        # for clock skew, sees only what the test changes.
        self.sim = e2e.Sim(self.ns, self.work, self.key,
                           {"ioc": e2e.write_list(self.path("feed.txt"), self.feed)},
                           extra_args=["--clock-offset", "-1200"])
        self.conf = e2e.write_config(
            self.path("iocwall.conf"), url=self.sim.url, key=self.key, ca=self.sim.ca,
            collections=["ioc"], state_dir=self.state_dir,
            extra={"api": {"format": "json", "rate_limit": "0"}})
        self.agent = e2e.Agent(self.ns, self.conf)

    def elements(self):
        return e2e.set_elements(self.ns)[4]

    def test_add_revoke_renew_with_changes_only(self):
        self.agent.run("--once", expect=0)
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["sources"][0]["mode"], "full")
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed]))
        full_requests = len(self.sim.requests())
        self.sim.control("POST", "/_sim/clock", {"offset_seconds": 0})

        # An analyst's playbook adds an IP: blocked after one cycle, fetched as a change.
        self.sim.add("ioc", ["198.51.100.200"], valid_until=rfc3339(3600))
        self.agent.run("--once", expect=0)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed + ["198.51.100.200"]]))
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["sources"][0]["mode"], "changes")
        self.assertEqual(state["sources"][0]["changes"], 1)
        self.assertEqual(state["apply"]["added"], 1)
        self.assertEqual(state["apply"]["removed"], 0)
        changes = [r for r in self.sim.requests()[full_requests:] if r["method"] == "GET"]
        self.assertTrue(changes, "a changes fetch was made")
        self.assertTrue(all("modified_after" in r["params"] or r["params"].get("cursor")
                            for r in changes), changes)
        self.assertEqual(changes[0]["params"].get("include_revoked"), "true")

        # --status shows the mode, the pages and the bytes of the changes fetch.
        status = self.agent.run("--status", expect=0).stdout
        self.assertIn("changes only (1 changed)", status)
        self.assertRegex(status, r"ioc: ok, 3001 entries, .*1 page, \d+ bytes")

        # --explain names the indicator, its validity and its collection.
        explain = self.agent.run("--explain", "198.51.100.200", expect=0).stdout
        self.assertIn("listed by collection ioc", explain)
        self.assertIn("(indicator indicator--", explain)
        self.assertIn("valid until", explain)
        self.assertIn("BLOCKED", explain)

        # Renewal: the validity is extended; the kernel element's timeout follows, in place.
        def timeout_of(ip):
            for obj in self.ns.nft_json("set", "inet", "iocwall", "blocklist_v4"):
                for e in obj.get("set", {}).get("elem", []):
                    if isinstance(e, dict) and e.get("elem", {}).get("val") == ip:
                        return e["elem"].get("timeout", 0)
            return None
        before = timeout_of("198.51.100.200")
        self.assertIsNotNone(before)
        self.assertLessEqual(before, 3600)
        self.sim.add("ioc", ["198.51.100.200"], valid_until=rfc3339(7 * 86400))
        self.agent.run("--once", expect=0)
        after = timeout_of("198.51.100.200")
        self.assertGreater(after, 6 * 86400, "the renewed validity reached the kernel")
        self.assertEqual(e2e.load_state(self.state_dir)["apply"]["refreshed"], 1)

        # Revocation: gone within one cycle, nothing else touched.
        self.sim.revoke("ioc", ["198.51.100.200", self.feed[0]])
        self.agent.run("--once", expect=0)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed[1:]]))
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["apply"]["removed"], 2)
        self.assertEqual(state["apply"]["added"], 0)

    def test_full_resync_after_full_resync_interval(self):
        conf = e2e.write_config(
            self.path("resync.conf"), url=self.sim.url, key=self.key, ca=self.sim.ca,
            collections=["ioc"], state_dir=self.state_dir,
            extra={"api": {"format": "json", "rate_limit": "0"}, "sync": {"full_resync": "0"}})
        agent = e2e.Agent(self.ns, conf)
        agent.run("--once", expect=0)
        agent.run("--once", expect=0)
        self.assertEqual(e2e.load_state(self.state_dir)["sources"][0]["mode"], "full")
        self.assertFalse(any("modified_after" in r["params"] for r in self.sim.requests()))


if __name__ == "__main__":
    e2e.main()
