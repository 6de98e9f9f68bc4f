#!/usr/bin/env bash
# 64x64 colour images from a folder, end to end (issue 16): 6,000 procedural colour shapes written
# as PNGs in one sub-folder per class, then `ganvae compare` of dcgan, dcgan with the ResNet nets
# and vae on folder:DIR (an evaluator is trained for it first), and a screenshot of the report.
# Results: BENCHMARKS.md, "Scale out"; the screenshot: docs/scale/rgb64_report.jpg.
#   bash benchmarks/rgb64.sh [OUT_DIR] [STEPS]
set -euo pipefail
out=${1:-runs/rgb64}
steps=${2:-500}
G=${GANVAE:-.venv/bin/ganvae}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
if [ ! -d "$out/images" ]; then
  $PY - "$out/images" <<'PYEOF'
import sys
from pathlib import Path
from PIL import Image
from ganvae.data import load_dataset
root = Path(sys.argv[1])
ds = load_dataset("shapes:n=6000,n_test=1", size=64, channels=3)
for i, (x, y) in enumerate(zip(ds.train.x, ds.train.y)):
    d = root / ds.classes[y]
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(x.transpose(1, 2, 0)).save(d / f"{i:05d}.png")
print(f"{len(ds.train)} images in {len(ds.classes)} classes under {root}")
PYEOF
fi
/usr/bin/time -f "compare: %es" $G compare --data "folder:$out/images" --models dcgan,dcgan:arch=resnet,vae \
  --steps "$steps" --batch-size 32 --set width=32 --eval-n 1000 --curve-points 2 --out "$out/compare" --quiet
$PY - "$out/compare/report.html" docs/scale/rgb64_report.jpg <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.browser import open_report
from PIL import Image
shot = Path(sys.argv[2])
info = open_report(Path(sys.argv[1]), shot.with_suffix(".full.png"))
with Image.open(shot.with_suffix(".full.png")) as im:   # 1280 wide, full page: half size, JPEG
    im.convert("RGB").resize((im.width // 2, im.height // 2), Image.LANCZOS).save(shot, quality=85)
shot.with_suffix(".full.png").unlink()
print("screenshot:", shot, {k: v for k, v in info.items() if k != "text"} if isinstance(info, dict) else "")
PYEOF
