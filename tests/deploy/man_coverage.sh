#!/usr/bin/env bash
# Every flag of `iocwall --help` and every configuration key is documented
# (see man_coverage.py). With --self-test: the check really fails when a flag
# or a key is missing from a page.
# usage: man_coverage.sh [--self-test] IOCWALL_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need mandoc python3
here=$(cd "$(dirname "$0")" && pwd)
self_test=false
if [[ $1 == --self-test ]]; then
  self_test=true
  shift
fi
bin=$1
src=$2
check() {
  python3 "$here/man_coverage.py" "$bin" "$1" "$src/deploy/iocwall.conf.example" \
    "$src/agent/config.cc"
}
if ! $self_test; then
  check "$src/man"
  exit
fi

# Remove one flag from iocwall.8, then one key from iocwall.conf.5: each must be reported.
mkdir -p "$tmp/a" "$tmp/b"
cp "$src/man/iocwall.8" "$src/man/iocwall.conf.5" "$tmp/a/"
cp "$src/man/iocwall.8" "$src/man/iocwall.conf.5" "$tmp/b/"
sed -i 's/^\.It Fl -dry-run$/.It Fl -xdry/' "$tmp/a/iocwall.8"
sed -i 's/^\.It Cm connect_timeout No/.It Cm connect_timeout_x No/' "$tmp/b/iocwall.conf.5"
out=$(check "$tmp/a" 2>&1) && fail "a page without --dry-run passed: $out"
grep -q 'does not document the flag --dry-run' <<<"$out" || fail "unexpected report: $out"
out=$(check "$tmp/b" 2>&1) && fail "a page without connect_timeout passed: $out"
grep -q 'does not document connect_timeout under \[api\]' <<<"$out" ||
  fail "unexpected report: $out"
echo "the coverage check reports a missing flag and a missing key"
