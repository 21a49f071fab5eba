#!/usr/bin/env bash
# The README's test command: installs every dependency, builds with -Werror, runs the whole
# suite (unit, agent, feed client + simulator over loopback, kernel tests in network
# namespaces, deployment checks), then the unit suites again under ASan+UBSan and each fuzz
# target for a short bounded time. Run as root on Debian 12.
#   IOCWALL_LONG=1   also run the long fuzz / chaos / soak runs (see RELIABILITY.md)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/install-deps.sh

echo "== build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOCWALL_WERROR=ON
cmake --build build -j"$jobs"

echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

if [[ -f scripts/sanitize-and-fuzz.sh ]]; then
  bash scripts/sanitize-and-fuzz.sh
fi
