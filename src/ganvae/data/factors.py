"""`factors`: a procedural dataset with known, independent generative factors (like dSprites).

Every image is one white (or, with 3 channels, coloured) shape on black, fixed entirely by its
discrete factor levels: shape, scale, rotation, x and y position, and colour with 3 channels.
Each factor is drawn independently and uniformly per image, as in dSprites (Matthey et al.
2017), which is what the disentanglement metrics of `ganvae.metrics.disentangle` assume
(e.g. the FactorVAE score fixes one factor by selecting rows; Kim & Mnih 2018, sec. 4).
Rendering is exact and deterministic: 4x4 supersampled coverage of the membership tests of
`shapes.py`, with no random nuisance (no jitter, no intensity noise), so one combination of
levels always gives the same pixels.

`Split.y` is the shape index (`classes` are the shape names), so the class-based evaluator
works unchanged; `Split.factors` (N, F) holds every factor's level index and
`info["factors"]` names the factors, their numbers of levels and each level's physical value.

Spec: `factors` or `factors:n=N,n_test=M,seed=S`; `--size` (default 28) and `--channels`
(1 default; 3 adds the `colour` factor) apply.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInput
from .base import ImageDataset, Split
from .shapes import SHAPES, SUPERSAMPLE, parse_int_options
from .transform import check_channels, check_size

SHAPE_NAMES = ("square", "ellipse", "triangle")
# Radius of the shape's unit disc as a fraction of the image side. The smallest is still
# ~4 px at 28 px, enough for the triangle's apex to be seen at every rotation.
SCALES = (0.14, 0.18, 0.22, 0.26)
# Rotation in degrees, 8 levels in [0, 90). Unambiguous for all three shapes: the square is
# symmetric under 90-degree turns (so any range wider than 90 degrees would repeat images),
# the ellipse under 180-degree turns, and this isosceles triangle under none (it is close to
# equilateral, so it nearly repeats after 120 degrees, still outside the range): no two levels
# give the same image of any shape. dSprites's 40 levels over 360 degrees, in contrast, repeat
# every square image 4 times and every ellipse image twice, so no code can recover them.
ROTATIONS = tuple(float(a) for a in np.arange(8) * 90.0 / 8)
# Every shape of shapes.py lies within the unit disc around its (u, v) origin up to this
# radius (the triangle's base corners are at |(0.62 * 1.35, 0.55)| = 1.003), and rotation
# about the origin keeps it there: the bound that keeps every shape inside the image.
BOUND = 1.01
# Centre positions as fractions of the image side: 8 levels each, evenly spaced over the
# range where the largest shape (radius BOUND * max(SCALES)) stays fully inside with a small
# margin, whatever its rotation.
_EDGE = BOUND * max(SCALES) + 0.01
POSITIONS = tuple(float(p) for p in np.linspace(_EDGE, 1 - _EDGE, 8))
# Hues in degrees (HSV at full saturation and value), for 3 channels only: four well
# separated colours, red, chartreuse, cyan and violet.
HUES = (0.0, 90.0, 180.0, 270.0)

DEFAULT_N, DEFAULT_N_TEST = 20_000, 4_000
CHUNK = 256  # combinations rendered at once: 256 x 112 x 112 float32 sub-pixels is 13 MB per array
OPTIONS = ("n", "n_test", "seed")


def factor_info(channels: int) -> dict:
    """`info["factors"]`: names, number of levels and each level's physical value per factor."""
    names = ["shape", "scale", "rotation", "x", "y"]
    values: list[list] = [list(SHAPE_NAMES), list(SCALES), list(ROTATIONS), list(POSITIONS), list(POSITIONS)]
    units = ["name", "radius / image side", "degrees clockwise", "centre / image side", "centre / image side"]
    if channels == 3:
        names.append("colour")
        values.append(list(HUES))
        units.append("hue in degrees")
    return {"names": names, "levels": [len(v) for v in values], "values": values, "units": units}


