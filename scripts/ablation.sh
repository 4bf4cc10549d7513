#!/usr/bin/env bash
# One ablation row of the main job: the main job's finished stages reused (hard links, nothing
# copied), the pipeline rerun with overrides — only the stages whose config changes are redone
# (for ppo.* keys: 08-ppo and 09-eval) — then one line: held-out pass@1 of M1 and M2, the paired
# M2 - M1 difference with its 95% half-width, and PPO's diagnostics (first 10 -> last 10
# iterations). Rows are appended to runs/ablation/rows.tsv.
#   scripts/ablation.sh NAME [key=value ...]
#   scripts/ablation.sh rl-only ppo.alpha=0
# CODEX_RUN_DIR: the main job's folder (runs/main); CODEX_NPROC: ranks (2).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then echo "usage: scripts/ablation.sh NAME [key=value ...]" >&2; exit 2; fi
name=$1; shift
BIN=${CODEX_BUILD_DIR:-build}/codex-train
MAIN=${CODEX_RUN_DIR:-runs/main}
OUT=runs/ablation/$name
[ -f "$MAIN/summary.json" ] || { echo "ablation: $MAIN has no summary.json: run scripts/run.sh first" >&2; exit 2; }
[ -x "$BIN" ] || { echo "ablation: $BIN not built: run scripts/build.sh" >&2; exit 2; }
if [ ! -e "$OUT" ]; then
  mkdir -p "$OUT"
  cp -al "$MAIN"/0[1-7]-* "$OUT"/  # hard links: a redone stage writes new files, never into the main job's
  cp "$MAIN/pipeline.json" "$OUT/"
fi
start=$(date +%s)
scripts/launch.sh --nproc-per-node "${CODEX_NPROC:-2}" -- \
  "$BIN" pipeline --corpus "${CODEX_CORPUS:-/usr/lib/python3.11}" --output-dir "$OUT" \
  --config configs/pipeline/main.yaml "pipeline.eval_sets=[practice]" "$@" >/dev/null 2>"$OUT/log.txt" ||
  { tail -5 "$OUT/log.txt" >&2; exit 1; }
secs=$(( $(date +%s) - start ))
python3 - "$OUT" "$name" "$secs" "$*" <<'PY'
import json, os, sys
out, name, secs, overrides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = json.load(open(os.path.join(out, "summary.json")))
m = s["models"]
d = s["paired"]["practice_heldout"]["M2-M1"]
lines = [json.loads(l) for l in open(os.path.join(out, "08-ppo", "metrics.jsonl")) if l.strip()]
lines = [l for l in lines if "pass_rate" in l or "reward" in l]
def avg(key, part):
    v = [l[key] for l in part if key in l]
    return sum(v) / len(v) if v else float("nan")
first, last = lines[:10], lines[-10:]
diag = " ".join("%s %.2f->%.2f" % (k, avg(k, first), avg(k, last))
                for k in ("pass_rate", "distinct_completions", "entropy", "kl", "explained_variance"))
row = "%s\t%s\t%.3f\t%.3f\t%.3f\t%+.3f ± %.3f\t%s\t%ss" % (
    name, overrides or "-", m["M1"]["practice_heldout"]["pass@1"], m["M2"]["practice_heldout"]["pass@1"],
    m["M2"]["practice_heldout"].get("pass@10", float("nan")), d["pass@1"], d["ci95"], diag, secs)
print(row)
with open(os.path.join(os.path.dirname(out), "rows.tsv"), "a") as f:
    f.write(row + "\n")
PY
