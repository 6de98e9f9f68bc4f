"""Datasets: the forms a user names with `--data`, all giving an `ImageDataset`.

    fashion-mnist, mnist     the standard IDX files (see named.py for where they are looked for);
                             NAME:classes=0-4 keeps those classes alone, relabelled 0..k-1
    shapes[:opts]            procedural shapes with known modes (shapes.py)
    factors[:opts]           procedural shapes with known generative factors, dSprites-like (factors.py)
    folder:PATH              an image folder (folder.py)
    npz:PATH                 a NumPy archive (npz.py)
    pairs:DIR                paired translation data: DIR/A/<name> -> DIR/B/<name> (pairs.py)
    unpaired:DIR_A,DIR_B     two image folders, no pairing (pairs.py)
    task:NAME                a built-in translation task: target images with their input-domain
                             counterparts in Split.a (tasks.py)
    memory:FINGERPRINT       images the Python API was given in memory, too large to keep in the
                             run: loadable only while the same images are passed (memory.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import BadInput, did_you_mean
from .base import ImageDataset, Split, parse_classes, select_classes, to_float, to_uint8
from .factors import load_factors
from .folder import load_folder
from .memory import load_memory
from .named import NAMED, load_named
from .npz import load_npz
from .pairs import load_pairs, load_unpaired
from .shapes import load_shapes
from .transform import check_channels, check_size, conform

__all__ = ["ImageDataset", "Split", "load_dataset", "to_float", "to_uint8", "FORMS", "NAMED"]


def _named(name: str) -> Callable[..., ImageDataset]:
    def load(arg: str, data_dir=None, size=None, channels=None, seed=0) -> ImageDataset:
        ds = load_named(name, data_dir)
        if arg:   # fashion-mnist:classes=5-9
            key, eq, value = arg.partition("=")
            if key != "classes" or not eq:
                raise BadInput(f"--data {name}:{arg}: '{name}' takes one option, classes=, as in "
                               f"{name}:classes=0-4; use --data-dir to say where it is")
            ds = select_classes(ds, parse_classes(value, ds.classes, f"--data {name}:{arg}"))
        if size or channels:
            ds.train.x = conform(ds.train.x, size, channels)
            ds.test.x = conform(ds.test.x, size, channels)
        return ds
    return load


# kind -> loader(arg, data_dir, size, channels, seed); `kind:arg` or plain `kind`
FORMS: dict[str, Callable[..., ImageDataset]] = {
    **{name: _named(name) for name in NAMED},
    "shapes": lambda arg, data_dir=None, size=None, channels=None, seed=0: load_shapes(arg, size, channels, seed),
    "factors": lambda arg, data_dir=None, size=None, channels=None, seed=0: load_factors(arg, size, channels, seed),
    "folder": lambda arg, data_dir=None, size=None, channels=None, seed=0: load_folder(arg, size, channels, seed),
    "npz": lambda arg, data_dir=None, size=None, channels=None, seed=0: load_npz(arg, size, channels, seed),
    "task": lambda arg, data_dir=None, size=None, channels=None, seed=0: _load_task(arg, data_dir, size, channels,
                                                                                      seed),
}
FORMS["pairs"] = lambda arg, data_dir=None, size=None, channels=None, seed=0: load_pairs(arg, size, channels, seed)
FORMS["unpaired"] = lambda arg, data_dir=None, size=None, channels=None, seed=0: load_unpaired(arg, size, channels,
                                                                                             seed)
FORMS["memory"] = lambda arg, data_dir=None, size=None, channels=None, seed=0: load_memory(arg, size, channels, seed)
NEEDS_ARG = {"folder", "npz", "task", "pairs", "unpaired", "memory"}


def _load_task(arg, data_dir, size, channels, seed):
    from .tasks import load_task

    return load_task(arg, data_dir, size, channels, seed)


def load_dataset(spec: str, data_dir: str | Path | None = None, size: int | None = None,
                 channels: int | None = None, seed: int = 0) -> ImageDataset:
    """Load the dataset a user named with `--data`.

    Args:
        spec: `fashion-mnist`, `mnist`, `shapes[:opts]`, `factors[:opts]`, `folder:PATH` or `npz:PATH`.
        data_dir: a directory searched first for the named IDX datasets.
        size, channels: resize / convert every image (None keeps the data's own).
        seed: the seed of any random split or procedural data.
    """
    check_size(size)
    check_channels(channels)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise BadInput(f"--data-dir {data_dir}: no such directory; give the folder that holds the dataset's files "
                       "(or leave it out to use the standard places)")
    kind, _, arg = spec.partition(":")
    if kind not in FORMS:
        raise BadInput(f"--data {spec!r}: unknown dataset{did_you_mean(kind, [*NAMED, *FORMS])}; use one of "
                       f"{', '.join(NAMED)}, shapes, factors, folder:PATH, npz:PATH, pairs:DIR, "
                       "unpaired:DIR_A,DIR_B, task:NAME")
    if kind in NEEDS_ARG and not arg:
        raise BadInput(f"--data {spec!r}: give {'a task name, as in task:NAME' if kind == 'task' else f'a path, as in {kind}:PATH'}")
    return FORMS[kind](arg, data_dir=data_dir, size=size, channels=channels, seed=seed)
