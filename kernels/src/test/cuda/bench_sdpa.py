"""PyTorch scaled_dot_product_attention at the shapes kernels_test bench times (OPT-175B: 96 heads x 128),
FP16, same layout as the cache ((batch, ctx, heads, dim) viewed as (batch, heads, ctx, dim)). Median of
CUDA-event timings, as kernels_test does."""
import torch
import torch.nn.functional as F

heads, dim = 96, 128
dev = "cuda"


def median_us(fn, iterations, repeats=7):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iterations):
            fn()
        b.record()
        b.synchronize()
        times.append(1000.0 * a.elapsed_time(b) / iterations)
    return sorted(times)[len(times) // 2]


print(f"== torch {torch.__version__} SDPA on {torch.cuda.get_device_name()}, {heads} heads x {dim}, FP16")
print(f"  {'phase':8} {'batch':>5} {'ctx':>5} | {'us':>10} | throughput")
for ctx in (512, 2048):
    for batch in (1, 8, 32, 64):
        q = (torch.randn(batch, 1, heads, dim, device=dev, dtype=torch.float16) * (2 / dim ** 0.5)).transpose(1, 2)
        k = torch.randn(batch, ctx, heads, dim, device=dev, dtype=torch.float16).transpose(1, 2)
        v = torch.randn(batch, ctx, heads, dim, device=dev, dtype=torch.float16).transpose(1, 2)
        us = median_us(lambda: F.scaled_dot_product_attention(q, k, v, scale=1.0), 20)
        kv = 2.0 * batch * ctx * heads * dim * 2
        print(f"  {'decode':8} {batch:5d} {ctx:5d} | {us:10.1f} | {kv / us / 1e3:6.0f} GB/s KV read")
        del q, k, v
    for batch in (1, 4, 16):
        q = (torch.randn(batch, ctx, heads, dim, device=dev, dtype=torch.float16) * (2 / dim ** 0.5)).transpose(1, 2)
        k = torch.randn(batch, ctx, heads, dim, device=dev, dtype=torch.float16).transpose(1, 2)
        v = torch.randn(batch, ctx, heads, dim, device=dev, dtype=torch.float16).transpose(1, 2)
        us = median_us(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0), 5)
        flops = 4.0 * batch * heads * dim * (ctx * (ctx + 1) / 2)
        print(f"  {'prefill':8} {batch:5d} {ctx:5d} | {us:10.1f} | {flops / us / 1e6:6.1f} TFLOP/s (causal FLOPs)")
        del q, k, v
