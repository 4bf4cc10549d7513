#!/usr/bin/env bash
# Our byte-level BPE against tiktoken (npm) on EVERY .py file under a folder: r50k_base (GPT-2's
# files) and p50k_base (GPT-2 + `tokenizer extend --whitespace-runs 2..25`).
#   scripts/bench/tokenizer_parity.sh [INPUT=/usr/lib/python3.11]
# Prints one JSON line per encoding: files, files_equal, tokens; exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/bpe_setup.sh "${1:-/usr/lib/python3.11}"
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
