#!/usr/bin/env bash
# Builds and runs the kernel harness on a GPU machine: checks first, then benchmarks, then PyTorch's SDPA at
# the same shapes. Run from the directory holding kernels/ (the repo root, or a copy of kernels/ beside
# this layout); logs go to $OUT (or ./out). Usage: bash kernels/src/test/cuda/run.sh [cpu|check|bench|codecs|codecs-check|all]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
mode=${1:-all}
bin="$out/kernels_test"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | tee "$out/gpu.txt"
# a binary built elsewhere (KERNELS_TEST_BIN) saves the device machine the compile, if it runs there
if [[ -n "${KERNELS_TEST_BIN:-}" ]] && "$KERNELS_TEST_BIN" cpu "$root/kernels/src/test/resources/golden" >/dev/null 2>&1; then
    bin=$KERNELS_TEST_BIN
    echo "using prebuilt $bin"
else
    # one command line: sm_90a for the H200, sm_80 for A100s
    nvcc -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_80,code=sm_80 \
        -o "$bin" "$here/kernels_test.cu" 2>&1 | tee "$out/build.log" || exit 1
fi
timeout "${KERNELS_TEST_TIMEOUT:-400}" "$bin" "$mode" "$root/kernels/src/test/resources/golden" 2>&1 | tee "$out/kernels_test.log"
status=${PIPESTATUS[0]}
if [[ "$mode" == all || "$mode" == bench ]] && command -v python3 >/dev/null; then
    PYTHONUNBUFFERED=1 python3 "$here/bench_sdpa.py" 2>&1 | tee "$out/sdpa.log"
fi
exit "$status"
