"""Built-in image-to-image translation domains, made offline from any image dataset (issue 13).

Each maker turns uint8 images (N, C, H, W) of a dataset (domain B, the target) into their
counterparts in domain A (the input), pixel-aligned and of the same size, so a translation
model has ground truth to be scored against even when it trains unpaired:

    edges      Sobel gradient magnitude of the grey image, thresholded: white edges on black
               (the edges2shoes / edges2handbags setting of Isola et al. 2017, made here)
    lowres     box-averaged down by `factor` (28 -> 14 or 7) and blown up again by repetition:
               the input a super-resolution model sees, at the target's size
    inverted   255 - x
    colorized  the other way round: B is the grey image tinted with a colour per class (RGB),
               A the grey image; the tint of each class is fixed by a seed

`--data task:NAME` loads one (`load_task`): the source dataset's images are the target domain
(`Split.x`, so every generative model trains on them as usual) and each split carries the
input-domain images, pixel-aligned, in `Split.a`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from ..errors import BadInput, did_you_mean


CHUNK = 4096   # images a maker handles at once


def _in_chunks(make):
    """Apply an image maker `make(x, *per_image)` to CHUNK images at a time and stack the
    results: its float64 temporaries then stay a few tens of MB instead of growing with the
    dataset (70,000 RGB images: 1.3 GB each), which made `task:colorized` load in 9 s instead
    of 0.9 and the edges in 4 s instead of 2. Every maker is per image, so the result is the same."""
    @functools.wraps(make)
    def chunked(x: np.ndarray, *per_image, **options):
        if len(x) <= CHUNK:
            return make(x, *per_image, **options)
        return np.concatenate([make(x[i:i + CHUNK], *(a[i:i + CHUNK] if isinstance(a, np.ndarray) else a
                                                       for a in per_image), **options)
                               for i in range(0, len(x), CHUNK)])
    return chunked


def _grey(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, H, W) float64 in [0, 1] (ITU-R 601 luma for RGB)."""
    x = x.astype(np.float64) / 255.0
    if x.shape[1] == 3:
        return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    return x[:, 0]


