#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh clone on Debian 12:
#   1. Debian packages: libtorch (tensors, autograd, kernels), OpenBLAS (the BLAS libtorch's matrix
#      products run on: without it Debian's libtorch falls back to the reference BLAS, about 50x slower
#      on matrix products), gloo (c10d headers), ffmpeg (video),
#      opencv-doc (the real videos and photographs the demo's corpus is made of), dataset-fashion-mnist
#      (the demo's labelled set), PyTorch/torchvision/OpenCV for Python, which tests and benchmarks
#      use as the oracle only (with jemalloc, which benchmarks preload into PyTorch as its CPU
#      performance guide recommends), and chromium, which the tests use to open the demo's report.
#   2. npm dependencies (which also builds the native addon through the package's install script).
#   3. The TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libtorch-dev libopenblas0-openmp libgloo-dev libjpeg-dev ffmpeg opencv-doc dataset-fashion-mnist chromium python3-torch python3-torchvision python3-opencv python3-numpy libjemalloc2; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ -n "${LIBTORCH:-}" ]; then
  # A user-provided libtorch replaces Debian's; the oracle packages are still wanted for tests.
  tmp=(); for p in "${need[@]}"; do [ "$p" = libtorch-dev ] || tmp+=("$p"); done; need=("${tmp[@]}")
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "awty setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

stamp=node_modules/.awty-lock-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "awty setup: npm ci"
  npm ci --no-audit --no-fund
  touch "$stamp"
fi
node native/build.cjs
echo "awty setup: compiling TypeScript"
npx --no-install tsc -p tsconfig.json
