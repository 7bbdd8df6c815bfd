#!/usr/bin/env python3
"""Golden outputs from Hugging Face transformers, the peer bitrelay's CPU forward pass is checked against.

For each checkpoint directory: tokenize a few texts with the checkpoint's tokenizer.json (the `tokenizers`
library, the same Rust code DJL wraps), run OPTForCausalLM in FP32 on the CPU, and record logits at several
prompt positions, then a greedy continuation decoded step by step with the KV cache (past_key_values),
with the logits of the first decode steps. Output: one JSON file per checkpoint.

Usage: make_goldens.py --checkpoint DIR --out FILE [--new-tokens 16] [--text T ...] [--full-logits]
Needs torch, transformers and tokenizers (the GPU machine has them); runs on the CPU on purpose: FP32
without TF32 or fused kernels, so the golden is the plain math.
"""
import argparse
import json
import os

import torch
import transformers
from tokenizers import Tokenizer
from transformers import OPTForCausalLM

DEFAULT_TEXTS = [
    "The capital of France is",
    "In 1867 the harbour was rebuilt, and trade with the northern ports grew quickly.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
]


def rounded(values):
    return [float(f"{v:.7g}") for v in values.tolist()]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--decode-logit-steps", type=int, default=3)
    parser.add_argument("--text", action="append")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tokenizer = Tokenizer.from_file(os.path.join(args.checkpoint, "tokenizer.json"))
    model = OPTForCausalLM.from_pretrained(args.checkpoint, dtype=torch.float32, attn_implementation="eager")
    model.eval()

    cases = []
    for text in args.text or DEFAULT_TEXTS:
        ids = tokenizer.encode(text).ids
        length = len(ids)
        positions = sorted({0, length // 2, length - 1})
        with torch.no_grad():
            out = model(torch.tensor([ids]), use_cache=True)
            logits = out.logits[0]
            past = out.past_key_values
            greedy, step_logits = [], []
            next_logits = logits[-1]
            for step in range(args.new_tokens):
                token = int(torch.argmax(next_logits))
                greedy.append(token)
                if step < args.decode_logit_steps and step > 0:
                    step_logits.append(rounded(next_logits))
                out = model(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past = out.past_key_values
                next_logits = out.logits[0, -1]
        cases.append({
            "text": text,
            "ids": ids,
            "positions": positions,
            "logits": [rounded(logits[p]) for p in positions],
            "greedy": greedy,
            "decodeLogits": step_logits,
        })
        print(f"{os.path.basename(args.checkpoint)}: {length} prompt tokens, greedy {greedy}", flush=True)

    golden = {
        "checkpoint": os.path.basename(os.path.normpath(args.checkpoint)),
        "peer": f"transformers {transformers.__version__}, torch {torch.__version__}, FP32 on CPU, eager attention",
        "decodeLogitsFromStep": 1,
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
