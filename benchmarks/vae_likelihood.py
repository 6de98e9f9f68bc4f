"""Test-set ELBO and importance-weighted bound (IWAE) of a trained VAE run, in nats per image.

    .venv/bin/python benchmarks/vae_likelihood.py RUN [--n 1000] [--k 100]

The ELBO is averaged over the whole test split (one sample each, closed-form KL); the IWAE
bound with k samples over the first n test images, beside the ELBO of those same images.
Bits/dim = -nats / (D ln 2) with D = C*H*W, for comparison with published figures.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import ganvae
from ganvae.data import to_float
from ganvae.trainer import load_run, run_dataset


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--k", type=int, default=100)
    a = p.parse_args()
    model, cfg = load_run(a.run)
    ds = run_dataset(cfg)
    x = to_float(torch.from_numpy(ds.test.x))
    dims = math.prod(x.shape[1:])
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    with torch.no_grad():
        elbo = torch.cat([model.elbo(x[i:i + 1000], generator=gen) for i in range(0, len(x), 1000)])
    t1 = time.perf_counter()
    iw = model.log_likelihood(x[: a.n], k=a.k, generator=gen)
    t2 = time.perf_counter()
    bpd = lambda nats: -nats / (dims * math.log(2))  # noqa: E731
    print(f"run {a.run} ({cfg.get('preset')}, ganvae {ganvae.__version__})")
    print(f"test ELBO, all {len(x)} images: {elbo.mean():.2f} nats ({bpd(elbo.mean()):.4f} bits/dim) [{t1 - t0:.1f}s]")
    print(f"first {a.n} images: ELBO {elbo[: a.n].mean():.2f} nats, IWAE k={a.k} {iw.mean():.2f} nats "
          f"({bpd(iw.mean()):.4f} bits/dim) [{t2 - t1:.1f}s]")


if __name__ == "__main__":
    main()
