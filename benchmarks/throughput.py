"""Training throughput (images per second) of each preset on Fashion-MNIST-shaped data.

    .venv/bin/python benchmarks/throughput.py [--presets dcgan,vae] [--steps 60] [--precision fp32,bf16]

Times `model.train_step` on real Fashion-MNIST batches after a warm-up, the same call the
trainer makes in the trainer's memory format (`train.memory_format=auto`: channels-last on a
CPU), and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganvae.data import load_dataset, to_float
from ganvae.registry import preset_names
from ganvae.hardware import machine_line
from ganvae.trainer import TrainConfig, build


def bench(preset: str, precision: str, steps: int, batch: int, x_all: torch.Tensor, ds) -> float:
    torch.manual_seed(0)
    model, _ = build(preset, ds)
    fmt = TrainConfig(precision=precision).torch_memory_format("cpu")
    model = model.to(memory_format=fmt)
    model.train()
    model.set_precision(precision, "cpu")   # the model autocasts its own forwards
    model.optimizers()
    k = model.batches_per_step              # a WGAN step takes n_critic batches
    warm = 5
    for step in range(warm + steps):
        if step == warm:
            t0 = time.perf_counter()
        idx = torch.randint(0, len(x_all), (batch * k,))
        out = model.train_step(to_float(x_all[idx]).contiguous(memory_format=fmt), step)
        float(next(iter(out.values())))  # wait for the step to finish
    return steps * batch * k / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default=",".join(preset_names()))
    p.add_argument("--precision", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args()
    ds = load_dataset("fashion-mnist")
    x_all = torch.from_numpy(ds.train.x)
    precisions = a.precision.split(",")
    print(f"{machine_line()}, batch {a.batch_size}, {a.steps} steps after 5 warm-up")
    print("| model | " + " | ".join(f"img/s {p}" for p in precisions) + " |")
    print("|---|" + "---|" * len(precisions))
    for preset in a.presets.split(","):
        rates = [bench(preset, prec, a.steps, a.batch_size, x_all, ds) for prec in precisions]
        print(f"| {preset} | " + " | ".join(f"{r:.0f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
