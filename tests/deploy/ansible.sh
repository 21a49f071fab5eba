#!/usr/bin/env bash
# The Ansible role and its example playbook:
#   syntax    ansible-playbook --syntax-check of the example playbook and inventory
#   lint      ansible-lint, production profile, offline
#   check     a --check --diff run of the example playbook against localhost: succeeds and
#             changes nothing on this machine
#   temproot  a real run into a temporary root where no systemd runs: the files, their
#             modes, the key from an encrypted vault, validation by iocwall --check-config,
#             a refused configuration leaves the old one, a second run changes nothing, each
#             section header once (iocwall_extra_config adds to a section, and may not set a
#             key a role variable sets, nor name an unknown section), tags select the tasks
# usage: ansible.sh MODE SOURCE_DIR IOCWALL_BIN
source "$(dirname "$0")/common.sh"
need ansible-playbook
mode=$1
src=$2
bin=$3
ansible_dir=$src/deploy/ansible
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCAL_TEMP=$tmp/local \
  ANSIBLE_REMOTE_TEMP=$tmp/remote ANSIBLE_STDOUT_CALLBACK=default

# An inventory that makes this machine the "gateways" group, and a vault holding the key,
# encrypted as an operator would.
make_inventory() {
  local root=$1
  cat >"$tmp/hosts.yml" <<YAML
gateways:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
      # Root already; no sudo on a minimal machine.
      ansible_become: false
YAML
  cat >"$tmp/vars.yml" <<YAML
iocwall_root_dir: $root
iocwall_binary: $bin
iocwall_install_package: false
iocwall_api_key: "{{ vault_iocwall_api_key }}"
iocwall_collections: [YOUR-IOC-COLLECTION-FEED-ID, second-feed_2]
iocwall_files: [/etc/iocwall/local-blocklist.txt]
iocwall_allowlist: [192.0.2.0/24, "2001:db8::/32"]
iocwall_interval: 2m
iocwall_nftables_hooks: [input, forward]
iocwall_metrics_textfile: /var/lib/node-exporter/iocwall.prom
iocwall_metrics_mode: "0640"
iocwall_extra_config: {sync: {max_entries: 500000}, api: {rate_limit: 4}, metrics: {}}
YAML
  printf 'test-vault-password\n' >"$tmp/vault-pass"
  printf 'vault_iocwall_api_key: "sk-test-0123456789"\n' >"$tmp/vault.yml"
  ansible-vault encrypt --vault-password-file "$tmp/vault-pass" "$tmp/vault.yml" >/dev/null
  grep -q '^\$ANSIBLE_VAULT' "$tmp/vault.yml" || fail "the vault file is not encrypted"
}

playbook() {
  ansible-playbook -i "$tmp/hosts.yml" -e "@$tmp/vars.yml" -e "@$tmp/vault.yml" \
    --vault-password-file "$tmp/vault-pass" "$@" "$ansible_dir/site.yml"
}

