#!/usr/bin/env bash
# Compression that beats JPEG and WebP (issue 35): learned codecs, the GAN-trained codec and the
# quantised, entropy-coded codes of an AE and a VAE, against JPEG, WebP and PNG, every rate the
# size of a real file. Results: BENCHMARKS.md, "Compression"; the tables and the figure are in
# OUT/fmnist/report.html.
#   bash benchmarks/compress.sh [OUT_DIR] [STEPS]      (STEPS per model, default 3000 at batch 32)
# codec at lambda 0.1 .. 2 traces its rate-distortion curve over ~20-120 bytes per image;
# codec-gan at the two lowest lambdas is HiFiC's claim (lower FD than codec at low rates).
set -euo pipefail
out=${1:-runs/compress}
steps=${2:-3000}
G=${GANVAE:-.venv/bin/ganvae}
codecs=codec:lmbda=0.1,codec:lmbda=0.25,codec:lmbda=0.5,codec:lmbda=1,codec:lmbda=2
gans=codec-gan:lmbda=0.1,codec-gan:lmbda=0.25
mkdir -p "$out"
/usr/bin/time -f "fashion-mnist: %es" $G compare --data fashion-mnist --models "$codecs,$gans,codec-hyper,ae,vae" \
  --steps "$steps" --batch-size 32 --eval-n 2000 --curve-points 2 --quiet \
  --tasks generate,compress --task-set compress.n=2000 --out "$out/fmnist"
