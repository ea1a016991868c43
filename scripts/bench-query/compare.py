#!/usr/bin/env python3
"""Compare two Prometheus HTTP API query answers (JSON files).

Usage: compare.py A.json B.json
Prints "ok N" when both hold the same series (by label set) with values equal
to a relative tolerance of 1e-9 (NaN equals NaN), else the first differences.
Exit status 0 on match, 1 on mismatch.
"""
import json
import math
import sys


def load(path):
    with open(path) as f:
        d = json.load(f)
    if d.get("status") != "success":
        return None, d.get("error", "status " + str(d.get("status")))
    r = d["data"]
    out = {}
    if r["resultType"] == "scalar":
        out[()] = [tuple(r["result"])]
    for s in r["result"] if r["resultType"] in ("vector", "matrix") else []:
        key = tuple(sorted(s["metric"].items()))
        out[key] = [tuple(s["value"])] if "value" in s else [tuple(v) for v in s["values"]]
    return out, None


def same(a, b):
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb
    return abs(fa - fb) <= 1e-9 * max(abs(fa), abs(fb), 1e-300)


a, ea = load(sys.argv[1])
b, eb = load(sys.argv[2])
if ea or eb:
    print(f"error: A={ea} B={eb}")
    sys.exit(1)
diffs = []
for k in sorted(set(a) | set(b)):
    if k not in a or k not in b:
        diffs.append(f"series {dict(k)} only in {'A' if k in a else 'B'}")
        continue
    pa, pb = dict(a[k]), dict(b[k])
    if set(pa) != set(pb):
        diffs.append(f"series {dict(k)}: timestamps differ ({len(pa)} vs {len(pb)} points)")
        continue
    for t in sorted(pa):
        if not same(pa[t], pb[t]):
            diffs.append(f"series {dict(k)} @{t}: {pa[t]} vs {pb[t]}")
            break
if diffs:
    print(f"MISMATCH ({len(diffs)} series): " + "; ".join(diffs[:3]))
    sys.exit(1)
print(f"ok {len(a)} series")
