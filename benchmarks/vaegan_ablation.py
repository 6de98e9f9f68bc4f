"""VAE-GAN variants at the demo's settings (45 s of training, width 32, bf16, Fashion-MNIST),
each scored on 5,000 samples against the test split, with the diagnostics the model logs
(issue 17). One seed per variant: a first look, not yet the 3-seed ablation the issue asks for.

    .venv/bin/python benchmarks/vaegan_ablation.py [--variants baseline,first,...] [--budget 45s]

Columns: steps trained, FD, classes generated (mode coverage), precision, recall, sharpness
(1 = as sharp as real images), and from the run's logs: D's accuracy on prior samples at the
last step, the aggregate posterior's per-dimension KL from N(0, 1) there, and the share of
steps in which D trained and the decoder's GAN term was on (the equilibrium rule).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import ganvae
from ganvae.data import load_dataset
from ganvae.evaluate import EvalConfig, generate, score
from ganvae.evaluators import get_evaluator
from ganvae.hardware import machine_line

VARIANTS = {
    "baseline": {},
    "equilibrium": {"equilibrium": 0.68},
    "beta4": {"beta": 4.0},
    "first": {"feat_layers": "first"},
    "all": {"feat_layers": "all"},
    "first-eq": {"feat_layers": "first", "equilibrium": 0.68},
    "first-g0.1": {"feat_layers": "first", "gamma": 0.1},
    "first-g1": {"feat_layers": "first", "gamma": 1.0},
    "first-layer": {"feat_layers": "first", "d_norm": "layer"},
    "gamma0": {"gamma": 0.0},
    "gamma0-lr2": {"gamma": 0.0, "lr": 2e-4},
    "gamma0-nonorm": {"gamma": 0.0, "d_norm": "none"},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--budget", default="45s")
    p.add_argument("--samples", type=int, default=5000)
    a = p.parse_args()
    ds = load_dataset("fashion-mnist")
    ev = get_evaluator(ds, log=lambda s: None)
    print(f"vaegan, width 32, bf16, {a.budget} each, {a.samples} samples; {machine_line()}\n")
    print("| variant | overrides | steps | FD | classes | precision | recall | sharpness "
          "| D acc. prior | aggregate KL | D trained | GAN term on |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in a.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"--variants: unknown {name!r}; choose from {', '.join(VARIANTS)}")
        with tempfile.TemporaryDirectory() as tmp:
            run, summary = ganvae.train("vaegan", "fashion-mnist", Path(tmp) / "run", budget=a.budget,
                                        precision="bf16", overrides={"width": 32, **VARIANTS[name]},
                                        progress=False, device="cpu", sample_every=10**9,
                                        checkpoint_every=10**9)
            m = score(generate(ganvae.load(run), a.samples, 0, 500), ds, ev, EvalConfig(n=a.samples),
                      lambda s: None, with_floor=False)["metrics"]
            rows = [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]
        last = rows[-1]
        share = {k: np.mean([r.get(f"diag/{k}", 1.0) for r in rows]) for k in ("train_d", "gan_on")}
        print(f"| {name} | {VARIANTS[name] or '–'} | {summary['step']} | {m['fd']:.1f} | {m['mode_coverage']:.0f} "
              f"| {m['precision']:.3f} | {m['recall']:.3f} | {m['sharpness']:.2f} "
              f"| {last.get('diag/d_acc_prior', float('nan')):.2f} | {last.get('diag/agg_kl', float('nan')):.1f} "
              f"| {share['train_d']:.0%} | {share['gan_on']:.0%} |", flush=True)


if __name__ == "__main__":
    main()
