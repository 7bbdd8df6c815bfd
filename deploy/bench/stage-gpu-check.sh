#!/usr/bin/env bash
# Stages everything gpu-check.sh needs into one folder (to carry to a GPU node that has no Java):
# the distribution (deploy/bin/make-dist, .tar.xz preferred: it is about half the size), the GPU tests as a
# jar, the JUnit console launcher, and gpu-check.sh itself. Run after `mvn verify` (it reads target/).
#   deploy/bench/stage-gpu-check.sh DEST      then on the node: bash DEST/gpu-check.sh DEST OUT_DIR
#   OVERLAY=1 also copies our module jars from target/ into DEST/overlay (they replace the distribution's).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../bin/java25-env
source "$root/deploy/bin/java25-env"
dest=${1:?usage: stage-gpu-check.sh DEST}
mkdir -p "$dest"
dist=""
for candidate in "$root"/deploy/target/bitrelay-dist.tar.xz "$root"/deploy/target/bitrelay-dist.tar.gz; do
  if [ -f "$candidate" ]; then dist=$candidate; break; fi
done
[ -n "$dist" ] || { echo "stage-gpu-check: build the distribution first (DIST_FORMAT=xz deploy/bin/make-dist)" >&2; exit 1; }
junit=$(ls ~/.m2/repository/org/junit/platform/junit-platform-console-standalone/*/junit-platform-console-standalone-*.jar \
  2>/dev/null | tail -1)
[ -n "$junit" ] || { echo "stage-gpu-check: fetch the console launcher first: mvn dependency:get" \
  "-Dartifact=org.junit.platform:junit-platform-console-standalone:1.13.4" >&2; exit 1; }
classes=$(mktemp -d)
trap 'rm -rf "$classes"' EXIT
(cd "$root/runtime/target/test-classes" && cp --parents -r io/bitrelay/runtime/cuda "$classes/")
(cd "$root/deploy/target/test-classes" && cp --parents io/bitrelay/deploy/bench/GpuGemmBenchTest.class "$classes/")
# The worker's GPU tests (device link codecs through GpuLayers) need the actors' main classes only.
(cd "$root/actors/target/test-classes" && cp --parents io/bitrelay/actors/worker/Gpu*.class "$classes/")
rm -f "$dest"/bitrelay-dist.tar.* "$dest"/gpu-tests.jar
"$JAVA_HOME/bin/jar" cf "$dest/gpu-tests.jar" -C "$classes" .
cp "$dist" "$junit" "$here/gpu-check.sh" "$here/gpu-worker-session.sh" "$here/gpu-layers.sh" "$here/torch_opt_layers.py" "$dest/"
# Kernel experiments waiting for a GPU, built here (the node's nvcc works too, but this saves its time).
if command -v nvcc >/dev/null 2>&1; then
  nvcc -O2 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o "$dest/attention_int8_test" \
    "$root/kernels/src/test/cuda/attention_int8_test.cu"
fi
rm -rf "$dest/overlay"
if [ "${OVERLAY:-0}" = 1 ]; then
  # Our own jars from target/, to run new code on an older distribution without re-making it (minutes of xz).
  mkdir -p "$dest/overlay"
  cp "$root"/kernels/target/bitrelay-kernels-*.jar "$root"/runtime/target/bitrelay-runtime-*[0-9T].jar \
    "$root"/actors/target/bitrelay-actors-*[0-9T].jar "$root/deploy/target/bitrelay-deploy.jar" "$dest/overlay/"
fi
du -sh "$dest"
