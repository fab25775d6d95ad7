#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Style checks of the 'syntax' test suite. Usage: check-syntax.py CHECK SRCDIR
#   clang-format  every C file is formatted as .clang-format says
#   messages      translatable messages are whole and use positional args
#   potfiles      po/POTFILES.in lists exactly the files with messages
#   symbols       every exported symbol is documented in a public header
#   spec          the generated libvirt-coco.spec has meson's version and
#                 rpmspec parses it
#   markers       no unfinished-work markers in src/ tools/ include/
import glob
import os
import re
import shutil
import subprocess
import sys

SRC_DIRS = ("src", "tools", "include", "tests")


def c_files(top, dirs=SRC_DIRS):
    out = []
    for d in dirs:
        for pat in ("**/*.c", "**/*.h"):
            out += glob.glob(os.path.join(top, d, pat), recursive=True)
    return sorted(out)


COMMENT_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|/\*.*?\*/|//[^\n]*', re.S)


def code_of(path):
    """The file's text with comments blanked (line numbers kept)."""
    text = open(path, encoding="utf-8").read()
    def blank(m):
        tok = m.group(0)
        if tok[0] in "\"'":
            return tok
        return re.sub(r"[^\n]", " ", tok)
    return COMMENT_RE.sub(blank, text)


def rel(top, path):
    return os.path.relpath(path, top)


def check_clang_format(top):
    exe = shutil.which("clang-format")
    if not exe:
        print("SKIP: clang-format not installed")
        return 77
    bad = []
    for f in c_files(top):
        r = subprocess.run([exe, "--dry-run", "--Werror",
                            "--style=file:" + os.path.join(top, ".clang-format"), f],
                           capture_output=True, text=True)
        if r.returncode != 0:
            bad.append(rel(top, f))
            sys.stderr.write(r.stderr[:2000])
    for f in bad:
        print("not clang-formatted: %s (run clang-format -i %s)" % (f, f))
    return 1 if bad else 0


# A message: one literal, or literals joined only by <inttypes.h> PRI
# macros (xgettext understands those).
MSG_RE = re.compile(r'\bN?_\(\s*"((?:[^"\\]|\\.)*(?:"\s*PRI[a-zA-Z0-9]+\s*"(?:[^"\\]|\\.)*)*)"(\s*")?', re.S)
DIRECTIVE_RE = re.compile(r'%(?!%)(\d+\$)?[-#0 +\']*\d*(?:\.\d+)?(?:"\s*PRI[a-zA-Z0-9]+\s*"|(?:hh|h|ll|l|z|j|t|L)?[diouxXscpfeEgG])')


def check_messages(top):
    bad = []
    for f in c_files(top, ("src", "tools")):
        text = code_of(f)
        for m in MSG_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            where = "%s:%d" % (rel(top, f), line)
            if m.group(2):
                bad.append("%s: message split into pieces" % where)
            for d in DIRECTIVE_RE.finditer(m.group(1).replace("%%", "")):
                if not d.group(1):
                    bad.append("%s: use positional '%%1$s' arguments: %s"
                               % (where, m.group(1)))
                    break
    for b in bad:
        print(b)
    return 1 if bad else 0


def check_potfiles(top):
    listed = set()
    with open(os.path.join(top, "po", "POTFILES.in"), encoding="utf-8") as fp:
        for line in fp:
            line = line.strip()
            if line and not line.startswith("#"):
                listed.add(line)
    need = set()
    for f in c_files(top, ("src", "tools")):
        if MSG_RE.search(code_of(f)):
            need.add(rel(top, f))
    ret = 0
    for f in sorted(need - listed):
        print("missing from po/POTFILES.in: %s" % f)
        ret = 1
    for f in sorted(listed - need):
        print("listed in po/POTFILES.in but has no messages: %s" % f)
        ret = 1
    return ret


def check_symbols(top):
    docs = ""
    for h in glob.glob(os.path.join(top, "include", "libvirt-coco", "*.h*")):
        docs += open(h, encoding="utf-8").read()
    ret = 0
    for syms in glob.glob(os.path.join(top, "src", "*", "*.syms")):
        for line in open(syms, encoding="utf-8"):
            sym = line.split("#", 1)[0].strip()
            if not sym:
                continue
            if not re.search(r"/\*\*\n \* %s:\n" % re.escape(sym), docs):
                print("%s: exported symbol '%s' has no doc comment in "
                      "include/libvirt-coco/" % (rel(top, syms), sym))
                ret = 1
    return ret


