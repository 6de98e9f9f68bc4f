#!/usr/bin/env bash
# Little data (issue 14): dcgan on Fashion-MNIST trained on N = 100, 1,000 and all images, at
# one budget per run, plain and with each remedy: DiffAugment, ADA, and transfer from
# a dcgan trained on procedural shapes (another dataset; Freeze-D on D's first block). Then
# cgan and cvae at N = 100 and 1,000 with the augment task (classifiers on real / synthetic /
# real + synthetic images, 2 classifier seeds, 20,000 images each). One `ganvae compare` per
# setting; its report.html holds the tables, the ADA p(t) plot and the "little data" findings.
# Results: BENCHMARKS.md, "Little data".
#   bash benchmarks/little_data.sh [OUT_DIR] [BUDGET] [PART]
# BUDGET: wall-clock per run (90s, 5m) or a number of steps (3000), which is the same budget
# on a loaded machine; PART: dcgan, cond or all. About 25 + 25 minutes at 90s on 2 cores,
# 70 + 45 at 3000 steps.
set -euo pipefail
out=${1:-runs/little}
budget=${2:-90s}
part=${3:-all}
G=${GANVAE:-.venv/bin/ganvae}
W=(--set width=32)
if [[ $budget =~ ^[0-9]+$ ]]; then B=(--steps "$budget"); else B=(--budget "$budget"); fi
mkdir -p "$out"
if [ "$part" != cond ]; then
  # the transfer source: dcgan on 20,000 procedural grey shapes at Fashion-MNIST's size
  if [ ! -f "$out/source/model/config.json" ]; then
    rm -rf "$out/source"
    $G train dcgan --data shapes:n=20000 --channels 1 "${B[@]}" "${W[@]}" --out "$out/source" --quiet
  fi
  src="$out/source"
  models="dcgan,dcgan:augment=diffaug:augment_policy=translation+cutout,dcgan:augment=ada,dcgan:train.init_from=$src:freeze_d=1"
  for n in 100 1000 all; do
    limit=(); [ "$n" = all ] || limit=(--limit "$n")
    /usr/bin/time -f "N=$n: %es" $G compare --data fashion-mnist --models "$models" "${B[@]}" "${limit[@]}" \
      "${W[@]}" --eval-n 5000 --curve-points 3 --out "$out/dcgan-$n" --quiet
  done
fi
if [ "$part" != dcgan ]; then
  for n in 100 1000; do
    /usr/bin/time -f "cond N=$n: %es" $G compare --data fashion-mnist --models cgan,cvae "${B[@]}" \
      --limit "$n" "${W[@]}" --eval-n 5000 --curve-points 3 --tasks generate,augment \
      --task-set augment.seeds=2 --task-set augment.budget_images=20000 --out "$out/cond-$n" --quiet
  done
fi
