#!/usr/bin/env bash
# mandoc -Tlint reports nothing, style messages included, for both pages; and both pages render
# with a proper header in mandoc and in groff (what Debian's man-db uses): no "BSD ... Manual",
# a fixed date, and the package's version in .Os.
# usage: man_lint.sh MAN_DIR [PROJECT_VERSION]
source "$(dirname "$0")/common.sh"
need mandoc
man_dir=$1
version=${2:-}
# From the pages' directory, so that the Xr between the two pages resolves.
cd "$man_dir"
out=$(mandoc -Tlint -Wall iocwall.8 iocwall.conf.5 2>&1) && rc=0 || rc=$?
# mandoc also notes, without naming a page, that the system's mandoc.db index
# is missing (Debian does not build one): that is about the machine, not the pages.
# "operating system explicitly specified" is a NetBSD base-system rule (mandoc(1) marks it
# "NetBSD"): a third-party page names its package in .Os, as mdoc(7) allows.
findings=$(grep -v -e 'outdated mandoc.db' \
  -e 'STYLE: operating system explicitly specified: Os iocwall (NetBSD)$' <<<"$out" || true)
if [[ -n $findings ]]; then
  echo "$findings" >&2
  fail "mandoc -Tlint found problems"
fi
# Only STYLE messages may be left, so mandoc's exit code is at most 1 (style) here.
[[ $rc -le 1 ]] || fail "mandoc -Tlint exited $rc"
echo "mandoc -Tlint: iocwall.8 and iocwall.conf.5 are clean"

for page in iocwall.8 iocwall.conf.5; do
  grep -q '^\.Dd \$Mdocdate' "$page" && fail "$page: .Dd \$Mdocdate\$ renders as the day it is read"
  grep -qE '^\.Dd [A-Z][a-z]+ [0-9]{1,2}, [0-9]{4}$' "$page" || fail "$page: .Dd is not a fixed date"
  if [[ -n $version ]]; then
    grep -qx "\.Os iocwall $version" "$page" || fail "$page: .Os is not 'iocwall $version'"
  fi
  renders=("mandoc -Tascii")
  command -v groff >/dev/null && renders+=("groff -mandoc -Tascii")
  for r in "${renders[@]}"; do
    text=$($r "$page" 2>&1 | sed 's/.\x08//g' | grep -v '^ *$')
    head=$(head -1 <<<"$text")
    foot=$(tail -1 <<<"$text")
    [[ $head =~ ^IOCWALL(\.CONF)?\([58]\)\ +(System\ Manager\'s|File\ Formats)\ Manual\ +IOCWALL ]] ||
      fail "$page ($r): header is '$head'"
    [[ $foot =~ ^iocwall\ [0-9.]+\ +[A-Z][a-z]+\ [0-9]+,\ [0-9]{4}\ +iocwall ]] ||
      fail "$page ($r): footer is '$foot'"
  done
done
echo "headers: proper title, volume, version and fixed date in mandoc and groff"
