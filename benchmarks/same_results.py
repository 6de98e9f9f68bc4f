"""Whether two `ganvae compare` output folders hold the same results, to the bit, apart from
wall-clock fields (seconds and rates): results.json and every run's curve.jsonl.

For a refactor that must not change behaviour (issue 33): run one fixed-step comparison with
every size given (nothing sized from a measured rate) on one thread (reductions in one order),
from the code before and after, then compare:

    for side in before after; do
      OMP_NUM_THREADS=1 PYTHONPATH=<that side's src> python -m ganvae compare \\
        --data shapes:n=512,n_test=128 --models ae,vae,dcgan,vaegan --steps 30 --batch-size 32 \\
        --set width=8 --set latent=8 --eval-n 500 --curve-n 100 --curve-points 3 --nll-k 5 \\
        --nll-images 20 --nll-seconds 5 --tasks generate,probe --out /tmp/same-$side --quiet
    done
    python benchmarks/same_results.py /tmp/same-before /tmp/same-after

Exit code 0 when identical, 1 with the first differences of each file printed.
"""

import json
import sys
from pathlib import Path

CLOCK = {"timing", "seconds", "images_per_second", "decodes_per_second", "samples_per_second", "report"}


def strip(x):
    """x without its wall-clock entries (any key in CLOCK or ending in _seconds)."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in CLOCK and not k.endswith("_seconds")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def differences(a, b, path=""):
    """'path: a != b' for every leaf where a and b differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from differences(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif a != b:
        yield f"{path}: {a!r} != {b!r}"


def load(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return [json.loads(line) for line in path.read_text().splitlines()]


def main(a: Path, b: Path) -> int:
    files = ["results.json"] + sorted(str(p.relative_to(a)) for p in a.glob("runs/*/curve.jsonl"))
    total = 0
    for name in files:
        if not (b / name).exists():
            print(f"{name}: missing in {b}")
            total += 1
            continue
        found = list(differences(strip(load(a / name)), strip(load(b / name))))
        total += len(found)
        print(f"{name}: {'identical' if not found else f'{len(found)} differences'}")
        for line in found[:10]:
            print("  ", line)
    return 1 if total else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/same_results.py OUT_BEFORE OUT_AFTER")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
