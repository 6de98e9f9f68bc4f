"""The in-memory image dataset every data form produces.

Images stay uint8 (N, C, H, W) in memory: 60,000 Fashion-MNIST images are 47 MB this way
and four times that as float32. Batches become float in [-1, 1] only when used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

# Limits that keep a malformed header or a hostile file from making us allocate absurd
# amounts of memory. They are far above any image dataset this tool is meant for.
MAX_SIDE = 4096


@dataclass
class Split:
    """One split: `x` uint8 (N, C, H, W), `y` int64 (N,) or None."""

    x: np.ndarray
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.x.dtype == np.uint8 and self.x.ndim == 4, (self.x.dtype, self.x.shape)
        if self.y is not None:
            assert self.y.shape == (len(self.x),), (self.y.shape, self.x.shape)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class ImageDataset:
    """A dataset with a train and a test split.

    Attributes:
        name: the spec the user gave (`fashion-mnist`, `folder:PATH`, ...).
        train, test: the splits.
        classes: class names when the data has labels, else None.
        source: where the data was read from, for messages and reports.
    """

    name: str
    train: Split
    test: Split
    classes: list[str] | None = None
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {name!r}")
        return self.train if name == "train" else self.test


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 in [-1, 1], same shape."""
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] (values outside are clamped) -> uint8 in [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)
