#!/usr/bin/env bash
# Monitoring without root (iocwall(8) "Monitoring without root"): with the shipped sudo rule
# (deploy/monitoring/iocwall-status.sudoers, its user set to nobody), an unprivileged user
# gets `iocwall --status` (OK, a plugin line) through `sudo -n`, as NRPE's command line does,
# and nothing else: --flush, another config file (-c) and extra arguments are refused.
# Without the rule the same user gets UNKNOWN, which is why it is needed.
# The host is not changed: the rule, the configuration and the binary are laid over /etc and
# /usr/sbin with overlay mounts in a private mount namespace, in a network namespace of its own.
# usage: monitoring_sudo.sh IOCWALL_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need sudo visudo unshare setpriv ip
need_root "mount and network namespaces"
bin=$1
src=$2
rule=$src/deploy/monitoring/iocwall-status.sudoers
user=nobody
chmod 0755 "$tmp"

visudo -cf "$rule" >/dev/null || fail "visudo refuses $rule"
grep -q '^command\[check_iocwall\]=/usr/bin/sudo -n /usr/sbin/iocwall --status$' \
  "$src/deploy/monitoring/nrpe-iocwall.cfg" || fail "the NRPE command is not the one the rule allows"

mkdir -p "$tmp"/{etc,etc.work,sbin,sbin.work}/ "$tmp/etc/sudoers.d" "$tmp/etc/iocwall" "$tmp/state"
sed "s/^nagios /$user /" "$rule" >"$tmp/etc/sudoers.d/iocwall-status"
chmod 0440 "$tmp/etc/sudoers.d/iocwall-status"
cp "$bin" "$tmp/sbin/iocwall"
printf '192.0.2.1\n198.51.100.0/24\n' >"$tmp/list.txt"
printf '[files]\npath = %s\n[sync]\nstate_dir = %s\n' "$tmp/list.txt" "$tmp/state" \
  >"$tmp/etc/iocwall/iocwall.conf"

cat >"$tmp/run.sh" <<'SH'
set -euo pipefail
tmp=$1 user=$2
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$tmp/etc,workdir=$tmp/etc.work" /etc
mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$tmp/sbin,workdir=$tmp/sbin.work" /usr/sbin
ip link set lo up
as_user() { setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups "$@"; }
/usr/sbin/iocwall --once 2>/dev/null
rc=0; as_user /usr/sbin/iocwall --status >"$tmp/direct.out" 2>&1 || rc=$?
echo "direct=$rc"
rc=0; as_user sudo -n /usr/sbin/iocwall --status >"$tmp/sudo.out" 2>"$tmp/sudo.err" || rc=$?
echo "sudo=$rc"
rc=0; as_user sudo -n /usr/sbin/iocwall --status --json >"$tmp/sudo.json" 2>&1 || rc=$?
echo "sudo_json=$rc"
for args in "--flush" "--status -c /etc/passwd" "--status --top 5" "--once"; do
  rc=0; as_user sudo -n /usr/sbin/iocwall $args >/dev/null 2>"$tmp/refused.err" || rc=$?
  # sudo's own refusal, not a failure of iocwall.
  grep -q 'password is required' "$tmp/refused.err" || rc=0
  echo "refused[$args]=$rc"
done
nft list table inet iocwall >/dev/null 2>&1 && echo "table=present" || echo "table=absent"
SH
out=$(unshare -m -n --propagation private bash "$tmp/run.sh" "$tmp" "$user" 2>&1) ||
  { echo "$out"; fail "the run in the namespaces failed"; }
echo "$out"
v() { sed -n "s/^$1=//p" <<<"$out"; }
# Without the rule: no kernel read, no state. UNKNOWN, never OK.
[[ $(v direct) == 3 ]] || fail "--status as $user without sudo exited $(v direct), not 3: $(cat "$tmp/direct.out")"
[[ $(v sudo) == 0 ]] || fail "sudo -n iocwall --status as $user exited $(v sudo): $(cat "$tmp/sudo.out" "$tmp/sudo.err")"
head -1 "$tmp/sudo.out" | grep -qE '^iocwall OK - .* \| elements=2;;;0 ' ||
  fail "line 1 through sudo is not an OK plugin line: $(head -1 "$tmp/sudo.out")"
[[ $(v sudo_json) == 0 ]] && grep -q '"schema_version": 2' "$tmp/sudo.json" || fail "--status --json through sudo"
# The rule allows exactly its two argument lists.
while read -r line; do
  [[ ${line#*=} != 0 ]] || fail "sudo allowed ${line%%=*}"
done < <(grep '^refused' <<<"$out")
[[ $(v table) == present ]] || fail "the table is gone: --flush went through"
echo "sudo rule: $user gets --status (OK) and --status --json, nothing else; without it, UNKNOWN"
