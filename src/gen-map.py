#!/usr/bin/env python3
# Build the linker version script from per-layer symbol lists.
# Usage: gen-map.py OUTPUT FILE.syms...
import sys

syms = []
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                syms.append(line)

dups = {s for s in syms if syms.count(s) > 1}
if dups:
    sys.exit("duplicate exported symbols: " + ", ".join(sorted(dups)))

with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("LIBVIRT_COCO_0.1.0 {\n    global:\n")
    for s in sorted(syms):
        out.write("        %s;\n" % s)
    out.write("    local:\n        *;\n};\n")
