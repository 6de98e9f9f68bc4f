"""Claim 11: BiGAN's encoder learns features (Donahue et al. 2017).

bigan on Fashion-MNIST; a linear probe of its encoder's codes with 100 labelled images per
class, against the same probe on PCA of the pixels with as many dimensions (the probe task's
baseline). Shown when the BiGAN code's linear accuracy beats PCA's, for the mean over seeds.

    python benchmarks/reproduce/claim11_bigan_probe.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import numpy as np

import common

STEPS, SEEDS, WIDTH = 4000, 2, 32


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps, seeds = (100, 1) if q else (STEPS, SEEDS)
    out = args.out / "bigan"
    res = common.compare(out, ["bigan"], data="fashion-mnist", steps=steps, seeds=seeds, curve_points=3,
                         eval_n=500 if q else 5000, curve_n=300 if q else 1000, tasks=["probe"],
                         task_configs={"probe": {"per_class": "100", "seeds": 3, "n_test": 2000 if q else 10000}},
                         overrides={"width": 8 if q else WIDTH})
    probe = res["tasks"]["probe"]
    per_seed = probe["results"]["bigan"]
    at100 = lambda pts: next(p["linear"] for p in pts if p["per_class"] == 100)  # noqa: E731
    model_acc = [at100(r["curve"]) for r in per_seed]
    pca_acc = [at100(r["pca"]) for r in per_seed]
    numbers = {"pixels_linear_100": round(at100(probe["summary"]["pixels"]), 4),"bigan_linear_100": [round(v, 4) for v in model_acc], "pca_linear_100": [round(v, 4) for v in pca_acc],
               "bigan_mean": round(float(np.mean(model_acc)), 4), "pca_mean": round(float(np.mean(pca_acc)), 4)}
    shown = numbers["bigan_mean"] > numbers["pca_mean"]
    common.write_result(
        args, 11, "bigan_features", title="BiGAN's encoder learns features",
        paper="Donahue, Krähenbühl & Darrell 2017, Adversarial Feature Learning",
        setup=f"bigan, width {8 if q else WIDTH}, 64-d codes, Fashion-MNIST; linear probe at 100 labels per class "
              "(3 draws), against PCA of the pixels to 64 dimensions",
        budget=f"{steps} steps per run (batch 64), {seeds} seeds", criterion="linear-probe accuracy of the code > PCA's",
        numbers=numbers, shown=shown,
        verdict=f"linear probe @100/class: bigan {numbers['bigan_mean']:.3f}, PCA {numbers['pca_mean']:.3f} "
                f"(pixels {numbers['pixels_linear_100']:.3f})",
        investigation=None)


if __name__ == "__main__":
    main()
