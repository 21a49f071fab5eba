#!/usr/bin/env bash
# The package under a real systemd: a container with systemd as PID 1
# (systemd-nspawn --boot, from Debian's systemd-container) over this machine's own
# root, read-only below a persistent overlay of the test's own (so a reboot of the
# container keeps what it wrote, and this machine's files are never written), in a
# network namespace of its own (--private-network: its netfilter and its loopback are
# the container's, never this machine's). The .deb is installed there with dpkg, the
# feed is iocwall-feedsim on the container's loopback, and the test checks:
#   1. a first install enables and starts nothing; dpkg's scripts run under systemd;
#   2. the daemon reaches READY (systemctl start returns, active/running) with its
#      sandbox (CAP_NET_ADMIN only, no_new_privs, seccomp), its API key through
#      LoadCredential and its watchdog pinged; the collection is enforced;
#   3. `systemctl reload` with a broken configuration fails and the daemon keeps
#      running on the old one (same PID, table intact); a good one reloads;
#   4. `systemctl stop` leaves the table enforcing; a broken configuration at start
#      leaves the unit failed with status 78, not restarting (with a control that
#      restarts without RestartPreventExitStatus=); an upgrade keeps the units
#      enabled and restarts the daemon;
#   5. after a reboot of the container, with the feed gone, iocwall-restore.service
#      has enforced the last good list before network-pre.target, and the daemon
#      comes up on it;
#   6. purge removes the key and the state.
# usage: systemd_boot.sh SOURCE_DIR BUILD_DIR FEEDSIM_BIN
source "$(dirname "$0")/common.sh"
need systemd-nspawn nsenter cpack dpkg-deb mountpoint timeout
need_root "mounts, containers"
src=$1
build=$2
feedsim=$3
[[ -d /run/systemd/system ]] && skip "systemd runs this machine: not booting its root twice"
dpkg-query -W iocwall >/dev/null 2>&1 && skip "iocwall is installed on this machine"
[[ -f /usr/lib/os-release ]] || skip "no os-release: nspawn would not boot this root"

# Mount points live outside $tmp and are only ever rmdir'd: $mnt/lower is this
# machine's root itself, which no rm -rf may ever reach.
mnt=$(mktemp -d /run/iocwall-boot.XXXXXX)
nsp=""
cleanup() {
  set +e
  if [[ -n $nsp ]] && kill -0 "$nsp" 2>/dev/null; then
    kill "$nsp"
    for _ in $(seq 50); do kill -0 "$nsp" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$nsp" 2>/dev/null
  fi
  mountpoint -q "$mnt/root" && umount -l "$mnt/root"
  mountpoint -q "$mnt/lower" && umount -l "$mnt/lower"
  if mountpoint -q "$mnt/lower" || mountpoint -q "$mnt/root"; then
    echo "cleanup: $mnt still mounted; leaving $tmp and $mnt" >&2
    return
  fi
  rmdir "$mnt/root" "$mnt/lower" "$mnt"
  rm -rf "$tmp"
}
trap cleanup EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB failed"; }
debs=("$tmp"/out/iocwall_*.deb)
[[ -f ${debs[0]} ]] || fail "no .deb"

mkdir -p "$mnt/lower" "$mnt/root" "$tmp/upper" "$tmp/work"
mount --bind -o ro / "$mnt/lower"
mount -t overlay overlay \
  -o "lowerdir=$mnt/lower,upperdir=$tmp/upper,workdir=$tmp/work" "$mnt/root"
root=$mnt/root
# This machine's enabled services have no business in the container (and a database
# server would slow every boot). systemd-networkd-wait-online would wait 2 minutes for
# a link that a container whose only interface is lo never gets.
for u in nginx.service postgresql.service e2scrub_reap.service systemd-timesyncd.service \
  getty@tty1.service console-getty.service apt-daily-upgrade.timer apt-daily.timer \
  dpkg-db-backup.timer e2scrub_all.timer fstrim.timer man-db.timer \
  systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# This machine's Docker-style policy-rc.d (exit 101: start nothing during image
# builds) would make deb-systemd-invoke skip every action; a gateway has none.
rm -f "$root/usr/sbin/policy-rc.d"
# Its own machine id (a transient one): journals and D-Bus tell the two apart.
rm -f "$root/etc/machine-id"
t=$root/opt/iocwall-test
mkdir -p "$t"
cp "${debs[0]}" "$t/iocwall.deb"
cp "$feedsim" "$t/feedsim"
"$feedsim" gen-ca --out "$t/ca" >/dev/null
printf '203.0.113.7\n203.0.113.64/26\n2001:db8:77::/48\n' >"$t/collection.txt"
printf 'boot-test-key\n' >"$t/api_key"
chmod 0600 "$t/api_key"

