#!/usr/bin/env bash
# The example configuration (the package's conffile) is read by the real parser:
# as shipped it names no source and is refused with a message saying so; with
# every key uncommented it is valid. Its commented values are the defaults that
# iocwall.conf(5) states, and the key file rule the pages state holds.
# usage: example_config.sh IOCWALL_BIN SOURCE_DIR
source "$(dirname "$0")/common.sh"
need mandoc python3
bin=$1
src=$2
example=$src/deploy/iocwall.conf.example

printf 'not-a-real-key\n' >"$tmp/api_key"
chmod 0600 "$tmp/api_key"

out=$("$bin" -c "$example" --check-config 2>&1) && fail "the bare example was accepted: $out"
grep -q 'nothing to enforce' <<<"$out" || fail "unexpected refusal of the bare example: $out"

# Its paths (a list file, the metrics directory) are a gateway's, not this machine's.
sed -E 's/^#([a-z0-9_]+ =)/\1/' "$example" >"$tmp/full.conf"
"$bin" -c "$tmp/full.conf" --check-config --no-path-check --api.api_key_file "$tmp/api_key" ||
  fail "the example with every key uncommented is refused"
if [[ ! -e /etc/iocwall/local-blocklist.txt ]]; then
  out=$("$bin" -c "$tmp/full.conf" --check-config --api.api_key_file "$tmp/api_key" 2>&1) &&
    fail "the example's list file, absent here, passed the path checks"
  grep -qF '[files] path /etc/iocwall/local-blocklist.txt does not exist' <<<"$out" ||
    fail "unexpected path check message: $out"
fi

chmod 0644 "$tmp/api_key"
out=$("$bin" -c "$tmp/full.conf" --check-config --no-path-check --api.api_key_file "$tmp/api_key" 2>&1) &&
  fail "a world-readable key file was accepted, unlike what the pages say"
grep -qi 'api_key\|permission\|readable' <<<"$out" || fail "unexpected message: $out"

# Defaults: "#key = value" in the example must match "Default: value" in the page.
python3 - "$example" "$src/man/iocwall.conf.5" <<'PY'
import re, subprocess, sys
example, page = sys.argv[1], sys.argv[2]
text = re.sub(r".\x08", "", subprocess.run(["mandoc", "-Tascii", page], check=True,
                                            capture_output=True, text=True).stdout)
text = re.sub(r"\s+", " ", text)
# Keys whose example value is an illustration, not the default.
examples_only = {"api_key_file", "ca_file", "proxy", "id", "path", "prefix", "textfile"}
bad = []
for m in re.finditer(r"(?m)^#([a-z0-9_]+) = (\S+)$", open(example).read()):
    key, value = m.groups()
    if key in examples_only:
        continue
    para = re.search(r"(?<![\w])" + re.escape(key) + r" = .*?Default: (.*?)\.(?: |$)", text)
    if not para or value not in para.group(1):
        bad.append(f"{key}: example says {value}, the page says "
                   f"{para.group(1) if para else 'nothing'}")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
echo "example configuration: parsed by iocwall, defaults match iocwall.conf(5)"
