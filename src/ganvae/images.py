"""Image grids and PNG writing with Pillow and numpy (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import BadInput
from .files import atomic_write


def make_grid(x: np.ndarray, nrow: int | None = None, pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) into one image (rows, cols, C).

    Args:
        x: the images; C is 1 or 3.
        nrow: images per row (default: ceil(sqrt(N))).
        pad: pixels between images and around the border.
    """
    n, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / nrow))
    grid = np.full((pad + rows * (h + pad), pad + nrow * (w + pad), c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = x[i].transpose(1, 2, 0)
    return grid


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write (H, W, C) or (H, W) uint8 as PNG, atomically (temporary file, then rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise BadInput(f"-o {path}: the output must be a .png file")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    atomic_write(path, lambda p: Image.fromarray(image).save(p, format="PNG"))
    return path


def save_grid(path: str | Path, x: np.ndarray, nrow: int | None = None) -> Path:
    """Tile uint8 (N, C, H, W) images and write them as one PNG."""
    return save_png(path, make_grid(x, nrow))


def rgb(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 1 or 3, H, W) -> (N, 3, H, W): grey repeated, so grey and colour images tile together."""
    return np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x


def translation_grid(inputs: np.ndarray, outputs: np.ndarray, targets: np.ndarray | None = None,
                     row: int = 8) -> np.ndarray:
    """Rows of `row` images: inputs, their translations, and (when known) the true targets,
    repeated; uint8 (N', C, H, W), RGB when the domains' channels differ."""
    groups = [inputs, outputs] + ([targets] if targets is not None else [])
    if len({g.shape[1] for g in groups}) > 1:
        groups = [rgb(g) for g in groups]
    parts = []
    for i in range(0, len(inputs), row):
        parts += [g[i:i + row] for g in groups]
    return np.concatenate(parts)
