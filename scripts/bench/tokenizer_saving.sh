#!/usr/bin/env bash
# How many fewer tokens the whitespace-run tokenizer needs than the plain (GPT-2-like) baseline
# at the same vocabulary size, on Python files neither tokenizer saw.
#   scripts/bench/tokenizer_saving.sh [SOURCE_DIR=/usr/lib/python3.11] [extra key=value ...]
# Files whose path hashes to 0 mod 10 are held out; both tokenizers train on the rest with
# configs/tokenizer/code.yaml (plain: tokenizer.whitespace_runs=false). Prints ONE JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${1:-/usr/lib/python3.11}; shift || true
BIN=${CODEX_BIN:-${CODEX_BUILD_DIR:-build}/codex-train}
[ -x "$BIN" ] || scripts/build.sh >&2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/train" "$TMP/heldout"
# Deterministic split by path; links keep the originals in place.
find "$SRC" -name '*.py' -type f | LC_ALL=C sort | while IFS= read -r f; do
  h=$(printf '%s' "${f#"$SRC"/}" | cksum | cut -d' ' -f1)
  name=$(printf '%s' "${f#"$SRC"/}" | tr '/' '_')
  if [ $((h % 10)) -eq 0 ]; then ln -s "$f" "$TMP/heldout/$name"; else ln -s "$f" "$TMP/train/$name"; fi
done
echo "held out $(ls "$TMP/heldout" | wc -l) files, training on $(ls "$TMP/train" | wc -l)" >&2
for v in runs plain; do
  ws=true; [ $v = plain ] && ws=false
  "$BIN" tokenizer train --config configs/tokenizer/code.yaml run.dir="$TMP/$v" \
    tokenizer.whitespace_runs=$ws --input "$TMP/train" "$@" >&2
  "$BIN" tokenizer stats --tokenizer "$TMP/$v/tokenizer.model" --input "$TMP/heldout" > "$TMP/$v.json"
  echo "$v: $(cat "$TMP/$v.json")" >&2
done
/usr/bin/python3 - "$TMP/runs.json" "$TMP/plain.json" <<'PY'
import json, sys
r, p = (json.load(open(f)) for f in sys.argv[1:3])
print(json.dumps({"heldout_files": r["files"], "heldout_bytes": r["bytes"],
                  "tokens_whitespace_runs": r["tokens"], "tokens_plain": p["tokens"],
                  "saving": round(1 - r["tokens"] / p["tokens"], 4),
                  "roundtrip_ok": r["roundtrip_ok"] and p["roundtrip_ok"]}))
PY
