#!/usr/bin/env bash
# Installs missing Debian packages (a no-op when all are present), then configures and builds
# build/codex-train in Release (--cuda: build-cuda/codex-train against a CUDA LibTorch, docs/gpu.md).
#   usage: scripts/build.sh [--cuda] [--debug] [--no-tests] [--test-deps]
# --test-deps also installs what some tests use as an independent reference (Debian's python3-torch:
# PyTorch goldens, torchrun), Debian's chromium (the report opened in a real browser) and node/npm
# (the tokenizer tests install tiktoken, gpt-3-encoder and @huggingface/tokenizers from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA=auto CUDA_FLAG=0 BUILD_TYPE=Release TESTS=ON TEST_DEPS=0 BUILD_DIR=${CODEX_BUILD_DIR:-build}
for a in "$@"; do
  case "$a" in
    --cuda) CUDA=on; CUDA_FLAG=1 ;;
    --cpu) CUDA=off ;;
    --debug) BUILD_TYPE=Debug ;;
    --no-tests) TESTS=OFF ;;
    --test-deps) TEST_DEPS=1 ;;
    *) echo "build.sh: unknown argument '$a' (expected --cuda, --cpu, --debug, --no-tests, --test-deps)" >&2; exit 2 ;;
  esac
done

PKGS=(cmake ninja-build g++ libtorch-dev libgloo-dev libsentencepiece-dev libyaml-cpp-dev libspdlog-dev
      catch2 nlohmann-json3-dev zlib1g-dev libpcre2-dev libunistring-dev libopenblas0-pthread python3 bubblewrap)
if [ "$TEST_DEPS" = 1 ]; then
  PKGS+=(python3-torch chromium)
  command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)  # a machine's own Node.js (with npm) is fine
fi
if [ "$CUDA" != on ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

CMAKE_ARGS=(-DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCODEX_BUILD_TESTS="$TESTS")
if [ "$CUDA" = auto ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 \
   && ! dpkg-query -W libtorch-dev >/dev/null 2>&1; then
  CUDA=on
fi
if [ "$CUDA" = on ]; then
  # A CUDA LibTorch from the machine's PyTorch (or TORCH_DIR=<libtorch>/share/cmake/Torch for the
  # LibTorch archive), other libraries unpacked from .deb files (docs/gpu.md). Its own build folder:
  # a CPU build's cache (Debian's LibTorch) must never be reused for it. (Detected on a machine
  # with a GPU and no Debian LibTorch, the build stays in build/, which the other scripts use.)
  [ "$CUDA_FLAG" = 1 ] && BUILD_DIR=${CODEX_BUILD_DIR:-build-cuda}
  if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^CODEX_CUDA:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
    echo "build.sh --cuda: $BUILD_DIR/ holds a CPU build; remove it or set CODEX_BUILD_DIR to another folder" >&2
    exit 2
  fi
  if [ -n "${TORCH_DIR:-}" ]; then
    TORCH_PREFIX=$(cd "$TORCH_DIR/../../.." 2>/dev/null && pwd) \
      || { echo "build.sh --cuda: TORCH_DIR='$TORCH_DIR' is not a folder (expected <libtorch>/share/cmake/Torch)" >&2; exit 2; }
  elif ! TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
    echo "build.sh --cuda: python3 cannot import torch; install a CUDA PyTorch or set TORCH_DIR=<libtorch>/share/cmake/Torch (docs/gpu.md)" >&2
    exit 2
  fi
  PREFIX=${CODEX_DEPS_PREFIX:-$PWD/.deps/root}
  CMAKE_ARGS+=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PREFIX/usr;$PREFIX/usr/lib/x86_64-linux-gnu/cmake"
               -DCODEX_CUDA=ON)
elif [ -f "$BUILD_DIR/CMakeCache.txt" ] && grep -q '^CODEX_CUDA:BOOL=ON' "$BUILD_DIR/CMakeCache.txt"; then
  echo "build.sh: $BUILD_DIR/ holds a CUDA build; pass --cuda, or set CODEX_BUILD_DIR for a CPU build" >&2
  exit 2
fi

GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${GEN[@]}" "${CMAKE_ARGS[@]}" >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
