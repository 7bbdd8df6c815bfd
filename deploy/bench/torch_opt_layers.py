#!/usr/bin/env python3
"""PyTorch peer of `bitrelay bench gpu-layers`: a stack of transformers' OPTDecoderLayer in FP16 (SDPA
attention) with a DynamicCache, same shapes, layer count, decode batches, context and prefill lengths, timed
the same way (CUDA events around the whole stack, warm-up, then the median). Layers are built on the GPU
directly (random init, no checkpoint); the decode context is random K/V written into the cache."""
import argparse, inspect, json, statistics, sys, time

import torch
import transformers
from transformers import OPTConfig
from transformers.cache_utils import DynamicCache
from transformers.models.opt.modeling_opt import OPTDecoderLayer

SHAPES = {"opt-175b": (12288, 96, 49152), "opt-66b": (9216, 72, 36864), "opt-30b": (7168, 56, 28672),
          "opt-13b": (5120, 40, 20480), "opt-6.7b": (4096, 32, 16384), "opt-1.3b": (2048, 32, 8192),
          "opt-125m": (768, 12, 3072)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="opt-175b")
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--prefill", default="512,2048")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--json")
    a = p.parse_args()
    hidden, heads, ffn = SHAPES[a.preset]
    dev = torch.device("cuda")
    config = OPTConfig(hidden_size=hidden, num_attention_heads=heads, ffn_dim=ffn, num_hidden_layers=a.layers,
                       do_layer_norm_before=True, enable_bias=True, dropout=0.0, attention_dropout=0.0,
                       torch_dtype=torch.float16)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    before = torch.cuda.memory_allocated()
    with torch.device(dev):
        torch.set_default_dtype(torch.float16)
        layers = [OPTDecoderLayer(config, layer_idx=i).eval() for i in range(a.layers)]
        torch.set_default_dtype(torch.float32)
    per_layer = (torch.cuda.memory_allocated() - before) / a.layers
    params = inspect.signature(OPTDecoderLayer.forward).parameters
    cache_kw = "past_key_values" if "past_key_values" in params else "past_key_value"
    print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}, transformers {transformers.__version__}; "
          f"{a.layers} x {a.preset} OPTDecoderLayer FP16 SDPA; {per_layer / 1e9:.3f} GB/layer", flush=True)

    def stack(x, cache, past):
        n = x.shape[1]
        kwargs = {cache_kw: cache, "use_cache": True}
        if "cache_position" in params:
            kwargs["cache_position"] = torch.arange(past, past + n, device=dev)
        if "position_ids" in params:
            kwargs["position_ids"] = torch.arange(past, past + n, device=dev).unsqueeze(0).expand(x.shape[0], n)
        for layer in layers:
            out = layer(x, attention_mask=None, **kwargs)
            x = out[0] if isinstance(out, tuple) else out
        return x

    def timed(fn):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    results = []
    with torch.inference_mode():
        for batch in [int(b) for b in a.batches.split(",")]:
            cache = DynamicCache()
            d = hidden // heads
            for i in range(a.layers):
                k = torch.randn(batch, heads, a.context, d, device=dev, dtype=torch.float16)
                cache.update(k, torch.randn_like(k), i)
            x = torch.randn(batch, 1, hidden, device=dev, dtype=torch.float16)
            past = [a.context]

            def step():
                stack(x, cache, past[0])
                past[0] += 1
            times = []
            for i in range(a.warmup + a.runs):
                t = timed(step)
                if i >= a.warmup:
                    times.append(t)
            ms = statistics.median(times)
            # diagnostics: CPU wall time of one step (launch-bound if close to the event time), and the four
            # linears alone at M = batch (the weight-streaming floor of a decode step)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            torch.cuda.synchronize()
            wall = (time.perf_counter() - t0) * 1000
            xs = x.view(batch, hidden)

            def linears():
                for layer in layers:
                    h = layer.self_attn.q_proj(xs); layer.self_attn.k_proj(xs); layer.self_attn.v_proj(xs)
                    layer.self_attn.out_proj(h)
                    layer.fc2(layer.fc1(xs))
            for _ in range(2):
                timed(linears)
            floor = statistics.median([timed(linears) for _ in range(5)])
            print(f"    (diagnostic: wall {wall:.3f} ms/step; linears alone {floor / a.layers:.3f} ms/layer)", flush=True)
            results.append({"impl": "torch-fp16", "phase": "decode", "wallMsPerStep": wall, "linearsMsPerLayer": floor / a.layers, "batch": batch, "tokens": 1, "context": a.context,
                            "msPerStep": ms, "msPerLayer": ms / a.layers, "tokensPerSecond": batch / (ms / 1000)})
            print(f"  torch decode batch {batch:3d}: {ms:9.3f} ms/step {ms / a.layers:8.3f} ms/layer "
                  f"{batch / (ms / 1000):10.1f} tokens/s", flush=True)
            del cache
            torch.cuda.empty_cache()
        for length in [int(n) for n in a.prefill.split(",")]:
            x = torch.randn(1, length, hidden, device=dev, dtype=torch.float16)
            times = []
            for i in range(a.warmup + a.runs):
                cache = DynamicCache()
                t = timed(lambda: stack(x, cache, 0))
                if i >= a.warmup:
                    times.append(t)
            ms = statistics.median(times)
            results.append({"impl": "torch-fp16", "phase": "prefill", "batch": 1, "tokens": length, "context": 0,
                            "msPerStep": ms, "msPerLayer": ms / a.layers, "tokensPerSecond": length / (ms / 1000)})
            print(f"  torch prefill {length:5d}: {ms:9.3f} ms/step {ms / a.layers:8.3f} ms/layer "
                  f"{length / (ms / 1000):10.1f} tokens/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "transformers": transformers.__version__, "preset": a.preset, "layers": a.layers,
                       "bytesPerLayer": per_layer, "results": results}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
