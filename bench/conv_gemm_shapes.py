#!/usr/bin/env python3
"""OpenBLAS sgemm on one thread at LeNet's convolution shapes: 64 per-sample products (as FuncFlow's convolutions
run them, distinct operands per sample) against one large product over the batch, in the columns layout
[C K; N L] and the rows layout [N L; C K]. Microseconds per call and GFLOP/s. The figures in
docs/performance.md's LeNet profile come from it. Run with Debian's python3 (numpy) and libopenblas0-pthread:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/conv_gemm_shapes.py
"""
import ctypes
import time

import numpy as np

lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_set_num_threads(1)
F = ctypes.c_float
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def time_calls(calls, reps):
    for call in calls:
        call()
    start = time.perf_counter()
    for _ in range(reps):
        for call in calls:
            call()
    return (time.perf_counter() - start) / reps


def gemm(m, n, k, ta, tb, batch=1, batch_a=True, reps=100):
    """batch products C_i = op(A_i) op(B_i) of m x k and k x n; A shared across the batch unless batch_a."""
    a = np.random.rand(batch if batch_a else 1, m * k).astype(np.float32)
    b = np.random.rand(batch, k * n).astype(np.float32)
    c = np.zeros((batch, m * n), np.float32)
    lda, ldb = (m if ta else k), (k if tb else n)
    calls = [
        (lambda i=i: lib.cblas_sgemm(ROW_MAJOR, TRANS if ta else NO_TRANS, TRANS if tb else NO_TRANS, m, n, k,
                                     F(1.0), ctypes.c_void_p(a[i if batch_a else 0].ctypes.data), lda,
                                     ctypes.c_void_p(b[i].ctypes.data), ldb, F(0.0),
                                     ctypes.c_void_p(c[i].ctypes.data), n))
        for i in range(batch)
    ]
    seconds = time_calls(calls, reps)
    return seconds * 1e6, 2 * m * n * k * batch / seconds / 1e9


CASES = [
    # name, m, n, k, transA, transB, batch, A per sample
    ("conv1 forward, 64 products W[6,25] cols[25,784]", 6, 784, 25, False, False, 64, False),
    ("conv1 forward, one product [6,25] x [25,36864]", 6, 36864, 25, False, False, 1, True),
    ("conv1 forward, rows [36864,25] x [25,6]", 36864, 6, 25, False, True, 1, True),
    ("conv1 weight gradient, 64 products g[6,784] cols^T", 6, 25, 784, False, True, 64, True),
    ("conv1 weight gradient, one product K = 36864", 6, 25, 36864, False, True, 1, True),
    ("conv1 weight gradient, rows", 25, 6, 36864, True, False, 1, True),
    ("conv2 forward, 64 products W[16,150] cols[150,100]", 16, 100, 150, False, False, 64, False),
    ("conv2 forward, rows [4096,150] x [150,16]", 4096, 16, 150, False, True, 1, True),
    ("conv2 weight gradient, 64 products g[16,100] cols^T", 16, 150, 100, False, True, 64, True),
    ("conv2 weight gradient, rows", 150, 16, 4096, True, False, 1, True),
    ("conv2 input gradient, 64 products W^T g", 150, 100, 16, True, False, 64, False),
    ("conv2 input gradient, rows [4096,16] x [16,150]", 4096, 150, 16, False, False, 1, True),
]

for name, m, n, k, ta, tb, batch, batch_a in CASES:
    us, gflops = gemm(m, n, k, ta, tb, batch, batch_a)
    print(f"{name:55s} {us:8.1f} us {gflops:6.1f} GFLOP/s")
