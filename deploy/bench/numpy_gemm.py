#!/usr/bin/env python3
"""OpenBLAS (through numpy) FP32 GEMM peer for `bitrelay bench gemm`: times A[M,K] @ B[K,N] and prints JSON.

Usage: numpy_gemm.py --k 2048 --n 8192 --m 1,16,256 --seconds 2 [--warmup 1]

OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it is loaded; the caller starts python without them,
and they are dropped here too (before numpy is imported) so a manual run measures the same thing.
"""
import argparse
import json
import os
import statistics
import time

for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_name, None)

import numpy as np  # noqa: E402  (after the environment clean-up on purpose)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--m", required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    b = rng.standard_normal((args.k, args.n), dtype=np.float32)
    results = []
    for m in [int(x) for x in args.m.split(",")]:
        a = rng.standard_normal((m, args.k), dtype=np.float32)
        out = np.empty((m, args.n), dtype=np.float32)
        warm_until = time.perf_counter() + args.warmup
        calls = 0
        while calls < 3 or time.perf_counter() < warm_until:
            np.matmul(a, b, out=out)
            calls += 1
        timings = []
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline or len(timings) < 5:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            timings.append(time.perf_counter() - start)
        seconds = statistics.median(timings)
        results.append({"m": m, "seconds": seconds, "iterations": len(timings),
                        "gflops": 2.0 * m * args.k * args.n / seconds / 1e9})
    info = {"numpy": np.__version__, "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "results": results}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = "%s %s" % (blas.get("name", "?"), blas.get("version", ""))
    except Exception:
        info["blas"] = "unknown"
    print(json.dumps(info))


if __name__ == "__main__":
    main()
