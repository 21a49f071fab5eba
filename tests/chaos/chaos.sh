#!/usr/bin/env bash
# Chaos against the real kernel, in a throwaway network namespace pair (see common.sh).
#   chaos.sh BIN_DIR kill     [KILLS] [ENTRIES]   SIGKILL `iocwall --once` at random points of
#                                                 large applies (ENTRIES entries, half of them
#                                                 replaced each cycle, one IPv6 in ten)
#   chaos.sh BIN_DIR tables   [KILLS] [ENTRIES]   the same while another process keeps changing
#                                                 other tables of the ruleset
#   chaos.sh BIN_DIR flush    [KILLS] [ENTRIES]   the same, and after each kill someone flushes
#                                                 iocwall's sets or deletes its table by hand
#   chaos.sh BIN_DIR diskfull [ENTRIES]           state_dir on a tiny tmpfs (private mount
#                                                 namespace): the agent keeps enforcing and
#                                                 --status says the state cannot be saved
# After every kill the kernel must hold exactly the old list or the new one (compared as sets of
# addresses with `nft -j list set`, an oracle independent of iocwall), and the next cycle must
# exit 0 with exactly the new list. In kill and tables, a peer pings the gateway from an address
# both lists block, 100 times a second, the whole time: every reply is a leaked packet.
# Prints one FIGURES line for RELIABILITY.md. Exit 77 (skip) when not root.
set -euo pipefail
source "$(dirname "$0")/common.sh"

bin=$1
scenario=$2
cw_init "$bin"

# A peer address X blocked by both lists, pinging the gateway; replies counted at the end.
start_prober() {
  local x=$1
  ip -n "$CW_PEER" addr add "$x/32" dev veth-peer
  ip -n "$CW_GW" route add "$x/32" via 10.77.0.2
  ip netns exec "$CW_PEER" ping -n -q -i 0.01 -W 1 -I "$x" 10.77.0.1 >"$CW_WORK/ping.txt" 2>&1 &
  PROBER=$!
  CW_PIDS+=("$PROBER")
}
stop_prober() {  # sets SENT and LEAKED
  kill -INT "$PROBER" 2>/dev/null || true
  wait "$PROBER" 2>/dev/null || true
  SENT=$(awk '/packets transmitted/ {print $1}' "$CW_WORK/ping.txt")
  LEAKED=$(awk '/packets transmitted/ {print $4}' "$CW_WORK/ping.txt")
  [[ -n $SENT && -n $LEAKED ]] || cw_fail "prober output unreadable: $(cat "$CW_WORK/ping.txt")"
}

# The other tenant of the ruleset: its own tables, changed as fast as nft allows.
start_other_tables() {
  cat >"$CW_WORK/other.nft" <<'NFT'
table inet chaos_other {
  set s { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 198.18.0.1 } }
  chain c { type filter hook input priority 10; ip saddr @s counter accept }
}
table ip chaos_nat { chain post { type nat hook postrouting priority 100; } }
NFT
  (
    while :; do
      ip netns exec "$CW_GW" nft -f "$CW_WORK/other.nft" 2>/dev/null || true
      ip netns exec "$CW_GW" nft add element inet chaos_other s "{ 203.0.113.$((RANDOM % 250 + 1)) }" 2>/dev/null || true
      ip netns exec "$CW_GW" nft delete table inet chaos_other 2>/dev/null || true
      ip netns exec "$CW_GW" nft delete table ip chaos_nat 2>/dev/null || true
      OTHER_CHANGES=$((${OTHER_CHANGES:-0} + 4))
      echo "$OTHER_CHANGES" >"$CW_WORK/other.count"
    done
  ) &
  CW_PIDS+=($!)
}

run_once() {  # run_once LIST_NAME: one cycle to completion; must exit 0
  if ! cw_iocwall -c "$CW_WORK/$1.conf" --once >"$CW_WORK/once.out" 2>&1; then
    cat "$CW_WORK/once.out" >&2
    return 1
  fi
}

