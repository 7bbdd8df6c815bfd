#!/usr/bin/env bash
# One GPU session for the GPU workers: the GPU test suite, then local clusters whose workers share cuda:0
# (demo with the device link codecs off and on, CPU workers beside them, a W8A8 + RPTQ INT4 run), a perplexity
# run through a GPU cluster next to the same windows in-process, and the link-codec bench.
# Staged by deploy/bench/stage-gpu-check.sh (OVERLAY=1 for fresh module jars); on the node:
#   bash FOLDER/gpu-worker-session.sh FOLDER OUT_DIR [TEXT_FILE]
# Writes OUT_DIR/summary.txt (one line per step: rc, seconds) and OUT_DIR/logs.tar.gz (every step's log + JSON).
# STEPS (default "tests demo head eval wide links") picks the parts: head = the synthetic opt-125m (vocab 50272)
# served with the last stage's LM head on the CPU and on the GPU (bitrelay.worker.device-lm-head);: wide = a synthetic 3-layer model of width 4096
# served with the device link codecs off and on (demo, and prompt scoring through the gateway: 256-row frames);
# stream = demo and the W8A8 + INT4 demo again with bitrelay.worker.host-weights = stream (after demo: its answers
# must equal the host-copy runs'; peak worker RSS of both); gemm = deploy/bench/gpu-gemm.sh at M = GEMM_M
# (default 1,16,128) with the variation search, next to PyTorch; layers = bench gpu-layers (LAYERS, default 16,
# OPT-175B shape) with bitrelay.cuda.gemm-search heuristics and variations, one after the other; cache = the same
# with variations twice over one GEMM tuning cache (cold, warm), and a demo cluster with variations started twice;
# kv = W8A8 layers with an FP16 vs an INT8 KV cache (context KV_CONTEXT, default 1024), and a demo on INT8 caches;
# int8attn = the INT8 decode-attention harness staged beside this script (attention_int8_test, built by stage-gpu-check.sh).
# peer = deploy/bench/gpu-layers.sh: bench gpu-layers next to transformers' OPTDecoderLayer in the same run.
set -uo pipefail
folder=$(cd "${1:?usage: gpu-worker-session.sh FOLDER OUT_DIR [TEXT_FILE]}" && pwd)
out=${2:?usage: gpu-worker-session.sh FOLDER OUT_DIR [TEXT_FILE]}
text=${3:-}
mkdir -p "$out"
logs=$(mktemp -d)
work=$(mktemp -d)
dist=$(ls "$folder"/bitrelay-dist.tar.* | head -1)
case "$dist" in
  *.xz) xz -T0 -dc "$dist" | tar -C "$work" -xf - ;;
  *) tar -C "$work" -xzf "$dist" ;;
