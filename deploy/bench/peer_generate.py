#!/usr/bin/env python3
"""The transformers peer of `bitrelay bench serve`: the same checkpoint and the same prompt token ids through
OPTForCausalLM.generate, batched (left padding) at each concurrency, greedy, exactly --max-tokens new tokens.
FP16 on CUDA when there is a GPU (or --device cuda), else FP32 on the CPU. Writes one JSON object to --out."""
import argparse
import json
import platform
import time

import torch
import transformers
from transformers import LogitsProcessor, LogitsProcessorList, OPTForCausalLM


class StepClock(LogitsProcessor):
    """Called once per generated token: the gaps between calls are the per-token latency."""

    def __init__(self, sync):
        self.sync = sync
        self.times = []

    def __call__(self, input_ids, scores):
        self.sync()
        self.times.append(time.perf_counter())
        return scores


def batch(prompts, n, pad, device):
    rows = [prompts[i % len(prompts)] for i in range(n)]
    width = max(len(r) for r in rows)
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", required=True, help="JSON file: a list of token-id lists")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = OPTForCausalLM.from_pretrained(args.model, torch_dtype=dtype).to(device).eval()
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 1
    with open(args.prompts) as f:
        prompts = json.load(f)
    m = args.max_tokens

    def generate(n, tokens, processors=None):
        ids, mask = batch(prompts, n, pad, device)
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=False, pad_token_id=pad, logits_processor=processors)
        sync()
        return time.perf_counter() - start, (out.shape[1] - ids.shape[1]) * n

    results = []
    for n in [int(x) for x in args.concurrency.split(",")]:
        # Untimed first call of the same shape and length, as bitrelay's --warmup-each: transformers' first
        # generate() of a (batch, length) costs ~70 ms a token more (its compile of the decode step; measured on an
        # H100: 71 ms/token on the first call, 8 on the second), which a server pays once, not per request. A warm-up
        # of another length left the timed run paying it (13 tokens/s at N = 1 instead of ~125).
        warm_seconds, _ = generate(n, m)
        seconds, tokens = generate(n, m)
        results.append({"concurrency": n, "seconds": seconds, "tokens": tokens, "tokensPerSecond": tokens / seconds,
                        "warmupSeconds": warm_seconds})
    clock = StepClock(sync)
    generate(1, m, LogitsProcessorList([clock]))
    gaps = sorted((b - a) * 1e3 for a, b in zip(clock.times, clock.times[1:]))
    latency = {"count": len(gaps), "meanMs": sum(gaps) / len(gaps) if gaps else None,
               "p50Ms": gaps[len(gaps) // 2] if gaps else None}
    with open(args.out, "w") as f:
        json.dump({"impl": "transformers", "device": device, "dtype": str(dtype).replace("torch.", ""),
                   "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
                   "maxTokens": m, "results": results, "perTokenLatencyN1": latency}, f, indent=2)


if __name__ == "__main__":
    main()
