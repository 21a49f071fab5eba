#!/usr/bin/env bash
# No systemd runs here, so the units' sandbox is checked by reproducing what it
# grants: the agent runs every mode (daemon with SIGUSR1, SIGHUP and SIGTERM,
# --once, --status, --explain, --dry-run, --flush, --restore, --check-config) as
# root with CAP_NET_ADMIN as its only capability and no_new_privs, in a network
# namespace of its own, under strace. Every mode must succeed, and every system
# call and socket family it used must pass the unit's SystemCallFilter= and
# RestrictAddressFamilies= (--restore against iocwall-restore.service's).
# A collection served over HTTPS by iocwall-feedsim on the namespace's loopback brings
# libcurl, OpenSSL and name resolution (of "localhost") into the traces.
# usage: unit_sandbox.sh IOCWALL_BIN FEEDSIM_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need strace unshare setpriv systemd-analyze python3 ip
need_root "network namespaces and nf_tables"
bin=$1
feedsim=$2
src=$3
here=$(cd "$(dirname "$0")" && pwd)

printf '192.0.2.1\n198.51.100.0/24\n2001:db8::/48\n' >"$tmp/list.txt"
printf '203.0.113.7\n203.0.113.64/26\n' >"$tmp/collection.txt"
printf 'sandbox-test-key\n' >"$tmp/api_key"
chmod 0600 "$tmp/api_key"
"$feedsim" gen-ca --out "$tmp/ca" >/dev/null

# Runs inside the new network namespace: nothing here reaches the host's ruleset.
cat >"$tmp/run.sh" <<'SH'
set -euo pipefail
tmp=$1 bin=$2 feedsim=$3
ip link set lo up
"$feedsim" serve --tls-port 0 --tls-dir "$tmp/ca" --api-key-file "$tmp/api_key" \
  --collection "c1=$tmp/collection.txt" --port-file "$tmp/port.json" >/dev/null 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $tmp/port.json ]] && break; sleep 0.05; done
port=$(sed -n 's/.*"https": *\([0-9]*\).*/\1/p' "$tmp/port.json")
[[ -n $port ]] || { echo "feedsim did not start"; exit 1; }
cat >"$tmp/iocwall.conf" <<CONF
[api]
url = https://localhost:$port/api
api_key_file = $tmp/api_key
ca_file = $tmp/ca/ca.pem
[collections]
id = c1
[files]
path = $tmp/list.txt
[sync]
state_dir = $tmp/state
interval = 10s
jitter = 0s
[metrics]
textfile = $tmp/iocwall.prom
CONF
sandbox() {  # exactly CapabilityBoundingSet=CAP_NET_ADMIN + NoNewPrivileges=yes
  setpriv --bounding-set=-all,+net_admin --inh-caps=-all --no-new-privs -- "$@"
}
trace() {  # trace NAME ARGS...: one strace file per mode
  local name=$1
  shift
  sandbox strace -f -qq -o "$tmp/trace.$name" "$bin" -c "$tmp/iocwall.conf" "$@"
}
trace check --check-config
trace once --once
trace status --status
trace explain --explain 203.0.113.7
trace dryrun --dry-run
trace flush --flush
trace restore --restore
nft list table inet iocwall >/dev/null  # restored
# The daemon: a cycle at start, one on SIGUSR1, a reload (and cycle) on SIGHUP, then exit.
rm -f "$tmp/state/state.json"
# Not through the function: $! must be strace itself (setpriv execs it), iocwall its child.
setpriv --bounding-set=-all,+net_admin --inh-caps=-all --no-new-privs -- \
  strace -f -qq -o "$tmp/trace.daemon" "$bin" -c "$tmp/iocwall.conf" &
tracer=$!
pid=""
for _ in $(seq 100); do
  pid=$(pgrep -P "$tracer" -x iocwall || true)
  [[ -n $pid && -s $tmp/state/state.json ]] && break
  sleep 0.1
done
[[ -n $pid ]] || { echo "daemon did not start"; exit 1; }
sleep 1
kill -USR1 "$pid"; sleep 1
kill -HUP "$pid"; sleep 1
kill -TERM "$pid"
wait "$tracer"
nft list table inet iocwall >/dev/null  # SIGTERM leaves the table
SH
unshare --net -- bash "$tmp/run.sh" "$tmp" "$bin" "$feedsim" >"$tmp/run.log" 2>&1 ||
  { cat "$tmp/run.log"; fail "a mode failed with only CAP_NET_ADMIN"; }
grep -q 'SIGUSR1' "$tmp/run.log" || { cat "$tmp/run.log"; fail "the daemon did not take SIGUSR1"; }
grep -q 'reloaded' "$tmp/run.log" || { cat "$tmp/run.log"; fail "the daemon did not reload"; }
# The metrics file (written with fchmod under the same filter) is there, 0644.
[[ $(stat -c %a "$tmp/iocwall.prom" 2>/dev/null) == 644 ]] ||
  fail "no metrics file of mode 0644 under the sandbox"
grep -q '^iocwall_cycles_total{outcome="enforced-fresh"} 3$' "$tmp/iocwall.prom" ||
  fail "the daemon's metrics do not count its 3 cycles: $(grep cycles_total "$tmp/iocwall.prom")"
grep -q 'listed by collection c1' "$tmp/run.log" ||
  { cat "$tmp/run.log"; fail "--explain 203.0.113.7 did not find the collection's entry"; }

units=$src/deploy/systemd
python3 "$here/unit_sandbox.py" "$units/iocwall.service" "$tmp"/trace.{check,once,status,explain,dryrun,flush,daemon}
python3 "$here/unit_sandbox.py" "$units/iocwall-restore.service" "$tmp/trace.restore"
grep -E 'cycle |listed by|reloaded|SIGUSR1' "$tmp/run.log"
