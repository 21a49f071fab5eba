#!/usr/bin/env bash
# `systemd-analyze security` rates both units at MAX or lower (offline: no
# running systemd needed). Prints the scores; the README records the daemon's.
# usage: systemd_security.sh UNIT_DIR MAX
source "$(dirname "$0")/common.sh"
need systemd-analyze
unit_dir=$1
max=$2
for unit in iocwall.service iocwall-restore.service; do
  out=$(systemd-analyze security --offline=true --no-pager "$unit_dir/$unit" 2>&1) ||
    { echo "$out" >&2; fail "systemd-analyze security $unit failed"; }
  score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$out")
  [[ -n $score ]] || { echo "$out" >&2; fail "no exposure score for $unit"; }
  echo "$unit: exposure $score (at most $max)"
  if ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    grep '✗' <<<"$out" >&2 || true
    fail "$unit: exposure $score is above $max"
  fi
done
