"""The named IDX datasets (`fashion-mnist`, `mnist`): where to find them and how to fetch them.

A named dataset is looked for, in order, in `--data-dir`, `$GANVAE_DATA/<name>`,
`/usr/share/datasets/<name>` (Debian's dataset-* packages) and `$GANVAE_CACHE/<name>` (default
`~/.cache/ganvae/<name>`).
Checksums are SHA-256 of the *decompressed* IDX files: mirrors and Debian re-gzip the
originals (different gzip headers, same content), so the decompressed bytes are the stable
identity of the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from .base import ImageDataset, Split
from .idx import read_idx, read_idx_header


@dataclass(frozen=True)
class NamedIDX:
    name: str
    classes: tuple[str, ...]
    url: str  # base URL of the official HTTPS copies of the .gz files
    sha256: dict  # file stem -> SHA-256 of the decompressed file
    debian_package: str | None = None

    # split -> (images stem, labels stem)
    files = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }

    def how_to_get(self) -> str:
        ways = []
        if self.debian_package:
            ways.append(f"apt-get install {self.debian_package}")
        ways.append(f"ganvae datasets download {self.name}")
        return " or ".join(ways)


NAMED: dict[str, NamedIDX] = {
    "fashion-mnist": NamedIDX(
        name="fashion-mnist",
        # Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        url="https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion",
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        debian_package="dataset-fashion-mnist",
    ),
    "mnist": NamedIDX(
        name="mnist",
        classes=tuple(str(d) for d in range(10)),
        # LeCun's own host is unreliable; this mirror serves the same files.
        url="https://storage.googleapis.com/cvdf-datasets/mnist",
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
}


def cache_dir(name: str) -> Path:
    """Where `ganvae datasets download NAME` puts a dataset: under $GANVAE_CACHE (default
    ~/.cache/ganvae), the same root as the cached evaluators, so one variable moves both."""
    return Path(os.environ.get("GANVAE_CACHE") or os.path.expanduser("~/.cache/ganvae")) / name


def search_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The directories searched for a named dataset, in order."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("GANVAE_DATA"):
        dirs.append(Path(os.environ["GANVAE_DATA"]) / name)
    dirs += [Path("/usr/share/datasets") / name, cache_dir(name)]
    return dirs


def _file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The first searched directory that holds all four files of `name`, or None."""
    spec = NAMED[name]
    stems = [s for pair in spec.files.values() for s in pair]
    for d in search_dirs(name, data_dir):
        if all(_file(d, s) for s in stems):
            return d
    return None


def summary(name: str, data_dir: str | Path | None = None) -> dict:
    """Where `name` is and its sizes, reading only file headers (fast)."""
    spec = NAMED[name]
    d = find(name, data_dir)
    if d is None:
        return {"name": name, "found": None, "how": spec.how_to_get(), "classes": len(spec.classes)}
    sizes, shape = {}, None
    for split, (images, _) in spec.files.items():
        _, dims = read_idx_header(_file(d, images))
        sizes[split] = dims[0]
        shape = (1, *dims[1:])
    return {"name": name, "found": str(d), "train": sizes["train"], "test": sizes["test"],
            "shape": shape, "classes": len(spec.classes)}


def load_named(name: str, data_dir: str | Path | None = None) -> ImageDataset:
    spec = NAMED[name]
    d = find(name, data_dir)
    if d is None:
        where = ", ".join(str(p) for p in search_dirs(name, data_dir))
        raise BadInput(f"dataset '{name}' not found (looked in {where}); get it with: {spec.how_to_get()}")
    splits = {}
    for split, (images, labels) in spec.files.items():
        x = read_idx(_file(d, images), ndim=3)
        y = read_idx(_file(d, labels), ndim=1)
        if x.dtype != np.uint8:
            raise BadInput(f"{_file(d, images)}: images must be uint8 IDX data, found {x.dtype}")
        if len(x) != len(y):
            raise BadInput(f"{_file(d, labels)}: {len(y)} labels for {len(x)} images in {_file(d, images)}")
        if len(y) and (y.min() < 0 or y.max() >= len(spec.classes)):
            raise BadInput(f"{_file(d, labels)}: labels must lie in 0..{len(spec.classes) - 1}")
        splits[split] = Split(x[:, None], y.astype(np.int64))
    return ImageDataset(name, splits["train"], splits["test"], list(spec.classes), source=str(d))