leader=""
in_ct() { nsenter -t "$leader" -m -u -i -n -p -C -- "$@"; }
boot() {
  systemd-nspawn -D "$root" --boot --private-network --register=no --keep-unit \
    --machine=iocwall-boot --console=read-only -- systemd.unit=multi-user.target \
    >>"$tmp/console.log" 2>&1 </dev/null &
  nsp=$!
  leader=""
  for _ in $(seq 100); do
    leader=$(pgrep -P "$nsp" -x systemd || true)
    [[ -n $leader ]] && break
    sleep 0.2
  done
  [[ -n $leader ]] || { tail -30 "$tmp/console.log"; fail "the container did not start"; }
  local state=""
  # The manager's socket appears a moment after PID 1 starts.
  for _ in $(seq 100); do
    state=$(in_ct timeout 180 systemctl is-system-running --wait 2>&1) || true
    [[ $state == *"connect to bus"* ]] || break
    sleep 0.2
  done
  [[ $state == running || $state == degraded ]] ||
    { tail -40 "$tmp/console.log"; fail "the container did not boot: $state"; }
  if [[ $state == degraded ]]; then
    in_ct systemctl --failed --no-legend >&2
  fi
}
# Waits for nspawn to end after a reboot or poweroff asked from inside.
wait_down() {
  for _ in $(seq 150); do kill -0 "$nsp" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$nsp" 2>/dev/null && fail "the container did not go down"
  wait "$nsp" || true
  nsp=""
}
show() { in_ct systemctl show -P "$2" "$1"; }
table_has() {  # the container's table holds this element
  in_ct nft list set inet iocwall "$1" 2>/dev/null | grep -F "$2" >/dev/null
}

boot
echo "booted: $(in_ct systemctl --version | head -1) as PID 1 of the container"
[[ $(readlink "/proc/$leader/ns/net") != $(readlink /proc/self/ns/net) ]] ||
  fail "the container shares this machine's network namespace"
in_ct nft list tables | grep -q 'inet iocwall' && fail "the container starts with a table inet iocwall"

# 1. Install: no unit enabled, nothing started.
in_ct dpkg -i /opt/iocwall-test/iocwall.deb >"$tmp/dpkg.log" 2>&1 ||
  { cat "$tmp/dpkg.log"; fail "dpkg -i failed under systemd"; }
for u in iocwall.service iocwall-restore.service; do
  [[ $(in_ct systemctl is-enabled "$u" 2>&1) == disabled ]] || fail "$u enabled by a first install"
  [[ $(show "$u" ActiveState) == inactive ]] || fail "$u started by a first install"
done
echo "installed: both units present, disabled, inactive"

cp "$t/api_key" "$root/etc/iocwall/api_key"
chmod 0600 "$root/etc/iocwall/api_key"
cp "$t/ca/ca.pem" "$root/etc/iocwall/ca.pem"
good_conf="[api]
url = https://localhost:8443/api
ca_file = /etc/iocwall/ca.pem
[collections]
id = c1
[sync]
interval = 1m
jitter = 0s"
printf '%s\n' "$good_conf" >"$root/etc/iocwall/iocwall.conf"
in_ct systemd-run --quiet --unit=feedsim /opt/iocwall-test/feedsim serve --tls-port 8443 \
  --tls-dir /opt/iocwall-test/ca --api-key-file /opt/iocwall-test/api_key \
  --collection c1=/opt/iocwall-test/collection.txt
for _ in $(seq 50); do
  in_ct bash -c ': </dev/tcp/127.0.0.1/8443' 2>/dev/null && break
  sleep 0.2
done

# 2. READY, sandbox, credential, watchdog, enforcement.
in_ct timeout 120 systemctl enable --now iocwall-restore.service iocwall.service ||
  { in_ct journalctl -u iocwall --no-pager | tail -30; fail "systemctl enable --now failed"; }
[[ $(show iocwall ActiveState)/$(show iocwall SubState) == active/running ]] ||
  fail "iocwall.service is $(show iocwall ActiveState)/$(show iocwall SubState)"
