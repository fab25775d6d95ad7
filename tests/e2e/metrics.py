#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The lab's look at a virtcocod metrics endpoint (docs/virtcocod.rst,
# "Metrics"), read with python3-prometheus-client's OpenMetrics parser.
# Run in the host's network namespace (the endpoint is on its loopback),
# with Debian's /usr/bin/python3 (python3-prometheus-client).
#   metrics.py scrape URL DIR    scrape every 0.1 s into DIR/NNNNN.txt
#                                until DIR/stop exists
#   metrics.py during DIR        every scrape parses; prints how many, and
#                                how many saw a source migration in flight
#   metrics.py get URL           one scrape, its samples, one per line:
#                                NAME{labels sorted} VALUE
import os
import sys
import time
import urllib.request

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def samples(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
            out["%s{%s}" % (s.name, labels)] = s.value
    return out


def fetch(url):
    r = urllib.request.urlopen(url, timeout=5)
    ctype = r.headers.get("Content-Type")
    if ctype != CONTENT_TYPE:
        raise SystemExit("bad Content-Type: %s" % ctype)
    return r.read().decode()


def main():
    mode = sys.argv[1]
    if mode == "scrape":
        url, d = sys.argv[2], sys.argv[3]
        n = 0
        while not os.path.exists(os.path.join(d, "stop")):
            try:
                text = fetch(url)
                with open(os.path.join(d, "%05d.txt" % n), "w") as f:
                    f.write(text)
                n += 1
            except OSError as e:
                print("scrape failed: %s" % e, file=sys.stderr)
            time.sleep(0.1)
        return 0
    if mode == "during":
        d = sys.argv[2]
        n = busy = 0
        for name in sorted(os.listdir(d)):
            if not name.endswith(".txt"):
                continue
            s = samples(open(os.path.join(d, name)).read())
            n += 1
            if s.get('virtcocod_migrations_in_flight{role="source"}', 0) >= 1:
                busy += 1
        print("%d %d" % (n, busy))
        return 0
    if mode == "get":
        for k, v in sorted(samples(fetch(sys.argv[2])).items()):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            print("%s %s" % (k, v))
        return 0
    raise SystemExit("unknown mode %s" % mode)


if __name__ == "__main__":
    sys.exit(main())