@_in_chunks
def sobel_edges(x: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """White edges on black, (N, 1, H, W) uint8: where the Sobel gradient magnitude of the
    grey image exceeds `threshold` times its largest value in that image."""
    g = _grey(x)                                                          # (N, H, W)
    # The two 3x3 Sobel kernels as separable 1-D passes over the image axes only (ndimage.sobel
    # on the stack would also smooth across images, along the batch axis).
    def sobel(along: int, across: int) -> np.ndarray:
        d = ndimage.correlate1d(g, [-1.0, 0.0, 1.0], axis=along, mode="nearest")
        return ndimage.correlate1d(d, [1.0, 2.0, 1.0], axis=across, mode="nearest")

    gx, gy = sobel(2, 1), sobel(1, 2)
    mag = np.hypot(gx, gy)                                                # (N, H, W)
    peak = mag.reshape(len(mag), -1).max(1)[:, None, None]
    edges = (mag > threshold * np.maximum(peak, 1e-12)) & (peak > 0)        # a flat image: no edges
    return (edges * 255).astype(np.uint8)[:, None]


@_in_chunks
def lowres(x: np.ndarray, factor: int) -> np.ndarray:
    """Box-average down by `factor`, then repeat each pixel factor x factor times: the same
    (N, C, H, W) uint8 shape, blocky. H and W must be multiples of factor."""
    n, c, h, w = x.shape
    if factor < 1 or h % factor or w % factor:
        raise BadInput(f"lowres: {h}x{w} images do not divide into {factor}x{factor} blocks")
    small = x.astype(np.float64).reshape(n, c, h // factor, factor, w // factor, factor).mean((3, 5))
    big = small.repeat(factor, axis=2).repeat(factor, axis=3)
    return np.round(big).astype(np.uint8)


def inverted(x: np.ndarray) -> np.ndarray:
    return (255 - x).astype(np.uint8)


def class_tints(num_classes: int, seed: int = 0) -> np.ndarray:
    """(K, 3) float colours in [0.25, 1] per channel, one per class, fixed by the seed (never
    so dark that the image vanishes)."""
    return np.random.default_rng(seed).uniform(0.25, 1.0, size=(num_classes, 3))


@_in_chunks
def colorized(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """The grey image times its class's tint: (N, 3, H, W) uint8."""
    if y is None:
        raise BadInput("colorized needs class labels: the tint is per class")
    tint = class_tints(num_classes, seed)[y]                             # (N, 3)
    return np.round(_grey(x)[:, None] * 255 * tint[:, :, None, None]).astype(np.uint8)


# name -> (source dataset, A maker (x, y, num_classes) -> A, B maker, one line)
TRANSLATION_TASKS = {
    "edges2fashion": ("fashion-mnist", lambda x, y, k: sobel_edges(x), lambda x, y, k: x,
                      "Sobel edges -> Fashion-MNIST image"),
    "lowres2fashion": ("fashion-mnist", lambda x, y, k: lowres(x, 4), lambda x, y, k: x,
                       "7x7 (blown up to 28x28) -> Fashion-MNIST image"),
    "inverted": ("fashion-mnist", lambda x, y, k: x, lambda x, y, k: inverted(x),
                 "Fashion-MNIST image -> its negative"),
    "colorized": ("fashion-mnist", lambda x, y, k: x, lambda x, y, k: colorized(x, y, k),
                  "grey Fashion-MNIST image -> tinted by class (RGB)"),
}


# the same domains made from any dataset: task:KIND@SPEC (task:edges@folder:photos)
KINDS = {"edges": "edges2fashion", "lowres": "lowres2fashion", "inverted": "inverted", "colorized": "colorized"}


def load_task(name: str, data_dir=None, size=None, channels=None, seed: int = 0):
    """`--data task:NAME`: the source dataset with each split's input domain in `Split.a`.

    NAME is a built-in task (its source is Fashion-MNIST) or KIND@SPEC: the domains of KIND
    (edges, lowres, inverted, colorized) made from the images of any --data SPEC
    (`task:edges@folder:photos`, `task:lowres@shapes`). `--size` and `--channels` apply to the
    source images before the domains are made.
    """
    from . import load_dataset
    from .base import ImageDataset, Split

    kind, at, source = name.partition("@")
    if at:
        if kind not in KINDS or not source:
            raise BadInput(f"--data task:{name}: give task:KIND@DATA with KIND one of {', '.join(KINDS)} "
                           "and DATA a dataset (task:edges@folder:PATH)")
        if source.startswith(("task:", "pairs:", "unpaired:")):
            raise BadInput(f"--data task:{name}: the source must be a plain image dataset, not {source}")
        _, make_a, make_b, _ = TRANSLATION_TASKS[KINDS[kind]]
        text = f"{kind} of {source}"
    elif name in TRANSLATION_TASKS:
        source, make_a, make_b, text = TRANSLATION_TASKS[name]
    else:
        raise BadInput(f"--data task:{name}: unknown translation task{did_you_mean(name, TRANSLATION_TASKS)}; choose one of {', '.join(TRANSLATION_TASKS)}, "
                       f"or KIND@DATA with KIND one of {', '.join(KINDS)}")
    src = load_dataset(source, data_dir=data_dir, size=size, channels=channels, seed=seed)
    k = src.num_classes

    def split(sp):
        return Split(make_b(sp.x, sp.y, k), sp.y, make_a(sp.x, sp.y, k))

    train, test = split(src.train), split(src.test)
    info = {**src.info, "translation": {"task": name, "paired": True, "source": source, "description": text,
                                        "a_shape": list(train.a.shape[1:]), "b_shape": list(train.x.shape[1:])}}
    if train.x is src.train.x:
        # the target domain is the source data itself: it is scored by the source's evaluator
        # (the shipped one for Fashion-MNIST), so its FDs are the very numbers of generation
        info["target_data"] = src.info.get("target_data", src.name)
    return ImageDataset(f"task:{name}", train, test, classes=src.classes, source=src.source, info=info)
