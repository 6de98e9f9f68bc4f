#!/usr/bin/env bash
# The GPU path, checked in one go (issue 32); meant to take under 8 minutes on one GPU.
#   bash benchmarks/gpu_check.sh [OUT_DIR] [STEPS]
# 1. Every model family trains STEPS steps (default 200) with `ganvae train` on the device in
#    fp32, bf16 and fp16; a table of img/s (summary.json, training time only) and whether the
#    last logged losses are finite.
# 2. tests/test_ddp.py's equality cases (2 processes train the weights 1 process does) on the
#    device: NCCL on >= 2 GPUs, else 2 processes sharing one GPU through gloo.
# DEVICE=cpu PRESETS=... PRECISIONS=fp32 runs the same script on a CPU (tests/test_gpu_check.py).
set -uo pipefail
out=${1:-runs/gpu_check}
steps=${2:-200}
DEVICE=${DEVICE:-cuda}
PRESETS=${PRESETS:-"ae vae dcgan wgan-gp sngan cgan cvae vaegan aae bigan pix2pix cyclegan unit"}
PRECISIONS=${PRECISIONS:-"fp32 bf16 fp16"}
DDP=${DDP:-1}
PY=${PYTHON:-.venv/bin/python}
G=${GANVAE:-.venv/bin/ganvae}
mkdir -p "$out"
$PY -c "import torch; from ganvae.hardware import machine_line; print(machine_line(),
'| GPUs', torch.cuda.device_count(), *[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"
failed=0
for preset in $PRESETS; do
  case $preset in
    pix2pix|unet-l1) data=task:edges2fashion ;;
    cyclegan|unit) data=task:edges2fashion ;;
    *) data=fashion-mnist ;;
  esac
  for prec in $PRECISIONS; do
    run="$out/$preset-$prec"
    rm -rf "$run"
    if ! $G train "$preset" --data "$data" --steps "$steps" --batch-size 64 --precision "$prec" --device "$DEVICE" \
         --out "$run" --quiet --log-every $(( steps < 50 ? steps : 50 )) --checkpoint-every 100000 --sample-every 100000 \
         > "$run.log" 2>&1; then
      echo "FAILED: $preset $prec (log: $run.log): $(tail -n 1 "$run.log")"
      failed=1
    fi
  done
done
$PY - "$out" "$PRESETS" "$PRECISIONS" <<'PYEOF' || failed=1
import json, math, sys
from pathlib import Path
out, presets, precisions = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
print("| model | " + " | ".join(f"img/s {p}" for p in precisions) + " |")
print("|---|" + "---|" * len(precisions))
bad = []
for preset in presets:
    cells = []
    for prec in precisions:
        run = out / f"{preset}-{prec}"
        try:
            rate = json.loads((run / "summary.json").read_text())["images_per_second"]
            last = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()][-1]
            losses = [v for k, v in last.items() if k.startswith("loss/")]
            finite = all(math.isfinite(v) for v in losses)
            cells.append(f"{rate:,.0f}" + ("" if finite else " (non-finite loss)"))
            if not finite:
                bad.append(f"{preset} {prec}")
        except (OSError, ValueError, KeyError, IndexError):
            cells.append("failed")
            bad.append(f"{preset} {prec}")
    print(f"| {preset} | " + " | ".join(cells) + " |", flush=True)
if bad:
    print("not clean: " + ", ".join(bad))
    sys.exit(1)
PYEOF
if [ "$DDP" = 1 ]; then
  gpus=$($PY -c "import torch; print(torch.cuda.device_count() if '$DEVICE' != 'cpu' else 0)")
  if [ "$DEVICE" != cpu ] && [ "$gpus" -lt 2 ]; then
    export GANVAE_DDP_BACKEND=gloo
    echo "DDP: 2 processes sharing 1 GPU (gloo)"
  else
    echo "DDP: 2 processes on ${DEVICE} ($([ "$DEVICE" = cpu ] && echo gloo || echo nccl))"
  fi
  GANVAE_TEST_DEVICE=$DEVICE $PY -m pytest -q -p no:cacheprovider tests/test_ddp.py \
      -k "two_processes_train or differ_from_an_untrained" || failed=1
fi
[ $failed = 0 ] && echo "gpu_check: all clean" || echo "gpu_check: FAILED (see above)"
exit $failed