def _hue_rgb(hue: float) -> np.ndarray:
    """RGB in [0, 1] of a fully saturated, full-value HSV hue given in degrees: (3,)."""
    k = (np.array([5.0, 3.0, 1.0]) + hue / 60.0) % 6  # the standard HSV -> RGB formula
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def render_factors(factors: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Draw the image of each row of level indices. Returns uint8 (N, channels, size, size).

    Args:
        factors: int (N, F) level indices in the order of `factor_info(channels)["names"]`.
        size: image side in pixels.
        channels: 1 (white shapes) or 3 (shapes in the hue of the colour factor).
    """
    factors = np.asarray(factors, dtype=np.int64)
    # The geometry (first 5 factors) has at most 3*4*8*8*8 = 6144 distinct combinations, so
    # each distinct one is rendered once and gathered: 20,000 images cost at most 6,144 renders.
    combos, which = np.unique(factors[:, :5], axis=0, return_inverse=True)  # (U, 5), (N,)
    s = SUPERSAMPLE
    grid = ((np.arange(size * s) + 0.5) / s).astype(np.float32)  # sub-pixel centres, pixels
    cover = np.empty((len(combos), size, size), dtype=np.float32)
    for start in range(0, len(combos), CHUNK):
        c = combos[start:start + CHUNK]
        r = (np.asarray(SCALES, np.float32)[c[:, 1]] * size)[:, None, None]  # (m, 1, 1) pixels
        theta = np.deg2rad(np.asarray(ROTATIONS)[c[:, 2]]).astype(np.float32)[:, None, None]
        cx = (np.asarray(POSITIONS, np.float32)[c[:, 3]] * size)[:, None, None]
        cy = (np.asarray(POSITIONS, np.float32)[c[:, 4]] * size)[:, None, None]
        du = (grid[None, None, :] - cx) / r                           # (m, 1, S) shape units
        dv = (grid[None, :, None] - cy) / r                           # (m, S, 1)
        # Inverse-rotate each sub-pixel into the shape's own frame before the membership test:
        # a point p is in the shape turned by theta iff R(-theta) p is in the upright shape.
        # With v growing downwards, a positive theta turns the shape clockwise on screen.
        cos, sin = np.cos(theta), np.sin(theta)
        u = cos * du + sin * dv                                       # (m, S, S)
        v = cos * dv - sin * du
        inside = np.zeros(u.shape, dtype=np.float32)
        for k, name in enumerate(SHAPE_NAMES):
            sel = c[:, 0] == k
            if sel.any():
                inside[sel] = SHAPES[name](u[sel], v[sel])
        cover[start:start + len(c)] = inside.reshape(len(c), size, s, size, s).mean(axis=(2, 4))
    if channels == 3:
        palette = np.stack([_hue_rgb(h) for h in HUES]).astype(np.float32)  # (4, 3)
        colour = palette[factors[:, 5]]                                    # (N, 3)
    else:
        colour = np.ones((len(factors), 1), dtype=np.float32)              # (N, 1) white
    img = cover[which][:, None] * colour[:, :, None, None]                # (N, C, size, size)
    return np.round(img * 255).astype(np.uint8)


def parse_options(arg: str) -> dict:
    """`n=N,n_test=M,seed=S` (any subset) -> {option: int}."""
    return parse_int_options(arg, "factors", OPTIONS, "factors:n=N,n_test=M,seed=S")


def load_factors(arg: str = "", size: int | None = None, channels: int | None = None,
                 seed: int = 0) -> ImageDataset:
    """The `factors[:opts]` dataset; deterministic in (seed, split, size, channels)."""
    opts = parse_options(arg)
    n, n_test = opts.get("n", DEFAULT_N), opts.get("n_test", DEFAULT_N_TEST)
    seed = opts.get("seed", seed)
    size, channels = size or 28, channels or 1
    check_size(size)
    check_channels(channels)
    if not (1 <= n <= 2_000_000 and 1 <= n_test <= 2_000_000):
        raise BadInput(f"factors: n={n}, n_test={n_test}; each must be 1..2000000")
    info = factor_info(channels)
    splits = []
    for split_id, count in ((0, n), (1, n_test)):
        rng = np.random.default_rng([seed % 2**63, split_id])  # any integer seed, negative too
        # every factor independent and uniform over its levels, as the metrics assume
        f = np.stack([rng.integers(0, k, count) for k in info["levels"]], axis=1).astype(np.int64)  # (N, F)
        splits.append(Split(render_factors(f, size, channels), f[:, 0].copy(), factors=f))
    spec = "factors" + (f":{arg}" if arg else "")
    return ImageDataset(spec, splits[0], splits[1], list(SHAPE_NAMES), source="procedural",
                        info={"factors": info})
