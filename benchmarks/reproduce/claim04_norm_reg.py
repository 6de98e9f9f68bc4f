"""Claim 4: norm regularization stabilises GAN training (Miyato et al. 2018; Mescheder et al. 2018).

The dcgan loss (non-saturating) with D regularised four ways: none (dcgan's batch-norm D),
spectral norm (SNGAN's D: spectral norm in place of batch norm), the gradient penalty and R1
(layer-norm D: a batch-norm D makes a per-image gradient penalty meaningless); at learning rates
2e-4 (DCGAN's) and 1e-3, three seeds each, equal steps. A run "collapses" when it diverges or
its final samples cover 5 of the 10 classes or fewer (a class is covered at half its uniform
share, by the evaluator). Shown when every regulariser collapses in fewer of its 6 cells than
`none`.

    python benchmarks/reproduce/claim04_norm_reg.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common

REGS = {"none": "dcgan", "spectral": "dcgan:reg=spectral:d_norm=none", "gp": "dcgan:reg=gp:d_norm=layer",
        "r1": "dcgan:reg=r1:d_norm=layer"}
LRS = (2e-4, 1e-3)
STEPS, SEEDS, WIDTH = 2000, 3, 32


def collapsed(row: dict) -> bool:
    return row.get("status") == "diverged" or row["final"]["mode_coverage"] <= 5


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps, seeds = (100, 1) if q else (STEPS, SEEDS)
    cells, numbers = {k: 0 for k in REGS}, {}
    for lr in LRS:
        out = args.out / "norm_reg" / f"lr{lr:g}"
        res = common.compare(out, list(REGS.values()), data="fashion-mnist", steps=steps, seeds=seeds,
                             curve_points=4, eval_n=500 if q else 2000, curve_n=300 if q else 1000,
                             overrides={"width": 8 if q else WIDTH, "lr_g": lr, "lr_d": lr})
        for name, spec in REGS.items():
            got = common.rows(res, spec)
            runs = [{"seed": r["seed"], "status": r.get("status"),
                     "modes": None if r.get("status") == "diverged" else r["final"]["mode_coverage"],
                     "fd": None if r.get("status") == "diverged" else round(r["final"]["fd"], 2),
                     "collapsed": collapsed(r)} for r in got]
            cells[name] += sum(r["collapsed"] for r in runs)
            numbers.setdefault(name, {})[f"lr {lr:g}"] = runs
    shown = all(cells[k] < cells["none"] for k in REGS if k != "none")
    common.write_result(
        args, 4, "norm_regularization", title="Norm regularization stabilises GAN training",
        paper="Miyato et al. 2018 (spectral norm); Gulrajani et al. 2017 (GP); Mescheder et al. 2018 (R1)",
        setup=f"dcgan loss, width {8 if q else WIDTH}, Fashion-MNIST; D: none (batch norm) / spectral (no other norm) / "
              "gp, r1 (layer norm); lr 2e-4 and 1e-3 for G and D",
        budget=f"{steps} steps per run (batch 64), {seeds} seeds x 2 learning rates per regulariser",
        criterion="collapsed (diverged, or <= 5 classes covered) in fewer cells than none, for every regulariser",
        numbers={"collapsed_cells": cells, "runs": numbers}, shown=shown,
        verdict="collapsed cells of " + str(len(LRS) * seeds) + ": " + ", ".join(f"{k} {v}" for k, v in cells.items()),
        investigation=None)


if __name__ == "__main__":
    main()
