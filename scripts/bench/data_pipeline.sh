#!/usr/bin/env bash
# Wall time of `tokenizer train` + `data prepare` on the shipped stdlib configs (goal: < 2 min
# on 2 cores). Prints ONE JSON line.   scripts/bench/data_pipeline.sh [extra key=value ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CODEX_BIN:-${CODEX_BUILD_DIR:-build}/codex-train}
[ -x "$BIN" ] || scripts/build.sh >&2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
now() { date +%s.%N; }
t0=$(now)
"$BIN" tokenizer train --config configs/tokenizer/code.yaml run.dir="$TMP/run" "$@" >&2
t1=$(now)
"$BIN" data prepare --config configs/data/stdlib.yaml run.dir="$TMP/run" "$@" > "$TMP/stats.json"
t2=$(now)
/usr/bin/python3 - "$t0" "$t1" "$t2" "$TMP/stats.json" "$(nproc)" <<'PY'
import json, sys
t0, t1, t2 = map(float, sys.argv[1:4]); s = json.load(open(sys.argv[4]))
print(json.dumps({"tokenizer_train_s": round(t1 - t0, 1), "data_prepare_s": round(t2 - t1, 1),
                  "total_s": round(t2 - t0, 1), "cores": int(sys.argv[5]), "files_kept": s["files_kept"],
                  "bytes_kept": s["bytes_kept"], "tokens": s["tokens"]}))
PY
