#!/usr/bin/env python3
"""Paired pass@1 difference of two evaluations of the same problems (B - A), as summary.json's
"paired" block computes it: per problem passed/n of B minus that of A, their mean, and 1.96 x
the standard error of that mean. Lets two ablation rows' M2s be compared with each other.
  scripts/paired.py A_DIR B_DIR     # e.g. runs/ablation/x/09-eval/M2/practice_heldout runs/main/09-eval/M2/practice_heldout
"""
import glob
import json
import math
import os
import sys


def rates(d):
    paths = glob.glob(os.path.join(d, "*_summary.jsonl"))
    if len(paths) != 1:
        sys.exit("paired.py: expected one *_summary.jsonl in %s, found %d" % (d, len(paths)))
    out = {}
    with open(paths[0]) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                out[j["task_id"]] = j["passed"] / j["n"]
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: scripts/paired.py A_DIR B_DIR")
    a, b = rates(sys.argv[1]), rates(sys.argv[2])
    if set(a) != set(b):
        sys.exit("paired.py: the two evaluations are not of the same problems")
    d = [b[t] - a[t] for t in sorted(a)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 0.0
    print("%+.3f ± %.3f (paired, %d problems)" % (mean, 1.96 * math.sqrt(var / n), n))


main()
