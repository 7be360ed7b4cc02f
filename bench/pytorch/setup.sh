#!/usr/bin/env bash
# Installs the PyTorch peer of the benchmark harness (benchmarks only; CI and the tests do not need it):
# Debian's python3-torch, OpenBLAS (OpenMP build) so PyTorch's BLAS is a fair peer of libtorch's,
# and jemalloc/tcmalloc for the allocator comparison. Run as root (or with sudo) on Debian 12.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  python3-torch libopenblas0-openmp libjemalloc2 libtcmalloc-minimal4 >/dev/null
# Debian's torch links libblas.so.3; the alternatives system points it at the reference BLAS unless
# OpenBLAS is selected. The harness sets LD_LIBRARY_PATH to OpenBLAS's directory for the peer process
# instead of changing the system-wide alternative.
ls /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null
/usr/bin/python3 -c "import torch; print('python3-torch', torch.__version__)"
