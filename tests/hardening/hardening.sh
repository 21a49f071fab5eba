#!/usr/bin/env bash
# A local attacker against the real agent (issue 12), each case with a negative control that
# shows the attack works against a naive implementation, so that the check can fail:
#  - symlinks planted in a state or metrics directory another user can write: refused, the
#    victim file untouched, a link's target never chmodded;
#  - a FIFO as state.json (--status, --restore, --once return), a snapshot linked to /dev/zero
#    (no abort), a 400 MB state.json (refused by its size, quickly);
#  - strace of --once: every file iocwall creates is O_EXCL|O_NOFOLLOW (or O_TMPFILE);
#  - the gateway's directly connected network is never blocked unless the option turns it off;
#  - an entry whose host bits were set is logged in the feed's own words.
# Runs every iocwall call inside a throwaway network namespace. Usage: hardening.sh BIN_DIR.
# Exit 77 (skip) when not root.
set -euo pipefail
source "$(dirname "$0")/../chaos/common.sh"
bin=$1
cw_init "$bin"
here=$(cd "$(dirname "$0")" && pwd)
W=$CW_WORK
checks=0
failed=0
check() {  # check DESCRIPTION COMMAND...
  checks=$((checks + 1))
  if "${@:2}"; then return 0; fi
  echo "FAIL: $1" >&2
  failed=$((failed + 1))
}
grep_in() { grep -qE -- "$1" "${@:2}"; }
intact() { [[ $(cat "$1") == "precious" ]]; }

printf '192.0.2.0/24\n198.51.100.7\n' >"$W/list.txt"
conf() {  # conf NAME STATE_DIR [EXTRA_INI]: a file source only (no key, no network)
  cat >"$W/$1.conf" <<CONF
[files]
path = $W/list.txt

[sync]
state_dir = $2
max_shrink_percent = 100
${3:-}
CONF
}
once() {  # once CONF OUT: --once inside the namespace, status in RC
  set +e
  timeout 60 ip netns exec "$CW_GW" "$bin/iocwall" -c "$1" --once >"$2" 2>&1
  RC=$?
  set -e
}

# 1. A world-writable state_dir with a symlink planted at the name the old code used for its
#    temporary (state.json.tmp.PID, PID predictable) and at state.json itself.
echo precious >"$W/victim"
mkdir -m 0777 "$W/loose"
plant() {  # plant DIR PID_FROM PID_TO: links DIR/state.json.tmp.PID -> victim
  local p
  for ((p = $2; p <= $3; p++)); do ln -sf "$W/victim" "$1/state.json.tmp.$p"; done
}
next_pid=$(($(sh -c 'echo $$') + 1))
plant "$W/loose" "$next_pid" $((next_pid + 200))
# Negative control: the old writer (open O_CREAT|O_TRUNC, following links) at one of those
# names overwrites the victim.
python3 - "$W/loose/state.json.tmp.$next_pid" <<'PY'
import sys
with open(sys.argv[1], "w") as f:  # what WriteFileAtomic did before: no O_EXCL, no O_NOFOLLOW
    f.write("{}")
PY
check "control: a naive writer follows the planted link" test "$(cat "$W/victim")" = "{}"
echo precious >"$W/victim"
conf loose "$W/loose"
once "$W/loose.conf" "$W/loose.out"
check "world-writable state_dir refused with the fix" \
  grep_in "state_dir $W/loose is writable by group or others \(mode 0777\).*chmod go-w" "$W/loose.out"
check "victim untouched (world-writable state_dir)" intact "$W/victim"
check "nothing written in the refused state_dir" test ! -e "$W/loose/state.json"

# Owned by another user (the attacker's own directory): refused too.
mkdir -m 0700 "$W/theirs"
chown 65534:65534 "$W/theirs"
conf theirs "$W/theirs"
once "$W/theirs.conf" "$W/theirs.out"
check "state_dir owned by uid 65534 refused" \
  grep_in "state_dir $W/theirs is owned by uid 65534, not root.*chown root:root" "$W/theirs.out"

# A state_dir that is a symlink: refused, and its target is not chmodded 0700.
mkdir -m 0755 "$W/target"
ln -s "$W/target" "$W/linked"
conf linked "$W/linked"
once "$W/linked.conf" "$W/linked.out"
check "symlinked state_dir refused" grep_in "state_dir $W/linked is a symbolic link" "$W/linked.out"
check "the link's target keeps its mode (0755)" test "$(stat -c %a "$W/target")" = 755
check "nothing written through the link" test -z "$(ls -A "$W/target")"
# Negative control: chmod on the path (what EnsureDirs did) changes the target.
cp -a "$W/target" "$W/target2" && ln -s "$W/target2" "$W/linked2" && chmod 0700 "$W/linked2"
check "control: chmod through a link changes its target" test "$(stat -c %a "$W/target2")" = 700

