# Shared by tests/chaos and tests/hostile: a throwaway network namespace pair ("gw" runs iocwall
# and the feed simulator on its loopback; "peer" sends probe packets over a veth), a feed
# simulator over HTTPS with a test CA, an iocwall configuration, the kernel oracle, cleanup.
# Nothing here touches the host's ruleset: every nft and iocwall call runs inside "gw".
# Usage: source common.sh; cw_init BIN_DIR; ... (cleanup runs on exit)
set -euo pipefail

CW_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CW_NFTSET="$CW_HERE/nftset.py"

cw_init() {  # cw_init BIN_DIR
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root (network namespaces, nftables)"
    exit 77
  fi
  CW_BIN=$1
  [[ -x $CW_BIN/iocwall && -x $CW_BIN/iocwall-feedsim ]] || {
    echo "FAIL: no iocwall / iocwall-feedsim in $CW_BIN" >&2
    exit 1
  }
  CW_WORK=$(mktemp -d /tmp/iocwall-chaos.XXXXXX)
  CW_GW=iocw-gw-$$-$RANDOM
  CW_PEER=iocw-peer-$$-$RANDOM
  CW_PIDS=()
  trap cw_cleanup EXIT
  trap 'exit 130' INT TERM
  ip netns add "$CW_GW"
  ip netns add "$CW_PEER"
  ip link add veth-gw netns "$CW_GW" type veth peer name veth-peer netns "$CW_PEER"
  ip -n "$CW_GW" addr add 10.77.0.1/24 dev veth-gw
  ip -n "$CW_PEER" addr add 10.77.0.2/24 dev veth-peer
  for ns in "$CW_GW" "$CW_PEER"; do ip -n "$ns" link set lo up; done
  ip -n "$CW_GW" link set veth-gw up
  ip -n "$CW_PEER" link set veth-peer up
  ip -n "$CW_PEER" route add default via 10.77.0.1
  head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$CW_WORK/api_key"
  chmod 600 "$CW_WORK/api_key"
  "$CW_BIN/iocwall-feedsim" gen-ca --out "$CW_WORK/tls" >/dev/null
}

cw_cleanup() {
  local pid
  for pid in "${CW_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${CW_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$CW_GW" 2>/dev/null || true
  ip netns del "$CW_PEER" 2>/dev/null || true
  [[ ${CW_KEEP:-0} == 1 ]] || rm -rf "$CW_WORK"
}

cw_gw() { ip netns exec "$CW_GW" "$@"; }
cw_peer() { ip netns exec "$CW_PEER" "$@"; }

# cw_feedsim ARGS...: starts the simulator (HTTPS on a free port of gw's loopback); sets
# CW_PORT and CW_URL.
cw_feedsim() {
  rm -f "$CW_WORK/port.json"
  # Not through cw_gw: $! must be the simulator itself (ip execs it), so cleanup can kill it.
  ip netns exec "$CW_GW" "$CW_BIN/iocwall-feedsim" --tls-port 0 --tls-dir "$CW_WORK/tls" \
    --api-key-file "$CW_WORK/api_key" --port-file "$CW_WORK/port.json" "$@" \
    >>"$CW_WORK/feedsim.log" 2>&1 &
  CW_PIDS+=($!)
  local i
  for i in $(seq 300); do [[ -s $CW_WORK/port.json ]] && break; sleep 0.1; done
  CW_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https"])' \
    "$CW_WORK/port.json")
  CW_URL=https://127.0.0.1:$CW_PORT/api
}

# cw_config NAME COLLECTION [EXTRA_INI]: writes $CW_WORK/NAME.conf for one collection.
cw_config() {
  cat >"$CW_WORK/$1.conf" <<CONF
[api]
url = ${CW_API_URL:-$CW_URL}
api_key_file = $CW_WORK/api_key
ca_file = $CW_WORK/tls/ca.pem
timeout = ${CW_TIMEOUT:-60s}
${CW_API_EXTRA:-}

[collections]
id = $2

[sync]
state_dir = ${CW_STATE:-$CW_WORK/state}
interval = 10s
jitter = 0
max_shrink_percent = 100
${CW_SYNC_EXTRA:-}
${3:-}
CONF
}

cw_iocwall() { cw_gw "$CW_BIN/iocwall" "$@"; }

# cw_match LIST...: index of the list the kernel holds exactly; "none..." and status 1 if none.
cw_match() { python3 "$CW_NFTSET" match --netns "$CW_GW" "$@"; }
cw_count() { python3 "$CW_NFTSET" count --netns "$CW_GW"; }
cw_covers() { python3 "$CW_NFTSET" covers --netns "$CW_GW" "$@"; }
cw_gen() { python3 "$CW_NFTSET" gen "$@"; }

cw_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Peak RSS in kB and wall seconds of a command run under /usr/bin/time -v; its exit status in
# CW_RC. Output of the command in $CW_WORK/last.out / last.err.
cw_measure() {
  set +e
  /usr/bin/time -v -o "$CW_WORK/time.txt" "$@" >"$CW_WORK/last.out" 2>"$CW_WORK/last.err"
  CW_RC=$?
  set -e
  CW_RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$CW_WORK/time.txt")
  CW_WALL=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$CW_WORK/time.txt")
}
