#!/usr/bin/env bash
# The README's "run the main job": a real, self-contained demo on one machine, as root.
#  1. installs the dependencies and builds iocwall and iocwall-feedsim;
#  2. makes two throwaway network namespaces joined by a veth pair: "gw" (the gateway that runs
#     iocwall) and "peer" (hosts on the other side, one attacker and one neighbour);
#  3. serves a sample IOC collection over HTTPS from the feed simulator inside "gw" (a test CA,
#     Basic auth with an API key read from a 0600 file, 10,000 entries a page, Cursor paging);
#  4. runs one iocwall cycle, shows --status, the kernel set, --explain, and a blocked and an
#     allowed probe;
#  5. the seed's loop: an analyst adds an IP to the collection (the playbook's API call) with a
#     validity of seconds; the next cycle blocks it; when the validity ends the kernel lifts the
#     block by itself (a per-element timeout), with no agent cycle needed;
#  6. removes everything it made. The host's own ruleset is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [[ ${IOCWALL_DEMO_SKIP_SETUP:-0} != 1 ]]; then
  bash scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target iocwall iocwall-feedsim
fi
bin=${IOCWALL_BUILD_DIR:-$repo/build}/bin

gw=iocwall-demo-gw-$$
peer=iocwall-demo-peer-$$
work=$(mktemp -d /tmp/iocwall-demo.XXXXXX)
sim_pid=
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  ip netns del "$gw" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_gw() { ip netns exec "$gw" "$@"; }
in_peer() { ip netns exec "$peer" "$@"; }

step "Two throwaway namespaces: $gw (runs iocwall) <-veth-> $peer"
ip netns add "$gw"
ip netns add "$peer"
ip link add veth-gw netns "$gw" type veth peer name veth-peer netns "$peer"
ip -n "$gw" addr add 198.51.100.1/24 dev veth-gw
ip -n "$peer" addr add 198.51.100.66/24 dev veth-peer   # the attacker the SOC found
ip -n "$peer" addr add 198.51.100.77/24 dev veth-peer   # a neighbour, allowlisted
ip -n "$peer" addr add 198.51.100.88/24 dev veth-peer   # added by an analyst later
for ns in "$gw" "$peer"; do ip -n "$ns" link set lo up; done
ip -n "$gw" link set veth-gw up
ip -n "$peer" link set veth-peer up

step "A sample IOC collection: 25,000 indicators, a /28 with the attacker"
python3 - "$work/collection.txt" <<'PY'
import random, sys
random.seed(7)
out = set()
while len(out) < 24990:
    out.add("203.0.%d.%d" % (random.randrange(0, 256), random.randrange(1, 255)) if random.random() < 0.3
            else "%d.%d.%d.%d" % (random.choice([45, 91, 185, 194]), random.randrange(256),
                                  random.randrange(256), random.randrange(1, 255)))
lines = sorted(out) + ["198.51.100.64/28", "2001:db8:bad::/48", "2001:db8:feed::1",
                       "127.0.0.1", "198.51.100.1", "evil.example.com"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
head -c 32 /dev/urandom | base64 >"$work/api_key"
chmod 600 "$work/api_key"
"$bin/iocwall-feedsim" gen-ca --out "$work/tls" >/dev/null

step "The feed simulator serves it over HTTPS inside $gw"
ip netns exec "$gw" "$bin/iocwall-feedsim" --tls-port 0 --tls-dir "$work/tls" --api-key-file "$work/api_key" \
  --collection "demo-blocklist=$work/collection.txt" --port-file "$work/port.json" \
  --request-log "$work/requests.log" 2>"$work/feedsim.log" &
sim_pid=$!
for _ in $(seq 100); do [[ -s $work/port.json ]] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https"])' "$work/port.json")
echo "https://127.0.0.1:$port/api (test CA $work/tls/ca.pem)"

cat >"$work/iocwall.conf" <<CONF
[api]
url = https://127.0.0.1:$port/api
api_key_file = $work/api_key
ca_file = $work/tls/ca.pem
; per-indicator validity: the kernel expires each element by itself
format = json

[collections]
id = demo-blocklist

[allowlist]
prefix = 198.51.100.77

[sync]
state_dir = $work/state
interval = 10s
jitter = 0

[nftables]
hooks = input, forward, output
CONF
echo "configuration:"; sed 's/^/  /' "$work/iocwall.conf"
iw() { in_gw "$bin/iocwall" -c "$work/iocwall.conf" "$@"; }

step "iocwall --once: fetch every page, normalise, diff, one atomic transaction"
iw --once

step "iocwall --status"
iw --status || true

step "The kernel's view (nft, as an independent oracle)"
in_gw nft list set inet iocwall blocklist_v4 | head -n 8 || true; echo "  ..."
in_gw nft list chain inet iocwall input

probe() {  # probe SOURCE: three pings from SOURCE in $peer to the gateway
  if in_peer ping -n -q -c 3 -W 1 -i 0.2 -I "$1" 198.51.100.1 >/dev/null 2>&1; then
    echo "  probe from $1: PASSES"
  else
    echo "  probe from $1: BLOCKED"
  fi
}
step "Probes from $peer to the gateway"
probe 198.51.100.66
probe 198.51.100.77
probe 198.51.100.88

step "iocwall --explain 198.51.100.66 and 198.51.100.77"
iw --explain 198.51.100.66 || true
iw --explain 198.51.100.77 || true

step "The loop: an analyst's playbook adds 198.51.100.88 with a validity of 8 seconds"
until=$(date -u -d '+8 seconds' +%Y-%m-%dT%H:%M:%SZ)
in_gw "$bin/iocwall-feedsim" add --url "https://127.0.0.1:$port/api" --ca-file "$work/tls/ca.pem" \
  --collection demo-blocklist --api-key-file "$work/api_key" --valid-until "$until" \
  198.51.100.88 2>&1 | sed 's/^/  /'
iw --once
probe 198.51.100.88
echo "  the kernel element carries the indicator's validity as its timeout:"
in_gw nft list set inet iocwall blocklist_v4 | grep -o '198.51.100.88[^,]*' | sed 's/^/    /' || true

step "...9 seconds later, with no iocwall cycle in between: the kernel has lifted the block itself"
sleep 9
probe 198.51.100.88
echo "  (even with the agent down or the feed unreachable, a block never outlives its validity)"
iw --once

step "Final status"
iw --status || true
echo
echo "Feed requests served: $(wc -l <"$work/requests.log") (request log: the API key is never in it)"
grep -c "$(cat "$work/api_key")" "$work/requests.log" "$work/feedsim.log" 2>/dev/null | sed 's/^/  occurrences of the key: /' || true
step "Cleaning up: namespaces, simulator, temporary files"
