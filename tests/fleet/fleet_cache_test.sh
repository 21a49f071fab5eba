#!/usr/bin/env bash
# Fleets: many gateways polling one collection multiply the requests that reach Sekoia's WAF
# (5 requests/s, a block after 2 errors in 10 s). This test puts a standard caching reverse
# proxy (Debian's nginx) in front of the feed simulator, points N gateways' [api] url at it, and
# counts the requests that reach the upstream with and without the cache.
# Everything runs in a network namespace this test creates, on its loopback.
# Usage: fleet_cache_test.sh BUILD_BIN_DIR [GATEWAYS]
set -euo pipefail
bin=$1
gateways=${2:-8}
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (network namespace, nftables)"; exit 77; }
command -v nginx >/dev/null || { echo "FAIL: nginx is not installed (scripts/install-deps.sh)"; exit 1; }

ns=iocwall-fleet-$$
work=$(mktemp -d /tmp/iocwall-fleet.XXXXXX)
chmod 700 "$work"
cleanup() {
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [[ -n ${sim_pid:-} ]] && kill "$sim_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
ip -n "$ns" link set lo up
head -c 24 /dev/urandom | base64 >"$work/api_key"
chmod 600 "$work/api_key"
"$bin/iocwall-feedsim" gen-ca --out "$work/tls" >/dev/null
ip netns exec "$ns" "$bin/iocwall-feedsim" --tls-port 0 --tls-dir "$work/tls" --api-key-file "$work/api_key" \
  --collection fleet=gen:25000 --port-file "$work/port.json" --request-log "$work/upstream.log" \
  2>"$work/feedsim.err" &
sim_pid=$!
for _ in $(seq 100); do [[ -s $work/port.json ]] && break; sleep 0.1; done
sim_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https"])' "$work/port.json")
cache_port=18443

mkdir -p "$work/cache"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
# The test runs as root in a throwaway namespace; the cache lives in its private temp dir.
user root root;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
  log_format cache '\$request_uri \$status \$upstream_cache_status';
  access_log $work/nginx-access.log cache;
  # 0700 directory: the cache key below includes the Authorization header.
  proxy_cache_path $work/cache keys_zone=feed:10m max_size=256m inactive=10m use_temp_path=off;
  server {
    listen 127.0.0.1:$cache_port ssl;
    ssl_certificate $work/tls/server.pem;
    ssl_certificate_key $work/tls/server.key;
    location /api/ {
      proxy_pass https://127.0.0.1:$sim_port/api/;
      proxy_ssl_trusted_certificate $work/tls/ca.pem;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_http_version 1.1;
      proxy_cache feed;
      # Keyed by credential too, so that a gateway with another key never gets a cached page.
      proxy_cache_key "\$request_uri|\$http_authorization";
      proxy_cache_valid 200 60s;
      proxy_cache_lock on;
      proxy_ignore_headers Cache-Control Expires Set-Cookie;
      add_header X-Cache-Status \$upstream_cache_status;
    }
  }
}
CONF
in_ns nginx -c "$work/nginx.conf"
for _ in $(seq 50); do [[ -s $work/nginx.pid ]] && break; sleep 0.1; done

run_fleet() {  # run_fleet URL: every gateway runs one cycle against URL; prints upstream requests
  local url=$1 before after
  before=$(wc -l <"$work/upstream.log")
  for i in $(seq "$gateways"); do
    cat >"$work/gw$i.conf" <<CONF
[api]
url = $url
api_key_file = $work/api_key
ca_file = $work/tls/ca.pem
[collections]
id = fleet
[sync]
state_dir = $work/state-$i-$(basename "$url" | tr -c 'a-z0-9' _)
[nftables]
table = gw$i
CONF
    in_ns "$bin/iocwall" -c "$work/gw$i.conf" --once 2>>"$work/agents.log"
  done
  after=$(wc -l <"$work/upstream.log")
  echo $((after - before))
}

direct=$(run_fleet "https://127.0.0.1:$sim_port/api")
cached=$(run_fleet "https://127.0.0.1:$cache_port/api")
# Three pages with entries, then the empty page the last one's cursor leads to (the end of a
# collection is the server's paging signal, not a short page).
pages=$(( (25000 + 9999) / 10000 + 1 ))
echo "gateways: $gateways, pages per cycle: $pages"
echo "requests reaching the feed, direct: $direct; through the caching proxy: $cached"
[[ $direct -eq $((gateways * pages)) ]] || { echo "FAIL: expected $((gateways * pages)) direct requests"; exit 1; }
[[ $cached -eq $pages ]] || {
  echo "FAIL: expected $pages requests through the cache"
  cut -c1-160 "$work/nginx-access.log"
  tail -n "$cached" "$work/upstream.log" | cut -c1-400
  exit 1
}
# Every gateway behind the cache enforces the whole collection, exactly as the direct ones did.
for i in $(seq "$gateways"); do
  n=$(in_ns nft -j list set inet "gw$i" blocklist_v4 | python3 -c '
import json, sys
d = json.load(sys.stdin)["nftables"]
print(sum(len(o["set"].get("elem", [])) for o in d if "set" in o))')
  [[ $n -gt 0 ]] || { echo "FAIL: gateway $i enforces nothing"; exit 1; }
done
hits=$(grep -c . "$work/nginx-access.log")
echo "nginx served $hits requests"
# The key never reaches the agents' logs.
if grep -qF "$(cat "$work/api_key")" "$work/agents.log"; then echo "FAIL: key in agent log"; exit 1; fi
echo "PASS: the cache cut upstream requests from $direct to $cached"
