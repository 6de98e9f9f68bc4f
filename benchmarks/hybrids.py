"""The hybrids against their parents, and the VAE-GAN ablation (issue 17), side by side in one
run, over several seeds, on Fashion-MNIST at the demo's settings (width 32, bf16) by default.

    .venv/bin/python benchmarks/hybrids.py --group ablation --seeds 0,1,2 --budget 45s
    .venv/bin/python benchmarks/hybrids.py --group models --seeds 0,1,2 --budget 45s
    .venv/bin/python benchmarks/hybrids.py --group models --seeds 0 --budget 3m

Every run trains for the same wall-clock budget on an otherwise idle machine, then its samples
(the model's own `sample`: for vaegan, ae and aae the density fitted after training) are scored
against the test split. Columns: steps trained; FD in the project evaluator's features; classes
generated (mode coverage, of 10); precision and recall (k-NN manifolds); sharpness (edge energy
as a share of real images'); reconstruction MSE per pixel on [0, 1] intensities of test images
(models with an encoder). Each cell is the mean ± the standard deviation over seeds. `--jsonl`
keeps every seed's numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ganvae
from ganvae.data import load_dataset
from ganvae.evaluation import EvalConfig, encoder_metrics, generate, score
from ganvae.evaluators import get_evaluator
from ganvae.hardware import machine_line

# vaegan's defaults are first + pixel 10 + gmm; the paper's model is the first row.
PAPER = {"feat_layers": "last", "pixel": 0.0, "prior": "normal"}
GROUPS = {
    "ablation": {
        "paper": ("vaegan", PAPER),
        "paper+first": ("vaegan", {**PAPER, "feat_layers": "first"}),
        "paper+first+pixel": ("vaegan", {"prior": "normal"}),
        "default (first+pixel+gmm)": ("vaegan", {}),
        "default, pixel 0": ("vaegan", {"pixel": 0.0}),
        "default + equilibrium": ("vaegan", {"equilibrium": 0.68}),
        "default + spectral D": ("vaegan", {"spectral": True, "d_norm": "none"}),
        "default + decoder EMA": ("vaegan", {"ema": 0.99}),
        "default + lr_d 1e-4": ("vaegan", {"lr_d": 1e-4}),
    },
    "models": {
        "ae": ("ae", {}),
        "vae": ("vae", {}),
        "vae + gmm prior": ("vae", {"prior": "gmm"}),
        "dcgan": ("dcgan", {}),
        "vaegan": ("vaegan", {}),
        "aae": ("aae", {}),
        "bigan": ("bigan", {}),
    },
}
COLUMNS = [("steps", "steps", "{:.0f}"), ("FD", "fd", "{:.1f}"), ("classes", "mode_coverage", "{:.1f}"),
           ("precision", "precision", "{:.2f}"), ("recall", "recall", "{:.2f}"),
           ("sharpness", "sharpness", "{:.2f}"), ("recon. MSE", "recon_mse", "{:.4f}")]


def cell(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--group", choices=sorted(GROUPS), default="models")
    p.add_argument("--only", default="", help="comma-separated row names of the group (default: all)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--budget", default="45s")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--jsonl", default="", help="append every run's numbers to this file")
    a = p.parse_args()
    rows = GROUPS[a.group]
    names = [n for n in a.only.split(",") if n] or list(rows)
    for n in names:
        if n not in rows:
            raise SystemExit(f"--only: unknown row {n!r}; choose from {', '.join(rows)}")
    seeds = [int(s) for s in a.seeds.split(",")]
    ds = load_dataset("fashion-mnist")
    ev = get_evaluator(ds, log=lambda s: None)
    cfg = EvalConfig(n=a.samples)
    t_start = time.time()
    results: dict[str, list[dict]] = {}
    for name in names:
        preset, over = rows[name]
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                run, summary = ganvae.train(preset, "fashion-mnist", Path(tmp) / "run", budget=a.budget,
                                            precision="bf16", overrides={"width": a.width, **over},
                                            progress=False, device="cpu", seed=seed, dataset=ds,
                                            sample_every=10**9, checkpoint_every=10**9)
                model = ganvae.load(run)
                m = score(generate(model, a.samples, seed, 500), ds, ev, cfg, lambda s: None,
                          with_floor=False)["metrics"]
                m.update(encoder_metrics(model, ds, cfg, lambda s: None) if model.has_encoder else {})
            m["steps"] = summary["steps"]
            results.setdefault(name, []).append(m)
            line = {"group": a.group, "row": name, "preset": preset, "overrides": over, "seed": seed,
                    "budget": a.budget, "width": a.width, **{k: m.get(k) for _, k, _ in COLUMNS}}
            print(json.dumps(line), flush=True)
            if a.jsonl:
                with open(a.jsonl, "a") as f:
                    f.write(json.dumps(line) + "\n")
    print(f"\n{a.group}: {a.budget} per run, width {a.width}, bf16, seeds {a.seeds}, {a.samples} samples; "
          f"{machine_line()}; {(time.time() - t_start) / 60:.0f} min in all\n")
    print("| run | overrides | " + " | ".join(c for c, _, _ in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for name in names:
        preset, over = rows[name]
        vals = [cell([r[k] for r in results[name] if r.get(k) is not None], fmt) for _, k, fmt in COLUMNS]
        desc = f"{preset} " + " ".join(f"{k}={v}" for k, v in over.items())
        print(f"| {name} | {desc.strip()} | " + " | ".join(vals) + " |")


if __name__ == "__main__":
    main()
