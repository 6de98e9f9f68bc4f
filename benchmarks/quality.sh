#!/usr/bin/env bash
# A VAE and a DCGAN trained a few epochs on Fashion-MNIST, then the full evaluation of each
# with 10,000 samples (and the real-data floor beside every score). Results: BENCHMARKS.md.
#   bash benchmarks/quality.sh [OUT_DIR]     (about 15 minutes on 2 CPU cores)
set -euo pipefail
out=${1:-runs/bench}
G=${GANVAE:-.venv/bin/ganvae}
mkdir -p "$out"
rm -rf "$out/vae" "$out/dcgan"
/usr/bin/time -f "vae train wall %es" $G train vae --data fashion-mnist --epochs 3 --out "$out/vae" --quiet
/usr/bin/time -f "dcgan train wall %es" $G train dcgan --data fashion-mnist --epochs 3 --precision bf16 \
  --out "$out/dcgan" --quiet
for m in vae dcgan; do
  /usr/bin/time -f "$m eval wall %es" $G eval "$out/$m" -n 10000 --nll-images 500
done
