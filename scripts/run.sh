#!/usr/bin/env bash
# Builds if needed, then runs the main job: the whole pipeline on the embedded default (Debian's
# Python standard library) -> tokenizer, data, M0, practice problems, M1 (SFT), preferences from
# execution, reward model, M2 (PPO), then M0 / M1 / M2 on held-out problems and HumanEval.
# Rerunning resumes (finished stages are skipped). With arguments, runs `codex-train <arguments>`.
#   scripts/run.sh                      # the main job, into runs/main (CODEX_RUN_DIR to change)
#                                       # as 2 Gloo ranks of 1 thread (CODEX_NPROC to change)
#   scripts/run.sh pretrain --config configs/pretrain/tiny.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >&2
BIN=${CODEX_BUILD_DIR:-build}/codex-train
if [ $# -gt 0 ]; then exec "$BIN" "$@"; fi

RUN=${CODEX_RUN_DIR:-runs/main}
CORPUS=${CODEX_CORPUS:-/usr/lib/python3.11}
start=$(date +%s)
scripts/launch.sh --nproc-per-node "${CODEX_NPROC:-2}" -- \
  "$BIN" pipeline --corpus "$CORPUS" --output-dir "$RUN" --config configs/pipeline/main.yaml >/dev/null
echo "== main job done in $(( $(date +%s) - start ))s" >&2
python3 - "$RUN/summary.json" <<'PY' >&2
import json, sys
full = json.load(open(sys.argv[1]))
s = full["models"]
sets = sorted({k for m in s.values() for k in m})
print("%-25s %s" % ("pass@k", "  ".join("%-12s" % m for m in s)))
for st in sets:
    keys = sorted({k for m in s.values() for k in m.get(st, {}) if k.startswith("pass@") and "ci" not in k})
    for k in keys:
        row = []
        for m in s:
            v = s[m].get(st, {})
            ci = v.get("pass@1_ci95") if k == "pass@1" else None
            row.append(("%.3f" % v[k] + ("±%.3f" % ci if ci is not None else "")) if k in v else "-")
        print("%-25s %s" % (st + " " + k, "  ".join("%-12s" % x for x in row)))
for st, steps in sorted(full.get("paired", {}).items()):  # paired over the same problems
    for step, d in sorted(steps.items()):
        print("%-25s %+.3f ± %.3f (paired, %d problems)" % (st + " " + step, d["pass@1"], d["ci95"], d["problems"]))
PY
echo "report: $RUN/report.html" >&2