# A proper state_dir with links planted at state.json and at old-style temporaries: the agent
# writes its own regular files and the victim stays as it was.
mkdir -m 0700 "$W/good"
ln -s "$W/victim" "$W/good/state.json"
plant "$W/good" "$next_pid" $((next_pid + 200))
conf good "$W/good"
once "$W/good.conf" "$W/good.out"
check "--once in a proper state_dir succeeds (rc $RC)" test "$RC" = 0
check "victim untouched (planted links in a proper state_dir)" intact "$W/victim"
check "state.json is a regular file, not the planted link" test -f "$W/good/state.json" -a ! -L "$W/good/state.json"
check "the list is enforced" test "$(cw_covers 198.51.100.7)" = 198.51.100.7

# 2. Metrics directory writable by the exporter's user: refused; root-owned 0755: written 0644.
mkdir -m 0755 "$W/prom"
chown 65534:65534 "$W/prom"
ln -s "$W/victim" "$W/prom/iocwall.prom"
conf metrics "$W/good" "[metrics]
textfile = $W/prom/iocwall.prom"
once "$W/metrics.conf" "$W/metrics.out"
check "metrics directory owned by another user refused" \
  grep_in "metrics: metrics directory $W/prom is owned by uid 65534" "$W/metrics.out"
check "victim untouched (metrics)" intact "$W/victim"
chown 0:0 "$W/prom"
once "$W/metrics.conf" "$W/metrics2.out"
check "metrics written in a root-owned 0755 directory, mode 0644" \
  test "$(stat -c %a "$W/prom/iocwall.prom")" = 644 -a ! -L "$W/prom/iocwall.prom"
check "victim untouched (metrics link replaced)" intact "$W/victim"

# 3. A FIFO as state.json: nothing hangs. Control: a blocking open of it does.
rm -f "$W/good/state.json"
mkfifo -m 0600 "$W/good/state.json"
set +e
timeout 3 cat "$W/good/state.json" >/dev/null 2>&1
ctl=$?
set -e
check "control: a blocking reader hangs on the FIFO (timeout rc $ctl)" test "$ctl" = 124
for mode in --status --restore --once; do
  rm -f "$W/good"/state.json.bad-*
  if [[ ! -p $W/good/state.json ]]; then
    rm -f "$W/good/state.json"
    mkfifo -m 0600 "$W/good/state.json"
  fi
  set +e
  start=$(date +%s.%N)
  timeout 20 ip netns exec "$CW_GW" "$bin/iocwall" -c "$W/good.conf" $mode >"$W/fifo$mode.out" 2>&1
  rc=$?
  set -e
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  check "$mode with a FIFO as state.json returns (rc $rc, ${secs}s)" test "$rc" != 124
  echo "--- $mode, FIFO state.json: rc $rc in ${secs}s"
done
check "the FIFO is reported and set aside" grep_in "FIFO, not a regular file; not used, set aside as" "$W"/fifo--*.out

# 4. A snapshot linked to /dev/zero: --restore does not abort (the old reader died of
#    bad_alloc). Control: reading it whole under a 256 MB limit fails.
snap=$(ls "$W/good/sources/"*.list | head -1)
ln -sf /dev/zero "$snap"
set +e
(ulimit -v 262144; timeout 20 python3 -c 'import sys; open(sys.argv[1], "rb").read()' "$snap") >/dev/null 2>&1
ctl=$?
ip netns exec "$CW_GW" timeout 20 "$bin/iocwall" -c "$W/good.conf" --restore >"$W/zero.out" 2>&1
rc=$?
set -e
check "control: reading the /dev/zero link whole fails (rc $ctl)" test "$ctl" != 0
check "--restore with a /dev/zero snapshot does not abort (rc $rc)" test "$rc" -lt 128
check "the link is reported and set aside" grep_in "is a symbolic link; not used, set aside" "$W/zero.out"

# 5. A 400 MB state.json: refused by its size, fast, small. Control: it is 400 MB.
rm -f "$W/good/state.json"
truncate -s 400M "$W/good/state.json"
chmod 600 "$W/good/state.json"
check "control: the planted state.json is 400 MB" test "$(stat -c %s "$W/good/state.json")" = 419430400
cw_measure ip netns exec "$CW_GW" "$bin/iocwall" -c "$W/good.conf" --status
check "huge state.json refused by its size" grep_in "larger than the 16777216-byte cap" "$CW_WORK/last.out" "$CW_WORK/last.err"
check "refused within 2 s (took $CW_WALL)" python3 -c "import sys; p=sys.argv[1].split(':'); sys.exit(0 if float(p[-1]) + 60*sum(float(x) for x in p[:-1]) < 2 else 1)" "$CW_WALL"
check "peak RSS under 100 MB (${CW_RSS_KB} kB)" test "$CW_RSS_KB" -lt 102400
echo "--- huge state.json: --status in $CW_WALL, peak RSS ${CW_RSS_KB} kB"

