#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The built man pages: each has the right .TH line (name, section, the
# project's version), groff renders it without a warning, and what it
# points to resolves on an installed host: every file its SEE ALSO names is
# one the build installs (meson's install plan), every page of ours it
# names exists in that section, and no page points into the source tree
# ("docs/...").
# Usage: check-man.py VERSION INTRO-INSTALLED.JSON PAGE.N...   (TAP)
import json
import os
import re
import shutil
import subprocess
import sys


def plain(roff):
    """The text of roff source: font escapes dropped, \\- as -."""
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\fB|\\&", "", roff)
    return text.replace("\\-", "-").replace("\\e", "\\")


def see_also_problems(roff, installed, ours):
    problems = []
    if re.search(r"(?<![\w/])docs/", plain(roff)):
        problems.append("points into the source tree (docs/...)")
    m = re.search(r"^\.SH\s+\"?SEE ALSO\"?\s*$(.*?)(?=^\.SH|\Z)", roff,
                  re.M | re.S)
    if not m:
        return problems + ["no SEE ALSO section"]
    text = plain(m.group(1))
    for path in re.findall(r"(/[\w.+/-]*\w)", text):
        if path not in installed:
            problems.append("%s is not installed" % path)
    names = {name for name, _ in ours}
    for name, section in re.findall(r"([\w.-]+)\s*\((\d)\)", text):
        if name in names and (name, section) not in ours:
            problems.append("%s(%s) is not one of our pages" % (name, section))
    return problems


def main():
    version = sys.argv[1]
    installed = set(json.load(open(sys.argv[2], encoding="utf-8")).values())
    pages = sys.argv[3:]
    ours = {tuple(os.path.basename(p).rsplit(".", 1)) for p in pages}
    groff = shutil.which("groff")
    print("1..%d" % (3 * len(pages)))
    n = 0
    failed = False
    for page in pages:
        base = os.path.basename(page)
        name, section = base.rsplit(".", 1)
        text = open(page, encoding="utf-8").read()
        m = re.search(r'^\.TH "([^"]+)" (\S+) "[^"]*" "([^"]*)"', text, re.M)
        n += 1
        if m and m.group(1) == name.upper() and m.group(2) == section \
                and m.group(3) == version and len(text) > 1000:
            print("ok %d - %s: .TH %s %s %s" % (n, base, m.group(1), section, version))
        else:
            print("not ok %d - %s: .TH line %r" % (n, base, m.group(0) if m else None))
            failed = True
        n += 1
        problems = see_also_problems(text, installed, ours)
        if problems:
            print("not ok %d - %s: SEE ALSO: %s" % (n, base, "; ".join(problems)))
            failed = True
        else:
            print("ok %d - %s: SEE ALSO names installed files and pages" % (n, base))
        n += 1
        if not groff:
            print("ok %d - %s: rendering # SKIP groff not installed" % (n, base))
            continue
        r = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", page],
                           capture_output=True, text=True,
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        if r.returncode == 0 and not r.stderr.strip():
            print("ok %d - %s: groff -man renders it without warnings" % (n, base))
        else:
            print("not ok %d - %s: groff: %s" % (n, base, r.stderr.strip()[:1000]))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
