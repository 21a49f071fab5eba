#!/usr/bin/env python3
"""End to end (issue 11, item 1): a collection is enforced whole or not at all. The simulator
serves a 25,000-entry collection (three text pages of 10,000) with the paging faults of real
servers: blank lines inside a page, a silently capped `limit`, a cursor looping back, the last
page with or without a cursor. `iocwall --once` must enforce the whole collection, judged by
`nft -j` against an oracle computed here, or fail (exit 1), keep the kernel exactly as it was and
say why in state.json and `--status`.

Negative controls: each case replays the pager iocwall had before (stop at the first page shorter
than `limit`, stop silently at a cursor seen before, fail on a full page without a cursor) over
the simulator's request log, and shows that it would have enforced a truncated list as fresh,
or failed every cycle."""

import ipaddress

import iocwall_e2e as e2e

LIMIT = 10000


def generated(n, start=0):
    """What iocwall-feedsim's gen:N collection holds: 11.0.0.0 + i."""
    base = int(ipaddress.IPv4Address("11.0.0.0"))
    return [str(ipaddress.IPv4Address(base + i)) for i in range(start, n)]


def old_counting_rule(pages, limit=LIMIT):
    """Entries the old pager would have enforced as the whole collection, or None (failure)."""
    seen = []
    taken = 0
    for p in pages:
        taken += p["entries"]
        nxt = p.get("cursor_out", "")
        if p["entries"] < limit:
            return taken
        if not nxt:
            return None
        if nxt in seen:
            return taken
        seen.append(nxt)
    return taken


class PagingTest(e2e.E2ETest):

    def start(self, size=25000):
        self.ns = self.netns()
        self.entries = generated(size)
        self.sim = e2e.Sim(self.ns, self.work, self.key, {"big": "gen:%d" % size})
        conf = e2e.write_config(self.path("iocwall.conf"), url=self.sim.url, key=self.key,
                                ca=self.sim.ca, collections=["big"], state_dir=self.state_dir)
        self.agent = e2e.Agent(self.ns, conf)

    def whole(self, fault, pages, old_result, cycles=1):
        """A fresh agent (no last good list for a guard to compare with: the worst case) under
        `fault` enforces the whole collection, `cycles` times in a row."""
        self.start()
        self.sim.fault(**fault)
        for cycle in range(cycles):
            seen = len(self.sim.requests())
            self.agent.run("--once", expect=0)
            self.assertSetsEqual(self.ns, e2e.expected_sets([self.entries]),
                                 "cycle %d under %r:" % (cycle + 1, fault))
            state = e2e.load_state(self.state_dir)
            self.assertEqual(state["outcome"], "enforced-fresh", state["summary"])
            reqs = self.sim.requests()[seen:]
            self.assertEqual(len(reqs), pages, [(r["entries"], r["cursor_out"]) for r in reqs])
            # Negative control: what the old pager would have done with the same answers.
            self.assertEqual(old_counting_rule(reqs), old_result)
        self.agent.run("--status", expect=0)
        return reqs

    def test_blank_lines_inside_pages(self):
        reqs = self.whole({"blank_lines": True, "times": -1}, pages=4, old_result=9998)
        self.assertEqual([r["entries"] for r in reqs], [9998, 9998, 5004, 0])

    def test_silently_capped_limit(self):
        reqs = self.whole({"cap_limit": 3000, "times": -1}, pages=10, old_result=3000)
        self.assertTrue(all(r["params"]["limit"] == str(LIMIT) for r in reqs))

    def test_cursor_on_the_last_page(self):
        # A control both pagers get right: a cursor on the last page, then an empty page.
        self.whole({"last_page_cursor": True, "times": -1}, pages=4, old_result=25000)

    def test_exact_multiple_without_a_cursor_on_the_last_page(self):
        self.start(size=20000)
        self.sim.fault(last_page_cursor=False, times=-1)
        for cycle in range(2):  # the old pager failed this one on every cycle
            seen = len(self.sim.requests())
            self.agent.run("--once", expect=0)
            self.assertSetsEqual(self.ns, e2e.expected_sets([self.entries]),
                                 "cycle %d:" % (cycle + 1))
            reqs = self.sim.requests()[seen:]
            self.assertEqual([(r["entries"], r["cursor_out"] == "") for r in reqs],
                             [(10000, False), (10000, True)])
            self.assertIsNone(old_counting_rule(reqs))
        self.agent.run("--status", expect=0)

    def failed_cycle(self, fault, message):
        """After a good cycle, the collection grows; a cycle under `fault` fails, keeps the
        kernel exactly as it was (the last good list) and says why."""
        self.start()
        self.agent.run("--once", expect=0)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.entries]), "first cycle:")
        added = e2e.random_ipv4(self.rng, 50)
        self.sim.add("big", added)
        before = self.ns.ruleset()
        seen = len(self.sim.requests())
        self.sim.fault(**fault)
        p = self.agent.run("--once", expect=1)
        self.assertEqual(self.ns.ruleset(), before, "the kernel changed on a failed cycle")
        state = e2e.load_state(self.state_dir)
        self.assertEqual(state["outcome"], "kept-last-good", state["summary"])
        source = state["sources"][0]
        self.assertFalse(source["ok"])
        self.assertEqual(source["error_class"], "bad-body", source["error"])
        self.assertIn(message, source["error"])
        self.assertIn("paging loops", p.stdout + p.stderr)
        status = self.agent.run("--status", expect=1)
        self.assertTrue(status.stdout.startswith("iocwall WARNING"), status.stdout)
        self.assertIn("paging loops", status.stdout)
        reqs = self.sim.requests()[seen:]
        # The feed is sane again: the next cycle enforces the grown collection whole.
        self.sim.clear_faults()
        self.agent.run("--once", expect=0)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.entries, added]), "recovered:")
        self.agent.run("--status", expect=0)
        return reqs

    def test_cursor_looping_back(self):
        reqs = self.failed_cycle({"loop_cursor": True, "skip": 1, "times": 1},
                                 "page 3 (10000 entries) points back to the cursor of page 2")
        self.assertEqual(len(reqs), 3)
        # Negative control: the old pager stopped at the loop and enforced 30,000 "entries"
        # (page 1 twice), none of the collection's last 5,050 among them.
        self.assertEqual(old_counting_rule(reqs), 30000)

    def test_page_repeating_its_own_cursor(self):
        reqs = self.failed_cycle({"repeat_cursor": True, "skip": 1, "times": -1},
                                 "page 2 (10000 entries) points back to the cursor of page 2")
        self.assertEqual(len(reqs), 2)
        self.assertEqual(old_counting_rule(reqs), 20000)


if __name__ == "__main__":
    e2e.main()
