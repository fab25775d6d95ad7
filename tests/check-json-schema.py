#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Validate JSON lines against docs/virt-coco-json.schema.json, the schema of
# everything "virt-coco --json" prints (python3-jsonschema, Draft 2020-12).
# Usage: check-json-schema.py SCHEMA FILE...   each FILE holds one JSON
# object per line (a line "# label" names the lines that follow).
# Exit 0 when every line is valid, 1 otherwise (each failure printed),
# 77 when python3-jsonschema is missing. Before the files, the checker
# proves it can fail: the schema itself must be valid, and two outputs of
# the old, undocumented shapes must be rejected.

import json
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed")
    sys.exit(77)


def main():
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    validator = cls(schema)
    # The shapes issue 15 found: 'code' a string, floats unrounded.
    for bad in ({"error": {"code": "xml-malformed", "number": 100,
                           "message": "x"}},
                {"event": "result", "ok": False, "error": {"code": 701}}):
        if validator.is_valid(bad):
            print("the schema accepts an old shape: %s" % json.dumps(bad))
            return 1
    failures = 0
    count = 0
    for path in sys.argv[2:]:
        label = path
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith("# "):
                    label = line[2:]
                    continue
                count += 1
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    print("%s:%d (%s): not JSON: %s" % (path, n, label, e))
                    failures += 1
                    continue
                errors = sorted(validator.iter_errors(obj), key=str)
                if errors:
                    failures += 1
                    best = jsonschema.exceptions.best_match(errors)
                    print("%s:%d (%s): %s at %s\n  %s" % (
                        path, n, label, best.message,
                        "/".join(str(p) for p in best.absolute_path),
                        line[:400]))
    print("%d JSON lines checked, %d invalid" % (count, failures))
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
