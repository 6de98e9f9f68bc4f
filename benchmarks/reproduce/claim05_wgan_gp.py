"""Claim 5: the gradient penalty beats weight clipping (Gulrajani et al. 2017).

wgan (clipping 0.01, RMSprop 5e-5) against wgan-gp (penalty 10, Adam 1e-4), both with 5 critic
steps per generator step, at equal generator steps, three seeds. Shown when wgan-gp's mean
validation FD is lower at every curve point after the first.

    python benchmarks/reproduce/claim05_wgan_gp.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import numpy as np

import common

G_STEPS, SEEDS, POINTS, WIDTH = 1500, 3, 6, 32


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps, seeds = (60, 1) if q else (G_STEPS, SEEDS)
    out = args.out / "wgan_gp"
    res = common.compare(out, ["wgan", "wgan-gp"], data="fashion-mnist", steps=steps, seeds=seeds,
                         curve_points=3 if q else POINTS, eval_n=500 if q else 5000, curve_n=300 if q else 1000,
                         overrides={"width": 8 if q else WIDTH})
    numbers = {}
    for m in ("wgan", "wgan-gp"):
        curves = [common.curve(out, m, s) for s in range(seeds)]
        mean = np.mean([[p["fd"] for p in c] for c in curves], axis=0)
        numbers[m] = {"steps": [p["step"] for p in curves[0]], "mean_val_fd": [round(float(v), 2) for v in mean],
                      "test_fd_final": [round(r["final"]["fd"], 2) for r in common.rows(res, m)]}
    a, b = numbers["wgan"]["mean_val_fd"], numbers["wgan-gp"]["mean_val_fd"]
    shown = all(y < x for x, y in zip(a[1:], b[1:]))
    common.write_result(
        args, 5, "wgan_gp", title="The gradient penalty beats weight clipping",
        paper="Gulrajani et al. 2017, Improved Training of Wasserstein GANs",
        setup=f"wgan vs wgan-gp presets, DCGAN nets width {8 if q else WIDTH}, Fashion-MNIST, n_critic 5",
        budget=f"{steps} generator steps ({5 * steps} critic steps) per run, {seeds} seeds",
        criterion="wgan-gp's mean val FD lower at every curve point after the first",
        numbers=numbers, shown=shown,
        verdict="mean val FD by step: " + "; ".join(f"{s}: {x:.1f} vs {y:.1f}" for s, x, y in
                                                  zip(numbers["wgan"]["steps"], a, b)) + " (wgan vs wgan-gp)",
        investigation=None)


if __name__ == "__main__":
    main()
