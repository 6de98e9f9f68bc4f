"""The in-memory image dataset every data form produces.

Images stay uint8 (N, C, H, W) in memory: 60,000 Fashion-MNIST images are 47 MB this way
and four times that as float32. Batches become float in [-1, 1] only when used.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import BadInput

# Limits that keep a malformed header or a hostile file from making us allocate absurd
# amounts of memory. They are far above any image dataset this tool is meant for.
MAX_SIDE = 4096


@dataclass
class Split:
    """One split: `x` uint8 (N, C, H, W), `y` int64 (N,) or None; for translation data also
    `a` uint8 (M, C', H, W), input-domain images (x is the target domain, B): the input of each
    x when `paired` (M = N), else a set of its own (unpaired data). Data with known generative
    factors (`factors`) also has `factors` int64 (N, F): each image's level index per factor,
    described by the dataset's `info["factors"]`."""

    x: np.ndarray
    y: np.ndarray | None = None
    a: np.ndarray | None = None
    paired: bool = True
    factors: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.x.dtype == np.uint8 and self.x.ndim == 4, (self.x.dtype, self.x.shape)
        if self.y is not None:
            assert self.y.shape == (len(self.x),), (self.y.shape, self.x.shape)
        if self.a is not None:
            assert self.a.dtype == np.uint8 and self.a.ndim == 4 and self.a.shape[2:] == self.x.shape[2:] \
                and (len(self.a) == len(self.x) or not self.paired), (self.a.shape, self.x.shape)
        if self.factors is not None:
            assert self.factors.dtype == np.int64 and self.factors.ndim == 2 \
                and len(self.factors) == len(self.x), (self.factors.dtype, self.factors.shape, self.x.shape)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class ImageDataset:
    """A dataset with a train and a test split, and a validation split once one is held out.

    Attributes:
        name: the spec the user gave (`fashion-mnist`, `folder:PATH`, ...).
        train, test: the splits. After `hold_out_val`, `train` is what a model trains on.
        classes: class names when the data has labels, else None.
        source: where the data was read from, for messages and reports.
        val: images held out of train (`hold_out_val`), never trained on; None until then.
        full_train: the train split as loaded, before `val` was held out of it (None when
            nothing was); see `as_loaded`.
    """

    name: str
    train: Split
    test: Split
    classes: list[str] | None = None
    source: str = ""
    info: dict = field(default_factory=dict)
    val: Split | None = None
    full_train: Split | None = field(default=None, repr=False)
    # `limit_train`: the train split before it was cut to N images (the real-data floor is drawn
    # from it, so a little-data run's floor is the same as a full one's); None when not limited
    pool: Split | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', not {name!r}")
        if name == "val" and self.val is None:
            raise BadInput(f"{self.name}: no validation split is held out (--val-split 0)")
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def as_loaded(self) -> "ImageDataset":
        """The dataset before any validation split was held out: train and val together again.

        What the evaluator is trained on and identified by, so that it (and every cached real
        statistic) is the same whatever --val-split says, and the shipped Fashion-MNIST one
        is still found.
        """
        if self.full_train is None:
            return self
        return dataclasses.replace(self, train=self.full_train, val=None, full_train=None, pool=None)


# ------------------------------------------------------------------------------- validation

# "auto" holds out this share of the training images, at most AUTO_VAL_MAX of them: enough
# for a stable quick FD (5,000 is the usual FID-5k size) without starving small datasets.
AUTO_VAL_FRACTION = 0.1
AUTO_VAL_MAX = 5000
_VAL_STREAM = 0x76616C  # mixed into the data seed: the split's draws are not the data's own
_LIMIT_STREAM = 0x6C696D  # and --limit's draws are neither


def parse_val_split(value) -> int | float | str:
    """Check a `--val-split` value; returns it canonical: "auto", 0, a fraction or a count.

    Args:
        value: "auto", 0 (no validation split), a fraction in (0, 1) or a count >= 1, as a
            number or as the string the command line gives.
    """
    hint = "give a fraction in (0, 1), a number of images, auto, or 0 for none"
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise BadInput(f"--val-split {value!r}: {hint}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"--val-split {value!r}: {hint}")
    if value < 0:
        raise BadInput(f"--val-split {value}: must not be negative; {hint}")
    if value == 0:
        return 0
    if value < 1:
        return float(value)
    if value != int(value):
        raise BadInput(f"--val-split {value}: a count of images must be whole; a fraction must be below 1")
    return int(value)


def val_size(value, n_train: int) -> int:
    """How many of n_train training images `--val-split value` holds out (0: none)."""
    value = parse_val_split(value)
    if value == 0:
        return 0
    if value == "auto":
        return min(math.floor(AUTO_VAL_FRACTION * n_train + 0.5), AUTO_VAL_MAX)
    k = math.floor(value * n_train + 0.5) if isinstance(value, float) else value
    if k < 1:
        raise BadInput(f"--val-split {value}: holds out no image of the {n_train} training images; "
                       "give a larger fraction or a count")
    if k >= n_train:
        raise BadInput(f"--val-split {value}: would hold out {k} of the {n_train} training images and leave "
                       "none to train on; give a smaller fraction or count")
    return k


def val_indices(n: int, k: int, seed: int, y: np.ndarray | None = None, stream: int = _VAL_STREAM) -> np.ndarray:
    """Sorted indices of the k of n training images held out, fixed by `seed`.

    With labels the draw is stratified: every class gives its share (within one image), so a
    small validation split does not miss a rare class by chance. Without, it is the first k
    of a seeded permutation.
    """
    perm = np.random.default_rng([seed % 2**63, stream]).permutation(n)
    if y is None:
        return np.sort(perm[:k])
    _, cls = np.unique(y[perm], return_inverse=True)   # class of each permuted image, 0..K-1
    counts = np.bincount(cls)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)                # position of each image within its class
    rank[np.argsort(cls, kind="stable")] = np.arange(n) - np.repeat(first, counts)
    # taking the k smallest (rank + 1/2) / class size takes ~k * size / n of every class
    quantile = (rank + 0.5) / counts[cls]
    return np.sort(perm[np.argsort(quantile, kind="stable")[:k]])


def hold_out_val(ds: ImageDataset, value, seed: int = 0) -> ImageDataset:
    """`ds` with a validation split carved out of its train split by `--val-split value`.

    The returned dataset's train split is what remains (in its original order) and `val` the
    held-out images; the same (data, value, seed) always gives the same split. With value 0,
    `ds` itself (no `val`).
    """
    if ds.full_train is not None:
        raise ValueError(f"{ds.name}: a validation split is already held out")
    k = val_size(value, len(ds.train))
    if k == 0:
        return ds
    tr = ds.train
    idx = val_indices(len(tr), k, seed, tr.y)
    keep = np.ones(len(tr), dtype=bool)
    keep[idx] = False

    # Pairs stay pairs: paired input-domain images are split with their targets. Unpaired ones
    # give the same share of their own, drawn from the seed as well.
    a_keep = a_idx = None
    if tr.a is not None and not tr.paired:
        k_a = min(max(1, round(k * len(tr.a) / len(tr))), len(tr.a) - 1)
        a_idx = val_indices(len(tr.a), k_a, seed + 1)
        a_keep = np.ones(len(tr.a), dtype=bool)
        a_keep[a_idx] = False

    def part(ix, a_ix):
        a = None if tr.a is None else tr.a[ix if tr.paired else a_ix]
        return Split(tr.x[ix], None if tr.y is None else tr.y[ix], a, tr.paired,
                     None if tr.factors is None else tr.factors[ix])

    return dataclasses.replace(ds, train=part(keep, a_keep), val=part(idx, a_idx), full_train=tr)


def parse_classes(text: str, classes: list[str], where: str) -> list[int]:
    """`0-4`, `5,7,9` or `0-2,8` -> sorted class indices, each checked against `classes`."""
    picked: set[int] = set()
    hint = f"give class indices in 0..{len(classes) - 1} as 0-4 or 5,7,9 ({', '.join(f'{i} {c}' for i, c in enumerate(classes))})"
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, dash, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if dash else (int(part), int(part))
        except ValueError:
            raise BadInput(f"{where}: '{part}' is not a class index or range; {hint}") from None
        if not 0 <= a <= b < len(classes):
            raise BadInput(f"{where}: '{part}' is outside the classes; {hint}")
        picked.update(range(a, b + 1))
    if not picked:
        raise BadInput(f"{where}: no classes named; {hint}")
    return sorted(picked)


def select_classes(ds: ImageDataset, keep: list[int]) -> ImageDataset:
    """`ds` with only the images of the classes `keep` (indices, sorted), relabelled 0..k-1 in
    that order, and its class names cut to match: a dataset of its own (its own evaluator,
    its own real-data floor). Fashion-MNIST's classes 5-9 are then classes 0-4 named sandal ..
    ankle boot. Applied before any split is held out."""
    if ds.train.y is None or not ds.classes:
        raise BadInput(f"classes=: {ds.name} has no labels to select by")
    new = np.full(len(ds.classes), -1, dtype=np.int64)
    new[keep] = np.arange(len(keep))

    def part(sp: Split) -> Split:
        m = np.isin(sp.y, keep)
        return Split(sp.x[m], new[sp.y[m]], None if sp.a is None or not sp.paired else sp.a[m], sp.paired,
                     None if sp.factors is None else sp.factors[m])

    name = f"{ds.name}:classes={','.join(map(str, keep))}"
    return dataclasses.replace(ds, name=name, train=part(ds.train), test=part(ds.test),
                               classes=[ds.classes[i] for i in keep], info={**ds.info, "classes_of": ds.name,
                                                                            "class_indices": keep})


def limit_train(ds: ImageDataset, n: int | None, seed: int = 0) -> ImageDataset:
    """`ds` training on only n of its training images (`--limit N`), the little-data setting.

    The n are drawn by `seed`, stratified by class when there are labels (n = 100 of
    Fashion-MNIST's ten classes is ten of each), and nested: the 100 of a seed are among its
    1,000. The validation and test splits are unchanged, and so is `as_loaded()`, so the
    evaluator (and every score) is the one of the full data: scores stay comparable across n.
    Applied after `hold_out_val`, so the n never include a validation image. None: `ds` itself.
    """
    if n is None:
        return ds
    tr = ds.train
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInput(f"--limit {n!r}: give a number of training images, at least 1")
    if n > len(tr):
        raise BadInput(f"--limit {n}: {ds.name} has only {len(tr)} training images"
                       f"{' after the validation split' if ds.val is not None else ''}; give at most {len(tr)}")
    if tr.a is not None and not tr.paired:
        raise BadInput(f"--limit: {ds.name} is unpaired translation data; limit each folder's images instead")
    # Nested draws: the first n of one stratified order, so limits of one seed grow by adding images.
    idx = val_indices(len(tr), n, seed, tr.y, stream=_LIMIT_STREAM)
    part = Split(tr.x[idx], None if tr.y is None else tr.y[idx], None if tr.a is None else tr.a[idx], tr.paired,
                 None if tr.factors is None else tr.factors[idx])
    return dataclasses.replace(ds, train=part, full_train=ds.full_train if ds.full_train is not None else tr,
                               pool=tr, info={**ds.info, "limit": {"n": n, "of": len(tr)}})


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1], same shape."""
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] (values outside are clamped) -> uint8 in [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
