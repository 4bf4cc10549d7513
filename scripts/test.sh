#!/usr/bin/env bash
# Builds if needed, then runs the whole test suite through ctest.   usage: scripts/test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --test-deps
ctest --test-dir "${CODEX_BUILD_DIR:-build}" -j "$(nproc)" --output-on-failure "$@"
