#!/usr/bin/env bash
# Secrets and permissions, against the real agent in a throwaway network namespace pair:
#  - the API key (and its Basic-auth base64 forms) never appears in the daemon's log, --once,
#    --status (text and JSON), --dry-run, --explain, error messages (a server that echoes the
#    credentials back in 401/500 bodies), the state files, the metrics file, or the running
#    daemon's /proc/PID/cmdline and environ;
#  - a key file readable by others is refused with a message saying what to run;
#  - state files are 0600 in a 0700 directory;
#  - the running daemon holds CAP_NET_ADMIN and nothing else (effective, permitted, bounding;
#    inheritable and ambient empty), still reads its root-owned 0600 key file after the drop,
#    and a second cycle (SIGUSR1) succeeds.
# Usage: secrets.sh BIN_DIR. Exit 77 (skip) when not root.
set -euo pipefail
source "$(dirname "$0")/../chaos/common.sh"
bin=$1
cw_init "$bin"
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$CW_WORK/api_key")
checks=0
failed=0
check() {  # check DESCRIPTION COMMAND...: counts, and reports a failure without stopping
  checks=$((checks + 1))
  if "${@:2}"; then return 0; fi
  echo "FAIL: $1" >&2
  failed=$((failed + 1))
}
# Every form the key could leak in: raw, and base64 of "user:key" for the user names in use.
forms=("$key" "$(printf '%s' "$key" | base64 -w0)")
for user in iocwall username; do forms+=("$(printf '%s:%s' "$user" "$key" | base64 -w0)"); done
no_key_in() {  # no_key_in FILE...: no form of the key, whole or any 12-byte window of it
  local f i
  for f in "${forms[@]}"; do
    for ((i = 0; i + 12 <= ${#f}; i += 6)); do
      if grep -rqaF -- "${f:i:12}" "$@"; then
        echo "  key material '${f:i:12}' found in: $(grep -rlaF -- "${f:i:12}" "$@" | tr '\n' ' ')" >&2
        return 1
      fi
    done
  done
}

cw_gen "$CW_WORK/list.txt" 2000 41 --v6-every 10
cw_feedsim --collection "sec=$CW_WORK/list.txt" --request-log "$CW_WORK/requests.log"
cw_config sec sec "[metrics]
textfile = $CW_WORK/metrics.prom"
conf=$CW_WORK/sec.conf

# The daemon, as root: one cycle, then a second on SIGUSR1 after the capability drop.
ip netns exec "$CW_GW" "$bin/iocwall" -c "$conf" --verbose >"$CW_WORK/daemon.log" 2>&1 &
daemon=$!
CW_PIDS+=("$daemon")
for _ in $(seq 300); do grep -q "cycle " "$CW_WORK/daemon.log" && break; sleep 0.1; done
check "daemon's first cycle enforced the list" grep -q "cycle enforced-fresh" "$CW_WORK/daemon.log"
status=/proc/$daemon/status
capeff=$(awk '/^CapEff/ {print $2}' "$status")
capprm=$(awk '/^CapPrm/ {print $2}' "$status")
capbnd=$(awk '/^CapBnd/ {print $2}' "$status")
capinh=$(awk '/^CapInh/ {print $2}' "$status")
capamb=$(awk '/^CapAmb/ {print $2}' "$status")
netadmin=0000000000001000  # 1 << CAP_NET_ADMIN (12)
check "CapEff is CAP_NET_ADMIN only ($capeff)" test "$capeff" = $netadmin
check "CapPrm is CAP_NET_ADMIN only ($capprm)" test "$capprm" = $netadmin
check "CapBnd is CAP_NET_ADMIN only ($capbnd)" test "$capbnd" = $netadmin
check "CapInh is empty ($capinh)" test "$capinh" = 0000000000000000
check "CapAmb is empty ($capamb)" test "$capamb" = 0000000000000000
check "daemon still uid 0" test "$(awk '/^Uid/ {print $2}' "$status")" = 0
tr '\0' '\n' <"/proc/$daemon/cmdline" >"$CW_WORK/cmdline.txt"
tr '\0' '\n' <"/proc/$daemon/environ" >"$CW_WORK/environ.txt"
check "key not in the daemon's cmdline or environ" no_key_in "$CW_WORK/cmdline.txt" "$CW_WORK/environ.txt"
kill -USR1 "$daemon"
for _ in $(seq 300); do [[ $(grep -c "cycle " "$CW_WORK/daemon.log") -ge 2 ]] && break; sleep 0.1; done
check "second cycle after the drop read the 0600 key and enforced" \
  test "$(grep -c "cycle enforced-fresh" "$CW_WORK/daemon.log")" -ge 2
check "the list is in the kernel" test "$(cw_match "$CW_WORK/list.txt")" = 0
kill -TERM "$daemon"
wait "$daemon" 2>/dev/null || true

# Every user-facing output.
cw_iocwall -c "$conf" --once --verbose >"$CW_WORK/once.out" 2>&1 || true
cw_iocwall -c "$conf" --status >"$CW_WORK/status.txt" 2>&1 || true
cw_iocwall -c "$conf" --status --json >"$CW_WORK/status.json" 2>&1 || true
cw_iocwall -c "$conf" --dry-run >"$CW_WORK/dryrun.out" 2>&1 || true
cw_iocwall -c "$conf" --explain "$(head -1 "$CW_WORK/list.txt")" >"$CW_WORK/explain.out" 2>&1 || true
cw_iocwall -c "$conf" --check-config >"$CW_WORK/check.out" 2>&1 || true
check "--status --json is JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$CW_WORK/status.json"

# Error paths: a server that echoes the credentials it received in its error bodies.
echo "echo 401" >"$CW_WORK/mode"
ip netns exec "$CW_PEER" python3 "$here/hostile_server.py" --host 10.77.0.2 \
  --port-file "$CW_WORK/hport.json" --mode-file "$CW_WORK/mode" >"$CW_WORK/hostile.log" 2>&1 &
CW_PIDS+=($!)
for _ in $(seq 100); do [[ -s $CW_WORK/hport.json ]] && break; sleep 0.1; done
hport=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$CW_WORK/hport.json")
CW_API_URL=http://10.77.0.2:$hport/api CW_API_EXTRA="allow_http = true" CW_TIMEOUT=5s \
  cw_config echo sec
for st in 401 403 500 400; do
  echo "echo $st" >"$CW_WORK/mode"
  cw_iocwall -c "$CW_WORK/echo.conf" --once --verbose >"$CW_WORK/echo-$st.out" 2>&1 || true
  cw_iocwall -c "$CW_WORK/echo.conf" --status --json >"$CW_WORK/echo-$st.status" 2>&1 || true
done
# A redirect whose Location echoes the credentials (userinfo, base64 in the path, the key in
# path and query): the error quotes the target scrubbed.
for st in 302 307; do
  echo "redirect $st" >"$CW_WORK/mode"
  cw_iocwall -c "$CW_WORK/echo.conf" --once --verbose >"$CW_WORK/redirect-$st.out" 2>&1 || true
  cw_iocwall -c "$CW_WORK/echo.conf" --status --json >"$CW_WORK/redirect-$st.status" 2>&1 || true
done
# Control: the server's Location does carry the key in every form (else this proves nothing).
ip netns exec "$CW_GW" curl -s -o /dev/null -D "$CW_WORK/redirect.headers" -u "iocwall:$key" \
  "http://10.77.0.2:$hport/api/x"
check "control: the Location header holds the key" grep -qF "$key" "$CW_WORK/redirect.headers"
check "control: ... and base64 of user:key" \
  grep -qF "$(printf 'iocwall:%s' "$key" | base64 -w0)" "$CW_WORK/redirect.headers"
check "the redirect is reported with its target scrubbed" \
  grep -qE "unexpected redirect to https://\[credentials removed\]@login.example/sso/\[redacted\]" \
  "$CW_WORK/redirect-302.out"
mv "$CW_WORK/redirect.headers" "$CW_WORK/redirect.headers.control"

# Flags: guessing is off, and an unknown flag's value is never echoed.
for a in "--api.api_key $key" "--api.api_key=$key" "--api.key=$key" "-k$key"; do
  # shellcheck disable=SC2086 # word splitting wanted: the flag and its value
  cw_iocwall -c "$conf" $a --check-config >>"$CW_WORK/flags.out" 2>&1 && echo "ACCEPTED: ${a%% *}" >>"$CW_WORK/flags.out"
done
check "unknown flags are refused" test "$(grep -c "unrecognised option" "$CW_WORK/flags.out")" = 4
check "no flag was accepted" bash -c "! grep -q ACCEPTED '$CW_WORK/flags.out'"

# The echoing server did quote the credentials (else the test proves nothing): the agent's
# message shows where they were, redacted.
check "the echoed credentials were redacted" grep -q "redacted" "$CW_WORK/echo-500.out"
check "echo answers were reported as errors" grep -qE "401|403|rejected|denied" "$CW_WORK/echo-401.out"

# Non-dumpable: /proc/PID/* of a non-dumpable process belongs to root whatever its uid, so run
# the daemon as nobody (it fails its netlink calls and waits) and look at the owner. Control:
# any other process of nobody owns its /proc entries.
nb=$(mktemp -d /tmp/iocwall-nobody.XXXXXX)
chmod 755 "$nb"
printf '192.0.2.1\n' >"$nb/list.txt"
printf '[files]\npath = %s/list.txt\n[sync]\nstate_dir = %s/state\n' "$nb" "$nb" >"$nb/nb.conf"
chmod 644 "$nb/list.txt" "$nb/nb.conf"
mkdir -m 0700 "$nb/state"
chown 65534:65534 "$nb/state"  # its own state_dir (and writer lock), as a daemon needs
ip netns exec "$CW_GW" setpriv --reuid=65534 --regid=65534 --clear-groups \
  "$bin/iocwall" -c "$nb/nb.conf" >"$CW_WORK/nobody.log" 2>&1 &
nbd=$!
CW_PIDS+=("$nbd")
setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30 &
ctl=$!
CW_PIDS+=("$ctl")
for _ in $(seq 100); do grep -q "cycle " "$CW_WORK/nobody.log" && break; sleep 0.1; done
sed 's/^/  nobody daemon | /' "$CW_WORK/nobody.log" | head -5
check "daemon (as nobody) runs with uid 65534" test "$(awk '/^Uid/ {print $2}' /proc/$nbd/status)" = 65534
check "daemon is non-dumpable (/proc/PID owned by root)" test "$(stat -c %u /proc/$nbd/status)" = 0
check "control: a dumpable process of nobody owns its /proc/PID" test "$(stat -c %u /proc/$ctl/status)" = 65534
kill "$nbd" "$ctl" 2>/dev/null || true
wait "$nbd" "$ctl" 2>/dev/null || true
rm -rf "$nb"

check "key in no log, output, error, state or metrics file" no_key_in \
  "$CW_WORK/daemon.log" "$CW_WORK"/*.out "$CW_WORK"/*.status "$CW_WORK/status.txt" \
  "$CW_WORK/status.json" "$CW_WORK/state" "$CW_WORK/metrics.prom" "$CW_WORK/requests.log"

# Permissions of what the agent wrote.
bad=$(find "$CW_WORK/state" -type f ! -perm 0600 -printf '%m %p\n')
check "state files are 0600 (${bad:-all})" test -z "$bad"
check "state directories are 0700" test -z "$(find "$CW_WORK/state" -type d ! -perm 0700)"
nfiles=$(find "$CW_WORK/state" -type f | wc -l)

# A key file others can read: refused, with the fix in the message, and nothing fetched.
chmod 644 "$CW_WORK/api_key"
set +e
cw_iocwall -c "$conf" --once >"$CW_WORK/loose.out" 2>&1
loose_rc=$?
cw_iocwall -c "$conf" --check-config >"$CW_WORK/loose-check.out" 2>&1
loose_check_rc=$?
set -e
chmod 600 "$CW_WORK/api_key"
check "--once with a 0644 key file fails" test "$loose_rc" != 0
check "--check-config with a 0644 key file fails" test "$loose_check_rc" != 0
check "the refusal names the mode and the chmod to run" \
  grep -q "mode 0644.*chmod 600" "$CW_WORK/loose.out" "$CW_WORK/loose-check.out"
check "the loose key stays out of the messages" no_key_in "$CW_WORK/loose.out" "$CW_WORK/loose-check.out"
echo "--- refusal: $(grep -m1 -h "chmod 600" "$CW_WORK/loose-check.out")"

echo "FIGURES secrets: checks=$checks failed=$failed key_forms=${#forms[@]}" \
  "outputs_scanned=$(ls "$CW_WORK"/*.out "$CW_WORK"/*.status | wc -l) state_files=$nfiles" \
  "CapEff=$capeff CapPrm=$capprm CapBnd=$capbnd"
((failed == 0)) || cw_fail "$failed of $checks secret/permission checks failed"
