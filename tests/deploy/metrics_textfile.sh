#!/usr/bin/env bash
# The Prometheus textfile as a stock node_exporter sees it. A real agent (daemon, in a network
# namespace of its own, umask 0077 as under the unit) writes the file; then:
#  - promtool check metrics (the Prometheus text format rules and naming lints) passes;
#  - the file is 0644 and the user node_exporter runs as (prometheus on Debian; nobody when
#    there is none) reads it; [metrics] mode = 0640 is honoured too;
#  - counters outlive a cycle and a SIGHUP reload (cycles_total counts 3 after start, SIGUSR1
#    and SIGHUP), with separate labels (source_type/source, hook/family/direction);
#  - every metric the Grafana dashboard (deploy/grafana) queries is one the agent wrote.
# promtool comes from Debian's `prometheus` package (PROMTOOL= names another binary). Without
# it every other check still runs, then the test reports itself skipped.
# usage: metrics_textfile.sh IOCWALL_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need unshare setpriv python3 ip
need_root "network namespaces and nf_tables"
bin=$1
src=$2
dashboard=$src/deploy/grafana/iocwall.json
# Debian's node_exporter runs as prometheus (the user the prometheus package creates).
reader=prometheus
id "$reader" >/dev/null 2>&1 || reader=nobody
promtool=${PROMTOOL:-$(command -v promtool || true)}
chmod 0755 "$tmp"  # the reader must reach the file

printf '192.0.2.1\n198.51.100.0/24\n2001:db8::/48\nnot-an-ip\n' >"$tmp/list.txt"
cat >"$tmp/iocwall.conf" <<CONF
[files]
path = $tmp/list.txt
[sync]
state_dir = $tmp/state
interval = 1h
jitter = 0s
[metrics]
textfile = $tmp/iocwall.prom
CONF

# Inside the namespace: the daemon, one SIGUSR1 cycle, one SIGHUP reload (with its cycle).
cat >"$tmp/run.sh" <<'SH'
set -euo pipefail
tmp=$1 bin=$2
ip link set lo up
count() {  # count OUTCOME: iocwall_cycles_total for it, or 0 when the file is not there yet
  sed -n "s/^iocwall_cycles_total{outcome=\"$1\"} \([0-9]*\)$/\1/p" "$tmp/iocwall.prom" 2>/dev/null || true
}
wait_count() {
  for _ in $(seq 200); do [[ $(count enforced-fresh) == "$1" ]] && return 0; sleep 0.05; done
  echo "cycles_total{outcome=enforced-fresh} did not reach $1 (is '$(count enforced-fresh)')"
  cat "$tmp/daemon.log"
  exit 1
}
umask 0077
"$bin" -c "$tmp/iocwall.conf" 2>"$tmp/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
wait_count 1
cp "$tmp/iocwall.prom" "$tmp/first.prom"
kill -USR1 $daemon
wait_count 2
kill -HUP $daemon
wait_count 3
kill -TERM $daemon
wait $daemon
trap - EXIT
# The mode is a key: 0640 is honoured under the same umask (--once writes the file too), in
# a plain directory and in a set-group-ID directory of the reader's group.
for f in "$tmp/restricted.prom" "$tmp/group/iocwall.prom"; do
  "$bin" -c "$tmp/iocwall.conf" --metrics.mode 0640 --metrics.textfile "$f" --once \
    2>>"$tmp/daemon.log"
done
SH
# iocwall.conf(5): a 0640 file in a set-group-ID directory takes its group, no chown needed.
mkdir "$tmp/group"
chgrp "$(id -g "$reader")" "$tmp/group"
chmod 2750 "$tmp/group"
unshare -n bash "$tmp/run.sh" "$tmp" "$bin" || fail "the agent did not write the expected metrics"
prom=$tmp/iocwall.prom

mode=$(stat -c %a "$prom")
[[ $mode == 644 ]] || fail "metrics file mode is $mode, not 644"
[[ $(stat -c %a "$tmp/restricted.prom") == 640 ]] ||
  fail "[metrics] mode = 0640 gave $(stat -c %a "$tmp/restricted.prom")"
setpriv --reuid="$reader" --regid="$(id -g "$reader")" --clear-groups cat "$prom" >/dev/null ||
  fail "user $reader cannot read the metrics file"
