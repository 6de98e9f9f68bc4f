"""Images held in memory (a numpy array, a torch tensor, a torch Dataset) as the data of a run,
for the Python API: `ganvae.train("vae", x)`, `ganvae.train("cvae", x, labels=y)`.

A run must reload its data from the spec string in its config.json (`ganvae eval RUN`,
`ganvae sample RUN`, `train --resume`), so the images are kept in the run directory as the
archive `npz:PATH` already reads (data.npz: `x` uint8 (N, C, H, W), `y` int64 (N,)), and
data.json beside it records where they came from and their fingerprint. Data larger than
MAX_KEPT_BYTES is not copied: the run records `memory:<fingerprint>`, a spec that loads only
while the same images are passed again (`registered`), and fails with one line otherwise.

Accepted, and nothing else guessed at:
    images   uint8 in [0, 255] or floats in [0, 1]; (N, H, W), (N, C, H, W) or (N, H, W, C),
             C in {1, 3}; square, unless a size to resize them to is given (check_square)
    labels   integers 0..K-1, one per image: `labels=`, a tuple (x, y), or a Dataset's items
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import BadInput
from ..files import LOCK_NAME, atomic_write, write_json
from .base import MAX_SIDE, ImageDataset
from .npz import check_labels, npz_dataset

# Above this many bytes of uint8 images (and labels) the run keeps no copy. Writing the
# compressed archive runs at ~35 MB/s on this project's CPU (14 MB/s for noise, which does not
# compress), so 200 MB costs 6 to 15 s and its share of disk in every run of a sweep; data that
# large is on disk already, where `npz:PATH` reads it without a copy.
MAX_KEPT_BYTES = 200_000_000
DATA_FILE = "data.npz"
INFO_FILE = "data.json"
# a float this far outside [0, 1] is rounding (a bicubic resize overshoots a little), clipped; more
# is another scale ([-1, 1], [0, 255]), refused
FLOAT_SLACK = 1e-3

_REGISTERED: dict[str, "InMemory"] = {}   # fingerprint -> the images `memory:<fingerprint>` loads


@dataclass
class InMemory:
    """Images and labels given in memory, checked and in the form every data form yields."""

    x: np.ndarray                # uint8 (N, C, H, W)
    y: np.ndarray | None         # int64 (N,) or None
    given: str                   # what the user passed, for data.json and messages
    fingerprint: str = field(init=False)   # sha256, hex

    def __post_init__(self) -> None:
        # sha256 of the canonical arrays with their shapes: the same images give the same
        # fingerprint whether they came as uint8 or [0, 1] floats, channels first or last
        h = hashlib.sha256(f"x uint8 {self.x.shape}".encode())
        h.update(np.ascontiguousarray(self.x).data)
        if self.y is not None:
            h.update(f"y int64 {self.y.shape}".encode())
            h.update(np.ascontiguousarray(self.y).data)
        self.fingerprint = h.hexdigest()

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + (0 if self.y is None else self.y.nbytes)

    @property
    def kept(self) -> bool:
        """Whether a copy goes into the run directory (small enough, MAX_KEPT_BYTES)."""
        return self.nbytes <= MAX_KEPT_BYTES


def as_in_memory(data: Any, labels: Any = None, name: str = "data") -> InMemory:
    """Images (and labels) given in memory, checked and converted; every error is a one-line
    BadInput naming `name` (the argument) or `labels`.

    Args:
        data: a numpy array or torch tensor of images, a tuple (images, labels), or a
            torch.utils.data.Dataset whose items are an image or (image, label); a Dataset is
            iterated once and materialised in memory.
        labels: integer class ids, one per image (not with a tuple or a labelled Dataset).
    """
    import torch

    given = _describe(data)
    if isinstance(data, tuple):
        if labels is not None:
            raise BadInput(f"{name}: a tuple (images, labels) and labels= as well; give the labels once")
        data, labels = data
        if not isinstance(data, (np.ndarray, torch.Tensor)):
            raise BadInput(f"{name}: a tuple's first item is a {type(data).__name__}; give (images, labels) with "
                           "images a numpy array or torch tensor")
    elif isinstance(data, torch.utils.data.Dataset):
        data, own = _materialise(data, name)
        if own is not None and labels is not None:
            raise BadInput(f"{name}: the Dataset's items carry labels and labels= is given too; give them once")
        labels = own if own is not None else labels
    x = images_uint8(data, name)
    n, _, h, w = x.shape
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise BadInput(f"{name}: images are {h}x{w}; at most {MAX_SIDE} pixels a side")
    if n < 2:   # the npz rule: one image is held out as the test split, one left to train on
        raise BadInput(f"{name}: {n} image; give at least 2 (a tenth is held out as the test split)")
    y = None
    if labels is not None:
        y = check_labels("labels", _labels_array(labels), n)
    return InMemory(x, y, given)


def check_square(mem: InMemory, size: int | None, name: str = "data") -> None:
    """Refuse images that are not square when no size is given to resize them to: the
    networks are square, and npz:PATH would crop them to their centre without a word."""
    h, w = mem.x.shape[2:]
    if h != w and not size:
        raise BadInput(f"{name}: images are {h}x{w} (height x width); the networks need square images: crop them, "
                       "or pass data_size=N to scale the shorter side to N and crop the centre")


def images_uint8(x: Any, name: str = "data") -> np.ndarray:
    """A batch of images as uint8 (N, C, H, W) from a numpy array or torch tensor: uint8 as it
    is, floats in [0, 1] scaled by 255 and rounded; (N, H, W) is grey, (N, H, W, C) is moved
    to channels first. A [-1, 1] float (what models output) is refused, not guessed at."""
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # numpy has no bfloat16; half floats hold [0, 1] images exactly enough in float32
        x = (x.float() if x.is_floating_point() else x).numpy()
    if not isinstance(x, np.ndarray):
        raise BadInput(f"{name}: a {type(x).__name__}; give a numpy array or torch tensor of images, "
                       "(N, H, W), (N, H, W, C) or (N, C, H, W)")
    shape = x.shape
    if x.ndim == 3:                          # (N, H, W): grey
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)          # (N, H, W, C) -> (N, C, H, W)
    elif x.ndim != 4:
        raise BadInput(f"{name}: shape {shape} has {x.ndim} dimensions; give a batch of images (N, H, W), "
                       "(N, H, W, C) or (N, C, H, W) (one image: x[None])")
    elif x.shape[1] not in (1, 3):
        raise BadInput(f"{name}: shape {shape}: images have 1 (grey) or 3 (RGB) channels, in dimension 1 "
                       f"(N, C, H, W) or 3 (N, H, W, C); found {x.shape[1]} and {x.shape[3]} there")
    if len(x) == 0:
        raise BadInput(f"{name}: shape {shape} holds no images")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        fits = np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255
        hint = " (its values lie in 0..255: x.astype(np.uint8))" if fits else ""
        raise BadInput(f"{name}: {x.dtype} values; give uint8 in [0, 255] or floats in [0, 1]{hint}")
    if not np.isfinite(x).all():
        raise BadInput(f"{name}: holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
        hint = ("give [-1, 1] images as (x + 1) / 2" if lo >= -1 - FLOAT_SLACK and hi <= 1 + FLOAT_SLACK else
                "give [0, 255] values as uint8" if lo >= 0 and hi <= 255 + FLOAT_SLACK else
                "scale them to [0, 1]")
        raise BadInput(f"{name}: float values in [{lo:.4g}, {hi:.4g}]; floats must be images in [0, 1]: {hint}")
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _materialise(ds: Any, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A torch Dataset iterated once: (images stacked (N, ...), labels (N,) or None). Items are
    an image (tensor, array or PIL image) or (image, label), all of one kind."""
    try:
        items: Any = (ds[i] for i in range(len(ds)))   # map-style: by index
    except TypeError:                                  # an IterableDataset has no len
        items = iter(ds)
    images, labels = [], []
    for i, item in enumerate(items):
        if isinstance(item, (tuple, list)) and len(item) == 1:
            item = item[0]                             # TensorDataset(x) gives (image,)
        pair = isinstance(item, (tuple, list))
        if pair and len(item) != 2:
            raise BadInput(f"{name}: item {i} of the Dataset is a {type(item).__name__} of {len(item)}; "
                           "items must be an image or (image, label)")
        if i and pair != (labels[0] is not None):
            raise BadInput(f"{name}: item {i} of the Dataset {'has' if pair else 'lacks'} a label and item 0 "
                           f"{'does not' if pair else 'has one'}; give all items as (image, label) or all as images")
        image, label = item if pair else (item, None)
        image = np.asarray(image.detach().cpu().float() if _is_float_tensor(image) else image)
        if images and image.shape != images[0].shape:
            raise BadInput(f"{name}: item {i} of the Dataset is an image of shape {image.shape}, item 0 of "
                           f"{images[0].shape}; give images of one size")
        images.append(image)
        labels.append(None if label is None else _one_label(label, i, name))
    if not images:
        raise BadInput(f"{name}: the Dataset holds no items")
    y = None if labels[0] is None else np.asarray(labels, dtype=np.int64)
    return np.stack(images), y


