#!/usr/bin/env bash
# Memory policies side by side: the peer benchmark's E7 LSTM, E7 SimpleRnn and char LM configs under each
# allocator setting (SeqDsl's mallopt retain policy, glibc's defaults, glibc's huge-page tunable, jemalloc,
# tcmalloc). Each setting is one process run; every run also times PyTorch under the same setting, so the
# ratios are comparable across runs. Needs bench/pytorch/setup.sh (python3-torch, jemalloc, tcmalloc).
#   bash bench/memory.sh [rounds] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}; threads=${2:-1}
dotnet build -c Release bench/SeqDsl.Bench >/dev/null
run() {
  echo "## $1"
  shift
  env OMP_WAIT_POLICY=PASSIVE "$@" dotnet run -c Release --no-build --project bench/SeqDsl.Bench -- peer \
    --rounds "$rounds" --steps 2 --threads-list "$threads" --only "${ONLY:-}" | grep -E '^\| [0-9]|memory:'
}
lib=/usr/lib/x86_64-linux-gnu
run "glibc defaults (SEQDSL_MALLOC=system)" SEQDSL_MALLOC=system
run "SeqDsl retain (mallopt, the default)" SEQDSL_MALLOC=retain
run "glibc huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1)" SEQDSL_MALLOC=system GLIBC_TUNABLES=glibc.malloc.hugetlb=1
run "retain + huge pages" SEQDSL_MALLOC=retain GLIBC_TUNABLES=glibc.malloc.hugetlb=1
run "jemalloc (LD_PRELOAD)" SEQDSL_MALLOC=system LD_PRELOAD=$lib/libjemalloc.so.2
run "tcmalloc (LD_PRELOAD)" SEQDSL_MALLOC=system LD_PRELOAD=$lib/libtcmalloc_minimal.so.4
