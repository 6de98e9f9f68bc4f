"""Claim 9: VAE-GAN samples are sharper than the VAE's (Larsen et al. 2016).

vaegan against vae with the *same* prior: both N(0, I), and both a GMM fitted to the codes;
three seeds each, equal steps. Shown when, with each prior, vaegan's sharpness ratio (the
samples' edge energy over the real images') is closer to 1 and its FD lower than the VAE's.

    python benchmarks/reproduce/claim09_vaegan_sharp.py [--prior normal gmm] [--out runs/reproduce] [--quick]

Each prior is about 1.8 hours on one thread (3 seeds of vae and vaegan); a session may run one
(--prior normal), the next the other: a prior not run keeps its last written numbers.
"""

from __future__ import annotations

import numpy as np

import common

STEPS, SEEDS, WIDTH = 3000, 3, 32
PRIORS = ("normal", "gmm")


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv, prior=dict(nargs="*", choices=PRIORS, default=list(PRIORS),
                                                       help="the priors to run (default both; the claim needs both)"))
    q = args.quick
    steps, seeds = (100, 1) if q else (STEPS, SEEDS)
    specs = {p: {"vae": f"vae:prior={p}", "vaegan": f"vaegan:prior={p}"} for p in PRIORS if p in args.prior}
    out = args.out / "vaegan"
    res = common.compare(out, [s for d in specs.values() for s in d.values()], data="fashion-mnist", steps=steps,
                         seeds=seeds, curve_points=3, eval_n=500 if q else 5000, curve_n=300 if q else 1000,
                         overrides={"width": 8 if q else WIDTH})
    # a prior not run here: its last written numbers
    numbers = {p: v for p, v in common.earlier(args, 9, "vaegan_sharper").get("numbers", {}).items()
               if p in PRIORS and p not in specs}
    shown, parts = True, []
    for prior, pair in specs.items():
        for name, spec in pair.items():
            rs = common.rows(res, spec)
            fd = [r["final"]["fd"] for r in rs]
            sh = [r["final"]["sharpness"] for r in rs]
            numbers.setdefault(prior, {})[name] = {
                "fd_mean": round(float(np.mean(fd)), 2), "fd_std": round(float(np.std(fd)), 2),
                "sharpness_mean": round(float(np.mean(sh)), 3), "sharpness": [round(v, 3) for v in sh]}
    for prior in [p for p in PRIORS if p in numbers]:
        v, g = numbers[prior]["vae"], numbers[prior]["vaegan"]
        ok = abs(g["sharpness_mean"] - 1) < abs(v["sharpness_mean"] - 1) and g["fd_mean"] < v["fd_mean"]
        shown = shown and ok
        parts.append(f"prior {prior}: FD {g['fd_mean']:.1f} vs {v['fd_mean']:.1f}, sharpness "
                     f"{g['sharpness_mean']:.2f} vs {v['sharpness_mean']:.2f} (vaegan vs vae)")
    common.write_result(
        args, 9, "vaegan_sharper", title="VAE-GAN samples are sharper than the VAE's",
        paper="Larsen et al. 2016, Autoencoding beyond pixels using a learned similarity metric",
        setup=f"vaegan vs vae, width {8 if q else WIDTH}, Fashion-MNIST, the same prior for both: N(0, I), then a fitted GMM",
        budget=f"{steps} steps per run (batch 64), {seeds} seeds", criterion="with each prior: vaegan's sharpness ratio "
        "closer to 1 and its test FD lower than the VAE's", numbers=numbers,
        shown=shown if set(numbers) == set(PRIORS) else None, verdict="; ".join(parts),
        investigation=None)


if __name__ == "__main__":
    main()
