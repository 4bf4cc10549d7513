#!/usr/bin/env bash
# Encoding throughput of our byte-level BPE (r50k = GPT-2's files, p50k = Codex's extension) side
# by side with tiktoken (npm, its WASM build under node) on the same files, one thread.
#   scripts/bench/tokenizer_speed.sh [INPUT=/usr/lib/python3.11]
# Prints one JSON line per tokenizer: ours from `bench tokenizer` (1 thread and all threads),
# tiktoken's from tests/tokenizer/npm/tiktoken_speed.js (1 thread: node runs it on one).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/bpe_setup.sh "${1:-/usr/lib/python3.11}"
for t in r50k p50k; do
  tok="$GPT2"; [ $t = p50k ] && tok="$TMP/p50k"
  echo "{\"name\": \"ours_$t\", \"result\": $("$BIN" bench tokenizer --tokenizer "$tok" --input "$IN")}"
  echo "{\"name\": \"tiktoken_$t\", \"result\": $(NPM_DIR="$NPM" node tests/tokenizer/npm/tiktoken_speed.js ${t}_base "$TMP/list")}"
done
