#!/usr/bin/env python3
"""Every configuration shown to users passes `iocwall --check-config`.

Snippets are found, not listed, so that a new one is covered the day it is written:
  - Markdown (README.md, deploy/**/*.md): fenced or indented code blocks;
  - man pages (man/*.[0-9]): the .Bd -literal blocks of the EXAMPLES section;
  - deploy/**/*.sh: the whole script text.
In each text, a configuration is either
  - a block holding an INI section header ("[collections]") and key = value lines, or
  - a here-document written to a *.conf file (cat > x.conf <<EOF ... EOF), its shell
    variables replaced by paths in a scratch folder, or
  - a `sed -i 's/.../.../' /etc/iocwall/iocwall.conf` edit, applied (by sed itself) to the
    file the package installs there, deploy/iocwall.conf.example;
  - for each host of the example Ansible inventory (deploy/ansible/inventory), the file the
    role's template renders from its variables (ansible-inventory merges them; the template
    module renders on this machine: nothing connects to the inventory's addresses).
The API key is given on the command line (the flag wins over the file's api_key_file), a
0600 file in the scratch folder: the docs' /etc/iocwall/api_key does not exist here.

usage: doc_configs.py IOCWALL_BIN SOURCE_DIR [--self-test]
With --self-test, the same checks run over a copy of the tree whose README gains a broken
snippet, and must fail: the negative control that the extraction and the check bite.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

SECTION = re.compile(r"^\s*\[[A-Za-z_][A-Za-z0-9_]*\]\s*(?:[;#].*)?$")
KEYVAL = re.compile(r"^\s*[a-z_][a-z0-9_]*\s*=")
HEREDOC = re.compile(r"cat\s*>\s*\"?([^\s\"<]+\.conf)\"?\s*<<-?\s*'?\"?(\w+)'?\"?")
SED_EDIT = re.compile(r"sed\s+-i\s+'(s/[^']*)'\s+/etc/iocwall/iocwall\.conf")
SHELL_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def markdown_blocks(text):
    """Fenced blocks, and runs of lines indented by 4 spaces outside fences."""
    blocks, cur, fenced, indented = [], [], False, []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if fenced:
                blocks.append("\n".join(cur))
                cur = []
            fenced = not fenced
            continue
        if fenced:
            cur.append(line)
            continue
        if line.startswith("    ") or (indented and not line.strip()):
            indented.append(line[4:])
        else:
            if indented:
                blocks.append("\n".join(indented))
            indented = []
    if indented:
        blocks.append("\n".join(indented))
    return blocks


def roff_unescape(line):
    return (line.replace("\\&", "").replace("\\-", "-").replace("\\e", "\\")
            .replace("\\(aq", "'").replace("\\(dq", '"'))


def man_example_blocks(text):
    blocks, cur, in_examples, in_block = [], [], False, False
    for line in text.splitlines():
        if line.startswith(".Sh "):
            in_examples = line.split(None, 1)[1].strip() == "EXAMPLES"
            continue
        if not in_examples:
            continue
        if line.startswith(".Bd") and "-literal" in line:
            in_block, cur = True, []
        elif line.startswith(".Ed") and in_block:
            in_block = False
            blocks.append("\n".join(cur))
        elif in_block and not line.startswith(".") and not line.startswith("'\\\""):
            cur.append(roff_unescape(line))
    return blocks


def configs_in(text, where, example):
    """(label, config text) for each configuration in one block of text."""
    out = []
    lines = text.splitlines()
    consumed = set()
    for i, line in enumerate(lines):
        m = HEREDOC.search(line)
        if not m:
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == m.group(2)), None)
        if end is None:
            raise SystemExit(f"{where}: here-document {m.group(2)} is never closed")
        consumed.update(range(i, end + 1))
        out.append((f"{where}: here-document to {m.group(1)}", "\n".join(lines[i + 1:end])))
    rest = [l for i, l in enumerate(lines) if i not in consumed]
    if any(SECTION.match(l) for l in rest) and any(KEYVAL.match(l) for l in rest):
        out.append((f"{where}: INI block starting '{rest[0].strip()}'", "\n".join(rest)))
    for m in SED_EDIT.finditer(text):
        edited = subprocess.run(["sed", m.group(1)], input=example, capture_output=True,
                                text=True, check=True).stdout
        if edited == example:
            raise SystemExit(f"{where}: '{m.group(1)}' changes nothing in the example file")
        out.append((f"{where}: sed '{m.group(1)}' on the example configuration", edited))
    return out


def ansible_configs(src, scratch):
    """(label, config text) per host of the example inventory, as the role renders it."""
    ansible = pathlib.Path(src) / "deploy/ansible"
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(scratch / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(scratch / "ansible-tmp"))
    inv = subprocess.run(["ansible-inventory", "-i", str(ansible / "inventory/hosts.yml"),
                          "--list"], capture_output=True, text=True, check=True, env=env)
    out = []
    for host, hostvars in sorted(json.loads(inv.stdout)["_meta"]["hostvars"].items()):
        # Connection variables stay out: the rendering happens here, with -c local.
        hv = {k: v for k, v in hostvars.items() if not k.startswith("ansible_")}
        hv["vault_iocwall_api_key"] = "not-a-real-key"
        varfile = scratch / f"ansible-{host}.json"
        varfile.write_text(json.dumps(hv))
        dest = scratch / f"ansible-{host}.conf"
        subprocess.run(["ansible", "localhost", "-i", "localhost,", "-c", "local", "-m",
                        "template", "-a", f"src={ansible}/roles/iocwall/templates/iocwall.conf.j2"
                        f" dest={dest}", "-e", f"@{ansible}/roles/iocwall/defaults/main.yml",
                        "-e", f"@{varfile}"], capture_output=True, text=True, check=True, env=env)
        out.append((f"deploy/ansible/inventory: host {host}, rendered by the role's template",
                    dest.read_text()))
    return out


def collect(src):
    src = pathlib.Path(src)
    example = (src / "deploy/iocwall.conf.example").read_text()
    found = {}
    for md in [src / "README.md"] + sorted((src / "deploy").rglob("*.md")):
        rel = str(md.relative_to(src))
        for n, block in enumerate(markdown_blocks(md.read_text())):
            found.setdefault(rel, []).extend(configs_in(block, f"{rel} block {n + 1}", example))
    for page in sorted((src / "man").glob("*.[0-9]")):
        rel = str(page.relative_to(src))
        for n, block in enumerate(man_example_blocks(page.read_text())):
            found.setdefault(rel, []).extend(
                configs_in(block, f"{rel} EXAMPLES block {n + 1}", example))
    for sh in sorted((src / "deploy").rglob("*.sh")):
        rel = str(sh.relative_to(src))
        found.setdefault(rel, []).extend(configs_in(sh.read_text(), rel, example))
    return found


def check(binary, src, scratch, with_ansible=True):
    key = scratch / "api_key"
    key.write_text("not-a-real-key\n")
    key.chmod(0o600)
    shellvars = scratch / "vars"
    shellvars.mkdir(exist_ok=True)
    found = collect(src)
    if with_ansible:
        found["deploy/ansible/inventory"] = ansible_configs(src, scratch)
    # Where snippets must be found: a broken extractor must not pass by finding nothing.
    expected = {"README.md": 1, "man/iocwall.8": 2, "man/iocwall.conf.5": 2,
                "deploy/README.md": 1, "deploy/demo.sh": 1}
    if with_ansible:
        expected["deploy/ansible/inventory"] = 2
    failures = []
    for rel, least in expected.items():
        if len(found.get(rel, [])) < least:
            failures.append(f"{rel}: found {len(found.get(rel, []))} configurations, "
                            f"expected at least {least}")
    total = 0
    for rel, snippets in sorted(found.items()):
        for label, conf in snippets:
            total += 1
            # A here-document's shell variables: a port number, else a scratch path.
            conf = SHELL_VAR.sub(
                lambda m: "8443" if "port" in m.group(1) else str(shellvars / m.group(1)), conf)
            path = scratch / f"snippet{total}.conf"
            path.write_text(conf + "\n")
            # The paths the docs name are a gateway's, not this machine's.
            r = subprocess.run([binary, "-c", str(path), "--check-config", "--no-path-check",
                                "--api.api_key_file", str(key)],
                               capture_output=True, text=True)
            verdict = "ok" if r.returncode == 0 else "REFUSED"
            print(f"{verdict:8} {label}")
            if r.returncode != 0:
                failures.append(f"{label}: {(r.stderr or r.stdout).strip()}\n--- snippet ---\n"
                                f"{conf}\n---")
    print(f"{total} configurations checked")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return not failures


def main():
    args = [a for a in sys.argv[1:] if a != "--self-test"]
    if len(args) != 2:
        raise SystemExit(__doc__)
    binary, src = args
    with tempfile.TemporaryDirectory(prefix="iocwall-doc-configs.") as tmp:
        scratch = pathlib.Path(tmp)
        if "--self-test" not in sys.argv:
            sys.exit(0 if check(binary, src, scratch) else 1)
        # The negative control: an unknown key in a new README snippet must fail the check,
        # and an inline comment glued to a value (no space) must stay part of it.
        tree = scratch / "tree"
        tree.mkdir()
        for part in ("README.md", "man", "deploy"):
            s, d = pathlib.Path(src) / part, tree / part
            (shutil.copytree if s.is_dir() else shutil.copy)(s, d)
        readme = tree / "README.md"
        for bad in ("[sync]\n    intervall = 5m", "[allowlist]\n    prefix = 192.0.2.0/24;mgmt"):
            readme.write_text(
                (pathlib.Path(src) / "README.md").read_text() +
                f"\nA broken one:\n\n    [collections]\n    id = x\n    {bad}\n")
            if check(binary, tree, scratch, with_ansible=False):
                print(f"FAIL: the snippet with '{bad.splitlines()[1].strip()}' passed",
                      file=sys.stderr)
                sys.exit(1)
            print(f"self-test: the snippet with '{bad.splitlines()[1].strip()}' was caught")
        sys.exit(0)


if __name__ == "__main__":
    main()
