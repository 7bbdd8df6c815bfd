# Why is transformers' generate slow here? Per-token time of a random OPT-1.3b in FP16 on the GPU, several ways.
import time, sys, torch, transformers
from transformers import OPTConfig, OPTForCausalLM
print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", flush=True)
cfg = OPTConfig(hidden_size=2048, num_hidden_layers=24, ffn_dim=8192, num_attention_heads=32, vocab_size=50272,
                max_position_embeddings=2048, word_embed_proj_dim=2048)
m = OPTForCausalLM(cfg).half().cuda().eval()
print("param", next(m.parameters()).dtype, next(m.parameters()).device, "gen cfg", m.generation_config, flush=True)
def run(label, n, **kw):
    ids = torch.randint(3, 50000, (n, 32), device="cuda")
    for rep in range(2):
        torch.cuda.synchronize(); t = time.perf_counter()
        with torch.inference_mode():
            m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, min_new_tokens=64,
                       do_sample=False, pad_token_id=1, **kw)
        torch.cuda.synchronize(); dt = time.perf_counter() - t
        print(f"{label} N={n} rep{rep}: {dt*1e3/64:.2f} ms/token, {n*64/dt:.1f} tok/s", flush=True)
for n in (1, 64):
    run("default", n)
    run("disable_compile", n, disable_compile=True)
    run("dynamic cache", n, cache_implementation="dynamic", disable_compile=True)
ids = torch.randint(3, 50000, (1, 32), device="cuda")
with torch.inference_mode():
    out = m(input_ids=ids, use_cache=True); past = out.past_key_values; tok = out.logits[:, -1:].argmax(-1)
    torch.cuda.synchronize(); t = time.perf_counter()
    for i in range(64):
        out = m(input_ids=tok, past_key_values=past, use_cache=True); past = out.past_key_values; tok = out.logits[:, -1:].argmax(-1)
    torch.cuda.synchronize(); print(f"manual loop N=1: {(time.perf_counter()-t)*1e3/64:.2f} ms/token", flush=True)
