#!/usr/bin/env bash
# Run by scripts/test.sh after the normal suite (see RELIABILITY.md):
#  1. builds a second tree, build-asan, with clang, AddressSanitizer (+LeakSanitizer) and UBSan
#     (no recovery: any undefined behaviour aborts), and runs the unit, agent, feed-client and
#     kernel suites in it with ctest;
#  2. runs every libFuzzer target of tests/fuzz for a bounded time each (20 s; two at a time),
#     starting from its seed corpus in the repo, and prints the executions reached.
# IOCWALL_LONG=1: each fuzz target runs 10 minutes (IOCWALL_FUZZ_SECONDS overrides), then the
# long chaos, hostile and secrets runs (tests/chaos, tests/hostile) against the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
long=${IOCWALL_LONG:-0}
fuzz_seconds=${IOCWALL_FUZZ_SECONDS:-$([[ $long == 1 ]] && echo 600 || echo 20)}
fuzz_seed=${IOCWALL_FUZZ_SEED:-$([[ $long == 1 ]] && echo 0 || echo 1)}
started=$(date +%s)

echo "== sanitizer build (clang, ASan + UBSan + LSan, build-asan)"
CXX=${IOCWALL_SANITIZE_CXX:-clang++} cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DIOCWALL_SANITIZE=ON -DIOCWALL_FUZZ=ON \
  -DIOCWALL_WERROR=ON >/dev/null
suites=(core_test agent_test feeds_test nft_backend_test packet_test timeout_test hold_test)
cmake --build build-asan -j"$jobs" --target "${suites[@]}" iocwall-feedsim iocwall fuzz_all

echo "== tests under ASan + UBSan: ${suites[*]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Only the tests of those executables (and the fuzz corpus replays): the deployment, e2e and
# chaos tests run in the normal build, and benchmarks are not tests.
ids=$(ctest --test-dir build-asan --show-only=json-v1 | python3 -c '
import json, os, sys
want = set(sys.argv[1:])
d = json.load(sys.stdin)
print(",".join(str(i + 1) for i, t in enumerate(d["tests"])
               if os.path.basename((t.get("command") or [""])[0]) in want
               or t["name"].endswith("_corpus")))' "${suites[@]}" $(ls tests/fuzz/corpus))
ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 300 -I "0,0,0,$ids"

echo "== fuzzing: each target ${fuzz_seconds} s from its seed corpus"
out=build-asan/fuzz
mkdir -p "$out"
run_fuzzer() {  # run_fuzzer TARGET: the seed corpus is read, new inputs go to $out/TARGET
  local t=$1
  mkdir -p "$out/$t"
  # malloc_limit: no input of a few KB may allocate 512 MB at once (a length taken on trust).
  # A fixed seed in the short runs makes the gate reproducible (the same inputs in CI as on a
  # developer's machine); the long runs explore with a fresh seed each time.
  build-asan/bin/"$t" -seed="$fuzz_seed" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=512 -print_final_stats=1 -artifact_prefix="$out/$t-" \
    "$out/$t" "tests/fuzz/corpus/$t" >"$out/$t.log" 2>&1
}
targets=($(ls tests/fuzz/corpus))
status=0
pids=()
for t in "${targets[@]}"; do
  run_fuzzer "$t" &
  pids+=($!)
  if ((${#pids[@]} >= jobs)); then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
for t in "${targets[@]}"; do
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$out/$t.log")
  cov=$(grep -oE 'cov: [0-9]+' "$out/$t.log" | tail -1 | awk '{print $2}')
  corpus=$(ls "$out/$t" | wc -l)
  if grep -qE "ERROR: |invariant broken|SUMMARY: " "$out/$t.log"; then
    echo "FIGURES fuzz $t: FINDING, see $out/$t.log and $out/$t-*"
    grep -E "ERROR: |invariant broken|SUMMARY: " "$out/$t.log" | head -5
    status=1
  else
    echo "FIGURES fuzz $t: seconds=$fuzz_seconds execs=${execs:-?} coverage_edges=${cov:-?} new_corpus_inputs=$corpus findings=0"
  fi
done
((status == 0)) || { echo "sanitize-and-fuzz: FAILED" >&2; exit 1; }

if [[ $long == 1 ]]; then
  echo "== long runs (IOCWALL_LONG=1): chaos, hostile feeds, secrets against build/bin"
  bin=${IOCWALL_BUILD_DIR:-build}/bin
  bash tests/chaos/chaos.sh "$bin" kill 100 100000
  bash tests/chaos/chaos.sh "$bin" tables 100 100000
  bash tests/chaos/chaos.sh "$bin" flush 100 100000
  bash tests/chaos/chaos.sh "$bin" diskfull 100000
  bash tests/hostile/hostile.sh "$bin" 10000000
  bash tests/hostile/secrets.sh "$bin"
fi
echo "sanitize-and-fuzz: passed in $(($(date +%s) - started)) s"
