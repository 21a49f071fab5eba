#!/usr/bin/env python3
"""Every flag of `iocwall --help` is in iocwall(8); every configuration key the code accepts is
in iocwall.conf(5), under its section, with its default, and in the example configuration.

usage: man_coverage.py IOCWALL_BIN MAN_DIR EXAMPLE_CONF [CONFIG_SOURCE]

The keys come from --help and, when given, from the agent's source (the table of keys in
agent/config.cc): a key the parser accepts but --help forgot is caught too.
"""
import re
import subprocess
import sys


def render(path):
    out = subprocess.run(["mandoc", "-Tascii", path], check=True, capture_output=True, text=True)
    # Drop the overstrike (bold/underline) that -Tascii uses.
    return re.sub(r".\x08", "", out.stdout)


def conf_sections(text):
    """{section: rendered text of its subsection} from iocwall.conf(5)."""
    sections = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^ {3}\[([a-z]+)\]\s*$", line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if re.match(r"^[A-Z]", line):  # next .Sh
            current = None
        if current:
            sections[current].append(line)
    return {k: "\n".join(v) for k, v in sections.items()}


def key_paragraph(section_text, key):
    """The tagged paragraph of `key = ...` inside a section, or None."""
    lines = section_text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^ {5}" + re.escape(key) + r" = ", line):
            body = [line]
            for nxt in lines[i + 1:]:
                if re.match(r"^ {5}\S", nxt):
                    break
                body.append(nxt)
            return " ".join(body)
    return None


def main(argv):
    binary, man_dir, example = argv[1], argv[2], argv[3]
    source = argv[4] if len(argv) > 4 else None
    help_text = subprocess.run([binary, "--help"], check=True, capture_output=True,
                               text=True).stdout
    # Boost lists each option at the start of a line ("  -c [ --config ] FILE  text"); only
    # that first column counts: descriptions wrap anywhere, even inside a word.
    tokens = set()
    for line in help_text.splitlines():
        if not re.match(r"^ {2}-", line):
            continue
        for word in line.split():
            if re.fullmatch(r"--?[a-z][a-z0-9_.-]*", word):
                tokens.add(word)
            elif not (word in ("[", "]", "arg") or word.isupper()):
                break  # the description starts
    flags = {t for t in tokens if "." not in t}
    # "--section.key" is the usage line's placeholder, not a key.
    keys = {t[2:] for t in tokens if t.startswith("--") and "." in t} - {"section.key"}
    if source:
        with open(source) as f:
            src_keys = set(re.findall(r'\{"([a-z0-9_]+\.[a-z0-9_]+)",', f.read()))
        if not src_keys:
            sys.exit(f"found no key table in {source}: update this test's pattern")
        missing_in_help = sorted(src_keys - keys)
        if missing_in_help:
            sys.exit(f"keys the code accepts but --help does not list: {missing_in_help}")
        keys |= src_keys
    if len(flags) < 10 or len(keys) < 20:
        sys.exit(f"--help looks truncated: {len(flags)} flags, {len(keys)} keys")

    problems = []
    # A flag counts as documented when it heads an item of a tagged list
    # (".It Fl -once"), not when it is merely mentioned in an example.
    tagged = set()
    for line in render(f"{man_dir}/iocwall.8").splitlines():
        if re.match(r"^ {5}-", line):
            tag = re.split(r"\s{2,}", line.strip())[0]
            tagged |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9_-]*)", tag))
    for flag in sorted(flags - tagged):
        problems.append(f"iocwall.8 does not document the flag {flag}")

    page5 = render(f"{man_dir}/iocwall.conf.5")
    sections = conf_sections(page5)
    with open(example) as f:
        example_text = f.read()
    for full in sorted(keys):
        section, key = full.split(".", 1)
        if section not in sections:
            problems.append(f"iocwall.conf.5 has no [{section}] subsection (for {full})")
            continue
        para = key_paragraph(sections[section], key)
        if para is None:
            problems.append(f"iocwall.conf.5 does not document {key} under [{section}]")
        elif "Default" not in para:
            problems.append(f"iocwall.conf.5 gives no default for [{section}] {key}")
        if not re.search(r"(?ms)^\[" + section + r"\]$.*?^#?" + re.escape(key) + r" =",
                         example_text):
            problems.append(f"the example configuration lacks [{section}] {key}")

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(flags)} flags in iocwall.8, {len(keys)} keys in iocwall.conf.5 and the example")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