esac
for jar in "$folder"/overlay/*.jar; do [ -f "$jar" ] && cp "$jar" "$work/bitrelay/lib/"; done
java="$work/bitrelay/runtime/bin/java"
bitrelay="$work/bitrelay/bin/bitrelay"
export BITRELAY_MODELS="$work/models"
summary="$out/summary.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$summary"

steps=" ${STEPS:-tests demo head eval wide links} "
want() { [[ "$steps" == *" $1 "* ]]; }
worker_pattern="BitrelayCli node --roles=worker"

# step NAME LIMIT_S COMMAND...: runs it with its output in NAME.log, one summary line.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $(date -u +%T) $name" | tee -a "$summary"
  # Peak resident set of any worker JVM (the node command) while the step runs, sampled each second.
  ( peak=0; while sleep 1; do
      for pid in $(pgrep -f "$worker_pattern" || true); do
        rss=$(awk '/VmRSS/ {print $2}' /proc/"$pid"/status 2>/dev/null || echo 0)
        if [ "${rss:-0}" -gt "$peak" ]; then peak=$rss; echo "$peak" > "$logs/$name.rss"; fi
      done
    done ) &
  local sampler=$!
  timeout -k 10 "$limit" "$@" > "$logs/$name.log" 2>&1
  rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  local rss=""
  [ -s "$logs/$name.rss" ] && rss=", peak worker RSS $(( $(cat "$logs/$name.rss") / 1024 )) MiB"
  echo "   rc=$rc, $(( $(date +%s) - start )) s$rss" | tee -a "$summary"
  grep -E 'tokens/s|× less|x less|perplexity|ppl|tests (successful|failed)|FAILED|Exception' "$logs/$name.log" | head -12 | sed 's/^/   /' | tee -a "$summary"
}

if want tests; then
mapfile -t selectors < <(python3 -c 'import sys, zipfile
for n in zipfile.ZipFile(sys.argv[1]).namelist():
    if n.endswith("Test.class") and "$" not in n:
        print("--select-class=" + n[:-6].replace("/", "."))' "$folder/gpu-tests.jar")
step gpu-tests 240 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED -Xmx8g \
  -cp "$work/bitrelay/lib/*:$folder/gpu-tests.jar:$(ls "$folder"/junit-platform-console-standalone-*.jar)" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree "${selectors[@]}"
fi

off=(--set bitrelay.worker.device-link-codecs=off)
if want demo; then
step demo-cpu 120 "$bitrelay" demo --json "$logs/demo-cpu.json"
step demo-gpu-host-codecs 120 "$bitrelay" demo --devices cuda:0 "${off[@]}" --json "$logs/demo-gpu-host-codecs.json"
step demo-gpu-device-codecs 120 "$bitrelay" demo --devices cuda:0 --json "$logs/demo-gpu-device-codecs.json"
step demo-gpu-w8a8-int4 180 "$bitrelay" demo --devices cuda:0 --recipe w8a8-smoothquant --link-codec int4 \
  --json "$logs/demo-gpu-w8a8-int4.json" --logs "$logs/w8a8-workers"
fi

if want head; then
step demo-gpu-cpu-head 120 "$bitrelay" demo --devices cuda:0 --set bitrelay.worker.device-lm-head=off --max-tokens 64 \
  --json "$logs/demo-gpu-cpu-head.json"
step demo-gpu-gpu-head 120 "$bitrelay" demo --devices cuda:0 --max-tokens 64 --json "$logs/demo-gpu-gpu-head.json"
fi

# serve_and_score NAME MODEL CLUSTER_FLAGS...: a cluster on cuda:0, the text's windows scored through its gateway.
serve_and_score() {
  local name=$1 model=$2 cluster
  shift 2
  # A background job ignores SIGINT: stop the cluster with SIGTERM (its shutdown hook stops the workers).
  "$bitrelay" cluster --model "$model" --devices cuda:0 --http-port 18080 --logs "$logs/$name-workers" "$@" \
    > "$logs/$name-cluster.log" 2>&1 &
  cluster=$!
  for _ in $(seq 1 120); do grep -q '^serving ' "$logs/$name-cluster.log" && break; sleep 1; done
  step "$name" 120 "$bitrelay" eval --model "$model" "${windows[@]}" --endpoint http://127.0.0.1:18080 --json "$logs/$name.json"
  # The same windows again on the now warm cluster (first-use setup of codecs and buffers is behind it).
  step "$name-warm" 120 "$bitrelay" eval --model "$model" "${windows[@]}" --endpoint http://127.0.0.1:18080 \
    --json "$logs/$name-warm.json"
  kill -TERM "$cluster"; timeout 30 tail --pid="$cluster" -f /dev/null; kill -KILL "$cluster" 2>/dev/null
}

if [ -n "$text" ]; then
  windows=(--text "$text" --seq-len 256 --max-windows 8 --no-progress)
fi
if [ -n "$text" ] && want eval; then
  model=$(ls -d "$BITRELAY_MODELS"/synthetic-opt-125m* 2>/dev/null | head -1)
  if [ -z "$model" ]; then
    model="$BITRELAY_MODELS/synthetic-opt-125m"
    "$bitrelay" synth --out "$model" --preset opt-125m > /dev/null 2>&1
  fi
  step eval-in-process 120 "$bitrelay" eval --model "$model" "${windows[@]}" --recipes fp32 --stages 3 \
    --link-codec none,int8 --json "$logs/eval-in-process.json"
  serve_and_score eval-gpu-cluster "$model"
fi
if want wide; then
  wide="$BITRELAY_MODELS/synthetic-w4096-3L"
  step synth-wide 120 "$bitrelay" synth --out "$wide" --preset opt-6.7b --layers 3 --vocab 4096 --max-positions 2048
  step demo-wide-host-codecs 150 "$bitrelay" demo --model "$wide" --devices cuda:0 "${off[@]}" --max-tokens 64 \
    --json "$logs/demo-wide-host-codecs.json"
  step demo-wide-device-codecs 150 "$bitrelay" demo --model "$wide" --devices cuda:0 --max-tokens 64 \
    --json "$logs/demo-wide-device-codecs.json"
  if [ -n "$text" ]; then
    serve_and_score eval-wide-host-codecs "$wide" "${off[@]}"
    serve_and_score eval-wide-device-codecs "$wide"
  fi
fi

# same_answers NAME A B: whether two demo logs printed the same answers.
same_answers() {
  if ! grep -q '^> ' "$logs/$2.log" 2>/dev/null || ! grep -q '^> ' "$logs/$3.log" 2>/dev/null; then
    echo "   $3 vs $2: no answers to compare" | tee -a "$summary"
  elif diff <(grep -A1 '^> ' "$logs/$2.log") <(grep -A1 '^> ' "$logs/$3.log") > "$logs/$1.diff"; then
    echo "   $3 answers = $2 answers" | tee -a "$summary"
  else
    echo "   $3 answers DIFFER from $2 ($1.diff)" | tee -a "$summary"
  fi
}
if want stream; then
  stream=(--set bitrelay.worker.host-weights=stream)
  step demo-gpu-stream 150 "$bitrelay" demo --devices cuda:0 "${stream[@]}" --json "$logs/demo-gpu-stream.json" \
    --logs "$logs/stream-workers"
  same_answers stream-fp16 demo-gpu-device-codecs demo-gpu-stream
  step demo-gpu-stream-w8a8-int4 180 "$bitrelay" demo --devices cuda:0 --recipe w8a8-smoothquant --link-codec int4 \
    "${stream[@]}" --json "$logs/demo-gpu-stream-w8a8-int4.json" --logs "$logs/stream-w8a8-workers"
  same_answers stream-w8a8 demo-gpu-w8a8-int4 demo-gpu-stream-w8a8-int4
fi

if want layers; then
  for search in heuristics variations; do
    step "gpu-layers-$search" 300 "$bitrelay" bench gpu-layers --layers "${LAYERS:-16}" --graphs on \
      --gemm-search "$search" --json "$logs/gpu-layers-$search.json"
    grep '^| ' "$logs/gpu-layers-$search.log" | head -12 | tee -a "$summary"
  done
fi

if want cache; then
  # The GEMM tuning cache: the variation search paid once, then reused (bench, and a demo cluster restarted).
  cache="$work/gemm-tuning"
  for pass in cold warm; do
    step "gpu-layers-cache-$pass" 300 "$bitrelay" bench gpu-layers --layers "${LAYERS:-16}" --graphs on \
      --gemm-search variations --gemm-tuning-cache "$cache" --json "$logs/gpu-layers-cache-$pass.json"
    grep '^| ' "$logs/gpu-layers-cache-$pass.log" | head -12 | tee -a "$summary"
  done
  ls -l "$cache" | tee -a "$summary"
  for pass in cold warm; do
    step "demo-gpu-variations-$pass" 150 "$bitrelay" demo --devices cuda:0 --set bitrelay.cuda.gemm-search=variations \
      --set bitrelay.cuda.gemm-tuning-cache="$work/demo-gemm-tuning" --json "$logs/demo-gpu-variations-$pass.json"
  done
  same_answers variations-cache demo-gpu-variations-cold demo-gpu-variations-warm
  ls -l "$work/demo-gemm-tuning" | tee -a "$summary"
fi

if want kv; then
  # The INT8 KV cache on the GPU: W8A8 layers with an FP16 and an INT8 cache, side by side; a GPU cluster serving
  # with bitrelay.quantization.kv-cache = int8 end to end.
  for kv in fp16 int8; do
    step "gpu-layers-kv-$kv" 300 "$bitrelay" bench gpu-layers --layers "${LAYERS:-16}" --recipes w8a8 --graphs on \
      --gemm-search heuristics --kv "$kv" --context "${KV_CONTEXT:-1024}" --json "$logs/gpu-layers-kv-$kv.json"
    grep '^| ' "$logs/gpu-layers-kv-$kv.log" | head -7 | tee -a "$summary"
  done
  if [ "${KV_DEMO:-1}" = 1 ]; then
    step demo-gpu-kv-int8 150 "$bitrelay" demo --devices cuda:0 --set bitrelay.quantization.kv-cache=int8 \
      --json "$logs/demo-gpu-kv-int8.json" --logs "$logs/kv-int8-workers"
    grep -h "KV cache" "$logs"/kv-int8-workers/*.log | head -3 | tee -a "$summary"
  fi
fi

if want gemm; then
  step gpu-gemm 420 env BITRELAY="$bitrelay" bash "$work/bitrelay/bench/gpu-gemm.sh" "$logs/gemm" --m "${GEMM_M:-1,16,128}" \
    ${GEMM_ARGS:-}
  tail -30 "$logs/gpu-gemm.log" | tee -a "$summary"
fi

if want peer; then
  # The README's decoder-layer table: ours (FP16 and W8A8, CUDA graphs) next to transformers' OPTDecoderLayer.
  step gpu-layers-peer 420 env BITRELAY="$bitrelay" bash "$folder/gpu-layers.sh" "$logs/peer" \
    --layers "${LAYERS:-16}" --graphs on
  grep '^| ' "$logs/gpu-layers-peer.log" | tail -8 | tee -a "$summary"
fi

if want int8attn; then
  # INT8 KV decode next to the FP16 one on the same keys and values (kernels/bench/NOTES.md).
  step int8-attention 120 "$folder/attention_int8_test"
  grep -E '^ *[0-9]+ +[0-9]+ \||checks' "$logs/int8-attention.log" | tee -a "$summary"
fi

if want links; then
step gpu-links 150 "$bitrelay" bench gpu-links --rows 1,128,512,2048 --runs 30
fi
tar -C "$logs" -czf "$out/logs.tar.gz" .
