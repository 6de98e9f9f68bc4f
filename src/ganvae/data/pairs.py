"""`pairs:DIR`: paired translation data, DIR/A/<name> -> DIR/B/<name> (issue 13).

An image in A and the image in B with the same relative path (extension aside) are a pair: A is
the input domain (`Split.a`), B the target (`Split.x`). As `folder:`: files that are not readable
images are skipped and counted in one warning (with their partners), decompression bombs are
refused, images are scaled and centre-cropped to one size (B's most common, or --size), and
each domain keeps 1 channel when all its images are grey (--channels sets B's). A seeded 10% of
the pairs is the test split. A pair whose two images differ in size, or an image without a
partner, is an error that names it: a translation model learns the pixel-to-pixel map, and
guessing an alignment would teach it the wrong one.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import BadInput
from .base import ImageDataset, Split
from .folder import TEST_FRACTION, SkippedFilesWarning, decode_images, scan_folder
from .transform import check_channels, check_size


def _key(path: Path, root: Path) -> str:
    return str(path.relative_to(root).with_suffix(""))


def load_pairs(path: str | Path, size: int | None = None, channels: int | None = None,
               seed: int = 0) -> ImageDataset:
    root = Path(path)
    check_size(size)
    check_channels(channels)
    dirs = {"A": root / "A", "B": root / "B"}
    if not root.is_dir() or not all(d.is_dir() for d in dirs.values()):
        raise BadInput(f"pairs:{root}: needs the folders {root / 'A'} (inputs) and {root / 'B'} (targets)")
    scans, skipped = {}, []
    for side, d in dirs.items():
        items, s = scan_folder(d)
        skipped += s
        scans[side] = {_key(it[0], d): it for it in items}
    only = {side: sorted(set(scans[side]) - set(scans[other])) for side, other in (("A", "B"), ("B", "A"))}
    for side, other in (("A", "B"), ("B", "A")):
        if only[side]:
            more = f" (and {len(only[side]) - 1} more)" if len(only[side]) > 1 else ""
            raise BadInput(f"pairs:{root}: {side}/{only[side][0]} has no partner in {other}/{more}; every image needs "
                           f"one with the same name in the other folder")
    names = sorted(scans["A"])
    if len(names) < 2:
        raise BadInput(f"pairs:{root}: need at least 2 readable pairs to hold out a test split")
    for n in names:
        (pa, sa, _), (pb, sb, _) = scans["A"][n], scans["B"][n]
        if sa != sb:
            raise BadInput(f"pairs:{root}: {pa.relative_to(root)} is {sa[0]}x{sa[1]} but its partner "
                           f"{pb.relative_to(root)} is {sb[0]}x{sb[1]}; a pair must be pixel-aligned")
    if size is None:
        (w, h), _ = Counter(scans["B"][n][1] for n in names).most_common(1)[0]
        size = min(w, h)
        check_size(size, option=f"the most common image size in {dirs['B']} ({w}x{h}); pass --size")
    ch = {"A": 1 if all(scans["A"][n][2] for n in names) else 3,
          "B": channels or (1 if all(scans["B"][n][2] for n in names) else 3)}
    decoded = {}
    for side in ("A", "B"):
        x, kept = decode_images([scans[side][n] for n in names], size, ch[side], skipped)
        decoded[side] = dict(zip((_key(p, dirs[side]) for p in kept), x))
    good = [n for n in names if n in decoded["A"] and n in decoded["B"]]   # a pair is only as good as both
    if skipped:
        examples = ", ".join(str(p.relative_to(root)) for p in skipped[:3])
        warnings.warn(f"pairs:{root}: skipped {len(skipped)} file(s) that are not readable images, with their "
                      f"partners (e.g. {examples})", SkippedFilesWarning, stacklevel=2)
    if len(good) < 2:
        raise BadInput(f"pairs:{root}: need at least 2 readable pairs to hold out a test split")
    a = np.stack([decoded["A"][n] for n in good])
    b = np.stack([decoded["B"][n] for n in good])
    perm = np.random.default_rng(seed).permutation(len(good))
    n_test = max(1, round(TEST_FRACTION * len(good)))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    info = {"skipped": len(skipped), "translation": {"task": None, "paired": True, "source": str(root),
                                                     "a_shape": list(a.shape[1:]), "b_shape": list(b.shape[1:])}}
    return ImageDataset(f"pairs:{root}", Split(b[tr], a=a[tr]), Split(b[te], a=a[te]), None, source=str(root),
                        info=info)


def load_unpaired(arg: str, size: int | None = None, channels: int | None = None, seed: int = 0) -> ImageDataset:
    """`unpaired:DIR_A,DIR_B`: two image folders with no pairing (CycleGAN, UNIT).

    Each is read as `folder:` (its own train/test split, skipped files, bombs refused); B is the
    target domain (`Split.x`, with its labels if it has class sub-folders) and A the input domain
    (`Split.a`, `paired=False`), scaled to B's size.
    """
    from .folder import load_folder

    parts = [p.strip() for p in arg.split(",")]
    if len(parts) != 2 or not all(parts):
        raise BadInput(f"unpaired:{arg}: give two folders, as in unpaired:photos_a,photos_b")
    b = load_folder(parts[1], size, channels, seed)
    a = load_folder(parts[0], b.shape[1], None, seed)
    info = {"skipped": a.info.get("skipped", 0) + b.info.get("skipped", 0),
            "translation": {"task": None, "paired": False, "source": arg,
                            "a_shape": list(a.shape), "b_shape": list(b.shape)}}
    return ImageDataset(f"unpaired:{arg}", Split(b.train.x, b.train.y, a.train.x, paired=False),
                        Split(b.test.x, b.test.y, a.test.x, paired=False), b.classes, source=arg, info=info)
