"""Test-set ELBO and importance-weighted bound (IWAE) of a trained VAE run, labelled by the data
space the likelihood is a probability in (8-bit pixels, binarized pixels, or neither).

    .venv/bin/python benchmarks/vae_likelihood.py RUN [--n 1000] [--k 1000]

Both bounds are computed on the same first n test images (one fixed binarization of them for a
binarized run), through the evaluation code `ganvae eval` uses. Bits/dim = nats / (D ln 2).
"""

from __future__ import annotations

import argparse
import time

import ganvae
from ganvae.evaluation import EvalConfig, encoder_metrics, likelihood_info
from ganvae.trainer import load_run, run_dataset


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--k", type=int, default=1000)
    a = p.parse_args()
    model, cfg = load_run(a.run)
    ds = run_dataset(cfg)
    binarize = cfg.get("data", {}).get("binarize", "none")
    ecfg = EvalConfig(nll_k=a.k, nll_images=a.n)
    t0 = time.perf_counter()
    m = encoder_metrics(model, ds, ecfg, log=lambda s: None, binarize=binarize)
    info = likelihood_info(model, ecfg, binarize)
    print(f"run {a.run} ({cfg.get('preset')}, likelihood {info['likelihood']}, binarize {binarize}, "
          f"ganvae {ganvae.__version__})")
    print(f"data space: {info['description']} (valid: {info['valid']})")
    for name in sorted(m):
        if name.startswith(("elbo", "nll")) and name not in ("nll_k", "nll_images"):
            print(f"  {name:16s} {m[name]:.4f}")
    print(f"first {m['nll_images']} test images, IWAE k={m['nll_k']} [{time.perf_counter() - t0:.0f}s]")


if __name__ == "__main__":
    main()
