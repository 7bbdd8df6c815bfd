#!/usr/bin/env bash
# INT8 vs FP16 GEMMs on one GPU, ours (cuBLASLt, auto-tuned, `bitrelay bench gpu-gemm`) and PyTorch's
# (torch.matmul FP16 and torch._int_mm, deploy/bench/torch_gemm.py), one after the other on the same GPU,
# merged into one JSON and one table.
#
# Usage: deploy/bench/gpu-gemm.sh OUT_DIR [extra `bench gpu-gemm` options, e.g. --m 1,16 --shapes qkv]
#   BITRELAY: the launcher to use (default: bin/bitrelay beside this script's distribution, else deploy/bin/bitrelay)
#   PYTHON:   the python with torch (default python3); set SKIP_TORCH=1 to leave the peer out.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=${1:?usage: gpu-gemm.sh OUT_DIR [bench gpu-gemm options]}
shift
mkdir -p "$out"
bitrelay=${BITRELAY:-}
if [ -z "$bitrelay" ]; then
  if [ -x "$here/../bin/bitrelay" ]; then bitrelay="$here/../bin/bitrelay"; else bitrelay="$here/../../deploy/bin/bitrelay"; fi
fi
python=${PYTHON:-python3}

# Pass the same shapes and M to the peer.
shapes=qkv,out,fc1,fc2
rows=1,16,128,512,2048
rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) shapes=$2; shift 2 ;;
    --shapes=*) shapes=${1#--shapes=}; shift ;;
    --m) rows=$2; shift 2 ;;
    --m=*) rows=${1#--m=}; shift ;;
    *) rest+=("$1"); shift ;;
  esac
done

echo "== bitrelay bench gpu-gemm (cuBLASLt) =="
"$bitrelay" bench gpu-gemm --shapes "$shapes" --m "$rows" --json "$out/bitrelay-gpu-gemm.json" ${rest[@]+"${rest[@]}"} 2>&1 \
  | tee "$out/bitrelay-gpu-gemm.log"
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== torch peer =="
  PYTHONUNBUFFERED=1 "$python" "$here/torch_gemm.py" --shapes "$shapes" --m "$rows" --json "$out/torch-gemm.json" 2>&1 \
    | tee "$out/torch-gemm.log"
fi

"$python" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
ours = json.load(open(os.path.join(out, "bitrelay-gpu-gemm.json")))
torch_path = os.path.join(out, "torch-gemm.json")
peer = json.load(open(torch_path)) if os.path.exists(torch_path) else {"results": []}
by_key = {(r["gemm"], r["m"]): r for r in peer["results"]}
rows = []
for r in ours["results"]:
    t = by_key.get((r["gemm"], r["m"]), {})
    row = {"gemm": r["gemm"], "k": r["k"], "n": r["n"], "m": r["m"],
           "int8_cublaslt_us": r["int8"]["micros"], "int8out8_cublaslt_us": r["int8Out8"]["micros"],
           "fp16_cublaslt_us": r["fp16"]["micros"], "ratio_int8_vs_fp16": r["ratioInt8VsFp16"],
           "int8_algorithm": r["int8"]["algorithm"], "fp16_algorithm": r["fp16"]["algorithm"],
           "int8_first_heuristic_us": r["int8"]["firstHeuristicMicros"],
           "torch_fp16_us": t.get("fp16", {}).get("micros"), "torch_int_mm_us": t.get("int_mm", {}).get("micros"),
           "torch_int_mm_error": t.get("int_mm", {}).get("error")}
    if row["torch_fp16_us"] and row["torch_int_mm_us"]:
        row["torch_ratio_int_mm_vs_fp16"] = row["torch_fp16_us"] / row["torch_int_mm_us"]
    if row["torch_int_mm_us"]:
        row["ours_int8_vs_torch_int_mm"] = row["torch_int_mm_us"] / row["int8_cublaslt_us"]
    rows.append(row)
merged = {"gpu": ours["gpu"], "device": ours["device"], "cublasLtVersion": ours["cublasLtVersion"],
          "torch": peer.get("torch"), "torchCuda": peer.get("cuda"), "results": rows}
json.dump(merged, open(os.path.join(out, "gpu-gemm.json"), "w"), indent=2)
print("\nGPU: %s | cuBLASLt %s | torch %s" % (ours["device"], ours["cublasLtVersion"], peer.get("torch")))
print("%-4s %5s | %9s %9s %9s %6s | %9s %9s %6s" % ("gemm", "M", "int8 us", "i8o8 us", "fp16 us", "ratio",
                                                    "t.fp16", "t.int_mm", "ratio"))
f = lambda v: "%9.1f" % v if v else "      n/a"
for r in rows:
    print("%-4s %5d | %9.1f %9.1f %9.1f %5.2fx | %s %s %s" % (
        r["gemm"], r["m"], r["int8_cublaslt_us"], r["int8out8_cublaslt_us"], r["fp16_cublaslt_us"],
        r["ratio_int8_vs_fp16"], f(r["torch_fp16_us"]), f(r["torch_int_mm_us"]),
        "%5.2fx" % r["torch_ratio_int_mm_vs_fp16"] if "torch_ratio_int_mm_vs_fp16" in r else "   n/a"))
PY
