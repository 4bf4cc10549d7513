#!/usr/bin/env bash
# Builds if needed, then runs the main job on the embedded default (Debian's Python standard
# library): tokenizer -> data -> pretrain a small M0 -> HumanEval pass@k of that M0.
# With arguments, runs `codex-train <arguments>` instead.
#   scripts/run.sh                      # the main job, into runs/main (CODEX_RUN_DIR to change)
#   scripts/run.sh pretrain --config configs/pretrain/tiny.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >&2
BIN=${CODEX_BUILD_DIR:-build}/codex-train
if [ $# -gt 0 ]; then exec "$BIN" "$@"; fi

RUN=${CODEX_RUN_DIR:-runs/main}
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*" >&2; }

step "1/4 tokenizer train -> $RUN/tokenizer.model"
"$BIN" tokenizer train --config configs/tokenizer/code.yaml run.dir="$RUN"
step "2/4 data prepare -> $RUN/data"
"$BIN" data prepare --config configs/data/stdlib.yaml run.dir="$RUN"
step "3/4 pretrain -> $RUN/checkpoints"
"$BIN" pretrain --config configs/pretrain/main.yaml run.dir="$RUN" train.data="$RUN/data" resume=true
step "4/4 eval humaneval -> $RUN/humaneval"
"$BIN" eval humaneval --checkpoint "$RUN" --config configs/eval/humaneval.yaml run.dir="$RUN"
step "done in $(( $(date +%s) - start ))s. Written under $RUN/:"
echo "  tokenizer      $RUN/tokenizer.model" >&2
echo "  data + stats   $RUN/data/ ($RUN/data/stats.json)" >&2
echo "  metrics        $RUN/metrics.jsonl (TensorBoard: tensorboard --logdir $RUN)" >&2
echo "  checkpoints    $RUN/checkpoints/latest" >&2
echo "  HumanEval      $RUN/humaneval/" >&2
