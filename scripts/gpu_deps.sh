#!/usr/bin/env bash
# The libraries a GPU machine without a package registry lacks (../shared/docs/gpu.md), as Debian
# packages carried in .deps/ (git ignores it):
#   scripts/gpu_deps.sh download   on a machine with the registry: apt-get download into .deps/debs
#   scripts/gpu_deps.sh unpack     on the GPU machine: dpkg -x each into .deps/root (never into /)
# scripts/build.sh --cuda then finds them (CMAKE_PREFIX_PATH=.deps/root/usr); gpu_check.sh runs the
# unpack half itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(libyaml-cpp-dev libyaml-cpp0.7 libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev catch2
      libsentencepiece-dev libsentencepiece0 zlib1g-dev)
case "${1:-}" in
  download)
    mkdir -p .deps/debs
    (cd .deps/debs && apt-get download "${PKGS[@]}")
    echo "gpu_deps: $(ls .deps/debs | wc -l) packages in .deps/debs ($(du -sh .deps/debs | cut -f1))"
    ;;
  unpack)
    [ -d .deps/debs ] || { echo "gpu_deps: no .deps/debs (run 'scripts/gpu_deps.sh download' where apt works)" >&2; exit 2; }
    mkdir -p .deps/root
    for f in .deps/debs/*.deb; do dpkg -x "$f" .deps/root; done
    echo "gpu_deps: unpacked $(ls .deps/debs/*.deb | wc -l) packages into .deps/root"
    ;;
  *) echo "usage: scripts/gpu_deps.sh download|unpack" >&2; exit 2 ;;
esac
