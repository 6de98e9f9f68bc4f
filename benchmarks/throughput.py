"""Training throughput (images per second) of each preset, with the work it does (GFLOP/s) and
the share of this CPU's measured convolution peak, at 28x28 grey or the sizes users bring.

    .venv/bin/python benchmarks/throughput.py [--presets dcgan,vae] [--steps 60] [--precision fp32,bf16]
        [--batch-size 64] [--size 28] [--channels 1]

Times `model.train_step` on real batches after a warm-up, the same call the trainer makes, in
the trainer's memory format (`train.memory_format=auto`: channels-last on a CPU): Fashion-MNIST
(resized and in colour with --size/--channels; the conditional presets take its labels) and
edges2fashion pairs for the translation presets. FLOPs per image are PyTorch's FlopCounterMode
count of one step (convolutions and matrix products, forward and backward); the peak is
`ganvae.hardware.conv_peak_gflops`, measured in the same run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganvae.data import load_dataset, to_float
from ganvae.hardware import conv_peak_gflops, count_flops, machine_line
from ganvae.registry import preset_names
from ganvae.trainer import TrainConfig, build

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PAIRED = ("pix2pix", "unet-l1", "cyclegan", "unit")   # trained on edges2fashion pairs


def batch_for(model, ds, idx: torch.Tensor, fmt):
    """What the trainer hands train_step: images, (images, labels) for a conditional model,
    (inputs, targets) for a translation model."""
    x = to_float(torch.from_numpy(ds.train.x[idx])).contiguous(memory_format=fmt)
    if model.translation:
        return to_float(torch.from_numpy(ds.train.a[idx])).contiguous(memory_format=fmt), x
    if model.conditional:
        return x, torch.from_numpy(ds.train.y[idx])
    return x


def bench(preset: str, precision: str, steps: int, batch: int, ds) -> tuple[float, float]:
    """(img/s, FLOPs per image) of `preset`'s training step."""
    torch.manual_seed(0)
    model, _ = build(preset, ds)
    fmt = TrainConfig(precision=precision).torch_memory_format("cpu")
    model = model.to(memory_format=fmt)
    model.train()
    model.set_precision(precision, "cpu")   # the model autocasts its own forwards
    model.optimizers()
    n = batch * model.batches_per_step      # a WGAN step takes n_critic batches
    gen = torch.Generator().manual_seed(0)
    draw = lambda: torch.randint(0, len(ds.train), (n,), generator=gen).numpy()   # noqa: E731
    try:   # at step 1: step 0 also runs the diagnostics some models log every diag_every steps
        flops = count_flops(lambda: model.train_step(batch_for(model, ds, draw(), fmt), 1)) / n
    except RuntimeError:    # FlopCounterMode cannot follow autograd.grad (a gradient penalty's double backward)
        flops = float("nan")
    warm = 5
    for step in range(warm + steps):
        if step == warm:
            t0 = time.perf_counter()
        out = model.train_step(batch_for(model, ds, draw(), fmt), step)
        float(next(iter(out.values())))  # wait for the step to finish
    return steps * n / (time.perf_counter() - t0), flops


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default=",".join(preset_names()))
    p.add_argument("--precision", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=28, help="image side (Fashion-MNIST resized)")
    p.add_argument("--channels", type=int, default=1, help="1 (grey) or 3 (colour)")
    a = p.parse_args()
    shape = dict(size=a.size, channels=a.channels)
    data = {"images": load_dataset("fashion-mnist", **shape)}
    precisions = a.precision.split(",")
    peak = {prec: conv_peak_gflops(DTYPES[prec]) for prec in precisions}
    print(f"{machine_line()}, {a.size}x{a.size}x{a.channels}, batch {a.batch_size}, {a.steps} steps after 5 warm-up")
    print("conv peak here: " + ", ".join(f"{peak[q]:.0f} GFLOP/s {q}" for q in precisions))
    print("| model | MFLOP / image | " + " | ".join(f"img/s {q} | GFLOP/s {q} | of peak" for q in precisions) + " |")
    print("|---|---|" + "---|---|---|" * len(precisions))
    for preset in a.presets.split(","):
        if preset in PAIRED and "pairs" not in data:
            data["pairs"] = load_dataset("task:edges2fashion", **shape)
        ds = data["pairs" if preset in PAIRED else "images"]
        cells, mflop = [], 0.0
        for prec in precisions:
            rate, flops = bench(preset, prec, a.steps, a.batch_size, ds)
            mflop = flops / 1e6
            gf = rate * flops / 1e9
            cells.append(f"{rate:.0f} | {gf:.0f} | {gf / peak[prec]:.0%}" if gf == gf else f"{rate:.0f} | – | –")
        print(f"| {preset} | {mflop:.0f} | ".replace("| nan |", "| – |") + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
