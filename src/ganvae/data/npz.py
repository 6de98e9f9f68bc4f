"""`npz:PATH`: images from a NumPy .npz archive.

Arrays: `x` uint8 (N, H, W) or (N, C, H, W) with C in {1, 3}, optional `y` integer labels
(N,), optional `x_test` / `y_test`. Without a test split, a seeded 10% of `x` is held out.
Loaded with allow_pickle=False: an archive cannot run code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import BadInput
from ..files import check_npz
from .base import MAX_SIDE, ImageDataset, Split
from .transform import conform

TEST_FRACTION = 0.1


def npz_images(path: Path, key: str, a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint8:
        raise BadInput(f"{path}: array '{key}' must be uint8 in 0..255, found {a.dtype}; scale and cast it")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise BadInput(f"{path}: array '{key}' must be (N, H, W) or (N, C, H, W), found shape {a.shape}")
    n, c, h, w = a.shape
    if c not in (1, 3) and a.shape[3] in (1, 3):
        raise BadInput(f"{path}: array '{key}' looks channels-last {a.shape}; store it as (N, C, H, W)")
    if c not in (1, 3):
        raise BadInput(f"{path}: array '{key}' has {c} channels; 1 or 3 are supported")
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise BadInput(f"{path}: array '{key}' has absurd image size {h}x{w}")
    if n == 0:
        raise BadInput(f"{path}: array '{key}' holds no images")
    return a


def check_labels(what: str, y: np.ndarray, n: int) -> np.ndarray:
    """Class ids, one per image of n, as int64 (N,); `what` names them in the message
    ("PATH: labels 'y'" for an archive, "labels" for the Python API's in-memory data)."""
    if not np.issubdtype(y.dtype, np.integer):
        raise BadInput(f"{what} must be integers, found {y.dtype}")
    if y.shape != (n,):
        raise BadInput(f"{what} have shape {y.shape}; expected ({n},), one per image")
    if y.min() < 0:
        raise BadInput(f"{what} must be non-negative")
    if y.max() >= 100_000:
        raise BadInput(f"{what} go up to {y.max()}; class ids must be 0..K-1")
    return y.astype(np.int64)


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    return check_labels(f"{path}: labels '{key}'", y, n)


def load_npz(path: str | Path, size: int | None = None, channels: int | None = None,
             seed: int = 0) -> ImageDataset:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    check_npz(path, "npz:")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        raise BadInput(f"{path}: cannot read the archive without unpickling ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BadInput(f"{path}: not a valid .npz archive ({e})") from None
    if "x" not in arrays:
        raise BadInput(f"{path}: no array 'x' (found: {', '.join(arrays) or 'none'})")
    for key in ("x", "y", "x_test", "y_test"):
        if key in arrays and not isinstance(arrays[key], np.ndarray):
            # NpzFile hands back raw bytes for a member that is not a .npy array
            raise BadInput(f"{path}: member '{key}' is not a NumPy array")
    x = npz_images(path, "x", arrays["x"])
    y = _labels(path, "y", arrays["y"], len(x)) if "y" in arrays else None
    xt = yt = None
    if "x_test" in arrays:
        xt = npz_images(path, "x_test", arrays["x_test"])
        if xt.shape[1:] != x.shape[1:]:
            raise BadInput(f"{path}: 'x_test' images are {xt.shape[1:]}, 'x' images are {x.shape[1:]}")
        yt = _labels(path, "y_test", arrays["y_test"], len(xt)) if "y_test" in arrays else None
        if (y is None) != (yt is None):
            raise BadInput(f"{path}: give labels for both splits ('y' and 'y_test') or for neither")
    return npz_dataset(f"npz:{path}", x, y, xt, yt, size, channels, seed, source=str(path))


def npz_dataset(name: str, x: np.ndarray, y: np.ndarray | None, xt: np.ndarray | None, yt: np.ndarray | None,
                size: int | None, channels: int | None, seed: int, source: str) -> ImageDataset:
    """The dataset of checked arrays (x uint8 (N, C, H, W), y int64 (N,) or None): without a
    test split (xt None), a seeded TEST_FRACTION of x is held out as one. Shared with the
    Python API's in-memory data (memory.py), so that images given in memory and the same
    images read back from the archive a run keeps of them split alike."""
    if xt is None:
        if len(x) < 2:
            raise BadInput(f"{source}: need at least 2 images to hold out a test split")
        perm = np.random.default_rng(seed).permutation(len(x))
        n_test = max(1, round(TEST_FRACTION * len(x)))
        test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        xt, yt = x[test_idx], (y[test_idx] if y is not None else None)
        x, y = x[train_idx], (y[train_idx] if y is not None else None)
    x, xt = conform(x, size, channels), conform(xt, size, channels)
    classes = None
    if y is not None:
        k = int(max(y.max(), yt.max())) + 1
        classes = [str(i) for i in range(k)]
    return ImageDataset(name, Split(x, y), Split(xt, yt), classes, source=source)
