#!/usr/bin/env bash
# Training speed, ours vs the same GPT-2 in PyTorch eager, each at its best thread count.
#   scripts/bench/train_vs_pytorch.sh [CONFIG] [extra overrides for ours...]
# Env: CODEX_BIN (default build/codex-train), THREADS (default "1 2"), STEPS (default 30).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODEX_BIN:-build/codex-train}
CONFIG=${1:-configs/pretrain/tiny.yaml}
shift || true
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-30}
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

best() { /usr/bin/python3 -c 'import sys, json; r = [json.loads(l) for l in sys.stdin if l.startswith("{")]; b = max(r, key=lambda j: j["tokens_per_s"]); print(b["tokens_per_s"], b["threads"])'; }
ours=$(for n in $THREADS; do
  "$BIN" bench train --config "$CONFIG" "$@" run.threads="$n" train.grad_accum=1 train.batch_size="$B" \
    model.vocab_size="$V" --steps "$STEPS" | tee /dev/stderr; done | best)
theirs=$(for n in $THREADS; do
  OMP_NUM_THREADS=$n /usr/bin/python3 scripts/bench/train_gpt_pytorch.py --threads "$n" --n-layer "$L" --n-head "$H" \
    --n-embd "$C" --block-size "$T" --batch-size "$B" --vocab-size "$V" --steps "$STEPS" | tee /dev/stderr; done | best)
read -r o_tps o_thr <<<"$ours"
read -r p_tps p_thr <<<"$theirs"
/usr/bin/python3 -c "
o, p = $o_tps, $p_tps
print('ours    %10.0f tokens/s (%s thread(s))' % (o, '$o_thr'))
print('pytorch %10.0f tokens/s (%s thread(s))' % (p, '$p_thr'))
print('ratio   %10.2fx (goal >= 1.15x)' % (o / p))"
