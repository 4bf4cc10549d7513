#!/usr/bin/env bash
# Compiles (g++ -fsyntax-only) every C++ file under src/ that has CUDA-only code (CODEX_WITH_CUDA_KERNELS,
# CODEX_WITH_NCCL) as a CUDA build would, against this machine's LibTorch headers (Debian ships
# the c10/cuda, ATen/cuda and c10d NCCL headers even in its CPU package) and the CUDA toolkit's
# headers, so an edit of the CUDA path cannot break it unnoticed on a machine without a GPU.
# Exit 0 when every file compiles (or when no CUDA toolkit headers exist: one line says it
# skipped), 1 when one does not.   usage: scripts/check_cuda_cpp.sh   env: CUDA_HOME (/usr/local/cuda)
set -uo pipefail
cd "$(dirname "$0")/.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
CXX=${CXX:-c++}
if [ ! -f "$CUDA_HOME/include/cuda_runtime.h" ]; then
  echo "check_cuda_cpp: skipped (no CUDA toolkit headers under $CUDA_HOME/include)"
  exit 0
fi
TORCH_API_INC=""
for d in /usr/include/torch/csrc/api/include /usr/local/include/torch/csrc/api/include; do
  [ -d "$d" ] && TORCH_API_INC=$d && break
done
if [ -z "$TORCH_API_INC" ]; then
  echo "check_cuda_cpp: skipped (no LibTorch headers found)"
  exit 0
fi
# The one header a CUDA LibTorch generates at its own build time (c10/cuda/impl/cuda_cmake_macros.h,
# which only says c10_cuda is a shared library); Debian's CPU package lacks it, so a stand-in with
# that one define is made here.
GEN=$(mktemp -d); trap 'rm -rf "$GEN"' EXIT
if [ ! -f "$(dirname "$TORCH_API_INC")/../../../c10/cuda/impl/cuda_cmake_macros.h" ]; then
  mkdir -p "$GEN/c10/cuda/impl"
  printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$GEN/c10/cuda/impl/cuda_cmake_macros.h"
fi
mapfile -t FILES < <(grep -rlE 'CODEX_WITH_CUDA_KERNELS|CODEX_WITH_NCCL' src --include='*.cpp' | sort)
echo "check_cuda_cpp: ${#FILES[@]} files with CUDA-only code, $($CXX --version | head -1)"
status=0
for f in "${FILES[@]}"; do
  # The defines a CUDA build (cmake/Cuda.cmake) and LibTorch's CMake package give codex_core.
  if out=$("$CXX" -std=gnu++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
        -DCODEX_WITH_CUDA_KERNELS -DCODEX_WITH_NCCL -DUSE_C10D_NCCL -DUSE_C10D_GLOO -DUSE_DISTRIBUTED \
        -DCODEX_SOURCE_DIR=\"$PWD\" -DCODEX_SPM_PATH=\"\" -DSPDLOG_FMT_EXTERNAL -DSPDLOG_COMPILED_LIB \
        -D_GLIBCXX_USE_CXX11_ABI=1 -include src/pch.h \
        -Isrc -Iinclude -Ikernels -isystem "$TORCH_API_INC" -isystem "$CUDA_HOME/include" -isystem "$GEN" "$f" 2>&1); then
    echo "check_cuda_cpp: OK   $f"
  else
    status=1
    echo "check_cuda_cpp: FAIL $f"
    echo "$out" | grep -E "error" | head -20
  fi
done
[ $status -eq 0 ] && echo "check_cuda_cpp: every CUDA-path file compiles" || echo "check_cuda_cpp: some CUDA-path files do not compile"
exit $status
