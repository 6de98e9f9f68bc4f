"""`folder:PATH`: every PNG/JPEG/BMP/GIF/WebP image below PATH.

- Images in sub-folders of PATH get the sub-folder's name as their class (sorted names ->
  0..K-1), when every image lies in one; otherwise the data is unlabelled.
- `train/` and `test/` sub-folders, when both exist, are the splits; otherwise a seeded
  10% is held out as the test split.
- `size` (default: the most common size) and `channels` (default: 1 when every image is
  grey) are reached by scaling the shorter side and cropping the centre.
- Files that are not readable images are skipped and counted in one warning; an image whose
  header claims more pixels than Pillow's decompression-bomb limit is an error.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadInput
from ..files import check_npz
from .base import ImageDataset, Split
from .transform import check_channels, check_size, conform, fit

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
TEST_FRACTION = 0.1


class SkippedFilesWarning(UserWarning):
    """Some files under a folder dataset were not readable images and were left out."""


def _open(path: Path) -> Image.Image:
    """Open lazily (header only), turning a decompression bomb into a BadInput."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise BadInput(f"{path}: refused as a possible decompression bomb ({e})") from None
    w, h = img.size
    if w * h > Image.MAX_IMAGE_PIXELS:
        img.close()
        raise BadInput(f"{path}: refused as a possible decompression bomb ({w}x{h} pixels "
                       f"exceeds the limit of {Image.MAX_IMAGE_PIXELS})")
    return img


def _scan(root: Path) -> tuple[list[tuple[Path, tuple[int, int], bool]], list[Path]]:
    """Headers of every image below root: [(path, (w, h), is_grey)], and the skipped files."""
    good, skipped = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if p.suffix.lower() not in EXTENSIONS:
            skipped.append(p)
            continue
        try:
            img = _open(p)
        except BadInput:
            raise
        except Exception:  # Pillow raises many types for broken files; all mean "unreadable"
            skipped.append(p)
            continue
        with img:
            good.append((p, img.size, img.mode in GREY_MODES))
    return good, skipped


def _decode(items, size: int, channels: int, skipped: list[Path]) -> tuple[np.ndarray, list[Path]]:
    out = np.empty((len(items), channels, size, size), dtype=np.uint8)
    kept = []
    for p, _, _ in items:
        try:
            with _open(p) as img:
                img.load()
                out[len(kept)] = fit(img, size, channels)
        except BadInput:
            raise
        except Exception:  # truncated or corrupt pixel data
            skipped.append(p)
            continue
        kept.append(p)
    return out[: len(kept)], kept


def _labels(paths: list[Path], root: Path) -> list[str] | None:
    parts = [p.relative_to(root).parts for p in paths]
    if all(len(q) >= 2 for q in parts):
        return [q[0] for q in parts]
    return None


def load_folder(path: str | Path, size: int | None = None, channels: int | None = None,
                seed: int = 0) -> ImageDataset:
    root = Path(path)
    check_size(size)
    check_channels(channels)
    if not root.exists():
        raise BadInput(f"{root}: no such folder")
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder (use npz:PATH for an .npz file)")
    split_roots = {"train": root / "train", "test": root / "test"}
    presplit = all(d.is_dir() for d in split_roots.values())
    scans, skipped = {}, []
    for name, d in (split_roots.items() if presplit else [("all", root)]):
        scans[name], s = _scan(d)
        skipped += s
    items = [it for v in scans.values() for it in v]
    if not items:
        raise BadInput(f"{root}: no readable images found (looked for {', '.join(sorted(EXTENSIONS))})")
    if size is None:
        (w, h), _ = Counter(it[1] for it in items).most_common(1)[0]
        size = min(w, h)
        check_size(size, option=f"the most common image size in {root} ({w}x{h}); pass --size")
    if channels is None:
        channels = 1 if all(it[2] for it in items) else 3

    decoded = {}
    for name, its in scans.items():
        decoded[name] = _decode(its, size, channels, skipped)
    if skipped:
        examples = ", ".join(str(p.relative_to(root)) for p in skipped[:3])
        warnings.warn(f"{root}: skipped {len(skipped)} file(s) that are not readable images "
                      f"(e.g. {examples})", SkippedFilesWarning, stacklevel=2)

    if presplit:
        (x, ptr), (xt, pte) = decoded["train"], decoded["test"]
        if len(x) == 0 or len(xt) == 0:
            raise BadInput(f"{root}: train/ and test/ must both hold readable images")
        lab = _labels(ptr, split_roots["train"]), _labels(pte, split_roots["test"])
    else:
        xa, pa = decoded["all"]
        if len(xa) < 2:
            raise BadInput(f"{root}: need at least 2 readable images to hold out a test split")
        perm = np.random.default_rng(seed).permutation(len(xa))
        n_test = max(1, round(TEST_FRACTION * len(xa)))
        te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        x, xt = xa[tr], xa[te]
        names = _labels(pa, root)
        lab = (None, None) if names is None else ([names[i] for i in tr], [names[i] for i in te])

    classes, y, yt = None, None, None
    if lab[0] is not None and lab[1] is not None:
        classes = sorted(set(lab[0]) | set(lab[1]))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[c] for c in lab[0]], dtype=np.int64)
        yt = np.array([index[c] for c in lab[1]], dtype=np.int64)
    info = {"skipped": len(skipped)}
    return ImageDataset(f"folder:{root}", Split(x, y), Split(xt, yt), classes, source=str(root), info=info)


def read_images(path: str | Path, size: int, channels: int) -> tuple[np.ndarray, list[str]]:
    """The images a trained model is to be applied to (`ganvae translate RUN INPUT`): every image
    below a folder (sorted), or the array `x` of an .npz, as uint8 (N, channels, size, size),
    with a name for each (its path below the folder without extension, or its index).

    Unreadable files are skipped and counted in one warning; a folder with none is an error."""
    from .npz import _images

    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".npz":
        check_npz(p)
        try:
            with np.load(p, allow_pickle=False) as z:
                if "x" not in z.files:
                    raise BadInput(f"{p}: no array 'x' (found: {', '.join(z.files) or 'none'})")
                x = z["x"]
        except ValueError as e:
            raise BadInput(f"{p}: cannot read the archive without unpickling ({e})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise BadInput(f"{p}: not a valid .npz archive ({e})") from None
        x = conform(_images(p, "x", x), size, channels)
        return x, [f"{i:05d}" for i in range(len(x))]
    if not p.is_dir():
        raise BadInput(f"{p}: give a folder of images or an .npz file with an array x")
    items, skipped = _scan(p)
    x, kept = _decode(items, size, channels, skipped)
    if skipped:
        examples = ", ".join(str(q.relative_to(p)) for q in skipped[:3])
        warnings.warn(f"{p}: skipped {len(skipped)} file(s) that are not readable images (e.g. {examples})",
                      SkippedFilesWarning, stacklevel=2)
    if not kept:
        raise BadInput(f"{p}: no readable images in it")
    return x, [str(k.relative_to(p).with_suffix("")) for k in kept]
