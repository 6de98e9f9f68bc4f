#!/usr/bin/env bash
# One process against two (issue 16): DDP on gloo between CPU processes on this machine.
# dcgan (nets without batch norm) and vae (norm=none) on Fashion-MNIST, global batch 64, width 32,
# STEPS steps each: 1 process with all cores' threads, 1 process with 1 thread, 2 processes
# with 1 thread each. Prints img/s (summary.json, training time only) and the largest weight
# difference between the 1- and 2-process runs next to the one rounding alone makes (1 thread
# against all). Results: BENCHMARKS.md, "Scale out".
#   bash benchmarks/ddp.sh [OUT_DIR] [STEPS]
set -euo pipefail
out=${1:-runs/ddp}
steps=${2:-300}
G=${GANVAE:-.venv/bin/ganvae}
PY=${PYTHON:-.venv/bin/python}
cores=$(nproc)
mkdir -p "$out"
for model in dcgan vae; do
  if [ $model = dcgan ]; then S=(--set d_norm=none --set g_norm=none); else S=(--set norm=none); fi
  common=(--data fashion-mnist --steps "$steps" --batch-size 64 --set width=32 "${S[@]}" --device cpu --quiet
          --checkpoint-every 100000 --sample-every 100000)
  rm -rf "$out/$model-1" "$out/$model-1t" "$out/$model-2"
  OMP_NUM_THREADS=$cores $G train $model "${common[@]}" --out "$out/$model-1" > /dev/null
  OMP_NUM_THREADS=1 $G train $model "${common[@]}" --out "$out/$model-1t" > /dev/null
  $G train $model "${common[@]}" --out "$out/$model-2" --nproc 2 > /dev/null
  $PY - "$out" "$model" "$cores" <<'PYEOF'
import json, sys
from pathlib import Path
from safetensors.torch import load_file
out, model, cores = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def rate(name): return json.loads((out / name / "summary.json").read_text())["images_per_second"]
def w(name): return load_file(str(out / name / "model" / "model.safetensors"))
def diff(a, b): return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
one, one_t, two = w(f"{model}-1"), w(f"{model}-1t"), w(f"{model}-2")
print(f"| {model} | {rate(f'{model}-1'):.0f} ({cores} threads) | {rate(f'{model}-1t'):.0f} | {rate(f'{model}-2'):.0f} "
      f"| {diff(one_t, two):.2e} | {diff(one_t, one):.2e} |")
PYEOF
done
