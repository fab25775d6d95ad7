#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Write a C header declaring the text of INPUT as the string constant NAME.
# Usage: embed-string.py NAME INPUT OUTPUT
import json
import os
import sys

name, src, dst = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    text = f.read()
with open(dst, "w", encoding="utf-8") as out:
    out.write("/* Generated from %s. */\n" % os.path.basename(src))
    out.write("#pragma once\n")
    out.write("static const char %s[] = %s;\n" % (name, json.dumps(text)))
