#!/usr/bin/env bash
# mandoc -Tlint reports nothing, style messages included, for both pages.
# usage: man_lint.sh MAN_DIR
source "$(dirname "$0")/common.sh"
need mandoc
man_dir=$1
# From the pages' directory, so that the Xr between the two pages resolves.
cd "$man_dir"
out=$(mandoc -Tlint -Wall iocwall.8 iocwall.conf.5 2>&1) && rc=0 || rc=$?
# mandoc also notes, without naming a page, that the system's mandoc.db index
# is missing (Debian does not build one): that is about the machine, not the pages.
findings=$(grep -v 'outdated mandoc.db' <<<"$out" || true)
if [[ -n $findings ]]; then
  echo "$findings" >&2
  fail "mandoc -Tlint found problems"
fi
[[ $rc -eq 0 ]] || fail "mandoc -Tlint exited $rc"
echo "mandoc -Tlint: iocwall.8 and iocwall.conf.5 are clean"
