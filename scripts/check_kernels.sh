#!/usr/bin/env bash
# Compiles every CUDA kernel (kernels/**/*.cu) for sm_80 and sm_90 with -Xptxas -v and prints, per
# kernel function, its registers, stack and spills. Needs no GPU. Exit 0 when every kernel
# compiles (or when no nvcc exists: one line says it skipped), 1 when one does not.
#   usage: scripts/check_kernels.sh [--quiet]     NVCC=/path/to/nvcc to pick the compiler
set -uo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-}
if [ -z "$NVCC" ]; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc
  elif command -v nvcc >/dev/null 2>&1; then NVCC=$(command -v nvcc)
  fi
fi
if [ -z "$NVCC" ]; then
  echo "check_kernels: skipped (no nvcc found: neither /usr/local/cuda/bin/nvcc nor nvcc on PATH)"
  exit 0
fi
mapfile -t FILES < <(find kernels -name '*.cu' | sort)
if [ ${#FILES[@]} -eq 0 ]; then echo "check_kernels: no kernels under kernels/"; exit 1; fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "check_kernels: $("$NVCC" --version | tail -1), ${#FILES[@]} files, sm_80 + sm_90"
status=0
for f in "${FILES[@]}"; do
  log="$OUT/$(basename "$f").log"
  if "$NVCC" -std=c++17 -O3 -Ikernels -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 \
       -Xptxas -v -c "$f" -o "$OUT/$(basename "$f").o" >"$log" 2>&1; then
    # ptxas prints per entry: "Compiling entry function 'NAME' for 'sm_XX'", a line with the
    # stack frame and spills, then "Used N registers". One line per kernel and architecture.
    awk '
      /Compiling entry function/ { fn = $0; sub(/.*function ./, "", fn); sub(/. for .*/, "", fn);
                                   arch = $0; sub(/.* for ./, "", arch); sub(/.$/, "", arch) }
      /bytes stack frame/ { stack = $1; st = $5; ld = $9 }
      /Used [0-9]+ registers/ { regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs);
        printf "  %s %-6s regs %3d  stack %3d B  spill stores %3d B  loads %3d B  %s\n", file, arch, regs, stack, st, ld, fn }
    ' file="$(basename "$f")" "$log" | c++filt | sed -E 's/codex::kernels::(\(anonymous namespace\)::)?//; s/\(codex::kernels::AttnParams\)//'
    echo "check_kernels: OK   $f"
  else
    status=1
    echo "check_kernels: FAIL $f"
    grep -E "error|Error" "$log" | head -20
  fi
done
[ $status -eq 0 ] && echo "check_kernels: all kernels compile" || echo "check_kernels: some kernels do not compile"
exit $status