case $mode in
  syntax)
    ansible-playbook -i "$ansible_dir/inventory/hosts.yml" --syntax-check "$ansible_dir/site.yml"
    ;;
  lint)
    need ansible-lint
    cd "$ansible_dir"
    ansible-lint --nocolor --offline --profile production site.yml roles/iocwall inventory
    ;;
  check)
    need_root "the role writes root-owned files"
    [[ -e /etc/iocwall || -e /var/lib/iocwall ]] &&
      skip "iocwall is configured on this machine: a check run would compare with it"
    make_inventory /
    out=$(playbook --check --diff 2>&1) || { echo "$out"; fail "the --check run failed"; }
    echo "$out" | tail -n 4
    grep -q 'failed=0' <<<"$out" || fail "a task failed in check mode"
    [[ ! -e /etc/iocwall && ! -e /var/lib/iocwall ]] || fail "--check wrote to this machine"
    # The diff shows the configuration that would be written; the key stays hidden.
    grep -q '+hooks = input,forward' <<<"$out" || fail "--diff does not show the configuration"
    ! grep -q 'sk-test-0123456789' <<<"$out" || fail "the API key appears in the output"
    ;;
  temproot)
    need_root "the role writes root-owned files"
    [[ -d /run/systemd/system ]] && echo "note: systemd runs here; the role must still skip it"
    root=$tmp/root
    make_inventory "$root"
    out=$(playbook 2>&1) || { echo "$out"; fail "the run into $root failed"; }
    ! grep -q 'sk-test-0123456789' <<<"$out" || fail "the API key appears in the output"
    # No systemd here: the service tasks are never even included.
    ! grep -q 'Enable the early-boot restore unit' <<<"$out" || fail "systemd tasks ran"
    conf=$root/etc/iocwall/iocwall.conf
    key=$root/etc/iocwall/api_key
    [[ $(stat -c %a "$key") == 600 && $(stat -c %U "$key") == root ]] || fail "key file not 0600 root"
    [[ $(cat "$key") == sk-test-0123456789 ]] || fail "key file content differs from the vault"
    [[ $(stat -c %a "$root/var/lib/iocwall") == 700 ]] || fail "state directory not 0700"
    [[ $(stat -c %a "$root/var") == 755 ]] || fail "$root/var not 0755"
    [[ $(stat -c %a "$conf") == 644 ]] || fail "configuration not 0644"
    for line in 'id = YOUR-IOC-COLLECTION-FEED-ID' 'id = second-feed_2' \
      'path = /etc/iocwall/local-blocklist.txt' 'prefix = 2001:db8::/32' 'interval = 2m' \
      'hooks = input,forward' 'max_entries = 500000' \
      'textfile = /var/lib/node-exporter/iocwall.prom' 'mode = 0640' 'rate_limit = 4'; do
      grep -qxF "$line" "$conf" || fail "configuration lacks '$line'"
    done
    # One header per section, though iocwall_extra_config names api, sync and metrics.
    dups=$(grep '^\[' "$conf" | sort | uniq -d)
    [[ -z $dups ]] || fail "section headers written twice: $dups"
    [[ $(grep -c '^\[' "$conf") == 7 ]] || fail "not the 7 sections: $(grep '^\[' "$conf")"
    # The metrics file outside /run/iocwall needs a writable path in the hardened unit.
    grep -qx 'ReadWritePaths=/var/lib/node-exporter' \
      "$root/etc/systemd/system/iocwall.service.d/ansible-paths.conf" || fail "no drop-in"
    # What the role wrote is what the agent accepts (its paths name the target's files).
    "$bin" -c "$conf" --check-config --no-path-check --api.api_key_file "$key" ||
      fail "agent refuses the file"
    [[ ! -e $root/run && ! -e $root/usr ]] || fail "the role wrote outside etc/ and var/"

    # Idempotent.
    out=$(playbook 2>&1) || { echo "$out"; fail "the second run failed"; }
    grep -q 'changed=0.*failed=0' <<<"$out" || { echo "$out"; fail "the second run changed things"; }

    # A configuration that iocwall --check-config refuses is never installed.
    before=$(sha256sum "$conf")
    out=$(playbook -e iocwall_api_url=http://plain.example 2>&1) &&
      fail "a plain-http API URL was installed"
    grep -q 'failed to validate' <<<"$out" || { echo "$out"; fail "not refused by validation"; }
    [[ $(sha256sum "$conf") == "$before" ]] || fail "the refused configuration replaced the old one"
    # A key set both by a role variable and by iocwall_extra_config is refused before writing.
    out=$(playbook -e '{"iocwall_extra_config": {"metrics": {"textfile": "/tmp/x.prom"}}}' 2>&1) &&
      fail "iocwall_extra_config redefining metrics.textfile was accepted"
    grep -q 'must not set what a role' <<<"$out" || { echo "$out"; fail "no clash message"; }
    grep -q 'metrics.textfile' <<<"$out" || { echo "$out"; fail "the clash is not named"; }
    [[ $(sha256sum "$conf") == "$before" ]] || fail "a refused extra_config replaced the file"
    # A misspelt section in iocwall_extra_config would be a second, ignored section: the
    # validation refuses it and names the one meant.
    out=$(playbook -e '{"iocwall_extra_config": {"metric": {"mode": "0600"}}}' 2>&1) &&
      fail "iocwall_extra_config's misspelt [metric] section was installed"
    grep -qF 'unknown section [metric]; did you mean [metrics]?' <<<"$out" ||
      { echo "$out"; fail "the misspelt section is not named"; }
    [[ $(sha256sum "$conf") == "$before" ]] || fail "a misspelt section replaced the file"

    # Tags: iocwall_key rewrites the key only (not the configuration); iocwall_config does the
    # configuration; the variable checks run under any tag.
    tags=$(playbook --list-tags 2>&1)
    for t in iocwall iocwall_config iocwall_key iocwall_package iocwall_service; do
      grep -q "$t" <<<"$tags" || { echo "$tags"; fail "tag $t is not listed"; }
    done
    out=$(playbook --tags iocwall_key -e iocwall_interval=7m 2>&1) || { echo "$out"; fail "--tags iocwall_key"; }
    grep -q 'Write the API key' <<<"$out" || { echo "$out"; fail "--tags iocwall_key skipped the key"; }
    ! grep -q 'Write the configuration' <<<"$out" || fail "--tags iocwall_key wrote the configuration"
    grep -q 'Check the variables' <<<"$out" || fail "the variable checks did not run under a tag"
    grep -qxF 'interval = 2m' "$conf" || fail "--tags iocwall_key changed the configuration"
    out=$(playbook --tags iocwall_config -e iocwall_interval=7m 2>&1) || { echo "$out"; fail "--tags iocwall_config"; }
    grep -qxF 'interval = 7m' "$conf" || fail "--tags iocwall_config did not write the configuration"
    echo "temporary root: files, modes, vault key, validation, idempotence, sections, tags: ok"
    ;;
  *)
    fail "unknown mode $mode"
    ;;
esac
