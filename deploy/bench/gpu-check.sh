#!/usr/bin/env bash
# One GPU session's work: the GPU test suite (JUnit console launcher on the bundled Java), then
# deploy/bench/gpu-gemm.sh (ours + the PyTorch peer). Everything a node needs travels in one folder:
#   bitrelay-dist.tar.xz (or .tar.gz)   deploy/bin/make-dist
#   gpu-tests.jar                       the runtime's io.bitrelay.runtime.cuda tests + GpuGemmBenchTest
#   junit-platform-console-standalone-*.jar
#   gpu-check.sh                        this script
# Usage: gpu-check.sh FOLDER OUT_DIR [gpu-gemm.sh options]
set -uo pipefail
folder=$(cd "${1:?usage: gpu-check.sh FOLDER OUT_DIR}" && pwd)
out=${2:?usage: gpu-check.sh FOLDER OUT_DIR}
shift 2
mkdir -p "$out"
work=$(mktemp -d)
dist=$(ls "$folder"/bitrelay-dist.tar.* | head -1)
case "$dist" in
  *.xz) xz -dc "$dist" | tar -C "$work" -xf - ;;
  *) tar -C "$work" -xzf "$dist" ;;
esac
java="$work/bitrelay/runtime/bin/java"
# Jars under FOLDER/overlay replace the distribution's (a rebuilt module without re-making the whole tarball).
for jar in "$folder"/overlay/*.jar; do
  [ -f "$jar" ] && cp "$jar" "$work/bitrelay/lib/" && echo "overlay: $(basename "$jar")"
done
{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  echo "== GPU tests"
} | tee "$out/gpu-tests.log"
start=$(date +%s)
# Every *Test class in the jar (the console launcher's package selection and jar scanning found none here).
mapfile -t selectors < <(python3 -c 'import sys, zipfile
for n in zipfile.ZipFile(sys.argv[1]).namelist():
    if n.endswith("Test.class") and "$" not in n:
        print("--select-class=" + n[:-6].replace("/", "."))' "$folder/gpu-tests.jar")
"$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED -Xmx8g \
  -cp "$work/bitrelay/lib/*:$folder/gpu-tests.jar:$(ls "$folder"/junit-platform-console-standalone-*.jar)" \
  org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree \
  "${selectors[@]}" 2>&1 \
  | tee -a "$out/gpu-tests.log"
echo "== GPU tests took $(( $(date +%s) - start )) s" | tee -a "$out/gpu-tests.log"
BITRELAY="$work/bitrelay/bin/bitrelay" "$work/bitrelay/bench/gpu-gemm.sh" "$out/gemm" "$@"
