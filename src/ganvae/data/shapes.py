"""`shapes`: a procedural dataset of simple shapes with known modes, made in memory.

Each class is one shape (disc, square, triangle, ...) drawn at a random position, scale and
intensity (and colour, with 3 channels) on a black background, anti-aliased by 4x4
supersampling. The labels are the generating modes, so mode coverage can be measured
exactly. Deterministic in (seed, split): the same spec always gives the same images.

Spec: `shapes` or `shapes:classes=K,n=N,n_test=M,seed=S`; `--size` and `--channels` apply.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInput
from .base import ImageDataset, Split
from .transform import check_channels, check_size


# Each shape is a membership test on coordinates (u, v) centred on the shape and scaled so
# that it fits the unit disc; v grows downwards as in images.
def _disc(u, v):
    return u * u + v * v <= 0.9**2


def _square(u, v):
    return np.maximum(abs(u), abs(v)) <= 0.65


def _triangle(u, v):  # apex up
    return (v >= -0.8) & (v <= 0.55) & (abs(u) <= 0.62 * (v + 0.8))


def _plus(u, v):
    return ((abs(u) <= 0.22) & (abs(v) <= 0.9)) | ((abs(v) <= 0.22) & (abs(u) <= 0.9))


def _ring(u, v):
    r2 = u * u + v * v
    return (r2 <= 0.92**2) & (r2 >= 0.55**2)


def _diamond(u, v):
    return abs(u) + abs(v) <= 0.95


def _frame(u, v):
    m = np.maximum(abs(u), abs(v))
    return (m <= 0.72) & (m >= 0.42)


def _hbar(u, v):
    return (abs(u) <= 0.92) & (abs(v) <= 0.28)


def _x(u, v):
    return ((abs(u - v) <= 0.3) | (abs(u + v) <= 0.3)) & (np.maximum(abs(u), abs(v)) <= 0.7)


def _half_disc(u, v):  # flat side up
    return (u * u + v * v <= 0.9**2) & (v >= -0.1)


def _vbar(u, v):
    return _hbar(v, u)


def _ellipse(u, v):
    return (u / 0.92) ** 2 + (v / 0.45) ** 2 <= 1


SHAPES = {
    "disc": _disc, "square": _square, "triangle": _triangle, "plus": _plus, "ring": _ring,
    "diamond": _diamond, "frame": _frame, "hbar": _hbar, "x": _x, "half-disc": _half_disc,
    "vbar": _vbar, "ellipse": _ellipse,
}
SUPERSAMPLE = 4
DEFAULT_CLASSES = 10
CHUNK = 1024


def render(labels: np.ndarray, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one shape per label. Returns uint8 (N, channels, size, size)."""
    n = len(labels)
    names = list(SHAPES)
    radius = rng.uniform(0.22, 0.4, n) * size                   # (N,) pixels
    cx = rng.uniform(radius, size - radius)                     # (N,) keeps it inside
    cy = rng.uniform(radius, size - radius)
    intensity = rng.uniform(0.55, 1.0, n)                       # (N,)
    if channels == 3:  # a random colour whose brightest channel is `intensity`
        colour = rng.uniform(0.15, 1.0, (n, 3))
        colour = colour / colour.max(axis=1, keepdims=True) * intensity[:, None]
    else:
        colour = intensity[:, None]                              # (N, 1)
    s = SUPERSAMPLE
    grid = (np.arange(size * s) + 0.5) / s                      # sub-pixel centres
    out = np.empty((n, channels, size, size), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        m = sl.stop - sl.start
        cover = np.zeros((m, size, size), dtype=np.float32)
        for k in np.unique(labels[sl]):
            idx = np.nonzero(labels[sl] == k)[0]
            r = radius[sl][idx, None, None]
            u = (grid[None, None, :] - cx[sl][idx, None, None]) / r  # (m_k, 1, S)
            v = (grid[None, :, None] - cy[sl][idx, None, None]) / r  # (m_k, S, 1)
            inside = SHAPES[names[k]](u, v).astype(np.float32)       # (m_k, S, S)
            cover[idx] = inside.reshape(len(idx), size, s, size, s).mean(axis=(2, 4))
        img = cover[:, None] * colour[sl][:, :, None, None]          # (m, C, size, size)
        out[sl] = np.round(img * 255).astype(np.uint8)
    return out


def parse_int_options(arg: str, dataset: str, keys: tuple[str, ...], usage: str) -> dict:
    """A procedural dataset's `KEY=N,KEY=N` options -> {key: int}, each key one of `keys`;
    anything else is a one-line error that shows `usage`."""
    opts = {}
    for item in filter(None, (arg or "").split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in keys:
            raise BadInput(f"{dataset} option {item!r}: use {usage}")
        try:
            opts[key] = int(value)
        except ValueError:
            raise BadInput(f"{dataset} option {key}={value!r}: must be an integer") from None
    return opts


def parse_options(arg: str) -> dict:
    return parse_int_options(arg, "shapes", ("classes", "n", "n_test", "seed"), "shapes:classes=K,n=N,n_test=M,seed=S")


def load_shapes(arg: str = "", size: int | None = None, channels: int | None = None,
                seed: int = 0) -> ImageDataset:
    opts = parse_options(arg)
    k = opts.get("classes", DEFAULT_CLASSES)
    n, n_test = opts.get("n", 10_000), opts.get("n_test", 2_000)
    seed = opts.get("seed", seed)
    size, channels = size or 28, channels or 1
    check_size(size)
    check_channels(channels)
    if not 1 <= k <= len(SHAPES):
        raise BadInput(f"shapes: classes={k}; choose 1..{len(SHAPES)}")
    if not (1 <= n <= 2_000_000 and 1 <= n_test <= 2_000_000):
        raise BadInput(f"shapes: n={n}, n_test={n_test}; each must be 1..2000000")
    splits = []
    for split_id, count in ((0, n), (1, n_test)):
        rng = np.random.default_rng([seed, split_id])
        y = np.arange(count) % k                # balanced classes
        rng.shuffle(y)
        splits.append(Split(render(y, size, channels, rng), y.astype(np.int64)))
    spec = "shapes" + (f":{arg}" if arg else "")
    return ImageDataset(spec, splits[0], splits[1], list(SHAPES)[:k], source="procedural")
