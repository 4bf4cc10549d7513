#!/usr/bin/env python3
"""Where the constants of held-out completions come from (issue 23's diagnosis of the RL term).

Every numbered practice family (add_k, times_k, ...) holds out one residue class of k mod 5, so a
held-out problem's constant never appeared as an answer of its family in training. For each
sampled completion of a numbered held-out problem this counts whether its numbers contain the
problem's own constant ("own": copied from the prompt), else whether its constant is one of the
family's training constants ("recalled": memorised from training instances), else "other".
  scripts/heldout_constants.py RUN_DIR/09-eval/M1 RUN_DIR/09-eval/M2 ...
Reads <eval dir>/practice_heldout/*_samples.jsonl_results.jsonl and the run's 04-problems/train.jsonl.
"""
import collections
import glob
import json
import os
import re
import sys


def family_constant(task_id):
    fam, _, k = task_id.split("/", 1)[1].rpartition("_")
    return fam, (int(k) if k.isdigit() else None)


def training_constants(train_path):
    out = collections.defaultdict(set)
    with open(train_path) as f:
        for line in f:
            fam, k = family_constant(json.loads(line)["task_id"])
            if k is not None:
                out[fam].add(k)
    return out


def classify(results_path, train_consts):
    counts = collections.Counter()
    with open(results_path) as f:
        for line in f:
            j = json.loads(line)
            fam, k = family_constant(j["task_id"])
            if k is None:
                continue
            nums = [int(x) for x in re.findall(r"\d+", j["completion"])]
            if k in nums:
                counts["own"] += 1
            elif any(n in train_consts[fam] for n in nums):
                counts["recalled"] += 1
            else:
                counts["other"] += 1
    return counts


def main(dirs):
    if not dirs:
        sys.exit("usage: scripts/heldout_constants.py EVAL_DIR [EVAL_DIR ...]  (e.g. runs/main/09-eval/M1)")
    for d in dirs:
        found = glob.glob(os.path.join(d, "practice_heldout", "*_samples.jsonl_results.jsonl"))
        train = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(d))), "04-problems", "train.jsonl")
        if not found or not os.path.exists(train):
            sys.exit("heldout_constants: %s has no practice_heldout results or no ../../04-problems/train.jsonl" % d)
        c = classify(found[0], training_constants(train))
        n = max(1, sum(c.values()))
        print("%-50s own %.2f  recalled %.2f  other %.2f  (%d samples)" % (
            d, c["own"] / n, c["recalled"] / n, c["other"] / n, n))


if __name__ == "__main__":
    main(sys.argv[1:])
