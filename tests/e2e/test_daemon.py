#!/usr/bin/env python3
"""End to end: the daemon and its signals. SIGUSR1 syncs now; SIGHUP with a broken
configuration file keeps the running one (the daemon lives on and logs the refusal), SIGHUP
with a good new one applies it at once; SIGTERM exits 0 and leaves the table enforcing.
The interval is an hour, so every cycle after the first one is the signal's doing."""

import ipaddress
import os
import signal
import subprocess

import iocwall_e2e as e2e


class DaemonTest(e2e.E2ETest):

    def setUp(self):
        super().setUp()
        self.ns = self.netns()
        self.feed = e2e.random_ipv4(self.rng, 500)
        self.sim = e2e.Sim(self.ns, self.work, self.key,
                           {"feed": e2e.write_list(self.path("feed.txt"), self.feed)})
        self.conf_args = dict(url=self.sim.url, key=self.key, ca=self.sim.ca,
                              collections=["feed"], state_dir=self.state_dir, interval="1h")
        self.conf = e2e.write_config(self.path("iocwall.conf"), **self.conf_args)
        self.log = self.path("daemon.log")
        with open(self.log, "w") as err:
            self.proc = self.ns.popen([e2e.IOCWALL, "-c", self.conf], stdout=subprocess.DEVNULL,
                                      stderr=err)
        self.wait_log("cycle enforced-fresh", 1)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed]), "first cycle:")

    def wait_log(self, text, count=1, timeout=20):
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("the daemon exited %d:\n%s" %
                                     (self.proc.returncode, e2e.read_text(self.log)))
            return e2e.read_text(self.log).count(text) >= count
        e2e.wait_for(seen, timeout, "%d x '%s' in the daemon's log" % (count, text))

    def blocked(self, address):
        a = int(ipaddress.ip_address(address))
        return any(f <= a <= l for f, l in e2e.set_elements(self.ns)[4])

    def test_an_untrusted_state_dir_stops_the_daemon_as_a_configuration_error(self):
        # 78 (EX_CONFIG): the unit's RestartPreventExitStatus= stops it instead of restarting
        # it every 10 s over a directory only an operator can fix.
        loose = self.path("loose-state")
        os.mkdir(loose)
        os.chmod(loose, 0o777)
        conf = e2e.write_config(self.path("loose.conf"), **dict(self.conf_args, state_dir=loose))
        p = self.ns.run([e2e.IOCWALL, "-c", conf], check=False, timeout=60)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("writable by group or others", p.stderr)

    def test_sigusr1_syncs_now(self):
        self.sim.add("feed", ["198.18.7.7"])
        self.assertFalse(self.blocked("198.18.7.7"))
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_log("SIGUSR1: syncing now")
        self.wait_log("cycle enforced-fresh", 2)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed + ["198.18.7.7"]]))

    def test_sighup_bad_config_kept_then_good_config_applied(self):
        # A broken file: the running configuration stays, and says why.
        good = e2e.read_text(self.conf)
        e2e.write_file(self.conf, good + "[sync]\nintervall = 5m\n")
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("reload refused")
        line = [x for x in e2e.read_text(self.log).splitlines() if "reload refused" in x][0]
        self.assertIn("%s:%d:" % (self.conf, good.count("\n") + 2), line)
        self.assertIn("intervall", line)
        self.assertIsNone(self.proc.poll())
        # Still syncing with the old configuration.
        self.sim.add("feed", ["198.18.7.8"])
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_log("cycle enforced-fresh", 2)
        self.assertTrue(self.blocked("198.18.7.8"))

        # A good new file: applied at once (an allowlist entry lifts an enforced address).
        lifted = self.feed[0]
        e2e.write_config(self.conf, allow=[lifted], **self.conf_args)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("configuration reloaded from " + self.conf)
        self.wait_log("cycle enforced-fresh", 3)
        self.assertFalse(self.blocked(lifted))
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed + ["198.18.7.8"]],
                                                        allow=[lifted]))

    def test_running_daemon_repairs_drift(self):
        # The daemon diffs against the copy it keeps; the ruleset generation tells it that
        # someone else changed the kernel behind its back.
        reference = e2e.without_handles(self.ns.ruleset())
        self.ns.run(["nft", "flush", "set", "inet", "iocwall", "blocklist_v4"])
        self.ns.run(["nft", "add", "element", "inet", "iocwall", "blocklist_v4",
                     "{ 192.0.2.55 }"])
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_log("cycle enforced-fresh", 2)
        self.assertSetsEqual(self.ns, e2e.expected_sets([self.feed]))
        self.assertEqual(e2e.without_handles(self.ns.ruleset()), reference)

    def test_sigterm_leaves_the_table_in_place(self):
        before = self.ns.ruleset()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=20), 0)
        self.assertIn("stays in place", e2e.read_text(self.log))
        self.assertEqual(self.ns.ruleset(), before)
        status = e2e.Agent(self.ns, self.conf).run("--status", expect=0)
        self.assertTrue(status.stdout.startswith("iocwall OK"), status.stdout)


if __name__ == "__main__":
    e2e.main()
