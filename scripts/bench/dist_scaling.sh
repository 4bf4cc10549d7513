#!/usr/bin/env bash
# Data-parallel throughput: the same global batch trained by 1 process and by N Gloo ranks
# (scripts/launch.sh on this machine), side by side. Prints one JSON line.
#   scripts/bench/dist_scaling.sh [DATA_FOLDER] [extra overrides...]
# DATA_FOLDER: a prepared folder (default runs/main/data, from scripts/run.sh).
# Env: CODEX_BIN (default build/codex-train), NPROC (default 2), STEPS (default 40).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODEX_BIN:-build/codex-train}
DATA=${1:-runs/main/data}
shift || true
NPROC=${NPROC:-2}
STEPS=${STEPS:-40}
[ -x "$BIN" ] || { echo "dist_scaling: $BIN not built (scripts/build.sh)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "dist_scaling: no prepared data at '$DATA' (run scripts/run.sh or data prepare)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(pretrain --config configs/pretrain/main.yaml train.data="$DATA" train.max_steps="$STEPS" train.eval_every=0
      train.checkpoint_every=0 train.log_every=10 run.threads=1 "$@")
tps() { /usr/bin/python3 -c 'import sys, json; print([json.loads(l) for l in sys.stdin if l.startswith("{")][-1]["tokens_per_s"])'; }
one=$("$BIN" "${args[@]}" run.dir="$tmp/one" 2>/dev/null | tps)
many=$(scripts/launch.sh --nproc-per-node "$NPROC" --master-port $((20000 + RANDOM % 20000)) -- \
         "$BIN" "${args[@]}" run.dir="$tmp/many" 2>/dev/null | sed 's/^\[rank 0\] //' | tps)
/usr/bin/python3 -c "
import json
print(json.dumps({'bench': 'dist_scaling', 'nproc': $NPROC, 'steps': $STEPS, 'tokens_per_s_1': $one,
                  'tokens_per_s_n': $many, 'speedup': $many / $one, 'efficiency': $many / $one / $NPROC}))"