def _is_float_tensor(a: Any) -> bool:
    import torch

    return isinstance(a, torch.Tensor) and a.is_floating_point()


def _one_label(label: Any, i: int, name: str) -> int:
    a = np.asarray(label.detach().cpu() if hasattr(label, "detach") else label)
    if a.shape != () or not np.issubdtype(a.dtype, np.integer):
        raise BadInput(f"{name}: item {i} of the Dataset has label {label!r}; give one integer class id per image")
    return int(a)


def _labels_array(labels: Any) -> np.ndarray:
    import torch

    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy()
    a = np.asarray(labels)
    if a.dtype == object:
        raise BadInput("labels: not an array of integers; give one integer class id per image")
    return a


def _describe(data: Any) -> str:
    """What the user passed, in a few words: `numpy.ndarray uint8 (100, 28, 28)`."""
    if isinstance(data, tuple) and len(data) == 2:
        return f"({_describe(data[0])}, labels)"
    kind = f"{type(data).__module__.split('.')[0]}.{type(data).__name__}"
    shape = getattr(data, "shape", None)
    if shape is not None:
        return f"{kind} {str(getattr(data, 'dtype', '')).replace('torch.', '')} {tuple(shape)}"
    return kind


# ----------------------------------------------------------------------------- in the run

def memory_spec(mem: InMemory) -> str:
    """The spec of images not kept in the run: loadable only while they are `registered`."""
    return f"memory:{mem.fingerprint}"


