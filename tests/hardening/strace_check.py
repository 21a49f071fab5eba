#!/usr/bin/env python3
"""Reads `strace -f -e trace=openat,open,creat,...` output and fails (exit 1) when a file is
created without O_EXCL and O_NOFOLLOW (O_TMPFILE is fine: it has no name to follow), or with
creat(), which is O_CREAT|O_TRUNC and follows links. Prints every creating call.

usage: strace_check.py STRACE_OUTPUT
"""
import re
import sys


def main():
    bad = 0
    creating = 0
    for line in open(sys.argv[1], errors="replace"):
        m = re.search(r"\b(openat2?|open|creat)\((.*)\)\s+=", line)
        if not m:
            continue
        call, args = m.group(1), m.group(2)
        if call == "creat":
            creating += 1
            bad += 1
            print("BAD (creat follows links):", line.strip())
            continue
        if "O_TMPFILE" in args:
            creating += 1
            print("ok  ", line.strip())
            continue
        if "O_CREAT" not in args:
            continue
        creating += 1
        if "O_EXCL" in args and "O_NOFOLLOW" in args:
            print("ok  ", line.strip())
        else:
            bad += 1
            print("BAD (no O_EXCL|O_NOFOLLOW):", line.strip())
    print(f"{creating} creating calls, {bad} unsafe")
    return 1 if bad or creating == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
