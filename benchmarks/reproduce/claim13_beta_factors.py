"""Claim 13: β trades reconstruction for disentanglement (Higgins et al. 2017).

vae (β = 1), beta-vae (β = 4) and β = 8 on `factors` (procedural shapes whose five generating
factors are known), the disentangle task on their codes. Shown when β = 8's MIG and DCI
disentanglement exceed β = 1's while its reconstruction PSNR is lower: the trade.

    python benchmarks/reproduce/claim13_beta_factors.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common

STEPS, WIDTH = 1000, 32
MODELS = {"1": "vae", "4": "beta-vae", "8": "beta-vae:beta=8"}


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps = 60 if q else STEPS
    out = args.out / "beta_factors"
    res = common.compare(out, list(MODELS.values()), data="factors", steps=steps, curve_points=3,
                         eval_n=500 if q else 5000, curve_n=300 if q else 1000, tasks=["disentangle"],
                         overrides={"width": 8 if q else WIDTH})
    task = res["tasks"]["disentangle"]["results"]
    numbers = {}
    for beta, m in MODELS.items():
        r = task[m][0]
        row = common.rows(res, m)[0]
        numbers[f"beta {beta}"] = {"mig": r.get("mig"), "dci_disentanglement": r.get("dci_d"),
                                   "factorvae": r.get("factor_vae"), "active_dims": r.get("active"),
                                   "psnr": (row.get("final") or {}).get("psnr"), "fd": round(row["final"]["fd"], 2)}
    b1, b8 = numbers["beta 1"], numbers["beta 8"]
    shown = b8["mig"] > b1["mig"] and b8["dci_disentanglement"] > b1["dci_disentanglement"] and b8["psnr"] < b1["psnr"]
    common.write_result(
        args, 13, "beta_vae_factors", title="β trades reconstruction for disentanglement",
        paper="Higgins et al. 2017, β-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework",
        setup=f"vae / beta-vae β = 4 / β = 8, width {8 if q else WIDTH}, 64-d codes, `factors` (5 known factors)",
        budget=f"{steps} steps per run (batch 64)",
        criterion="β = 8's MIG and DCI disentanglement above β = 1's, its PSNR below",
        numbers=numbers, shown=shown,
        verdict="; ".join(f"β {b}: MIG {common.fmt(v['mig'], 3)}, DCI {common.fmt(v['dci_disentanglement'], 3)}, "
                          f"PSNR {common.fmt(v['psnr'])}" for b, v in zip(MODELS, numbers.values())),
        investigation=None)


if __name__ == "__main__":
    main()
