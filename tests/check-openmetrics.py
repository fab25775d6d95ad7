#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Parse an OpenMetrics text with python3-prometheus-client's parser (a real
# one, not ours) and print every sample on one line, for the tests to look
# at: NAME{label="value",...} VALUE, labels sorted by name, values as
# Python prints them (integers without a fraction). A text the parser
# refuses exits 1 with its complaint.
# Usage: check-openmetrics.py FILE|-   (the families' names and types, then
#        the samples, on standard output)
import sys

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families


def main():
    path = sys.argv[1]
    text = sys.stdin.read() if path == "-" else open(path).read()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        print("invalid OpenMetrics text: %s" % e, file=sys.stderr)
        return 1
    for fam in families:
        print("# %s %s %s" % (fam.name, fam.type, fam.unit or "-"))
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, v)
                              for k, v in sorted(s.labels.items()))
            value = s.value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            print("%s{%s} %s" % (s.name, labels, value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
