#!/usr/bin/env python3
"""End to end: the guards (suspicious shrink, a source that comes back empty, max_entries)
refuse a fresh result and keep the kernel exactly as it was; `--force` accepts it once."""

import iocwall_e2e as e2e


class GuardTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.ns = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 1000)
        self.local = e2e.random_ipv4(self.rng, 200, exclude=self.feed)
        self.local_path = e2e.write_list(self.path("local.list"), self.local)
        self.sim = e2e.Sim(self.ns, self.work, self.key,
                           {"feed": e2e.write_list(self.path("feed.txt"), self.feed)})
        conf = e2e.write_config(self.path("iocwall.conf"), url=self.sim.url, key=self.key,
                                ca=self.sim.ca, collections=["feed"], files=[self.local_path],
                                state_dir=self.state_dir)
        self.agent = e2e.Agent(self.ns, conf)

    def refused(self, reason, *args):
        """One cycle that a guard must refuse, leaving the kernel as it was."""
        before = self.ns.ruleset()
        self.agent.run("--once", *args, expect=1)
        self.assertEqual(self.ns.ruleset(), before)
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["outcome"], "guard-refused", state["summary"])
        self.assertTrue(any(reason in g for g in state["guard_reasons"]), state["guard_reasons"])
        status = self.agent.run("--status", *args, expect=1)
        self.assertTrue(status.stdout.startswith("iocwall WARNING"), status.stdout)
        self.assertIn(reason, status.stdout)

    def forced(self, expected, *args, then_plain=True):
        self.agent.run("--once", "--force", *args, expect=0)
        self.assertSetsEqual(self.ns, expected, "after --force:")
        self.assertEqual(e2e.load_state(self.state_dir)["outcome"], "enforced-fresh")
        if not then_plain:
            return
        # Once: the next plain cycle stands on the forced list and is healthy.
        self.agent.run("--once", *args, expect=0)
        self.agent.run("--status", *args, expect=0)

    def test_shrink(self):
        self.agent.run("--once", expect=0)
        # 30% of the collection gone: within max_shrink_percent = 50, accepted.
        gone = self.feed[:360]
        self.sim.revoke("feed", gone)
        self.agent.run("--once", expect=0)
        kept = self.feed[360:]
        self.assertSetsEqual(self.ns, e2e.expected_sets([kept, self.local]))
        # Then 600 of the remaining 840 elements' sources (over 50% of the set): refused.
        self.sim.revoke("feed", kept[:600])
        self.refused("would shrink")
        self.forced(e2e.expected_sets([kept[600:], self.local]))

    def test_empty_source(self):
        self.agent.run("--once", expect=0)
        e2e.write_list(self.local_path, ["# emptied by mistake"])
        self.refused("returned no entries")
        self.forced(e2e.expected_sets([self.feed]))

    def test_max_entries_first_cycle_and_steady_state(self):
        limit = ["--sync.max_entries", "1100"]
        # First cycle, nothing to stand on: the kernel is left alone (no table at all).
        self.agent.run("--once", *limit, expect=1)
        self.assertEqual(e2e.tables(self.ns), [])
        state = e2e.load_state(self.state_dir)
        self.assertTrue(any("max_entries" in g for g in state["guard_reasons"]))
        self.forced(e2e.expected_sets([self.feed, self.local]), *limit, then_plain=False)
        self.agent.run("--once", expect=0)
        # Steady state: growing past the limit is refused, the kernel keeps the last good list.
        self.sim.add("feed", e2e.random_ipv4(self.rng, 50, exclude=self.feed + self.local))
        self.refused("max_entries", *limit)


if __name__ == "__main__":
    e2e.main()