pid=$(show iocwall MainPID)
status=$(show iocwall StatusText)
echo "READY: pid $pid, status: $status"
[[ $status == enforced-fresh* ]] || fail "the first cycle did not enforce: $status"
table_has blocklist_v4 203.0.113.7 || fail "203.0.113.7 not enforced"
table_has blocklist_v6 2001:db8:77::/48 || fail "2001:db8:77::/48 not enforced"
st=$(in_ct cat "/proc/$pid/status")
grep -qx $'CapEff:\t0000000000001000' <<<"$st" || fail "capabilities: $(grep CapEff <<<"$st")"
grep -qx $'NoNewPrivs:\t1' <<<"$st" || fail "no_new_privs not set"
grep -qx $'Seccomp:\t2' <<<"$st" || fail "no seccomp filter"
env=$(in_ct cat "/proc/$pid/environ" | tr '\0' '\n')
grep -q '^CREDENTIALS_DIRECTORY=' <<<"$env" || fail "no LoadCredential directory"
grep -q 'boot-test-key' <<<"$env" && fail "the API key is in the environment"
grep -q '^WATCHDOG_USEC=600000000$' <<<"$env" || fail "no watchdog in the environment"
wd=$(show iocwall WatchdogTimestampMonotonic)
[[ $wd -gt 0 ]] || fail "the watchdog was never pinged"
echo "sandbox: CapEff=CAP_NET_ADMIN, NoNewPrivs, seccomp; credential and watchdog ($wd) ok"

# 3. Reload: a broken configuration fails the reload and changes nothing.
printf '%s\nintervall = 5m\n' "$good_conf" >"$root/etc/iocwall/iocwall.conf"
if in_ct timeout 60 systemctl reload iocwall.service 2>"$tmp/reload.err"; then
  fail "systemctl reload reported success with a broken configuration"
fi
[[ $(show iocwall ActiveState) == active && $(show iocwall MainPID) == "$pid" ]] ||
  fail "a refused reload disturbed the daemon"
table_has blocklist_v4 203.0.113.7 || fail "a refused reload dropped the table"
echo "broken reload: refused ($(tr '\n' ' ' <"$tmp/reload.err")), daemon $pid still active"
# Negative control: the unit's old ExecReload (the signal alone) says OK to the same
# broken file, which the daemon then refuses: what this check exists to catch.
in_ct mkdir -p /run/systemd/system/iocwall.service.d
printf '[Service]\nExecReload=\nExecReload=/bin/kill -HUP $MAINPID\n' |
  in_ct tee /run/systemd/system/iocwall.service.d/old-reload.conf >/dev/null
in_ct systemctl daemon-reload
in_ct timeout 60 systemctl reload iocwall.service ||
  fail "control: the signal-only reload failed; the check above proves nothing"
in_ct rm /run/systemd/system/iocwall.service.d/old-reload.conf
in_ct systemctl daemon-reload
echo "control: a signal-only ExecReload reports success for the same broken file"
printf '%s\n' "$good_conf" >"$root/etc/iocwall/iocwall.conf"
in_ct timeout 60 systemctl reload iocwall.service ||
  { in_ct journalctl -u iocwall --no-pager -n 20; fail "a good reload failed"; }
[[ $(show iocwall MainPID) == "$pid" ]] || fail "a reload restarted the daemon"

# 4. Stop: the table stays and keeps enforcing.
in_ct timeout 60 systemctl stop iocwall.service
[[ $(show iocwall ActiveState) == inactive ]] || fail "iocwall.service did not stop"
table_has blocklist_v4 203.0.113.7 || fail "systemctl stop dropped the table"
echo "stopped: table inet iocwall still enforcing"

# A broken configuration at start: the daemon exits 78 (EX_CONFIG) and the unit stays
# failed, where it used to restart every RestartSec forever. RestartSec=1s (a drop-in) only
# makes a restart, if one came, come within the wait.
dropin=/run/systemd/system/iocwall.service.d/fast-restart.conf
in_ct mkdir -p /run/systemd/system/iocwall.service.d
printf '[Service]\nRestartSec=1s\n' | in_ct tee "$dropin" >/dev/null
in_ct systemctl daemon-reload
printf '%s\n[collection]\nid = c2\n' "$good_conf" >"$root/etc/iocwall/iocwall.conf"
in_ct timeout 60 systemctl start iocwall.service 2>/dev/null &&
  fail "iocwall.service started with a broken configuration"
