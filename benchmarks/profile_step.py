"""Where a preset's training step spends its time: torch.profiler over a few steps of
`model.train_step` (the trainer's call, in its memory format), the top operators by self CPU
time, so a slow family can be traced to its layers.

    .venv/bin/python benchmarks/profile_step.py [--presets dcgan,vae,vaegan,pix2pix] [--size 64]
        [--channels 3] [--batch-size 64] [--steps 3] [--top 12] [--precision fp32]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from ganvae.data import load_dataset
from ganvae.trainer import TrainConfig, build

from throughput import PAIRED, batch_for


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="dcgan,vae,vaegan,pix2pix")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--precision", default="fp32")
    a = p.parse_args()
    for preset in a.presets.split(","):
        ds = load_dataset("task:edges2fashion" if preset in PAIRED else "fashion-mnist", size=a.size,
                          channels=a.channels)
        torch.manual_seed(0)
        model, _ = build(preset, ds)
        fmt = TrainConfig(precision=a.precision).torch_memory_format("cpu")
        model = model.to(memory_format=fmt)
        model.train()
        model.set_precision(a.precision, "cpu")
        model.optimizers()
        n = a.batch_size * model.batches_per_step
        idx = lambda: torch.randint(0, len(ds.train), (n,)).numpy()   # noqa: E731
        for s in range(2):   # warm-up: oneDNN picks its kernels
            model.train_step(batch_for(model, ds, idx(), fmt), s)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for s in range(a.steps):
                out = model.train_step(batch_for(model, ds, idx(), fmt), s + 2)
                float(next(iter(out.values())))
        total = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e6
        print(f"\n## {preset}, {a.size}x{a.size}x{a.channels}, batch {a.batch_size}, {a.precision}: "
              f"{total / a.steps:.2f} s per step")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))


if __name__ == "__main__":
    main()
