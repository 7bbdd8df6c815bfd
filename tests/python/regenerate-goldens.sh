#!/usr/bin/env bash
# Rewrites the golden checkpoints and their weight digests, and prints the command to run on a machine with
# torch + transformers (the GPU machine) to recompute the goldens. Keep in step with GoldenCheckpoints.java.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/.carry/ckpt}"
goldens="$root/tests/src/test/resources/goldens"
cd "$root"
synth() { deploy/bin/bitrelay synth --preset opt-tiny "$@"; }
synth --out "$out/golden-postln-proj" --hidden 64 --word-embed-proj-dim 32 --heads 4 --layers 3 --ffn 192 \
  --vocab 512 --max-positions 128 --post-layer-norm --dtype fp32 --seed 11
synth --out "$out/golden-outliers" --hidden 96 --heads 6 --layers 4 --ffn 384 --vocab 768 --max-positions 256 \
  --outliers --dtype fp16 --seed 22 --shard-mb 0.3
synth --out "$out/golden-bf16" --hidden 128 --heads 2 --layers 2 --ffn 512 --vocab 1000 --max-positions 256 \
  --dtype bf16 --seed 33
for c in golden-postln-proj golden-outliers golden-bf16; do
  (cd "$out/$c" && cat $(ls ./*.safetensors | sort) | sha256sum | cut -d' ' -f1) > "$goldens/$c.sha256"
done
cat <<MSG
Now, where torch and transformers exist (from the repository root, with $out present):
  for c in golden-postln-proj golden-outliers golden-bf16; do
    python3 tests/python/make_goldens.py --checkpoint $out/\$c --out tests/src/test/resources/goldens/\$c.json; done
MSG
