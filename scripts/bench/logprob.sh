#!/usr/bin/env bash
# Fused log-probs + entropy (ops/logprob.h) vs the same composed from LibTorch ops (mm,
# log_softmax, gather), forward + backward, at several vocabulary sizes. Each variant runs in its
# own process, so its peak resident memory is its own.
#   scripts/bench/logprob.sh [ROWS] [EMBD]     env: CODEX_BIN, VOCABS (default "8000 32000 50257"), REPS
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODEX_BIN:-build/codex-train}
ROWS=${1:-512}
EMBD=${2:-256}
VOCABS=${VOCABS:-8000 32000 50257}
REPS=${REPS:-3}
[ -x "$BIN" ] || { echo "logprob.sh: $BIN not built (scripts/build.sh)" >&2; exit 2; }
printf "%-7s %12s %12s %8s %14s %14s %8s\n" vocab composed_ms fused_ms speedup composed_MB fused_MB mem_x
for V in $VOCABS; do
  c=$("$BIN" bench logprob --variant composed --vocab "$V" --rows "$ROWS" --embd "$EMBD" --reps "$REPS")
  f=$("$BIN" bench logprob --variant fused --vocab "$V" --rows "$ROWS" --embd "$EMBD" --reps "$REPS")
  echo "$c" >&2
  echo "$f" >&2
  python3 -c '
import json, sys
c, f = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("%-7d %12.1f %12.1f %7.2fx %14.1f %14.1f %7.1fx" % (c["vocab"], c["ms"], f["ms"], c["ms"] / f["ms"],
      c["peak_extra_mb"], f["peak_extra_mb"], c["peak_extra_mb"] / max(f["peak_extra_mb"], 0.1)))' "$c" "$f"
done