def keep(mem: InMemory, directory: Path, what: str) -> tuple[str, list[Path]]:
    """Keep the images in `directory` (a run directory, a comparison's --out): data.npz when
    they are small enough, and data.json either way. -> (the data spec to record, the files
    written now). Images already kept there with the same fingerprint are not written again.

    what: how the user named the directory, for the message (`run_dir runs/x`, `out cmp`).
    """
    directory = Path(directory).resolve()   # the spec must name the file from any working directory
    spec = f"npz:{directory / DATA_FILE}" if mem.kept else memory_spec(mem)
    saved = kept_info(directory)
    same = saved is not None and saved.get("fingerprint") == mem.fingerprint
    if same and (not mem.kept or (directory / DATA_FILE).is_file()):
        return spec, []
    others = [p for p in directory.iterdir() if p.name not in (DATA_FILE, INFO_FILE, LOCK_NAME)] \
        if directory.is_dir() else []
    if saved is not None and not same and others:   # (with nothing else there: a start that failed)
        theirs = str(saved.get("fingerprint"))[:12]
        raise BadInput(f"{what}: holds results of other in-memory images (fingerprint {theirs}, these are "
                       f"{mem.fingerprint[:12]}); give another directory")
    written = []
    if mem.kept:
        arrays = {"x": mem.x} if mem.y is None else {"x": mem.x, "y": mem.y}
        atomic_write(directory / DATA_FILE, lambda p: _savez(p, arrays))
        written.append(directory / DATA_FILE)
    else:
        import warnings

        warnings.warn(f"{mem.nbytes / 1e6:.0f} MB of in-memory images is over the {MAX_KEPT_BYTES / 1e6:.0f} MB a run "
                      f"keeps a copy of: {directory} records only their fingerprint, and reloads them only when "
                      "they are passed again; to keep them, save them (numpy.savez_compressed(PATH, x=..., y=...)) "
                      "and train on data='npz:PATH'", stacklevel=3)
    write_json(directory / INFO_FILE, {
        "source": "in-memory", "given": mem.given, "fingerprint": mem.fingerprint, "fingerprint_of":
        "sha256 of x uint8 (N, C, H, W) and y int64 (N,) with their shapes", "images": len(mem.x),
        "shape": list(mem.x.shape[1:]), "labels": mem.y is not None, "bytes": mem.nbytes,
        "file": DATA_FILE if mem.kept else None, "spec": spec})
    written.append(directory / INFO_FILE)
    return spec, written


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # savez_compressed appends .npz to a name without it; the temporary file has another suffix
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def kept_info(directory: Path) -> dict | None:
    """data.json of a directory that keeps in-memory images, or None."""
    p = Path(directory) / INFO_FILE
    if not p.is_file():
        return None
    try:
        info = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{p}: not valid JSON ({e})") from None
    return info if isinstance(info, dict) else None


def discard(written: list[Path]) -> None:
    """Remove the files `keep` wrote, and their directory when nothing else is left in it: a
    run or comparison that failed before it started leaves nothing behind."""
    for p in written:
        p.unlink(missing_ok=True)
    if written and written[0].parent.is_dir() and not any(written[0].parent.iterdir()):
        written[0].parent.rmdir()


@contextlib.contextmanager
def registered(mem: InMemory) -> Iterator[str]:
    """While inside, `memory:<fingerprint>` loads these images (a run over MAX_KEPT_BYTES, whose
    directory keeps no copy, trains, resumes and is scored this way). Yields that spec."""
    before = _REGISTERED.get(mem.fingerprint)   # (registered already by a caller: it stays so)
    _REGISTERED[mem.fingerprint] = mem
    try:
        yield memory_spec(mem)
    finally:
        if before is None:
            _REGISTERED.pop(mem.fingerprint, None)


def load_memory(arg: str, size: int | None = None, channels: int | None = None, seed: int = 0) -> ImageDataset:
    """`memory:<fingerprint>`: the registered images of that fingerprint, split as npz:PATH
    splits the same arrays; unregistered, a one-line error that says what to pass."""
    mem = _REGISTERED.get(arg)
    if mem is None:
        raise BadInput(f"--data memory:{arg[:12]}: the run was trained on in-memory images (sha256 {arg[:12]}...) "
                       f"too large to keep a copy of (over {MAX_KEPT_BYTES / 1e6:.0f} MB); pass the same images "
                       "again: ganvae.evaluate(RUN, data=images) or ganvae.train(PRESET, images, run_dir=RUN, "
                       "resume=True)")
    return npz_dataset(f"memory:{arg}", mem.x, mem.y, None, None, size, channels, seed, source="in-memory images")
