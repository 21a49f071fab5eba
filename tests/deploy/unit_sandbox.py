#!/usr/bin/env python3
"""Checks strace output of the agent against a unit's SystemCallFilter= and
RestrictAddressFamilies=: every system call made must be allowed by the filter,
every socket family by the restriction.

usage: unit_sandbox.py UNIT_FILE TRACE_FILE...
"""
import re
import subprocess
import sys


def syscall_groups():
    """{"@group": [members, possibly "@nested"]} from systemd-analyze itself."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True,
                         capture_output=True, text=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def expand(names, groups):
    result = set()
    for name in names:
        if name.startswith("@"):
            result |= expand(groups[name], groups)
        else:
            result.add(name)
    return result


def main(argv):
    unit, traces = argv[1], argv[2:]
    allow, deny, families = [], [], None
    with open(unit) as f:
        for line in f:
            line = line.strip()
            if line.startswith("SystemCallFilter="):
                value = line.split("=", 1)[1]
                (deny if value.startswith("~") else allow).extend(value.lstrip("~").split())
            elif line.startswith("RestrictAddressFamilies="):
                families = set(line.split("=", 1)[1].split())
    if not allow or families is None:
        sys.exit(f"{unit}: no SystemCallFilter allow list or no RestrictAddressFamilies")
    groups = syscall_groups()
    allowed = expand(allow, groups) - expand(deny, groups)

    used, used_families = set(), set()
    for trace in traces:
        with open(trace) as f:
            for line in f:
                # "1234 name(args) = result" or "1234 <... name resumed>..."
                m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
                if m and not line.startswith("+++") and "--- SIG" not in line:
                    used.add(m.group(1))
                m = re.search(r"\bsocket\((AF_[A-Z0-9]+)", line)
                if m:
                    used_families.add(m.group(1))
    used.discard("exited")
    # strace itself runs execve() before the agent: systemd allows it for the
    # service's own exec too (it installs the filter right before).
    used.discard("execve")
    if not used:
        sys.exit("the traces hold no system calls")
    problems = [f"system call {s} is not allowed by {unit}'s SystemCallFilter"
                for s in sorted(used - allowed)]
    problems += [f"socket family {f} is not in {unit}'s RestrictAddressFamilies"
                 for f in sorted(used_families - families)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{unit}: {len(used)} system calls and families {sorted(used_families)} all allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
