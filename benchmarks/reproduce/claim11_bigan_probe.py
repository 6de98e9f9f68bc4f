"""Claim 11: BiGAN's encoder learns features (Donahue et al. 2017).

bigan on Fashion-MNIST; a linear probe of its encoder's codes with 100 labelled images per
class, against the same probe on PCA of the pixels with as many dimensions (the probe task's
baseline). Shown when the BiGAN code's linear accuracy beats PCA's, for the mean over seeds.
The mechanism is logged too: how far E is from inverting G (diag/latent_mse, E(G(z)) against z
per dimension: 1 for an encoder that outputs 0, 2 for one whose codes ignore z) and how often D
tells the pairs apart.

    python benchmarks/reproduce/claim11_bigan_probe.py [--out runs/reproduce] [--quick]
        [--model ali] [--steps N] [--seeds K]

Another model or budget gets a folder of its own; the JSON holds every setting run so far and
judges the claim on plain bigan at the longest budget run.
"""

from __future__ import annotations

import re

import numpy as np

import common

STEPS, SEEDS, WIDTH = 4000, 2, 32
MODELS = ("bigan", "ali")


def folder(model: str, steps: int, seeds: int) -> str:
    """The setting's folder under OUT: the first run kept its plain name."""
    return "bigan" if (model, steps, seeds) == ("bigan", STEPS, SEEDS) else f"{common.slug(model)}-{steps}-seeds{seeds}"


def at100(points: list[dict]) -> float:
    return next(p["linear"] for p in points if p["per_class"] == 100)


def measure(out, model: str, steps: int, seeds: int) -> dict | None:
    """One setting's numbers from its comparison folder, or None while it has not finished."""
    import json

    path = out / "results.json"
    if not path.exists():
        return None
    res = json.loads(path.read_text())
    probe = res["tasks"]["probe"]
    per_seed = probe["results"][model]
    model_acc = [at100(r["curve"]) for r in per_seed]
    pca_acc = [at100(r["pca"]) for r in per_seed]
    # the inversion diagnostics over each run's last quarter (logged every diag_every steps)
    tail = []
    for s in range(seeds):
        from ganvae.files import read_jsonl

        rows = [r for r in read_jsonl(common.run_dir(out, model, s) / "metrics.jsonl") if "diag/latent_mse" in r]
        tail += [r for r in rows if r["step"] > 0.75 * steps]
    mean = lambda k: round(float(np.mean([r[k] for r in tail])), 3) if tail else None  # noqa: E731
    return {"model": model, "steps": steps, "seeds": seeds,
            "linear_100": [round(v, 4) for v in model_acc], "pca_linear_100": [round(v, 4) for v in pca_acc],
            "mean": round(float(np.mean(model_acc)), 4), "pca_mean": round(float(np.mean(pca_acc)), 4),
            "pixels_linear_100": round(at100(probe["summary"]["pixels"]), 4),
            "latent_mse_last_quarter": mean("diag/latent_mse"), "recon_mse_last_quarter": mean("diag/recon_mse"),
            "d_acc_real_last_quarter": mean("diag/d_acc_real"), "d_acc_fake_last_quarter": mean("diag/d_acc_fake")}


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv, model=dict(default="bigan", choices=MODELS, help="bigan or its ALI preset"),
                             steps=dict(type=int, default=None, help=f"steps per run (default {STEPS})"),
                             seeds=dict(type=int, default=None, help=f"seeds (default {SEEDS})"))
    q = args.quick
    steps, seeds = (100, 1) if q else (args.steps or STEPS, args.seeds or SEEDS)
    out = args.out / folder(args.model, steps, seeds)
    common.compare(out, [args.model], data="fashion-mnist", steps=steps, seeds=seeds, curve_points=3,
                   eval_n=500 if q else 5000, curve_n=300 if q else 1000, tasks=["probe"],
                   task_configs={"probe": {"per_class": "100", "seeds": 3, "n_test": 2000 if q else 10000}},
                   overrides={"width": 8 if q else WIDTH})
    # every setting finished so far, this one included (the folders name their settings)
    settings = []
    for d in sorted(p for p in args.out.iterdir() if p.is_dir()):
        for m in MODELS:
            hit = re.fullmatch(re.escape(common.slug(m)) + r"-(\d+)-seeds(\d+)", d.name)
            st, sd = (STEPS, SEEDS) if d.name == "bigan" and m == "bigan" else map(int, hit.groups()) if hit else (0, 0)
            got = measure(d, m, st, sd) if st else None
            if got is not None:
                settings.append(got)
    plain = [s for s in settings if s["model"] == "bigan"]
    if not plain:
        print("claim 11: plain bigan has not run yet; run this script without --model first")
        return
    judged = max(plain, key=lambda s: (s["steps"], s["seeds"]))
    numbers = {"pixels_linear_100": judged["pixels_linear_100"], "bigan_linear_100": judged["linear_100"],
               "pca_linear_100": judged["pca_linear_100"], "bigan_mean": judged["mean"], "pca_mean": judged["pca_mean"],
               "judged": {"steps": judged["steps"], "seeds": judged["seeds"]}, "settings": settings}
    steps, seeds = judged["steps"], judged["seeds"]
    shown = numbers["bigan_mean"] > numbers["pca_mean"]
    others = "; ".join(f"{s['model']} {s['steps']} steps: {s['mean']:.3f}" for s in settings if s is not judged)
    common.write_result(
        args, 11, "bigan_features", title="BiGAN's encoder learns features",
        paper="Donahue, Krähenbühl & Darrell 2017, Adversarial Feature Learning",
        setup=f"bigan, width {8 if q else WIDTH}, 64-d codes, Fashion-MNIST; linear probe at 100 labels per class "
              "(3 draws), against PCA of the pixels to 64 dimensions",
        budget=f"{steps} steps per run (batch 64), {seeds} seeds", criterion="linear-probe accuracy of the code > PCA's",
        numbers=numbers, shown=shown,
        verdict=f"linear probe @100/class: bigan {numbers['bigan_mean']:.3f}, PCA {numbers['pca_mean']:.3f} "
                f"(pixels {numbers['pixels_linear_100']:.3f}); E(G(z)) vs z MSE {judged['latent_mse_last_quarter']}"
                + (f"; also {others}" if others else ""),
        investigation=None)


if __name__ == "__main__":
    main()
