# Sourced by the deployment tests: failure and skip helpers, a private temporary
# directory removed on exit.
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ctest counts exit code 77 as "skipped" (SKIP_RETURN_CODE in CMakeLists.txt).
skip() {
  echo "SKIP: $*" >&2
  exit 77
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
  done
}

need_root() {
  [[ $(id -u) -eq 0 ]] || skip "needs root ($*)"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/iocwall-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
