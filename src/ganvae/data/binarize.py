"""Binary images for Bernoulli likelihoods: the two binarisations of grey data used in the
likelihood literature (Salakhutdinov & Murray 2008 fixed one draw; Burda et al. 2016, §5,
draw afresh for every batch).

A pixel of grey level k becomes white with probability k / 255, so the binary data keep the
grey image as their mean. `static` is one fixed draw (from the data seed: the same run config
gives the same binary images); `dynamic` is a new draw per training batch, a regulariser that
makes the model fit the distribution of draws rather than one draw. Test images are always
scored on one fixed draw, so numbers compare across runs.
"""

from __future__ import annotations

import numpy as np
import torch

from ..parallel import draw_rows

MODES = ("none", "dynamic", "static")


def binarize_static(x: np.ndarray, seed: int) -> np.ndarray:
    """uint8 images (N, C, H, W) -> one fixed Bernoulli draw of each pixel, uint8 in {0, 255}.

    Args:
        x: grey images; pixel k is white with probability k / 255.
        seed: the draw's seed (the data seed); the stream is separate from the splits' seeds.
    """
    rng = np.random.default_rng([seed, 0xB1A7])
    u = rng.random(x.shape, dtype=np.float32)                  # (N, C, H, W) in [0, 1)
    return np.where(u < x.astype(np.float32) / 255.0, 255, 0).astype(np.uint8)


def binarize_batch(x: torch.Tensor) -> torch.Tensor:
    """Float images (B, C, H, W) in [-1, 1] -> a fresh Bernoulli draw in {-1, 1}, from torch's
    global RNG (which checkpoints save, so a resumed run draws the same pixels)."""
    p = (x + 1) / 2
    # (under DDP, this rank's rows of one draw for the global batch: see parallel.py)
    u = draw_rows(lambda m: torch.rand((m, *p.shape[1:]), dtype=p.dtype, device=p.device), len(p))
    return (u < p).to(p.dtype).mul_(2).sub_(1)
