#!/usr/bin/env bash
# OPT-175B decoder layers on one GPU: ours (`bitrelay bench gpu-layers`, FP16 and W8A8 stage engine) then the
# PyTorch peer (deploy/bench/torch_opt_layers.py, transformers' OPTDecoderLayer FP16), same shapes, layer
# count, batches, context and prefill lengths; merged into one JSON and one table with ratios.
#
# Usage: deploy/bench/gpu-layers.sh OUT_DIR [--layers N] [--batches 1,16,64] [--context 512] [--prefill 512,2048]
#                                           [--runs R] [--warmup W] [--graphs on|off|both]
#   --graphs (ours only): decode through CUDA graphs, kernel by kernel (row "decode-eager"), or both (default)
#   BITRELAY: the launcher (default: bin/bitrelay beside this script's distribution, else deploy/bin/bitrelay)
#   PYTHON: python with torch + transformers (default python3); SKIP_TORCH=1 leaves the peer out.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=${1:?usage: gpu-layers.sh OUT_DIR [options]}
shift
mkdir -p "$out"
bitrelay=${BITRELAY:-}
if [ -z "$bitrelay" ]; then
  if [ -x "$here/../bin/bitrelay" ]; then bitrelay="$here/../bin/bitrelay"; else bitrelay="$here/../../deploy/bin/bitrelay"; fi
fi
python=${PYTHON:-python3}
shared=()
ours=()
while [ $# -gt 0 ]; do
  case "$1" in
    --layers|--batches|--context|--prefill|--runs|--warmup) shared+=("$1" "$2"); shift 2 ;;
    --graphs) ours+=("$1" "$2"); shift 2 ;;
    *) echo "gpu-layers.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
echo "== bitrelay bench gpu-layers =="
"$bitrelay" bench gpu-layers ${shared[@]+"${shared[@]}"} ${ours[@]+"${ours[@]}"} --json "$out/bitrelay-gpu-layers.json" 2>&1 | tee "$out/bitrelay-gpu-layers.log"
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== torch peer =="
  PYTHONUNBUFFERED=1 "$python" "$here/torch_opt_layers.py" ${shared[@]+"${shared[@]}"} --json "$out/torch-opt-layers.json" 2>&1 \
    | tee "$out/torch-opt-layers.log"
fi
"$python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
ours = json.load(open(os.path.join(out, "bitrelay-gpu-layers.json")))
tp = os.path.join(out, "torch-opt-layers.json")
peer = json.load(open(tp)) if os.path.exists(tp) else {"results": []}
def key(r): return (r["phase"], r["batch"], r["tokens"])
by = {}
for r in ours["results"] + peer["results"]:
    by.setdefault(key(r), {})[r["impl"]] = r
rows = []
print(f"\n{ours['gpu']}: {ours['layers']} x {ours['preset']} layers, decode context {ours['context']}, median of {ours['runs']}")
print("| phase | batch x tokens | w8a8 ms/layer | fp16 ms/layer | torch fp16 ms/layer | w8a8 tok/s | w8a8 vs fp16 | w8a8 vs torch | fp16 vs torch |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
def ms(c, impl): return c[impl]["msPerLayer"] if impl in c else None
def fmt(v): return "—" if v is None else f"{v:.3f}"
def ratio(a, b): return None if a is None or b is None else b / a
for k in sorted(by, key=lambda k: (k[0] != "decode", k[1], k[2])):
    c = by[k]
    w, f, t = ms(c, "bitrelay-w8a8"), ms(c, "bitrelay-fp16"), ms(c, "torch-fp16")
    row = {"phase": k[0], "batch": k[1], "tokens": k[2], "w8a8MsPerLayer": w, "fp16MsPerLayer": f, "torchFp16MsPerLayer": t,
           "w8a8VsFp16": ratio(w, f), "w8a8VsTorch": ratio(w, t), "fp16VsTorch": ratio(f, t)}
    rows.append(row)
    tps = c["bitrelay-w8a8"]["tokensPerSecond"] if "bitrelay-w8a8" in c else None
    r = lambda v: "—" if v is None else f"{v:.2f}x"
    print(f"| {k[0]} | {k[1]} x {k[2]} | {fmt(w)} | {fmt(f)} | {fmt(t)} | {'—' if tps is None else f'{tps:.1f}'} | "
          f"{r(row['w8a8VsFp16'])} | {r(row['w8a8VsTorch'])} | {r(row['fp16VsTorch'])} |")
json.dump({"bitrelay": ours, "torch": peer, "merged": rows}, open(os.path.join(out, "gpu-layers.json"), "w"), indent=2)
PY
