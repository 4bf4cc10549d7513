#!/usr/bin/env bash
# scripts/build.sh's refusals, each one line and exit 2 before anything is configured: --cuda never
# reuses a CPU build's cache, a CPU build never reuses a CUDA one, and --cuda without a PyTorch for
# python3 (nor TORCH_DIR) says so instead of a Python traceback. Runs a copy of scripts/ in a
# scratch folder (no build happens).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp -r "$SRC/scripts" "$T/"
mkdir -p "$T/bin"
printf '#!/bin/sh\necho "Traceback (most recent call last):" >&2\necho "ModuleNotFoundError: No module named torch" >&2\nexit 1\n' >"$T/bin/python3"
chmod +x "$T/bin/python3"
fail=0
expect() {  # expect NAME RC REGEX -- command...
  local name=$1 rc=$2 re=$3; shift 4
  local out; out=$(cd "$T" && PATH="$T/bin:$PATH" "$@" 2>&1); local got=$?
  if [ "$got" != "$rc" ] || ! grep -qE "$re" <<<"$out" || [ "$(wc -l <<<"$out")" != 1 ] || grep -q Traceback <<<"$out"; then
    echo "FAIL $name: rc $got (want $rc), output: $out"; fail=1
  else
    echo "ok   $name: $out"
  fi
}
expect "--cuda without torch" 2 "cannot import torch.*TORCH_DIR" -- bash scripts/build.sh --cuda --no-tests
[ ! -e "$T/build-cuda/CMakeCache.txt" ] || { echo "FAIL: a cache was written"; fail=1; }
mkdir -p "$T/build-cuda" && echo 'CODEX_CUDA:BOOL=OFF' >"$T/build-cuda/CMakeCache.txt"
expect "--cuda over a CPU cache" 2 "build-cuda/ holds a CPU build" -- bash scripts/build.sh --cuda --no-tests
mkdir -p "$T/build" && echo 'CODEX_CUDA:BOOL=ON' >"$T/build/CMakeCache.txt"
expect "CPU over a CUDA cache" 2 "build/ holds a CUDA build" -- bash scripts/build.sh --cpu --no-tests
expect "TORCH_DIR not a folder" 2 "TORCH_DIR='/nonexistent'" -- env TORCH_DIR=/nonexistent CODEX_BUILD_DIR=b2 bash scripts/build.sh --cuda --no-tests
exit $fail
