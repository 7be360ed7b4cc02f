"""One 1024x1024 float32 matrix product in PyTorch, timed at one and two threads: the rate of the BLAS that
PyTorch was loaded with (Debian's python3-torch links libblas.so.3; point LD_LIBRARY_PATH at OpenBLAS's
directory, and OPENBLAS_CORETYPE at a kernel family, to compare).

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX OPENBLAS_VERBOSE=2 \
        /usr/bin/python3 bench/pytorch/sgemm.py

Prints, per thread count, the median and the best of seven timings of ten products, in GFLOP/s."""
import time

import torch

N, CALLS, RUNS = 1024, 10, 7

for threads in (1, 2):
    torch.set_num_threads(threads)
    a, b = torch.randn(N, N), torch.randn(N, N)
    for _ in range(3):
        a @ b  # warm-up
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(CALLS):
            a @ b
        rates.append(2 * N ** 3 * CALLS / (time.perf_counter() - start) / 1e9)
    rates.sort()
    print(f"{threads} threads: median {rates[RUNS // 2]:.1f} best {rates[-1]:.1f} GFLOP/s")
