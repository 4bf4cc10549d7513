#!/usr/bin/env bash
# Training speed, ours vs the same GPT-2 in PyTorch eager, each at its best thread count.
#   scripts/bench/train_vs_pytorch.sh [CONFIG] [extra overrides for ours...]
# Env: CODEX_BIN (default build/codex-train), THREADS (default "1 2"), STEPS (default 30),
#      REPEATS (default 3: the runs are interleaved and each side keeps its best, because this
#      shared machine's speed drifts by 2x between minutes).
# Four rows: ours (which tunes glibc malloc itself, src/main.cpp, and fuses the LM head with the
# loss, src/ops/cross_entropy.h), ours with train.fused_loss=false (the same ops as PyTorch),
# PyTorch as users run it, and PyTorch given the same malloc settings through the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODEX_BIN:-build/codex-train}
CONFIG=${1:-configs/pretrain/tiny.yaml}
shift || true
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-30}
REPEATS=${REPEATS:-3}
[ -x "$BIN" ] || { echo "train_vs_pytorch: $BIN not built (scripts/build.sh)" >&2; exit 2; }

# The model shape comes from our resolved config, so both sides train the same network.
shape=$("$BIN" config show --config "$CONFIG" "$@" | /usr/bin/python3 -c '
import sys, yaml
c = yaml.safe_load(sys.stdin)
m, t, tok = c["model"], c["train"], c["tokenizer"]
v = m["vocab_size"] or tok["vocab_size"]
print(m["n_layer"], m["n_head"], m["n_embd"], m["block_size"], t["batch_size"] * t["grad_accum"], v)')
read -r L H C T B V <<<"$shape"
echo "model: n_layer=$L n_head=$H n_embd=$C block=$T batch=$B vocab=$V, $STEPS steps" >&2

best() { /usr/bin/python3 -c 'import sys, json; r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]; b = max(r, key=lambda j: j["tokens_per_s"]); print(b["tokens_per_s"], b["threads"])' "$1"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tuned="MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824"
for r in $(seq "$REPEATS"); do
  for n in $THREADS; do
    "$BIN" bench train --config "$CONFIG" "$@" run.threads="$n" train.grad_accum=1 train.batch_size="$B" \
      model.vocab_size="$V" --steps "$STEPS" | tee -a "$tmp/ours" >&2
    "$BIN" bench train --config "$CONFIG" "$@" run.threads="$n" train.grad_accum=1 train.batch_size="$B" \
      model.vocab_size="$V" --steps "$STEPS" train.fused_loss=false | tee -a "$tmp/ours_unfused" >&2
    py=(/usr/bin/python3 scripts/bench/train_gpt_pytorch.py --threads "$n" --n-layer "$L" --n-head "$H"
        --n-embd "$C" --block-size "$T" --batch-size "$B" --vocab-size "$V" --steps "$STEPS")
    OMP_NUM_THREADS=$n "${py[@]}" | tee -a "$tmp/pytorch" >&2
    env $tuned OMP_NUM_THREADS=$n "${py[@]}" | tee -a "$tmp/pytorch_tuned" >&2
  done
done
read -r o_tps o_thr <<<"$(best "$tmp/ours")"
read -r u_tps u_thr <<<"$(best "$tmp/ours_unfused")"
read -r p_tps p_thr <<<"$(best "$tmp/pytorch")"
read -r q_tps q_thr <<<"$(best "$tmp/pytorch_tuned")"
/usr/bin/python3 -c "
o, u, p, q = $o_tps, $u_tps, $p_tps, $q_tps
print('ours                       %8.0f tokens/s (%s thread(s))' % (o, '$o_thr'))
print('ours, unfused loss         %8.0f tokens/s (%s thread(s))  ratio %.2fx' % (u, '$u_thr', o / u))
print('pytorch eager              %8.0f tokens/s (%s thread(s))  ratio %.2fx (goal >= 1.15x)' % (p, '$p_thr', o / p))
print('pytorch eager, same malloc %8.0f tokens/s (%s thread(s))  ratio %.2fx' % (q, '$q_thr', o / q))"