kill_loop() {
  local kills=$1 entries=$2 mode=$3
  cw_gen "$CW_WORK/a.txt" "$entries" 11 --v6-every 10
  cw_gen "$CW_WORK/b.txt" "$entries" 12 --v6-every 10 --keep "$CW_WORK/a.txt" --keep-fraction 0.5
  cw_feedsim --collection "lista=$CW_WORK/a.txt" --collection "listb=$CW_WORK/b.txt"
  cw_config a lista
  cw_config b listb
  run_once a || cw_fail "first cycle"
  [[ $(cw_match "$CW_WORK/a.txt") == 0 ]] || cw_fail "first cycle: kernel is not list a"
  # Calibration: how long a full churn takes, so kills spread over the whole cycle.
  local t0 t1
  t0=$(date +%s%N)
  run_once b || cw_fail "calibration cycle"
  t1=$(date +%s%N)
  [[ $(cw_match "$CW_WORK/b.txt") == 0 ]] || cw_fail "calibration: kernel is not list b"
  local cycle_ms=$(((t1 - t0) / 1000000))
  local probe
  probe=$(comm -12 <(sort "$CW_WORK/a.txt") <(sort "$CW_WORK/b.txt") | awk '!/:/ {print; exit}' || true)
  [[ $mode == flush ]] || start_prober "$probe"
  [[ $mode == tables ]] && start_other_tables
  local cur=b next i delay pid rc got old_seen=0 new_seen=0 finished=0 flushes=0 other=0
  local started=$(date +%s)
  for ((i = 1; i <= kills; i++)); do
    next=$([[ $cur == a ]] && echo b || echo a)
    # Anywhere in the cycle, but weighted to its second half, where the diff is applied (the
    # first half is mostly fetching pages at the API's 5 requests a second).
    delay=$((RANDOM * 32768 + RANDOM))
    if ((RANDOM % 4 == 0)); then
      delay=$((delay % (cycle_ms + 1)))
    else
      delay=$((cycle_ms / 2 + delay % (cycle_ms * 6 / 10 + 1)))
    fi
    ip netns exec "$CW_GW" "$bin/iocwall" -c "$CW_WORK/$next.conf" --once >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    set +e
    wait "$pid" 2>/dev/null
    rc=$?
    set -e
    [[ $rc == 137 ]] || finished=$((finished + 1))
    got=$(cw_match "$CW_WORK/$cur.txt" "$CW_WORK/$next.txt") ||
      cw_fail "kill $i (after ${delay} ms): kernel holds neither the old nor the new list: $got"
    [[ $got == 0 ]] && old_seen=$((old_seen + 1)) || new_seen=$((new_seen + 1))
    if [[ $mode == flush ]]; then
      case $((RANDOM % 3)) in
        0) cw_gw nft flush set inet iocwall blocklist_v4 ;;
        1) cw_gw nft flush set inet iocwall blocklist_v6; cw_gw nft flush set inet iocwall blocklist_v4 ;;
        2) cw_gw nft delete table inet iocwall ;;
      esac
      flushes=$((flushes + 1))
    fi
    run_once "$next" || cw_fail "kill $i: the next cycle did not converge"
    got=$(cw_match "$CW_WORK/$next.txt") || cw_fail "kill $i: after the next cycle: $got"
    cur=$next
  done
  local secs=$(($(date +%s) - started))
  local leak_text="prober not run (the hand flush opens the set by design)"
  if [[ $mode != flush ]]; then
    stop_prober
    leak_text="probe packets sent $SENT, leaked $LEAKED"
    [[ $LEAKED == 0 ]] || cw_fail "$LEAKED probe packets from $probe (blocked by both lists) got through"
  fi
  [[ $mode == tables ]] && other=$(cat "$CW_WORK/other.count" 2>/dev/null || echo 0)
  echo "FIGURES chaos-$mode: entries=$entries kills=$kills survived=$kills" \
    "kernel_old_after_kill=$old_seen kernel_new_after_kill=$new_seen" \
    "finished_before_kill=$finished cycle_ms=$cycle_ms hand_flushes=$flushes" \
    "other_tenant_changes=$other $leak_text seconds=$secs"
}

