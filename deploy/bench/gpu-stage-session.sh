#!/usr/bin/env bash
# GPU stage engine session: stage tests + existing CUDA tests, then gpu-layers bench (ours + torch peer).
# Usage (repo root on the device): bash .carry/gpustage/run.sh OUT quick|full [gpu-layers.sh options]
# (a copy of the staged .carry/gpustage/run.sh; it expects .carry/cuda's distribution beside its folder)
set -uo pipefail
folder=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cuda=$(cd "$folder/../cuda" && pwd)
out=${1:?OUT}; mode=${2:-quick}
mkdir -p "$out"
work=$(mktemp -d)
xz -dc "$cuda"/bitrelay-dist.tar.xz | tar -C "$work" -xf -
for jar in "$folder"/overlay/*.jar; do cp "$jar" "$work/bitrelay/lib/"; done
java="$work/bitrelay/runtime/bin/java"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.log"
if true; then
  mapfile -t selectors < <(python3 -c 'import sys, zipfile
for n in zipfile.ZipFile(sys.argv[1]).namelist():
    if n.endswith("Test.class") and "$" not in n:
        print("--select-class=" + n[:-6].replace("/", "."))' "$folder/gpu-tests.jar")
  start=$(date +%s)
  timeout 240 "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED -Xmx8g \
    -cp "$work/bitrelay/lib/*:$folder/gpu-tests.jar:$(ls "$cuda"/junit-platform-console-standalone-*.jar)" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree \
    "${selectors[@]}" > "$out/gpu-tests.log" 2>&1
  echo "== GPU tests rc=$? took $(( $(date +%s) - start )) s" | tee -a "$out/gpu-tests.log"
  grep -E '^\[|tests (successful|failed|aborted)|✘|Exception|expected' "$out/gpu-tests.log" | head -80
fi
if [ "$mode" = quick ]; then
  BITRELAY="$work/bitrelay/bin/bitrelay" timeout 200 bash "$folder/bench/gpu-layers.sh" "$out/layers" \
    --layers 4 --batches 1,16,64 --prefill 512,2048 --runs 5 --warmup 2 2>&1 | tail -40
else
  BITRELAY="$work/bitrelay/bin/bitrelay" timeout 500 bash "$folder/bench/gpu-layers.sh" "$out/layers" "${@:3}" 2>&1 | tail -60
fi
