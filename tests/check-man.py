#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The built man pages: each has the right .TH line (name, section, the
# project's version) and groff renders it without a warning.
# Usage: check-man.py VERSION PAGE.N...   (TAP on stdout)
import os
import re
import shutil
import subprocess
import sys


def main():
    version = sys.argv[1]
    pages = sys.argv[2:]
    groff = shutil.which("groff")
    print("1..%d" % (2 * len(pages)))
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