diskfull() {
  local entries=$1
  cw_gen "$CW_WORK/a.txt" "$entries" 21 --v6-every 10
  cw_gen "$CW_WORK/b.txt" "$entries" 22 --v6-every 10 --keep "$CW_WORK/a.txt" --keep-fraction 0.9
  cw_feedsim --collection "lista=$CW_WORK/a.txt" --collection "listb=$CW_WORK/b.txt"
  mkdir -p "$CW_WORK/state"
  cw_config a lista
  cw_config b listb
  # Everything below runs in one private mount namespace: the tmpfs is invisible elsewhere and
  # disappears with it. 64 KiB holds state.json but no 100k-entry snapshot; then the tmpfs is
  # filled to the last byte and a cycle must still enforce.
  cat >"$CW_WORK/diskfull.sh" <<SH
set -u
mount -t tmpfs -o size=64k,mode=0700 iocwall-full "$CW_WORK/state"
iw() { ip netns exec "$CW_GW" "$bin/iocwall" "\$@"; }
iw -c "$CW_WORK/a.conf" --once >"$CW_WORK/once-a.out" 2>&1; echo "once_a=\$?"
python3 "$CW_NFTSET" match --netns "$CW_GW" "$CW_WORK/a.txt" | sed 's/^/match_a=/'
iw -c "$CW_WORK/a.conf" --status >"$CW_WORK/status-a.out" 2>&1; echo "status_a=\$?"
dd if=/dev/zero of="$CW_WORK/state/filler" bs=1k count=1024 2>/dev/null
echo "free_kb=\$(df -k --output=avail "$CW_WORK/state" | tail -1 | tr -d ' ')"
iw -c "$CW_WORK/b.conf" --once >"$CW_WORK/once-b.out" 2>&1; echo "once_b=\$?"
python3 "$CW_NFTSET" match --netns "$CW_GW" "$CW_WORK/b.txt" | sed 's/^/match_b=/'
iw -c "$CW_WORK/b.conf" --status >"$CW_WORK/status-b.out" 2>&1; echo "status_b=\$?"
iw -c "$CW_WORK/b.conf" --status --json >"$CW_WORK/status-b.json" 2>&1; echo "status_json_b=\$?"
SH
  unshare -m --propagation private bash "$CW_WORK/diskfull.sh" >"$CW_WORK/diskfull.out" 2>&1
  cat "$CW_WORK/diskfull.out"
  local v
  v() { awk -F= -v k="$1" '$1 == k {print $2}' "$CW_WORK/diskfull.out"; }
  [[ $(v match_a) == 0 ]] || cw_fail "disk full (snapshot too big): list a not enforced"
  [[ $(v match_b) == 0 ]] || cw_fail "disk full (no byte left): list b not enforced"
  # Enforced but not remembered: --status must not say OK, and must say why.
  [[ $(v status_a) != 0 ]] || cw_fail "--status says OK although the last good list could not be saved"
  grep -qiE "no space|cannot (write|save)|state" "$CW_WORK/status-a.out" ||
    cw_fail "--status does not report the state write failure: $(cat "$CW_WORK/status-a.out")"
  grep -qiE "no space" "$CW_WORK/once-a.out" "$CW_WORK/once-b.out" ||
    cw_fail "the cycle's log does not say the disk is full"
  echo "--- once (a), 64 KiB state dir:"; cat "$CW_WORK/once-a.out"
  echo "--- status (a):"; cat "$CW_WORK/status-a.out"
  echo "--- once (b), 0 bytes free:"; cat "$CW_WORK/once-b.out"
  echo "--- status (b):"; cat "$CW_WORK/status-b.out"
  echo "FIGURES chaos-diskfull: entries=$entries enforced_with_full_disk=2/2" \
    "once_exit=$(v once_a),$(v once_b) status_exit=$(v status_a),$(v status_b)"
}

case $scenario in
  kill | tables | flush) kill_loop "${3:-20}" "${4:-100000}" "$scenario" ;;
  diskfull) diskfull "${3:-100000}" ;;
  *) cw_fail "unknown scenario $scenario" ;;
esac
