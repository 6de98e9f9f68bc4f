"""Seconds per sample metric on random features, the size `ganvae eval` works at.

    .venv/bin/python benchmarks/metrics_speed.py [--n 10000] [--dim 256] [--classes 10]

Times each metric family's pure function, then `sample_metrics` (all of them together),
on two sets of Gaussian features (N, D) and softmax outputs (N, K); prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from ganvae.metrics import (classifier_score, fd_from_features, kernel_inception_distance, mode_coverage,
                            prdc, sample_metrics)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--classes", type=int, default=10)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    real = rng.normal(size=(args.n, args.dim)).astype(np.float32)          # (N, D)
    fake = (rng.normal(size=(args.n, args.dim)) * 1.1 + 0.1).astype(np.float32)
    logits = rng.normal(size=(2, args.n, args.classes)) * 3                 # (2, N, K)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    real_p, fake_p = probs.astype(np.float32)

    rows = [
        ("fd", timed(lambda: fd_from_features(real, fake))),
        ("kid (100 x 1000)", timed(lambda: kernel_inception_distance(real, fake))),
        ("precision/recall/density/coverage (k=5)", timed(lambda: prdc(real, fake, k=5))),
        ("classifier_score", timed(lambda: classifier_score(fake_p))),
        ("mode_coverage", timed(lambda: mode_coverage(fake_p, args.classes))),
        ("sample_metrics (all)", timed(lambda: sample_metrics(real, fake, real_p, fake_p))),
    ]
    print(f"{args.n} vs {args.n} features, D={args.dim}, K={args.classes}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}\n")
    print("| metric | seconds |\n|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} |")


if __name__ == "__main__":
    main()
