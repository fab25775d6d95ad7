#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The shipped configuration files (data/virtcocod.conf, data/qemu-coco.conf.in,
# data/kvm.conf.in; docs/packaging.rst "Configuration files"), loaded by
# the real loaders of the built programs:
#  - each file as shipped loads (virtcocod --check-config, qemu-coco
#    --coco-check-config, virt-coco capabilities with $COCO_KVM_CONF);
#  - every key the loader knows is in the file, and every key in the file
#    is one the loader knows (its table in the source), except the keys
#    announced below and not in this tree yet (TAP TODO);
#  - every commented key, uncommented on its own, loads, and all of them
#    uncommented at once change nothing the program reports (the comments
#    show the real defaults);
#  - an unknown key is refused, naming the key.
# Usage: check-config.py SRCDIR VIRTCOCOD QEMU-COCO VIRT-COCO
#                        VIRTCOCOD.CONF QEMU-COCO.CONF KVM.CONF   (TAP)
import json
import os
import re
import subprocess
import sys
import tempfile

# Keys documented in the shipped files before the code that reads them is
# in this tree, each reported as TODO while the loader refuses it; once the
# loader knows it, the test fails until the key is removed from this list.
PENDING = {}
# Keys the loader still reads that are not shipped, on purpose.
NOT_SHIPPED = {}
# Where each loader's table of keys is: file, array name (virtcocod also
# reads the integer keys of cocoAgentConfigUIntKeys).
TABLES = {
    "virtcocod": ("src/agent/cocoagentconfig.c", "cocoAgentConfigKeys"),
    "qemu-coco": ("tools/qemu-coco-config.c", "qemuCocoConfigKeys"),
    "kvm": ("src/firmware/cocokvmconfig.c", "known"),
}

n = 0
failed = False


def tap(ok, text, todo=None):
    global n, failed
    n += 1
    line = "%s %d - %s" % ("ok" if ok else "not ok", n, text)
    if todo:
        line += " # TODO " + todo
    elif not ok:
        failed = True
    print(line, flush=True)


def code_keys(srcdir, name):
    """The (group, key) pairs of a loader's table."""
    path, array = TABLES[name]
    text = open(os.path.join(srcdir, path), encoding="utf-8").read()
    m = re.search(r"\b%s\[\](?:\[2\])?\s*=\s*\{(.*?)\};" % array, text, re.S)
    if not m:
        raise SystemExit("Bail out! no table %s in %s" % (array, path))
    body = m.group(1)
    if name == "kvm":
        return set(re.findall(r'\{\s*"(\w+)"\s*,\s*"(\w+)"\s*\}', body))
    group = "virtcocod" if name == "virtcocod" else "qemu-coco"
    keys = {(group, k) for k in re.findall(r'"(\w+)"', body)}
    if name == "virtcocod":
        keys |= {(group, k) for k in re.findall(r'\bUKEY\("(\w+)"', text)}
    return keys


def file_keys(lines):
    """(group, key, line index, commented) of each key line."""
    keys = []
    group = None
    for i, line in enumerate(lines):
        g = re.fullmatch(r"\[([\w-]+)\]", line.strip())
        if g:
            group = g.group(1)
            continue
        k = re.fullmatch(r"(#)?([a-z_]+) =(?: .*)?", line.rstrip("\n"))
        if k:
            keys.append((group, k.group(2), i, bool(k.group(1))))
    return keys


class Loader:
    def __init__(self, name, argv, env_var):
        self.name = name
        self.argv = argv
        self.env_var = env_var

    def run(self, path):
        env = dict(os.environ, LC_ALL="C")
        argv = list(self.argv)
        if self.env_var:
            env[self.env_var] = path
        else:
            argv += ["-c", path]
        r = subprocess.run(argv, capture_output=True, text=True, env=env,
                           timeout=30)
        return r.returncode, r.stdout, r.stderr.strip()

    def report(self, out):
        """What the program says it uses, comparable across files."""
        if self.name == "qemu-coco":
            return out.split(":", 1)[1].strip()
        if self.name == "kvm":
            kvm = json.loads(out)["kvm"]
            return (kvm["ioctls"], kvm["cap_migration"])
        return None


def write(tmp, lines):
    path = os.path.join(tmp, "test.conf")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def check(tmp, srcdir, loader, shipped):
    name = loader.name
    base = os.path.basename(shipped)
    lines = open(shipped, encoding="utf-8").readlines()
    pending = PENDING.get(name, set())

    rc, out, err = loader.run(shipped)
    tap(rc == 0, "%s as shipped loads%s" % (base, "" if rc == 0 else ": " + err))
    want = loader.report(out) if rc == 0 else None

    known = code_keys(srcdir, name)
    keys = file_keys(lines)
    infile = {(g, k) for g, k, _, _ in keys}
    missing = sorted("%s.%s" % gk for gk in known - infile
                     if gk[1] not in NOT_SHIPPED.get(name, set()))
    tap(not missing, "%s lists every key its loader reads%s" %
        (base, "" if not missing else "; missing: " + ", ".join(missing)))
    stale = sorted(k for g, k in known if k in pending)
    tap(not stale, "%s: no announced key is in the loader yet%s" %
        (base, "" if not stale else
         "; remove from PENDING in tests/check-config.py: " + ", ".join(stale)))

    commented = [(g, k, i) for g, k, i, c in keys if c]
    for g, k, i in commented:
        uncommented = list(lines)
        uncommented[i] = lines[i][1:]
        rc, _, err = loader.run(write(tmp, uncommented))
        text = "%s: '%s' uncommented loads" % (base, lines[i][1:].strip())
        if (g, k) not in known and k in pending:
            tap(False, text + ": " + err,
                todo="announced, not read by this tree's loader yet")
        elif (g, k) not in known:
            tap(False, text + ": the loader's table has no key '%s'" % k)
        else:
            tap(rc == 0, text + ("" if rc == 0 else ": " + err))

    every = list(lines)
    for g, k, i in commented:
        if (g, k) in known:
            every[i] = lines[i][1:]
    rc, out, err = loader.run(write(tmp, every))
    if rc != 0:
        tap(False, "%s with every default uncommented: %s" % (base, err))
    elif want is None:
        tap(True, "%s with every default uncommented loads" % base)
    else:
        got = loader.report(out)
        tap(got == want, "%s: uncommenting every default changes nothing%s" %
            (base, "" if got == want else ": %r != %r" % (got, want)))

    group = next(g for g, _, _, _ in keys)
    bad = list(lines)
    bad.insert(next(i for i, l in enumerate(lines) if l.strip() ==
                    "[%s]" % group) + 1, "no_such_key = 1\n")
    rc, _, err = loader.run(write(tmp, bad))
    tap(rc != 0 and "unknown key 'no_such_key'" in err,
        "%s with an unknown key is refused: %s" % (base, err or "(accepted)"))


def main():
    srcdir, virtcocod, qemu_coco, virt_coco = sys.argv[1:5]
    files = sys.argv[5:8]
    loaders = [
        Loader("virtcocod", [virtcocod, "--check-config"], None),
        Loader("qemu-coco", [qemu_coco, "--coco-check-config"],
               "QEMU_COCO_CONFIG"),
        Loader("kvm", [virt_coco, "--json", "capabilities"], "COCO_KVM_CONF"),
    ]
    with tempfile.TemporaryDirectory(prefix="coco-config.") as tmp:
        for loader, path in zip(loaders, files):
            check(tmp, srcdir, loader, path)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