sleep 5
state="$(show iocwall ActiveState)/$(show iocwall Result)/$(show iocwall ExecMainStatus)"
[[ $state == failed/exit-code/78 ]] || fail "broken configuration at start: $state, not failed/exit-code/78"
[[ $(show iocwall NRestarts) == 0 ]] || fail "restarted $(show iocwall NRestarts) times on a configuration error"
in_ct journalctl -u iocwall --no-pager | grep -qF 'unknown section [collection]; did you mean [collections]?' ||
  fail "the journal does not say what is wrong"
table_has blocklist_v4 203.0.113.7 || fail "a refused start dropped the table"
echo "broken configuration at start: $state, 0 restarts in 5 s, table still enforcing"
# Negative control: without RestartPreventExitStatus= the same file restarts the unit.
printf '[Service]\nRestartSec=1s\nRestartPreventExitStatus=\n' | in_ct tee "$dropin" >/dev/null
in_ct systemctl daemon-reload
in_ct systemctl reset-failed iocwall.service
in_ct timeout 60 systemctl start iocwall.service 2>/dev/null || true
sleep 5
restarts=$(show iocwall NRestarts)
[[ $restarts -ge 2 ]] || fail "control: only $restarts restarts without RestartPreventExitStatus="
echo "control: without RestartPreventExitStatus= the unit restarted $restarts times in 5 s"
in_ct systemctl stop iocwall.service
in_ct rm "$dropin"
in_ct systemctl daemon-reload
in_ct systemctl reset-failed iocwall.service
printf '%s\n' "$good_conf" >"$root/etc/iocwall/iocwall.conf"
in_ct systemctl start iocwall.service

# An upgrade (the same package again): the admin's enablement stays, the running
# daemon is restarted on the new binary (deb-systemd-invoke try-restart).
pid=$(show iocwall MainPID)
in_ct dpkg -i /opt/iocwall-test/iocwall.deb >"$tmp/upgrade.log" 2>&1 ||
  { cat "$tmp/upgrade.log"; fail "the upgrade failed"; }
for u in iocwall.service iocwall-restore.service; do
  [[ $(in_ct systemctl is-enabled "$u" 2>&1) == enabled ]] || fail "the upgrade disabled $u"
done
[[ $(show iocwall ActiveState) == active && $(show iocwall MainPID) != "$pid" ]] ||
  fail "the upgrade did not restart the daemon (pid $pid -> $(show iocwall MainPID))"
echo "upgrade: units still enabled, daemon restarted ($pid -> $(show iocwall MainPID))"

# 5. Reboot with the feed gone (feedsim was a transient unit: it does not come back).
in_ct nft add table inet boot_marker
in_ct systemctl reboot || true
wait_down
boot
in_ct bash -c ': </dev/tcp/127.0.0.1/8443' 2>/dev/null && fail "the feed is still reachable"
# A fresh netfilter: the marker table made before the reboot is gone, so the table
# iocwall has now was made during this boot.
in_ct nft list tables | grep -F 'boot_marker' && fail "the reboot kept the old ruleset"
[[ $(show iocwall-restore ActiveState) == active && $(show iocwall-restore ExecMainStatus) == 0 ]] ||
  fail "iocwall-restore.service: $(show iocwall-restore ActiveState), $(show iocwall-restore Result)"
restored=$(show iocwall-restore ExecMainExitTimestampMonotonic)
pre=$(show network-pre.target ActiveEnterTimestampMonotonic)
net=$(show systemd-networkd.service ExecMainStartTimestampMonotonic)
echo "boot: restore done at ${restored}us, network-pre.target at ${pre}us, networkd at ${net}us"
[[ $restored -gt 0 && $pre -gt 0 && $restored -le $pre ]] ||
  fail "the restore did not finish before network-pre.target"
[[ $net -eq 0 || $restored -le $net ]] || fail "networkd started before the restore finished"
table_has blocklist_v4 203.0.113.7 || fail "the last good list is not enforced after reboot"
table_has blocklist_v6 2001:db8:77::/48 || fail "the v6 list is not enforced after reboot"
[[ $(show iocwall ActiveState) == active ]] ||
  fail "the daemon did not come up without its feed: $(show iocwall StatusText)"
echo "after reboot, feed unreachable: last good list enforced, daemon: $(show iocwall StatusText)"

# 6. Purge: the key, the configuration and the state go.
in_ct dpkg -P iocwall >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "dpkg -P failed"; }
for p in /etc/iocwall/api_key /etc/iocwall/iocwall.conf /var/lib/iocwall; do
  [[ ! -e $root$p ]] || fail "purge left $p"
done
echo "purged: key, configuration and state removed"
in_ct systemctl poweroff || true
wait_down
echo "systemd boot test: ok"
