#!/usr/bin/env bash
# `systemd-analyze verify` is clean for both units, and the units keep the
# contract of issue 6 (notify + watchdog, no restart on a configuration error, reload by
# SIGHUP, the key as a credential, CAP_NET_ADMIN only, early-boot restore).
# verify checks that ExecStart= binaries and Documentation= man pages exist: the
# test verifies copies that name the built binary, with the pages on MANPATH.
# usage: systemd_verify.sh IOCWALL_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need systemd-analyze man
bin=$1
src=$2
units=$src/deploy/systemd

mkdir -p "$tmp/units" "$tmp/man/man8" "$tmp/man/man5"
cp "$src/man/iocwall.8" "$tmp/man/man8/"
cp "$src/man/iocwall.conf.5" "$tmp/man/man5/"
for unit in iocwall.service iocwall-restore.service; do
  grep -q '/usr/sbin/iocwall' "$units/$unit" || fail "$unit does not run /usr/sbin/iocwall"
  sed "s#/usr/sbin/iocwall#$bin#g" "$units/$unit" >"$tmp/units/$unit"
done
out=$(cd "$tmp/units" && MANPATH="$tmp/man" systemd-analyze verify --no-pager \
  ./iocwall.service ./iocwall-restore.service 2>&1) && rc=0 || rc=$?
if [[ $rc -ne 0 || -n $out ]]; then
  echo "$out" >&2
  fail "systemd-analyze verify: exit $rc, output above"
fi
echo "systemd-analyze verify: both units clean"

# The contract, one directive per line as systemd reads it.
expect() {
  local unit=$1 line=$2
  grep -qxF -- "$line" "$units/$unit" || fail "$unit lacks: $line"
}
d=iocwall.service
expect $d 'Type=notify'
expect $d 'Restart=on-failure'
expect $d 'RestartPreventExitStatus=2 78'
# RestartPreventExitStatus= sees the main process only: a failing ExecStartPre= restarts forever.
grep -q '^ExecStartPre=' "$units/$d" && fail "$d checks its configuration in an ExecStartPre="
expect $d 'ExecStart=/usr/sbin/iocwall'
expect $d 'ExecReload=/usr/sbin/iocwall --check-config --api.api_key_file /etc/iocwall/api_key'
expect $d 'ExecReload=/bin/kill -HUP $MAINPID'
expect $d 'LoadCredential=api_key:/etc/iocwall/api_key'
expect $d 'CapabilityBoundingSet=CAP_NET_ADMIN'
expect $d 'NoNewPrivileges=yes'
expect $d 'ProtectSystem=strict'
expect $d 'StateDirectory=iocwall'
expect $d 'StateDirectoryMode=0700'
expect $d 'RestrictAddressFamilies=AF_NETLINK AF_INET AF_INET6 AF_UNIX'
expect $d 'SystemCallFilter=@system-service'
grep -qE '^WatchdogSec=[1-9]' "$units/$d" || fail "$d has no WatchdogSec"
# Only CAP_NET_ADMIN: no ambient or extra capability anywhere.
if grep -E '^(AmbientCapabilities|CapabilityBoundingSet)=' "$units"/*.service |
  grep -v '=CAP_NET_ADMIN$'; then
  fail "a unit grants a capability other than CAP_NET_ADMIN"
fi
r=iocwall-restore.service
expect $r 'ExecStart=/usr/sbin/iocwall --restore'
expect $r 'DefaultDependencies=no'
expect $r 'Wants=network-pre.target'
grep -qE '^Before=.*network-pre\.target' "$units/$r" || fail "$r is not ordered before network-pre.target"
expect $r 'IPAddressDeny=any'
expect $r 'CapabilityBoundingSet=CAP_NET_ADMIN'
echo "unit contract: ok"