setpriv --reuid="$reader" --regid="$(id -g "$reader")" --clear-groups \
  cat "$tmp/group/iocwall.prom" >/dev/null ||
  fail "mode 0640 in a set-group-ID directory of $reader's group: $reader cannot read it"
# Negative control: the reader is refused a file that others cannot read.
if setpriv --reuid="$reader" --regid="$(id -g "$reader")" --clear-groups \
  cat "$tmp/restricted.prom" >/dev/null 2>&1; then
  fail "negative control: $reader read a 0640 root file; the read check proves nothing"
fi
echo "mode 0644, readable by $reader; mode 0640 honoured, readable through a setgid group directory"

python3 - "$prom" "$tmp/first.prom" "$tmp/list.txt" <<'PY' || fail "metrics content"
import re, sys
text, first = (open(p).read() for p in sys.argv[1:3])
listfile = sys.argv[3]
def value(t, sample):
    for line in t.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise SystemExit("no sample %s in\n%s" % (sample, t))
assert value(text, 'iocwall_cycles_total{outcome="enforced-fresh"}') == 3
assert value(text, 'iocwall_cycle_duration_seconds_count') == 3
assert value(text, 'iocwall_start_time_seconds') == value(first, 'iocwall_start_time_seconds'), \
    "the reload restarted the counters' clock"
assert value(text, 'iocwall_build_info{version="%s"}' % re.search(
    r'version="([^"]+)"', text).group(1)) == 1
src = 'source_type="file",source="%s"' % listfile
assert value(text, 'iocwall_source_entries{%s}' % src) == 3
assert value(text, 'iocwall_source_rejected_lines{%s}' % src) == 1
assert value(text, 'iocwall_source_fetches_total{%s,result="ok"}' % src) == 3
assert value(text, 'iocwall_dropped_packets_total{hook="input",family="ipv4",direction="saddr"}') == 0
assert value(text, 'iocwall_kernel_elements{family="ipv6"}') == 1
# The first cycle added the elements, the later ones had nothing to change.
assert value(text, 'iocwall_element_changes_total{op="add"}') == 3
assert 'counter="' not in text and 'iocwall_apply_operations' not in text
print("counters outlive cycles and a reload; labels are separate")
PY

# Every metric the dashboard queries is one the agent writes (histogram series included).
check_dashboard() {  # check_dashboard DASHBOARD_JSON
  python3 - "$1" "$prom" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
written = {l.split("{")[0].split(" ")[0] for l in open(sys.argv[2]) if l and l[0] != "#"}
exprs = []
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                exprs.append(v)
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(dash)
if not exprs:
    raise SystemExit("the dashboard has no query")
queried = {n for e in exprs for n in re.findall(r"\biocwall_[a-z0-9_]+", e)}
missing = sorted(queried - written)
if missing:
    raise SystemExit("the dashboard queries metrics the agent does not write: %s" % missing)
print("dashboard: %d queries over %d metrics, all written by the agent" % (len(exprs), len(queried)))
PY
}
[[ -f $dashboard ]] || fail "no dashboard at $dashboard"
check_dashboard "$dashboard" || fail "dashboard"
# Negative control: a dashboard querying a name the agent does not write is caught.
python3 - "$dashboard" "$tmp/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["panels"][0]["targets"][0]["expr"] = "iocwall_no_such_metric_total"
json.dump(d, open(sys.argv[2], "w"))
PY
if check_dashboard "$tmp/bad.json" >/dev/null 2>&1; then
  fail "negative control: a dashboard with an unknown metric passed"
fi

if [[ -z $promtool ]]; then
  skip "promtool is not installed (Debian: prometheus); every other check passed"
fi
"$promtool" check metrics <"$prom" || fail "promtool check metrics: $prom"
# Negative control: promtool refuses what the old file did (a counter without _total).
printf '# HELP iocwall_x x\n# TYPE iocwall_x counter\niocwall_x 1\n' >"$tmp/bad.prom"
if "$promtool" check metrics <"$tmp/bad.prom" >/dev/null 2>&1; then
  fail "negative control: promtool accepted a counter without _total"
fi
echo "promtool check metrics: clean"
