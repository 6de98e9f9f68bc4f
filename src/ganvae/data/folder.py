"""`folder:PATH`: every PNG/JPEG/BMP/GIF/WebP image below PATH.

- Images in sub-folders of PATH get the sub-folder's name as their class (sorted names ->
  0..K-1), when every image lies in one; otherwise the data is unlabelled.
- `train/` and `test/` sub-folders, when both exist, are the splits; otherwise a seeded
  10% is held out as the test split.
- `size` (default: the most common size) and `channels` (default: 1 when every image is
  grey) are reached by scaling the shorter side and cropping the centre.
- Files that are not readable images are skipped and counted in one warning; an image whose
  header claims more pixels than Pillow's decompression-bomb limit is an error.

`Fitting` records what reading a folder did to reach one (channels, size, size): which images
changed between grey and colour, which were resized (from which sizes), which files were
skipped. Every reader here builds it the same way and says it in one warning line.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
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


class FolderNoteWarning(UserWarning):
    """Reading a folder changed its images (grey <-> colour, resized) or left files out."""


class SkippedFilesWarning(FolderNoteWarning):
    """Some files under a folder dataset were not readable images and were left out."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class Fitting:
    """What reading a folder did to its files to reach (channels, size, size) images."""

    channels: int
    size: int
    recoloured: int = 0                                      # grey -> RGB or colour -> grey
    resized: Counter = field(default_factory=Counter)        # (w, h) -> images resized from it
    skipped: list[Path] = field(default_factory=list)        # not readable images, left out

    @classmethod
    def of(cls, items, kept: list[Path], size: int, channels: int, skipped: list[Path]) -> "Fitting":
        """From `scan_folder`'s headers [(path, (w, h), is_grey)], the paths `decode_images` kept and those
        left out: only kept images count as converted or resized."""
        fitting = cls(channels, size, skipped=list(skipped))
        kept = set(kept)
        for p, wh, grey in items:
            if p not in kept:
                continue
            fitting.recoloured += int(grey != (channels == 1))
            if wh != (size, size):
                fitting.resized[wh] += 1
        return fitting

    def note(self, where, root: Path, conversions: bool = True) -> str | None:
        """One line: `where: 12 colour images converted to grey; 30 images resized from 40x30 /
        64x64 to 28x28 (...); skipped 2 file(s) that are not readable images (a.png, b.png)`,
        or None when there is nothing to say. Skipped files are named relative to root.

        conversions=False says only what was skipped: data folders are fitted to the size and
        channels they were read at by design (--size, their most common size; a pairs: domain
        to its partner's), where a note on every load would be noise."""
        parts = []
        if conversions and self.recoloured:
            parts.append(f"{_plural(self.recoloured, 'colour image')} converted to grey" if self.channels == 1
                         else f"{_plural(self.recoloured, 'grey image')} converted to RGB")
        if conversions and self.resized:
            sizes = [f"{w}x{h}" for (w, h), _ in sorted(self.resized.items(), key=lambda kv: (-kv[1], kv[0]))]
            shown = " / ".join(sizes[:3]) + (f" / {len(sizes) - 3} other sizes" if len(sizes) > 3 else "")
            crop = any(w != h for w, h in self.resized)   # the shorter side is scaled, the rest cut off
            parts.append(f"{_plural(sum(self.resized.values()), 'image')} resized from {shown} to "
                         f"{self.size}x{self.size}" + (" (non-square ones centre-cropped)" if crop else ""))
        if self.skipped:
            names = ", ".join(str(p.relative_to(root)) for p in self.skipped[:3])
            parts.append(f"skipped {len(self.skipped)} file(s) that are not readable images "
                         f"({'e.g. ' if len(self.skipped) > 3 else ''}{names})")
        return f"{where}: " + "; ".join(parts) if parts else None

    def warn(self, where, root: Path, conversions: bool = True) -> None:
        """The note as one warning (SkippedFilesWarning when files were left out), if any."""
        if (text := self.note(where, root, conversions)) is not None:
            warnings.warn(text, SkippedFilesWarning if self.skipped else FolderNoteWarning, stacklevel=3)


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


def scan_folder(root: Path) -> tuple[list[tuple[Path, tuple[int, int], bool]], list[Path]]:
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


def decode_images(items, size: int, channels: int, skipped: list[Path]) -> tuple[np.ndarray, list[Path]]:
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
        scans[name], s = scan_folder(d)
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
        decoded[name] = decode_images(its, size, channels, skipped)
    kept = [p for _, paths in decoded.values() for p in paths]
    Fitting.of(items, kept, size, channels, skipped).warn(root, root, conversions=False)

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
    from .npz import npz_images

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
        x = conform(npz_images(p, "x", x), size, channels)
        return x, [f"{i:05d}" for i in range(len(x))]
    if not p.is_dir():
        raise BadInput(f"{p}: give a folder of images or an .npz file with an array x")
    x, kept, fitting = read_folder(p, size, channels)
    fitting.warn(p, p, conversions=False)
    if not kept:
        raise BadInput(f"{p}: no readable images in it")
    return x, [str(k.relative_to(p).with_suffix("")) for k in kept]


def read_folder(root: Path, size: int, channels: int) -> tuple[np.ndarray, list[Path], Fitting]:
    """Every readable image below root (sorted paths, no split), fitted to (channels, size, size).

    Returns:
        x uint8 (N, channels, size, size), the N paths kept, and the Fitting that says what was
        converted, resized and skipped (the caller words the warning: `fitting.warn(where, root)`).
    """
    items, skipped = scan_folder(root)
    x, kept = decode_images(items, size, channels, skipped)
    return x, kept, Fitting.of(items, kept, size, channels, skipped)
