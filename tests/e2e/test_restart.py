#!/usr/bin/env python3
"""End to end: a machine restarts (an empty namespace: no tables) while the feed is down. The
last good list from the state directory is enforced again, by `--restore` (early boot, no
network) and by a plain `--once` cycle whose fetch fails; the table is the one the first
namespace had, element for element and rule for rule."""

import iocwall_e2e as e2e


class RestartTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.first = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 2000) + e2e.random_ipv6(self.rng, 200)
        self.local = ["203.0.113.0/24", "2a0a:1::/48"]
        self.sim = e2e.Sim(self.first, self.work, self.key,
                           {"feed": e2e.write_list(self.path("feed.txt"), self.feed)})
        self.conf = e2e.write_config(
            self.path("iocwall.conf"), url=self.sim.url, key=self.key, ca=self.sim.ca,
            collections=["feed"], files=[e2e.write_list(self.path("local.list"), self.local)],
            allow=["203.0.113.9"], state_dir=self.state_dir)
        e2e.Agent(self.first, self.conf).run("--once", expect=0)
        self.expected = e2e.expected_sets([self.feed, self.local], allow=["203.0.113.9"])
        self.assertSetsEqual(self.first, self.expected)
        self.reference = e2e.without_handles(self.first.ruleset())
        self.sim.stop()  # the feed is down from here on
        self.requests = len(self.sim.requests())

    def test_restore_in_empty_namespace(self):
        ns = self.netns()
        self.assertEqual(e2e.tables(ns), [])
        p = e2e.Agent(ns, self.conf).run("--restore", expect=0)
        self.assertEqual(e2e.without_handles(ns.ruleset()), self.reference, p.stderr)
        self.assertSetsEqual(ns, self.expected)
        # Restoring twice changes nothing.
        before = ns.ruleset()
        e2e.Agent(ns, self.conf).run("--restore", expect=0)
        self.assertEqual(ns.ruleset(), before)

    def test_once_with_feed_down_in_empty_namespace(self):
        ns = self.netns()
        agent = e2e.Agent(ns, self.conf)
        p = agent.run("--once", expect=1)
        self.assertEqual(e2e.without_handles(ns.ruleset()), self.reference, p.stderr)
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["outcome"], "kept-last-good", state["summary"])
        self.assertTrue(state["apply"]["bootstrapped"], state["apply"])  # table re-created
        self.assertEqual(state["sources"][0]["error_class"], "network")
        status = agent.run("--status", expect=1)
        self.assertTrue(status.stdout.startswith("iocwall WARNING"), status.stdout)

    def test_never_fetched_and_feed_down_leaves_kernel_alone(self):
        ns = self.netns()
        ns.nft("table inet keep {\n set s {\n type ipv4_addr\n elements = { 192.0.2.1 }\n }\n}\n")
        before = ns.ruleset()
        conf = e2e.write_config(self.path("fresh.conf"), url=self.sim.url, key=self.key,
                                ca=self.sim.ca, collections=["feed"],
                                state_dir=self.path("fresh-state"))
        agent = e2e.Agent(ns, conf)
        agent.run("--once", expect=1)
        self.assertEqual(ns.ruleset(), before)
        self.assertEqual(agent.run("--restore", expect=1).returncode, 1)
        self.assertEqual(ns.ruleset(), before)
        status = agent.run("--status", expect=2)  # nothing enforced at all: CRITICAL
        self.assertTrue(status.stdout.startswith("iocwall CRITICAL"), status.stdout)


if __name__ == "__main__":
    e2e.main()
