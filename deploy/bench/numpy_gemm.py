#!/usr/bin/env python3
"""OpenBLAS (through numpy) FP32 GEMM peer for `bitrelay bench gemm`: times A[M,K] @ B[K,N] and prints JSON.

Usage: numpy_gemm.py --k 2048 --n 8192 --m 1,16,256 --seconds 2
"""
import argparse
import json
import statistics
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--m", required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    b = rng.standard_normal((args.k, args.n), dtype=np.float32)
    results = []
    for m in [int(x) for x in args.m.split(",")]:
        a = rng.standard_normal((m, args.k), dtype=np.float32)
        out = np.empty((m, args.n), dtype=np.float32)
        for _ in range(3):
            np.matmul(a, b, out=out)
        timings = []
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline or len(timings) < 5:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            timings.append(time.perf_counter() - start)
        seconds = statistics.median(timings)
        results.append({"m": m, "seconds": seconds, "gflops": 2.0 * m * args.k * args.n / seconds / 1e9})
    info = {"numpy": np.__version__, "results": results}
    try:
        info["blas"] = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:
        info["blas"] = "unknown"
    print(json.dumps(info))


if __name__ == "__main__":
    main()
