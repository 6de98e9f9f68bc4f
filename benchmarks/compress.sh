#!/usr/bin/env bash
# Compression that beats JPEG and WebP (issue 35): learned codecs, the GAN-trained codec and the
# quantised, entropy-coded codes of an AE and a VAE, against JPEG, WebP and PNG, every rate the
# size of a real file. Results: BENCHMARKS.md, "Compression"; the tables and the figure are in
# OUT/<data>/report.html.
#   bash benchmarks/compress.sh [OUT_DIR] [STEPS] [fmnist|rgb32|all]   (STEPS per model at batch 32)
# fmnist: Fashion-MNIST 28x28 grey; codec at lambda 0.1 .. 8 traces its rate-distortion curve over
#   ~10-115 bytes per image; codec-gan at the two lowest lambdas is HiFiC's claim (lower FD than
#   codec at low rates).
# rgb32: the same table on colour images of 32x32 (procedural `shapes` in colour: the RGB data this
#   machine has; a folder of photos runs the same way with --data folder:DIR).
set -euo pipefail
out=${1:-runs/compress}
steps=${2:-3000}
which=${3:-fmnist}
G=${GANVAE:-.venv/bin/ganvae}
codecs=codec:lmbda=0.1,codec:lmbda=0.25,codec:lmbda=0.5,codec:lmbda=1,codec:lmbda=2,codec:lmbda=4,codec:lmbda=8
gans=codec-gan:lmbda=0.1,codec-gan:lmbda=0.25
common=(--steps "$steps" --batch-size 32 --eval-n 2000 --curve-points 2 --quiet --tasks generate,compress
        --task-set compress.n=2000)
mkdir -p "$out"
if [[ $which == fmnist || $which == all ]]; then
  /usr/bin/time -f "fashion-mnist: %es" $G compare --data fashion-mnist --models "$codecs,$gans,codec-hyper,ae,vae" \
    "${common[@]}" --out "$out/fmnist"
fi
if [[ $which == rgb32 || $which == all ]]; then
  /usr/bin/time -f "rgb32: %es" $G compare --data shapes --size 32 --channels 3 \
    --models "codec:lmbda=0.25,codec:lmbda=1,codec:lmbda=4,codec-gan:lmbda=0.25,ae,vae" \
    "${common[@]}" --out "$out/rgb32"
fi
