"""Inference speed of trained models in the two memory orders: images per second of sample,
encode and reconstruct with the model's 4-d weights contiguous (NCHW) and channels_last (NHWC),
the order `GenerativeModel.from_pretrained` now gives a CPU model (models.base.for_inference).

    .venv/bin/python benchmarks/inference_layout.py RUN_OR_MODEL_DIR [...] [--n 256] [--reps 2]

Each model is timed on random inputs of its own shape after one warm-up call; run it on a quiet
machine (BENCHMARKS.md, "Performance II", has the figures and the machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ganvae.models.base import GenerativeModel


def rate(fn, n: int, reps: int) -> float:
    with torch.no_grad():
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        return n * reps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="run directories (their model/) or model directories")
    p.add_argument("--n", type=int, default=256, help="images per call")
    p.add_argument("--reps", type=int, default=2, help="timed calls per measurement")
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; images per second, NCHW -> NHWC")
    for d in map(Path, a.models):
        model = GenerativeModel.from_pretrained(d / "model" if (d / "model").is_dir() else d)
        c, s = model.config.channels, model.config.size
        x = torch.rand(a.n, c, s, s) * 2 - 1
        calls = {"sample": lambda: model.sample(a.n, seed=0)}
        if model.has_encoder:
            calls.update(encode=lambda: model.encode(x), reconstruct=lambda: model.reconstruct(x))
        cells = []
        for what, fn in calls.items():
            got = []
            for fmt in (torch.contiguous_format, torch.channels_last):
                model = model.to(memory_format=fmt)
                got.append(rate(fn, a.n, a.reps))
            cells.append(f"{what} {got[0]:.0f} -> {got[1]:.0f}")
        print(f"{d.name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
