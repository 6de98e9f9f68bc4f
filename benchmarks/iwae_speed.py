"""Seconds per test image of the VAE's IWAE bound (Burda et al. 2016) at k importance samples,
against a straightforward implementation, with the decoder's GFLOP/s beside this machine's
measured convolution peak.

    .venv/bin/python benchmarks/iwae_speed.py [--run RUN] [--k 1000] [--images 20] [--width 64]

Without --run it times a freshly initialised DCGAN-28 VAE (the work does not depend on the
weights). Rows:
- `per-image loop`: what one writes from the paper: for each image, k latents through the
  model's own decoder in one batch, log-sum-exp. The reference the others must agree with.
- `ganvae fp32` / `ganvae bf16`: `VAE.log_likelihood` (inference decoder, images and samples
  batched together; bf16 = decoder passes in bfloat16, the bound summed in float32).
Each row is the best of --repeats runs on the same images and seed; the last column is the
mean bound's difference from the reference in nats.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from ganvae.data import load_dataset, to_float
from ganvae.hardware import conv_peak_gflops, count_flops, machine_line
from ganvae.models.autoencoder import normal
from ganvae.models.vae import VAE, VAEConfig


@torch.no_grad()
def per_image_loop(model: VAE, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    out = []
    model.eval()
    for xi in x:
        mu, logvar = model.posterior(xi[None])                       # (1, D)
        std = torch.exp(0.5 * logvar)
        eps = normal((k, mu.shape[1]), generator, x.device)          # (k, D)
        z = mu + std * eps
        log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
        log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
        log_px = -model.nll(model.decoder(z), xi.expand(k, *xi.shape))
        out.append(torch.logsumexp(log_px + log_p - log_q, 0) - math.log(k))
    return torch.stack(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", help="a trained vae run (default: a fresh DCGAN-28 VAE)")
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(0)
    if a.run:
        from ganvae.trainer import load_run
        model = load_run(a.run)[0]
    else:
        model = VAE(VAEConfig(channels=1, size=28, width=a.width, latent=16))
    model.eval()
    x = to_float(torch.from_numpy(load_dataset("fashion-mnist").test.x[:a.images]))
    z = torch.randn(1, model.config.latent)
    flops_per_sample = count_flops(lambda: model.decoder(z))

    rows = {
        "per-image loop": lambda g: per_image_loop(model, x, a.k, g),
        "ganvae fp32": lambda g: model.log_likelihood(x, k=a.k, generator=g),
        "ganvae bf16": lambda g: model.log_likelihood(x, k=a.k, generator=g, precision="bf16"),
    }
    results = {}
    for name, fn in rows.items():
        best, ll = float("inf"), None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            ll = fn(torch.Generator().manual_seed(0))
            best = min(best, time.perf_counter() - t0)
        results[name] = (best / a.images, float(ll.mean()))
    peaks = {"fp32": conv_peak_gflops(torch.float32), "bf16": conv_peak_gflops(torch.bfloat16)}

    ref_time, ref_ll = results["per-image loop"]
    print(f"IWAE bound, k={a.k}, {a.images} Fashion-MNIST test images, decoder "
          f"{flops_per_sample / 1e6:.1f} MFLOP per sample; {machine_line()}")
    print(f"conv peak here: {peaks['fp32']:.0f} GFLOP/s fp32, {peaks['bf16']:.0f} bf16\n")
    print("| implementation | s / image | speed-up | decoder GFLOP/s | of peak | bound − reference (nats) |")
    print("|---|---|---|---|---|---|")
    for name, (sec, ll) in results.items():
        gflops = flops_per_sample * a.k / sec / 1e9
        peak = peaks["bf16" if name.endswith("bf16") else "fp32"]
        print(f"| {name} | {sec:.3f} | {ref_time / sec:.2f}x | {gflops:.0f} | {gflops / peak:.0%} "
              f"| {ll - ref_ll:+.3f} |")


if __name__ == "__main__":
    main()
