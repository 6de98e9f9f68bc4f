#!/usr/bin/env bash
# What latent spaces are worth (issue 15), three comparisons; each report.html holds the tables,
# the rate-distortion figure and the labelled traversals. Results: BENCHMARKS.md, "Latent space".
#   bash benchmarks/latent.sh [OUT_DIR] [BUDGET]      (BUDGET per model: 3m, or a step count)
# 1. probes and compression on Fashion-MNIST: ae, vae, beta-vae, vaegan, and dcgan's D features,
#    against pixels, PCA of the code's size and JPEG;
# 2. the rate-distortion curve of a beta sweep of the VAE (Alemi et al. 2018);
# 3. disentanglement on `factors`: vae against beta-vae at beta 4 and 8 (Higgins et al. 2017).
set -euo pipefail
out=${1:-runs/latent}
budget=${2:-3m}
G=${GANVAE:-.venv/bin/ganvae}
if [[ $budget =~ ^[0-9]+$ ]]; then B=(--steps "$budget"); else B=(--budget "$budget"); fi
W=(--set width=32 --eval-n 5000 --curve-points 3 --quiet)
mkdir -p "$out"
/usr/bin/time -f "probe+compress: %es" $G compare --data fashion-mnist --models ae,vae,beta-vae,vaegan,dcgan \
  "${B[@]}" "${W[@]}" --tasks generate,probe,compress --out "$out/fmnist"
/usr/bin/time -f "beta sweep: %es" $G compare --data fashion-mnist --models vae --sweep beta=0.25,0.5,1,2,4,8 \
  "${B[@]}" "${W[@]}" --tasks generate,compress --out "$out/rd"
/usr/bin/time -f "factors: %es" $G compare --data factors --models vae,beta-vae,beta-vae:beta=8 \
  "${B[@]}" "${W[@]}" --tasks generate,disentangle --out "$out/factors"
