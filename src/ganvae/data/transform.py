"""Resizing and channel conversion shared by the data forms."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from ..errors import BadInput
from .base import MAX_SIDE


def check_size(size: int | None, option: str = "--size") -> None:
    if size is not None and not 4 <= size <= MAX_SIDE:
        raise BadInput(f"{option} {size}: must be between 4 and {MAX_SIDE} pixels")


def check_channels(channels: int | None, option: str = "--channels") -> None:
    if channels is not None and channels not in (1, 3):
        raise BadInput(f"{option} {channels}: must be 1 (grey) or 3 (RGB)")


def fit(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """Convert to grey or RGB, scale the shorter side to `size`, crop the centre.

    Returns uint8 (C, size, size).
    """
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size, size):
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if channels == 1 else a.transpose(2, 0, 1)


def conform(x: np.ndarray, size: int | None, channels: int | None) -> np.ndarray:
    """Resize / convert a uint8 (N, C, H, W) batch to (N, channels, size, size) if asked."""
    n, c, h, w = x.shape
    size = size or (h if h == w else min(h, w))
    channels = channels or c
    if (c, h, w) == (channels, size, size):
        return x
    out = np.empty((n, channels, size, size), dtype=np.uint8)
    for i in range(n):
        a = x[i, 0] if c == 1 else x[i].transpose(1, 2, 0)
        out[i] = fit(Image.fromarray(a), size, channels)
    return out