def check_exports(top):
    """The built library exports exactly the symbols the .syms lists name."""
    lib = os.environ.get("COCO_LIBRARY")
    nm = shutil.which("nm")
    if not lib or not nm:
        print("SKIP: no COCO_LIBRARY or nm")
        return 77
    r = subprocess.run([nm, "-D", "--defined-only", lib], capture_output=True,
                       text=True, check=True)
    exported = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRVW" and parts[2] != "LIBVIRT_COCO_0.1.0":
            exported.add(parts[2].split("@")[0])
    listed = set()
    for syms in glob.glob(os.path.join(top, "src", "*", "*.syms")):
        for line in open(syms, encoding="utf-8"):
            sym = line.split("#", 1)[0].strip()
            if sym:
                listed.add(sym)
    ret = 0
    for sym in sorted(exported - listed):
        print("exported but not listed in a .syms file: %s" % sym)
        ret = 1
    for sym in sorted(listed - exported):
        print("listed in a .syms file but not exported: %s" % sym)
        ret = 1
    return ret


def check_rst(top):
    """Every reStructuredText document parses without warnings."""
    exe = shutil.which("rst2html") or shutil.which("rst2html.py")
    if not exe:
        print("SKIP: rst2html not installed")
        return 77
    ret = 0
    docs = (glob.glob(os.path.join(top, "docs", "*.rst"))
            + glob.glob(os.path.join(top, "docs", "man", "*.rst"))
            + [os.path.join(top, "README.rst")])
    for f in sorted(docs):
        r = subprocess.run([exe, "--halt=warning", "--report=warning", f, os.devnull],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("%s: %s" % (rel(top, f), r.stderr.strip()[:500]))
            ret = 1
    return ret


def check_po(top):
    """Each catalogue in po/LINGUAS compiles with its formats checked."""
    exe = shutil.which("msgfmt")
    if not exe:
        print("SKIP: msgfmt not installed")
        return 77
    ret = 0
    with open(os.path.join(top, "po", "LINGUAS"), encoding="utf-8") as fp:
        langs = [w for line in fp for w in line.split("#", 1)[0].split()]
    for lang in langs:
        po = os.path.join(top, "po", lang + ".po")
        r = subprocess.run([exe, "--check", "--check-format", "-o", os.devnull, po],
                           capture_output=True, text=True)
        if r.returncode != 0 or r.stderr.strip():
            print("%s: %s" % (rel(top, po), r.stderr.strip()[:1000]))
            ret = 1
    return ret


def check_spec(top):
    """libvirt-coco.spec.in takes meson's version; the spec meson generates
    from it ($COCO_SPEC) has that version and rpmspec parses it (rpmlint
    runs on it with the packages, in tests/check-rpm.sh)."""
    src = open(os.path.join(top, "libvirt-coco.spec.in"), encoding="utf-8").read()
    if not re.search(r"^Version:\s*@VERSION@$", src, re.M):
        print("libvirt-coco.spec.in: the Version must be @VERSION@ (meson's)")
        return 1
    if os.path.exists(os.path.join(top, "libvirt-coco.spec")):
        print("libvirt-coco.spec in the source tree: meson generates it")
        return 1
    meson = open(os.path.join(top, "meson.build"), encoding="utf-8").read()
    version = re.search(r"version:\s*'([^']+)'", meson).group(1)
    path = os.environ.get("COCO_SPEC")
    if not path:
        print("SKIP: $COCO_SPEC (the generated spec) is not set")
        return 77
    spec = open(path, encoding="utf-8").read()
    m = re.search(r"^Version:\s*(\S+)", spec, re.M)
    if not m or m.group(1) != version:
        print("%s: Version %s differs from meson's %s"
              % (path, m.group(1) if m else "(none)", version))
        return 1
    rpmspec = shutil.which("rpmspec")
    if rpmspec:
        # rpm's own parser must accept the spec (macros expanded)
        r = subprocess.run([rpmspec, "-P", path], capture_output=True, text=True)
        if r.returncode != 0:
            print("rpmspec rejects %s:\n%s" % (path, r.stderr))
            return 1
    return 0


def check_markers(top):
    bad = []
    pat = re.compile(r"\b(TODO|FIXME|XXX)\b")
    for f in c_files(top, ("src", "tools", "include")):
        for n, line in enumerate(open(f, encoding="utf-8"), 1):
            if pat.search(line):
                bad.append("%s:%d: %s" % (rel(top, f), n, line.strip()))
    for b in bad:
        print("unfinished-work marker: " + b)
    return 1 if bad else 0


CHECKS = {
    "clang-format": check_clang_format,
    "messages": check_messages,
    "potfiles": check_potfiles,
    "symbols": check_symbols,
    "spec": check_spec,
    "rst": check_rst,
    "po": check_po,
    "exports": check_exports,
    "markers": check_markers,
}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        sys.exit("usage: check-syntax.py {%s} SRCDIR" % "|".join(CHECKS))
    sys.exit(CHECKS[sys.argv[1]](sys.argv[2]))
