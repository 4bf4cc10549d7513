#!/usr/bin/env bash
# The libraries a GPU machine without a package registry lacks (docs/gpu.md), as Debian 12
# packages carried in .deps/ (git ignores it):
#   scripts/gpu_deps.sh download   on a machine with the registry: apt-get download into .deps/debs,
#                                  then prints the total (it must stay <= 64 MiB: exit 1 above)
#   scripts/gpu_deps.sh unpack     on the GPU machine: dpkg -x each into .deps/root (never into /)
#   scripts/gpu_deps.sh list       the packages, one a line
# scripts/build.sh --cuda then finds them (CMAKE_PREFIX_PATH=.deps/root/usr); gpu_check.sh runs the
# unpack half itself. What a CUDA build needs beyond the checkout and the machine's own PyTorch,
# nvcc, cmake and ninja:
#   yaml-cpp, spdlog + fmt, nlohmann-json, Catch2 (tests), SentencePiece, zlib, PCRE2 (8-bit: the
#   GPT-2 pre-tokenizer) — headers, CMake files and the shared libraries (runtime packages);
#   libgloo-dev: gloo's headers only, a fallback for torch/csrc/distributed/c10d/ProcessGroupGloo.hpp
#   when the LibTorch ships no include/gloo (unpack removes them where it does; LibTorch links gloo
#   in, so no gloo library is carried, and libgloo-dev's own dependencies are not downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libyaml-cpp-dev libyaml-cpp0.7
      libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
      nlohmann-json3-dev catch2
      libsentencepiece-dev libsentencepiece0
      zlib1g-dev zlib1g
      libpcre2-dev libpcre2-8-0 libunistring-dev libunistring2
      libgloo-dev)
LIMIT_MIB=64
case "${1:-}" in
  download)
    mkdir -p .deps/debs
    (cd .deps/debs && apt-get download "${PKGS[@]}")
    bytes=$(du -cb .deps/debs/*.deb | tail -1 | cut -f1)
    mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
    echo "gpu_deps: $(ls .deps/debs/*.deb | wc -l) packages in .deps/debs, $mib MiB ($bytes bytes; limit $LIMIT_MIB MiB)"
    if [ "$bytes" -gt $((LIMIT_MIB * 1048576)) ]; then
      echo "gpu_deps: over the $LIMIT_MIB MiB limit" >&2
      exit 1
    fi
    ;;
  unpack)
    [ -d .deps/debs ] || { echo "gpu_deps: no .deps/debs (run 'scripts/gpu_deps.sh download' where apt works)" >&2; exit 2; }
    command -v dpkg >/dev/null 2>&1 || { echo "gpu_deps: dpkg is missing (unpack each .deb with 'ar x' + tar instead)" >&2; exit 2; }
    mkdir -p .deps/root
    for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
    echo "gpu_deps: unpacked $(ls .deps/debs/*.deb | wc -l) packages into .deps/root"
    # gloo's headers only where the LibTorch has none of its own: .deps/root/usr/include is searched
    # before LibTorch's (system) include folders, so Debian's would otherwise shadow the ones
    # LibTorch was built with.
    if [ -n "${TORCH_DIR:-}" ]; then
      tinc="$TORCH_DIR/../../../include"
    else
      tinc=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true)
    fi
    if [ -n "$tinc" ] && [ -d "$tinc/gloo" ]; then
      rm -rf .deps/root/usr/include/gloo
      echo "gpu_deps: gloo headers: LibTorch's own ($tinc/gloo); Debian's removed from .deps/root"
    else
      echo "gpu_deps: gloo headers: Debian's (libgloo-dev), the LibTorch found has none${tinc:+ in $tinc}"
    fi
    ;;
  list) printf '%s\n' "${PKGS[@]}" ;;
  *) echo "usage: scripts/gpu_deps.sh download|unpack|list" >&2; exit 2 ;;
esac
