#!/usr/bin/env bash
# Training speed of two builds side by side (e.g. before / after a change of the training loop):
# the real `pretrain` command on a prepared data folder, and `bench train` (one update step on
# synthetic tokens), interleaved A B A B ... so that both see the same machine. One thread each.
# Prints one JSON line: median tokens/s of each build and the ratio B / A.
#   scripts/bench/train_ab.sh BIN_A BIN_B DATA_FOLDER [config]
# Env: STEPS (pretrain steps, default 200), REPS (default 3), A_ARGS / B_ARGS (extra overrides for
# one build only, e.g. B_ARGS=model.attention=reference).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { echo "usage: train_ab.sh BIN_A BIN_B DATA_FOLDER [config]" >&2; exit 2; }
A=$1 B=$2 DATA=$3 CFG=${4:-configs/pretrain/tiny.yaml}
STEPS=${STEPS:-200} REPS=${REPS:-3}
for b in "$A" "$B"; do [ -x "$b" ] || { echo "train_ab: '$b' is not an executable" >&2; exit 2; }; done
[ -d "$DATA" ] || { echo "train_ab: no prepared data folder at '$DATA'" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
last_tps() { /usr/bin/python3 -c 'import sys, json; print([json.loads(l) for l in sys.stdin if l.startswith("{")][-1]["tokens_per_s"])'; }
run() {  # run BIN EXTRA_ARGS WHAT
  local bin=$1 extra=$2 what=$3 dir
  dir=$(mktemp -d -p "$tmp")
  if [ "$what" = pretrain ]; then
    # shellcheck disable=SC2086
    "$bin" pretrain --config "$CFG" train.data="$DATA" train.max_steps="$STEPS" train.eval_every=0 \
      train.checkpoint_every=0 run.threads=1 run.dir="$dir/run" $extra 2>/dev/null | last_tps
  else
    # shellcheck disable=SC2086
    "$bin" bench train --config "$CFG" run.threads=1 $extra 2>/dev/null | last_tps
  fi
}
pa=() pb=() ba=() bb=()
for _ in $(seq "$REPS"); do
  pa+=("$(run "$A" "${A_ARGS:-}" pretrain)"); pb+=("$(run "$B" "${B_ARGS:-}" pretrain)")
  ba+=("$(run "$A" "${A_ARGS:-}" bench)"); bb+=("$(run "$B" "${B_ARGS:-}" bench)")
done
/usr/bin/python3 - "${pa[*]}" "${pb[*]}" "${ba[*]}" "${bb[*]}" "$CFG" "$STEPS" <<'PY'
import json, statistics, sys
pa, pb, ba, bb = ([float(x) for x in a.split()] for a in sys.argv[1:5])
m = statistics.median
print(json.dumps({"bench": "train_ab", "config": sys.argv[5], "pretrain_steps": int(sys.argv[6]),
                  "pretrain_tokens_per_s": {"A": m(pa), "B": m(pb), "B/A": m(pb) / m(pa), "A_all": pa, "B_all": pb},
                  "bench_train_tokens_per_s": {"A": m(ba), "B": m(bb), "B/A": m(bb) / m(ba), "A_all": ba, "B_all": bb}}))
PY
