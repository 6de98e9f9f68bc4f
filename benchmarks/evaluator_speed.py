"""Time to train the evaluator for a dataset ganvae does not ship one for, and its accuracy.

    .venv/bin/python benchmarks/evaluator_speed.py [--images 10000] [--cases grey28,rgb64]

Cases (each up to --images training images and 2,000 test images, made from Fashion-MNIST so
that the numbers are comparable run to run):
- `grey28`: labelled 28x28 grey images -> a 10-class classifier;
- `rgb64`: the same images upscaled to 64x64 and tinted per image, no labels -> a rotation
  predictor, as a user's own folder of RGB pictures gets.
The recipe is the one `get_evaluator` picks for new data (`recipe_for`); `--recipe old` trains
with the recipe of ganvae 0.1 before issue 11 (fixed epochs, all four rotations, bf16) for the
before/after table. Accuracy is on the test images (of the classes, or of the 4 rotations).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np

from ganvae.data import load_dataset
from ganvae.data.base import ImageDataset, Split
from ganvae.evaluators import Recipe, recipe_for, train_evaluator
from ganvae.hardware import machine_line


def make_case(name: str, n: int) -> ImageDataset:
    fm = load_dataset("fashion-mnist")
    xtr, ytr = fm.train.x[:n], fm.train.y[:n]
    xte, yte = fm.test.x[:2000], fm.test.y[:2000]
    if name == "grey28":
        return ImageDataset(f"bench-grey28-{n}", Split(xtr, ytr), Split(xte, yte), classes=fm.classes)
    if name == "rgb64":
        def rgb(x, seed):
            up = x.repeat(2, axis=2).repeat(2, axis=3)                       # (N, 1, 56, 56)
            up = np.pad(up, ((0, 0), (0, 0), (4, 4), (4, 4)))               # (N, 1, 64, 64)
            tint = np.random.default_rng(seed).uniform(0.3, 1.0, (len(x), 3, 1, 1))
            return (up * tint).astype(np.uint8)                              # (N, 3, 64, 64)
        return ImageDataset(f"bench-rgb64-{n}", Split(rgb(xtr, 0)), Split(rgb(xte, 1)))
    raise SystemExit(f"--cases: unknown case {name!r}; choose grey28 or rgb64")


def old_recipe(ds: ImageDataset) -> Recipe:
    """recipe_for as it was before issue 11 (ganvae 0.1.0 at commit af74abc)."""
    epochs = 8 if len(ds.train) >= 20_000 else max(8, min(30, math.ceil(100_000 / len(ds.train))))
    return Recipe(epochs=epochs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--cases", default="grey28,rgb64")
    p.add_argument("--recipe", choices=["new", "old"], default="new")
    a = p.parse_args()
    rows = []
    for case in a.cases.split(","):
        ds = make_case(case, a.images)
        recipe = recipe_for(ds) if a.recipe == "new" else old_recipe(ds)
        t0 = time.perf_counter()
        ev = train_evaluator(ds, recipe, log=lambda s: print("  " + s, flush=True))
        rows.append((case, ev, time.perf_counter() - t0, recipe))
    print(f"\nevaluator training, {a.images} training images; {machine_line()}\n")
    print("| case | recipe | task | passes run / planned | seconds | test accuracy |")
    print("|---|---|---|---|---|---|")
    for case, ev, sec, r in rows:
        ran = ev.meta.get("best_pass")
        planned = r.passes(ev.meta["train_images"])
        changed = {k: v for k, v in dataclasses.asdict(r).items() if v != Recipe.__dataclass_fields__[k].default}
        print(f"| {case} | {a.recipe} {changed} | {ev.meta['kind']} | "
              f"{'best ' + str(ran) if ran else planned} / {planned} | {sec:.0f} | {ev.meta['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
