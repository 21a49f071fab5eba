"""Shared machinery of iocwall's end-to-end tests: throwaway network namespaces, the feed
simulator inside them, the agent as a subprocess, and an independent oracle (Python's own
address arithmetic against `nft -j`).

Every kernel object lives in a namespace that a test creates under a unique name
(iocwall-e2e-<pid>-<n>) and deletes on every path: test clean-ups, atexit, SIGTERM/SIGINT/SIGHUP,
and a sweep at start-up of namespaces left by a test process that no longer exists (SIGKILL).
The host's own ruleset is never read or written; all traffic stays on a namespace's loopback.
"""

import atexit
import ipaddress
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SKIP = 77  # ctest SKIP_RETURN_CODE

BIN_DIR = os.environ.get("IOCWALL_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..",
                                                         "build", "bin"))
IOCWALL = os.path.join(BIN_DIR, "iocwall")
FEEDSIM = os.path.join(BIN_DIR, "iocwall-feedsim")

NS_PREFIX = "iocwall-e2e-"
_live_namespaces = []  # Netns objects not yet closed, for the signal and atexit paths


# ---------------------------------------------------------------------------------------------
# Polling (instead of sleeping for a guessed time)

def wait_for(predicate, timeout, what, interval=0.02):
    """Polls predicate() until it returns a truthy value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------------
# Namespaces

class Netns:
    _count = 0

    def __init__(self):
        Netns._count += 1
        self.name = "%s%d-%d" % (NS_PREFIX, os.getpid(), Netns._count)
        self.procs = []
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        _live_namespaces.append(self)
        self.run(["ip", "link", "set", "lo", "up"])

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name] + list(argv)

    def run(self, argv, check=True, timeout=120, input=None, env=None):
        p = subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout,
                           input=input, env=env)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" %
                                 (" ".join(argv), p.returncode, p.stdout, p.stderr))
        return p

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.argv(argv), **kw)
        self.procs.append(p)
        return p

    def nft(self, script):
        """Runs an nft script (the test's own objects, never iocwall's) inside the namespace."""
        return self.run(["nft", "-f", "-"], input=script)

    def nft_json(self, *what):
        out = self.run(["nft", "-j", "list"] + list(what)).stdout
        return json.loads(out)["nftables"]

    def ruleset(self):
        return self.nft_json("ruleset")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (p.stdout, p.stderr):
                if stream:
                    stream.close()
        self.procs = []
        # Anything else still running in it (a child the test did not track) goes too.
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        if self in _live_namespaces:
            _live_namespaces.remove(self)


def _close_all():
    for ns in list(_live_namespaces):
        ns.close()


def _on_signal(signum, _frame):
    _close_all()
    os._exit(128 + signum)


def sweep_stale_namespaces():
    """Deletes namespaces of earlier test processes that died without cleaning up (SIGKILL)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"(%s(\d+)-\d+)\b" % re.escape(NS_PREFIX), line)
        if not m or os.path.exists("/proc/%s" % m.group(2)):
            continue
        for pid in subprocess.run(["ip", "netns", "pids", m.group(1)], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", m.group(1)], capture_output=True)


def check_environment():
    """Exits with ctest's skip code where the tests cannot run."""
    if os.geteuid() != 0:
        print("SKIP: the end-to-end tests need root (network namespaces, nftables)")
        sys.exit(SKIP)
    for b in (IOCWALL, FEEDSIM):
        if not os.access(b, os.X_OK):
            print("SKIP: %s is not built (set IOCWALL_BIN_DIR)" % b)
            sys.exit(SKIP)
    if shutil.which("nft") is None or shutil.which("ip") is None:
        print("SKIP: nft and ip are needed")
        sys.exit(SKIP)
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        print("SKIP: cannot create network namespaces here")
        sys.exit(SKIP)
    atexit.register(_close_all)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    sweep_stale_namespaces()


def main():
    """Entry point of each test script."""
    check_environment()
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------------------------
# Files

def write_file(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def write_list(path, entries):
    return write_file(path, "".join(e + "\n" for e in entries))


def new_key(path):
    return write_file(path, os.urandom(24).hex() + "\n", 0o600)


def write_config(path, url=None, key=None, ca=None, collections=(), files=(), allow=(),
                 state_dir=None, interval="10s", extra=None):
    """An iocwall.conf; `extra` maps "section" to {key: value} for anything else."""
    sections = {"api": {}, "sync": {"interval": interval, "jitter": "0"}}
    if url:
        sections["api"]["url"] = url
    if key:
        sections["api"]["api_key_file"] = key
    if ca:
        sections["api"]["ca_file"] = ca
    if state_dir:
        sections["sync"]["state_dir"] = state_dir
    for section, keys in (extra or {}).items():
        sections.setdefault(section, {}).update(keys)
    lines = []
    for section, keys in sections.items():
        if keys:
            lines.append("[%s]" % section)
            lines += ["%s = %s" % kv for kv in keys.items()]
    for name, values, key_name in (("collections", collections, "id"),
                                   ("files", files, "path"), ("allowlist", allow, "prefix")):
        if values:
            lines.append("[%s]" % name)
            lines += ["%s = %s" % (key_name, v) for v in values]
    return write_file(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# The feed simulator, inside a namespace

def make_ca(directory):
    if not os.path.exists(os.path.join(directory, "ca.pem")):
        subprocess.run([FEEDSIM, "gen-ca", "--out", directory], check=True,
                       capture_output=True)
    return directory


class Sim:
    _count = 0

    def __init__(self, ns, work, key, collections, tls=None, extra_args=()):
        """collections: {id: path-to-list-file, "gen:N" or None (empty)}. tls: a gen-ca dir."""
        Sim._count += 1
        self.ns = ns
        self.key = key
        self.tls = tls or make_ca(os.path.join(work, "tls"))
        self.ca = os.path.join(self.tls, "ca.pem")
        tag = os.path.join(work, "sim%d" % Sim._count)
        self.port_file = tag + ".port.json"
        self.log = tag + ".requests.log"
        self.stderr_path = tag + ".stderr"
        argv = [FEEDSIM, "--tls-port", "0", "--tls-dir", self.tls, "--api-key-file", key,
                "--port-file", self.port_file, "--request-log", self.log]
        for cid, what in collections.items():
            argv += ["--collection", "%s=%s" % (cid, what) if what else cid]
        argv += list(extra_args)
        with open(self.stderr_path, "w") as err:
            self.proc = ns.popen(argv, stdout=subprocess.DEVNULL, stderr=err)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("iocwall-feedsim exited %d: %s" %
                                     (self.proc.returncode, read_text(self.stderr_path)))
            text = read_text(self.port_file)
            return json.loads(text)["https"] if text else 0
        self.port = wait_for(ready, 20, "the simulator's port file")
        self.origin = "https://127.0.0.1:%d" % self.port
        self.url = self.origin + "/api"

    def control(self, method, path, body=None):
        argv = ["curl", "-sS", "--fail", "--max-time", "10", "--cacert", self.ca, "-X", method,
                self.origin + path]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        return json.loads(self.ns.run(argv).stdout or "{}")

    def fault(self, **fault):
        self.control("POST", "/_sim/fault", fault)

    def clear_faults(self):
        self.control("DELETE", "/_sim/fault")

    def _write(self, verb, collection, values, extra=()):
        argv = [FEEDSIM, verb, "--url", self.url, "--ca-file", self.ca, "--collection",
                collection, "--api-key-file", self.key] + list(extra)
        for i in range(0, len(values), 2000):  # keeps each request and argv a modest size
            self.ns.run(argv + list(values[i:i + 2000]))

    def add(self, collection, values, valid_until=None):
        self._write("add", collection, values,
                    ["--valid-until", valid_until] if valid_until else [])

    def revoke(self, collection, values):
        self._write("revoke", collection, values)

    def requests(self):
        return [json.loads(line) for line in read_text(self.log).splitlines() if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# The agent

class Agent:
    def __init__(self, ns, conf):
        self.ns = ns
        self.conf = conf

    def run(self, *args, expect=None, timeout=120):
        p = self.ns.run([IOCWALL, "-c", self.conf] + list(args), check=False, timeout=timeout)
        if expect is not None and p.returncode != expect:
            raise AssertionError("iocwall %s exited %d, expected %d\nstdout: %s\nstderr: %s" %
                                 (" ".join(args), p.returncode, expect, p.stdout, p.stderr))
        return p


def load_state(state_dir):
    with open(os.path.join(state_dir, "state.json")) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# The oracle: what the kernel must hold, computed here without any of iocwall's code

# Documented in iocwall.conf(5): never blocked whatever a feed says.
PROTECTED = [
    "127.0.0.0/8", "0.0.0.0/8", "255.255.255.255/32", "169.254.0.0/16", "224.0.0.0/4",
    "::1/128", "::/128", "fe80::/10", "ff00::/8",
]
MIN_PREFIX = {4: 8, 6: 32}  # the defaults of [sync] min_prefix_v4 / min_prefix_v6


def parse_entry(text):
    """A feed line as iocwall should read it; None when it is not an address or prefix."""
    text = text.strip()
    if not text or text.startswith("#"):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)  # host bits cleared, as the agent does
    except ValueError:
        return None


def merge(intervals):
    """Sorted, with overlapping and adjacent intervals joined: the canonical form of a set."""
    out = []
    for first, last in sorted(intervals):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def subtract(block, allow):
    out = []
    allow = merge(allow)
    for first, last in block:
        cur = first
        for a_first, a_last in allow:
            if a_last < cur or a_first > last:
                continue
            if a_first > cur:
                out.append((cur, a_first - 1))
            cur = a_last + 1
            if cur > last:
                break
        if cur <= last:
            out.append((cur, last))
    return out


def expected_sets(lists, allow=(), protect=()):
    """{4: [(first, last)...], 6: [...]}: what the kernel must hold for these feed lines."""
    by_family = {4: [], 6: []}
    for lines in lists:
        for line in lines:
            net = parse_entry(line)
            if net is None or net.prefixlen < MIN_PREFIX[net.version]:
                continue
            by_family[net.version].append((int(net.network_address),
                                           int(net.broadcast_address)))
    keep_out = {4: [], 6: []}
    for text in list(PROTECTED) + list(allow) + list(protect):
        net = ipaddress.ip_network(text, strict=False)
        keep_out[net.version].append((int(net.network_address), int(net.broadcast_address)))
    return {f: subtract(merge(by_family[f]), keep_out[f]) for f in (4, 6)}


def _element_interval(e, version):
    addr = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    if isinstance(e, dict) and "elem" in e:  # with per-element counters or timeouts
        e = e["elem"]["val"]
    if isinstance(e, str):
        a = int(addr(e))
        return (a, a)
    if "prefix" in e:
        net = ipaddress.ip_network("%s/%d" % (e["prefix"]["addr"], e["prefix"]["len"]))
        return (int(net.network_address), int(net.broadcast_address))
    if "range" in e:
        return (int(addr(e["range"][0])), int(addr(e["range"][1])))
    raise AssertionError("unexpected set element %r" % (e,))


def set_elements(ns, table="iocwall", family="inet", sets=None):
    """{4: [...], 6: [...]}: the kernel's elements, one interval each, as nft -j lists them.
    sets: {4: name, 6: name}, iocwall's by default."""
    out = {}
    for version, name in (sets or {4: "blocklist_v4", 6: "blocklist_v6"}).items():
        items = ns.nft_json("set", family, table, name)
        elems = [i["set"] for i in items if "set" in i][0].get("elem", [])
        out[version] = sorted(_element_interval(e, version) for e in elems)
    return out


def tables(ns):
    return sorted((i["table"]["family"], i["table"]["name"]) for i in ns.ruleset()
                  if "table" in i)


def belongs(item, family, table):
    """Whether an item of `nft -j list ruleset` is (part of) table `family` `table`."""
    kind, body = next(iter(item.items()))
    if kind == "metainfo":
        return False
    name = body.get("name") if kind == "table" else body.get("table")
    return body.get("family") == family and name == table


def without_handles(ruleset):
    """The ruleset without kernel handles, to compare tables built in two namespaces."""
    if isinstance(ruleset, list):
        return [without_handles(x) for x in ruleset]
    if isinstance(ruleset, dict):
        return {k: without_handles(v) for k, v in ruleset.items() if k != "handle"}
    return ruleset


def fmt(intervals, version):
    addr = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return ["%s-%s" % (addr(a), addr(b)) if a != b else str(addr(a)) for a, b in intervals]


def random_ipv4(rng, count, exclude=()):
    """Distinct public-looking IPv4 addresses, scattered so that few are adjacent."""
    seen = set(exclude)
    out = []
    while len(out) < count:
        a = "%d.%d.%d.%d" % (rng.choice([23, 45, 62, 91, 103, 146, 185, 194, 212]),
                             rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def random_ipv6(rng, count):
    return ["2a0%d:%x:%x::%x" % (rng.randrange(1, 10), rng.randrange(1 << 16),
                                 rng.randrange(1 << 16), rng.randrange(1, 1 << 16))
            for _ in range(count)]


# ---------------------------------------------------------------------------------------------
# nft monitor: which element operations reached the kernel

class Monitor:
    """`nft -j monitor` inside a namespace, fenced by marker tables so that no event is lost
    or attributed to the wrong window (no sleeps)."""

    def __init__(self, ns):
        self.ns = ns
        self.proc = ns.popen(["nft", "-j", "monitor"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        # nft subscribes some time after it starts: fence until a marker comes through. Each
        # attempt waits longer: under QEMU's emulation (the 6.1 guest) on a loaded machine one
        # round trip can take longer than the first waits, and no attempt may be too short.
        deadline = time.monotonic() + 120
        attempt = 0
        while self._fence("e2e_fence_start%d" % attempt,
                          wait=min(5.0, 0.2 * 2 ** attempt)) is None:
            attempt += 1
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("nft monitor never reported its marker table")

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def _fence(self, name, wait):
        """Adds and deletes a marker table; returns the events seen before the delete, or None
        if the delete did not come through within `wait` seconds."""
        self.ns.nft("add table inet %s\ndelete table inet %s\n" % (name, name))
        events = []
        deadline = time.monotonic() + wait
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return None
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if "delete" in ev and ev["delete"].get("table", {}).get("name") == name:
                return [e for e in events if not _is_fence(e)]
            events.append(ev)

    def stop(self):
        """The events between the start and now."""
        events = self._fence("e2e_fence_stop", wait=20)
        self.proc.kill()
        self.proc.wait()
        if events is None:
            raise AssertionError("nft monitor: no event for the closing marker table")
        return events


def _is_fence(ev):
    for verb in ("add", "delete"):
        t = ev.get(verb, {}).get("table")
        if t and t.get("name", "").startswith("e2e_fence_"):
            return True
    return False


def element_events(events, hold=False):
    """{("add"|"delete", version): [interval, ...]} from monitor events on iocwall's sets, or
    with `hold` on their hold sets (netlink/hold_bridge.h: filled before an update that re-adds
    covered ranges, emptied after it)."""
    out = {}
    for ev in events:
        for verb in ("add", "delete"):
            el = ev.get(verb, {}).get("element")
            if not el or el["name"].endswith("_hold") != hold:
                continue
            version = 6 if el["name"].removesuffix("_hold").endswith("v6") else 4
            for e in el["elem"]["set"]:
                out.setdefault((verb, version), []).append(_element_interval(e, version))
    return out


# ---------------------------------------------------------------------------------------------
# A test case with a work directory and namespace helpers

class E2ETest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="iocwall-e2e.")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.key = new_key(os.path.join(self.work, "api_key"))
        self.state_dir = os.path.join(self.work, "state")
        self.rng = random.Random(self.id())

    def netns(self):
        ns = Netns()
        self.addCleanup(ns.close)
        return ns

    def path(self, name):
        return os.path.join(self.work, name)

    def assertSetsEqual(self, ns, expected, msg=""):
        got = set_elements(ns)
        for f in (4, 6):
            if got[f] != expected[f]:
                extra = sorted(set(got[f]) - set(expected[f]))[:10]
                missing = sorted(set(expected[f]) - set(got[f]))[:10]
                self.fail("%s IPv%d set differs from the oracle: %d elements, %d expected;\n"
                          "  in the kernel only: %s\n  expected only: %s" %
                          (msg, f, len(got[f]), len(expected[f]), fmt(extra, f),
                           fmt(missing, f)))
        return got
