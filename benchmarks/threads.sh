#!/usr/bin/env bash
# Two ganvae trainings at once on one machine (issue 32): each one's img/s against the same
# training alone, under the default thread settings and the alternatives.
#   bash benchmarks/threads.sh [OUT_DIR] [STEPS]
# dcgan on Fashion-MNIST, width 64, batch 64, STEPS steps (default 200); img/s is summary.json's
# (training time only). Each setting: one run alone, then two started together. The machine
# must be otherwise idle.
set -euo pipefail
out=${1:-runs/threads}
steps=${2:-200}
G=${GANVAE:-.venv/bin/ganvae}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
train() {  # $1 = run name, then env assignments
  local name=$1; shift
  env "$@" $G train dcgan --data fashion-mnist --steps "$steps" --batch-size 64 --device cpu --quiet \
      --checkpoint-every 100000 --sample-every 100000 --out "$out/$name" > /dev/null 2>&1
}
rate() { $PY -c "import json,sys; print(round(json.load(open('$out/$1/summary.json'))['images_per_second']))"; }
$PY -c "from ganvae.hardware import machine_line; print(machine_line())"
echo "| setting | alone img/s | two at once, img/s each | share of alone |"
echo "|---|---|---|---|"
# SETTINGS: "LABEL:VAR=VALUE VAR=VALUE;..." to try others
IFS=';' read -ra settings <<< "${SETTINGS:-ganvae default:;libgomp default (GOMP_SPINCOUNT=300000):GOMP_SPINCOUNT=300000;OMP_WAIT_POLICY=PASSIVE:OMP_WAIT_POLICY=PASSIVE;OMP_NUM_THREADS=1:OMP_NUM_THREADS=1}"
for setting in "${settings[@]}"; do
  label=${setting%%:*}; envs=${setting#*:}
  tag=$(echo "$label" | tr -c 'A-Za-z0-9_\n' '-')
  rm -rf "$out/$tag-"*
  train "$tag-alone" $envs
  train "$tag-a" $envs & pa=$!
  train "$tag-b" $envs & pb=$!
  wait $pa $pb
  alone=$(rate "$tag-alone"); a=$(rate "$tag-a"); b=$(rate "$tag-b")
  echo "| $label | $alone | $a, $b | $($PY -c "print(f'{min($a, $b) / $alone:.0%}')") |"
done
