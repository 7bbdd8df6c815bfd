#!/usr/bin/env python3
"""PyTorch peer for `bitrelay bench gpu-gemm`: FP16 matmul and torch._int_mm on the same OPT-175B shapes.

Y[M,N] = X[M,K] @ W[N,K]^T with W stored (N,K) row-major as our checkpoints hold it, i.e. X @ W.t() (the TN
layout). CUDA-event timing of each call, warm-up first, median reported; random data (never zeros).

Usage: torch_gemm.py [--shapes qkv,out,fc1,fc2] [--m 1,16,128,512,2048] [--runs 50] [--json FILE]
"""
import argparse
import json
import statistics

import torch

SHAPES = {"qkv": (12288, 36864), "out": (12288, 12288), "fc1": (12288, 49152), "fc2": (49152, 12288)}


def parse_shape(text):
    if text in SHAPES:
        return text, SHAPES[text]
    k, n = text.split("x")
    return text, (int(k), int(n))


def median_micros(fn, runs, warmup=3):
    for _ in range(warmup):
        fn()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for s, e in zip(starts, ends):
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", default="qkv,out,fc1,fc2")
    parser.add_argument("--m", default="1,16,128,512,2048")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    results = []
    for name, (k, n) in (parse_shape(s) for s in args.shapes.split(",")):
        w16 = torch.rand((n, k), device=device, dtype=torch.float16, generator=generator) * 2 - 1
        w8 = torch.randint(-127, 128, (n, k), device=device, dtype=torch.int8, generator=generator)
        for m in (int(x) for x in args.m.split(",")):
            x16 = torch.rand((m, k), device=device, dtype=torch.float16, generator=generator) * 2 - 1
            x8 = torch.randint(-127, 128, (m, k), device=device, dtype=torch.int8, generator=generator)
            ops = 2.0 * m * n * k
            fp16 = median_micros(lambda: torch.matmul(x16, w16.t()), args.runs)
            row = {"gemm": name, "k": k, "n": n, "m": m,
                   "fp16": {"micros": fp16, "tops": ops / fp16 / 1e6}}
            try:
                # Exactness check on one product before timing.
                y = torch._int_mm(x8, w8.t())
                ref = (x8[:1].double() @ w8[:64].double().t()).round().to(torch.int64)
                if not torch.equal(y[:1, :64].to(torch.int64), ref):
                    raise RuntimeError("torch._int_mm result differs from the float64 reference")
                int_mm = median_micros(lambda: torch._int_mm(x8, w8.t()), args.runs)
                row["int_mm"] = {"micros": int_mm, "tops": ops / int_mm / 1e6}
                row["ratioIntMmVsFp16"] = fp16 / int_mm
            except RuntimeError as e:  # e.g. M <= 16 is refused by some versions
                row["int_mm"] = {"error": str(e).splitlines()[0][:200]}
            results.append(row)
            int_mm_text = "%9.1f us" % row["int_mm"]["micros"] if "micros" in row["int_mm"] else "   n/a    "
            print("  torch %-4s M=%-5d fp16 %9.1f us  _int_mm %s" % (name, m, fp16, int_mm_text), flush=True)
        del w16, w8
        torch.cuda.empty_cache()
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
            "runs": args.runs, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(info, f, indent=2)
    else:
        print(json.dumps(info))


if __name__ == "__main__":
    main()