# 6. strace of --once: no file created without O_EXCL and O_NOFOLLOW (or O_TMPFILE).
rm -rf "$W/good"
mkdir -m 0700 "$W/good"
mkdir -m 0755 "$W/prom2"
conf traced "$W/good" "[metrics]
textfile = $W/prom2/iocwall.prom"
ip netns exec "$CW_GW" strace -f -qq -e trace=openat,open,creat,linkat,renameat,renameat2,mkdir,mkdirat \
  -o "$W/strace.txt" "$bin/iocwall" -c "$W/traced.conf" --once >"$W/traced.out" 2>&1 || true
check "traced --once wrote state and metrics" test -f "$W/good/state.json" -a -f "$W/prom2/iocwall.prom"
check "strace: every creating open is O_EXCL|O_NOFOLLOW" python3 "$here/strace_check.py" "$W/strace.txt"
trace=(strace -f -qq -e trace=openat,open,creat,linkat,renameat,renameat2,mkdir,mkdirat)
ip netns exec "$CW_GW" "${trace[@]}" -o "$W/strace-restore.txt" "$bin/iocwall" -c "$W/traced.conf" \
  --restore >"$W/traced-restore.out" 2>&1 || true
check "strace --restore: every creating open is O_EXCL|O_NOFOLLOW" \
  python3 "$here/strace_check.py" "$W/strace-restore.txt"
# The daemon: one cycle (it writes state and metrics), then SIGTERM.
rm -f "$W/good/state.json"
ip netns exec "$CW_GW" "${trace[@]}" -o "$W/strace-daemon.txt" "$bin/iocwall" -c "$W/traced.conf" \
  >"$W/traced-daemon.out" 2>&1 &
tracer=$!
CW_PIDS+=("$tracer")
for _ in $(seq 100); do [[ -f $W/good/state.json ]] && break; sleep 0.1; done
daemon=$(pgrep -P "$tracer" -x iocwall || true)
[[ -n $daemon ]] && kill -TERM "$daemon"
wait "$tracer" 2>/dev/null || true
check "traced daemon wrote its state" test -f "$W/good/state.json"
check "strace daemon: every creating open is O_EXCL|O_NOFOLLOW" \
  python3 "$here/strace_check.py" "$W/strace-daemon.txt"
# Control: the checker flags an O_CREAT without O_EXCL.
strace -f -qq -e trace=openat,open,creat -o "$W/strace-naive.txt" \
  python3 -c 'open("'"$W"'/naive.tmp", "w").write("x")'
check "control: the checker flags a naive creat" bash -c "! python3 '$here/strace_check.py' '$W/strace-naive.txt' >/dev/null"
echo "--- strace: $(grep -c O_CREAT "$W/strace.txt") creating opens, $(grep -cE 'rename' "$W/strace.txt") renames"

# 7. The gateway's own network (10.77.0.0/24 on veth-gw) in a feed, and a widened entry.
printf '10.77.0.0/16\n9.9.9.9/8\n203.0.113.5\n' >"$W/list.txt"
rm -rf "$W/good" && mkdir -m 0700 "$W/good"
once "$W/good.conf" "$W/lan.out"
check "--once with the LAN in the feed succeeds (rc $RC)" test "$RC" = 0
check "the peer on the connected network is not blocked" test -z "$(cw_covers 10.77.0.2)"
check "10.77.1.1 (same /16, not connected) is blocked" test "$(cw_covers 10.77.1.1)" = 10.77.1.1
check "the carve-out is logged" grep_in "not blocking 10.77.0.0/24 \(directly connected network on veth-gw\)" "$W/lan.out"
check "the widened entry is logged in the feed's words" \
  grep_in "9.9.9.9/8 in file $W/list.txt widened to 9.0.0.0/8" "$W/lan.out"
# Negative control: with the option off, the same feed blocks the peer.
conf nolan "$W/good" "[allowlist]
connected_networks = false"
once "$W/nolan.conf" "$W/nolan.out"
check "control: connected_networks = false blocks the peer 10.77.0.2" test "$(cw_covers 10.77.0.2)" = 10.77.0.2

echo "FIGURES hardening: checks=$checks failed=$failed"
((failed == 0)) || cw_fail "$failed of $checks hardening checks failed"
