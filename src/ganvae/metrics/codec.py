"""An actual code for latents, and the baselines a latent code is compared with at equal bytes.

A latent of D numbers is only a compressed image once it is written down in a finite number
of bits. Here:

    Quantizer        uniform scalar quantiser, `bits` per dimension, fitted per dimension
    pack / unpack    exact bit-packing of the level indices: ceil(D * bits / 8) bytes per image
    write_codes      an .npz file of packed codes + quantiser + JSON meta; read_codes reads it
    pca_codec        the same quantise-and-pack code on PCA projections of the pixels
    jpeg_at_bytes    Pillow JPEG at the highest quality that fits a byte budget
    rate_distortion_point   bytes, bits per dimension, MSE and PSNR of one (rate, distortion) point

Rate accounting (the same for every codec, so the points are comparable): the bytes that vary
per image are counted; what every image shares is not. For a latent or PCA code that is the
packed levels, ceil(D * bits / 8) bytes; the decoder weights or the PCA basis and the
quantiser's lo / hi are shared side information, sent once. For JPEG the per-image part is the
entropy-coded scan (`scan_only=True`, the default): with Pillow's fixed (non-optimised) Huffman
tables, the headers and tables are the same bytes for every image at a given quality, so a codec
that shares them pays them once. Counting whole files instead charges JPEG ~330 header bytes
per 28 x 28 greyscale image (~620 for RGB), more than the scan itself at most qualities.

The uniform quantiser and its error bound are textbook (Gersho and Gray, "Vector Quantization
and Signal Compression", 1992, ch. 5): with L = 2^bits levels of width step = (hi - lo) / L over
[lo, hi] and reconstruction at bin centres, the error inside the range is at most step / 2.
Rate-distortion points in the sense of Ballé, Laparra, Simoncelli, "End-to-end Optimized Image
Compression", ICLR 2017; JPEG is ITU-T T.81 (1992).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from ..errors import BadInput
from ..files import atomic_write, check_npz
from ._checks import as_features
from .image_codecs import encode, jpeg_payload
from .inpainting import hole_psnr
from .probe import pca_fit

MAX_BITS = 16
# Per-dimension range = [0.1%, 99.9%] quantiles of the training codes. For a Gaussian latent and
# 10,000 training codes the extremes sit near +-3.9 sigma but these quantiles at +-3.09 sigma, so
# the step is ~21% finer for the 99.8% of values inside, and the 0.2% outside are clipped to the
# end bins. With tail = 0 the range is the training min..max.
DEFAULT_TAIL = 0.001
CODES_FORMAT = "ganvae-latent-codes"
CODES_VERSION = 1
JPEG_QUALITIES = (1, 95)      # Pillow's documented useful range; above 95 files grow for nothing


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise BadInput(f"bits: must be an integer in 1..{MAX_BITS}, got {bits!r}")
    return int(bits)


def _level_dtype(bits: int) -> np.dtype:
    """The smallest unsigned dtype that holds levels 0..2^bits - 1."""
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)


def packed_bytes(dims: int, bits: int) -> int:
    """Bytes per image of `dims` values at `bits` each, each image padded to whole bytes."""
    return math.ceil(dims * bits / 8)


# ---------------------------------------------------------------------------------------------
# quantiser


@dataclass(frozen=True)
class Quantizer:
    """Uniform scalar quantiser, one range per dimension, 2^bits levels, bin-centre decoding.

    Level i of dimension j covers [lo_j + i * step_j, lo_j + (i + 1) * step_j) with
    step_j = (hi_j - lo_j) / 2^bits and decodes to its centre lo_j + (i + 0.5) * step_j: error
    <= step_j / 2 inside [lo_j, hi_j]; values outside are clipped to the end bins. A dimension
    with hi_j == lo_j (constant in training) has step 0 and decodes every value to lo_j.

    Attributes:
        lo, hi: (D,) float64 range per dimension.
        bits: bits per dimension, 1..16.
    """

    lo: np.ndarray
    hi: np.ndarray
    bits: int

    def __post_init__(self) -> None:
        # frozen: normalise through object.__setattr__; a hand-built quantiser gets the same checks
        lo = np.asarray(self.lo, np.float64)
        hi = np.asarray(self.hi, np.float64)
        if lo.ndim != 1 or hi.shape != lo.shape:
            raise BadInput(f"Quantizer: lo {lo.shape} and hi {hi.shape} must be 1-D arrays of one length")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (hi < lo).any():
            raise BadInput("Quantizer: lo and hi must be finite with hi >= lo; fit it with Quantizer.fit")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "bits", _check_bits(self.bits))

    @classmethod
    def fit(cls, codes, bits: int, tail: float = DEFAULT_TAIL) -> "Quantizer":
        """Fit the per-dimension range on training codes (N, D): the tail and 1 - tail quantiles.

        Args:
            codes: (N, D) training codes (e.g. latent means of the training set).
            bits: bits per dimension, 1..16.
            tail: fraction of training values left below lo (and above hi), in [0, 0.5).
        """
        bits = _check_bits(bits)
        if not 0 <= tail < 0.5:
            raise BadInput(f"tail: the clipped fraction must be in [0, 0.5), got {tail!r}")
        x = as_features(codes, "codes").astype(np.float64)
        lo, hi = np.quantile(x, [tail, 1 - tail], axis=0)                   # (D,), (D,)
        return cls(lo=lo, hi=np.maximum(hi, lo), bits=bits)

    @property
    def dims(self) -> int:
        return int(self.lo.shape[0])

    @property
    def levels(self) -> int:
        return 1 << self.bits

    @property
    def step(self) -> np.ndarray:
        """(D,) bin width per dimension."""
        return (self.hi - self.lo) / self.levels

    def _width(self, a: np.ndarray, name: str) -> None:
        if a.shape[1] != self.dims:
            raise BadInput(f"{name}: has {a.shape[1]} dimensions; the quantiser was fitted on {self.dims}")

    def encode(self, codes) -> np.ndarray:
        """(N, D) floats -> (N, D) level indices, uint8 for bits <= 8 else uint16."""
        x = as_features(codes, "codes").astype(np.float64)
        self._width(x, "codes")
        step = self.step
        # constant dimensions (step 0) divide by 1 instead and all land in level 0
        t = (x - self.lo) / np.where(step > 0, step, 1.0)
        t = np.where(step > 0, t, 0.0)
        # floor, then clip: values above hi (and hi itself) go to the top bin, below lo to bin 0
        return np.clip(np.floor(t), 0, self.levels - 1).astype(_level_dtype(self.bits))

    def decode(self, levels) -> np.ndarray:
        """(N, D) level indices -> (N, D) float64 bin centres."""
        lv = _check_levels(levels, self.bits, "levels")
        self._width(lv, "levels")
        return self.lo + (lv.astype(np.float64) + 0.5) * self.step


def _check_levels(levels, bits: int, name: str) -> np.ndarray:
    lv = np.asarray(levels)
    if lv.ndim != 2:
        raise BadInput(f"{name}: expected a 2-D (N, D) array of level indices, got shape {lv.shape}")
    if not np.issubdtype(lv.dtype, np.integer):
        raise BadInput(f"{name}: level indices must be integers, got {lv.dtype}; use Quantizer.encode")
    if lv.size and (lv.min() < 0 or lv.max() >= (1 << bits)):
        raise BadInput(f"{name}: level indices must lie in 0..{(1 << bits) - 1} for {bits} bits, "
                       f"found {lv.min()}..{lv.max()}")
    return lv


# ---------------------------------------------------------------------------------------------
# bit packing


def pack(levels, bits: int) -> np.ndarray:
    """Pack (N, D) level indices at `bits` bits each: (N, ceil(D * bits / 8)) uint8.

    Each value is written most significant bit first, values in row order, and each row (one
    image) is zero-padded to a whole byte, so an image's code is a fixed-size byte string.
    """
    bits = _check_bits(bits)
    lv = _check_levels(levels, bits, "levels")
    n, d = lv.shape
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)                    # MSB first
    planes = ((lv.astype(np.uint32)[:, :, None] >> shifts) & 1).astype(np.uint8)   # (N, D, bits)
    # packbits pads each row with zeros up to a multiple of 8 bits
    return np.packbits(planes.reshape(n, d * bits), axis=1)


def unpack(packed, bits: int, dims: int) -> np.ndarray:
    """Invert `pack`: (N, ceil(dims * bits / 8)) uint8 -> (N, dims) levels (uint8 or uint16)."""
    bits = _check_bits(bits)
    p = np.asarray(packed)
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or dims < 0:
        raise BadInput(f"dims: must be a non-negative integer, got {dims!r}")
    want = packed_bytes(int(dims), bits)
    if p.dtype != np.uint8 or p.ndim != 2 or p.shape[1] != want:
        raise BadInput(f"packed: expected (N, {want}) uint8 for {dims} values at {bits} bits, "
                       f"got {p.dtype} {p.shape}")
    n = p.shape[0]
    planes = np.unpackbits(p, axis=1, count=int(dims) * bits).reshape(n, int(dims), bits)  # padding dropped
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    values = (planes.astype(np.uint32) << shifts).sum(axis=2, dtype=np.uint32)           # (N, dims)
    return values.astype(_level_dtype(bits))


# ---------------------------------------------------------------------------------------------
# codes files


class CodesFile(NamedTuple):
    """What `read_codes` returns: levels (N, D), the quantiser that decodes them, the meta dict."""

    levels: np.ndarray
    quantizer: Quantizer
    meta: dict


def _json_default(obj: Any) -> str:
    if isinstance(obj, os.PathLike):                              # a run directory is the usual case
        return os.fspath(obj)
    raise TypeError(type(obj).__name__)


def write_codes(path, levels, quantizer: Quantizer, meta: dict | None = None) -> None:
    """Write packed latent codes to an .npz file (atomically), readable with allow_pickle=False.

    Arrays: format (the string "ganvae-latent-codes"), version, packed (N, ceil(D * bits / 8))
    uint8, bits, shape [N, D], lo and hi (D,) float64, meta (a JSON string). Stored without
    compression, so the file size is the packed codes plus a small fixed overhead.

    Args:
        path: destination file (written exactly there; no suffix is added).
        levels: (N, D) level indices from quantizer.encode.
        quantizer: the fitted quantiser.
        meta: JSON-serialisable dict, e.g. {"run": run_dir, "latent": 32}; paths become strings.
    """
    if not isinstance(quantizer, Quantizer):
        raise BadInput("quantizer: pass the fitted Quantizer that produced the levels")
    lv = _check_levels(levels, quantizer.bits, "levels")
    if lv.shape[1] != quantizer.dims:
        raise BadInput(f"levels: have {lv.shape[1]} dimensions; the quantiser has {quantizer.dims}")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise BadInput(f"meta: expected a dict, got {type(meta).__name__}")
    try:
        meta_json = json.dumps(meta, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise BadInput(f"meta: must be JSON-serialisable ({e}); pass strings, numbers, lists and dicts") from None
    arrays = {
        "format": np.array(CODES_FORMAT),
        "version": np.array(CODES_VERSION, np.int64),
        "packed": pack(lv, quantizer.bits),
        "bits": np.array(quantizer.bits, np.int64),
        "shape": np.array(lv.shape, np.int64),
        "lo": np.asarray(quantizer.lo, np.float64),
        "hi": np.asarray(quantizer.hi, np.float64),
        "meta": np.array(meta_json),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:              # a file object: np.savez would append ".npz" to a name
            np.savez(f, **arrays)

    atomic_write(Path(path), write)


def read_codes(path) -> CodesFile:
    """Read a file written by `write_codes`: (levels (N, D), Quantizer, meta dict).

    Loaded with allow_pickle=False, so a file cannot run code. A missing, truncated or
    corrupted file, or an .npz that is not a codes file, raises BadInput naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such codes file; write one with `ganvae compress RUN INPUTS -o FILE`")
    what = "not a latent-codes file (`ganvae compress` writes them)"
    check_npz(path, hint="`ganvae compress RUN INPUTS -o FILE` writes codes files")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):          # a plain .npy gives an ndarray
            raise BadInput(f"{path}: {what}")
        with z:
            keys = {"format", "version", "packed", "bits", "shape", "lo", "hi", "meta"}
            if not keys <= set(z.files):
                raise BadInput(f"{path}: {what}: missing {sorted(keys - set(z.files))}")
            arrays = {k: z[k] for k in keys}               # reading an array can fail too
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        # the type only: numpy's own text for a pickle suggests loading unsafely, which is wrong here
        raise BadInput(f"{path}: not a readable .npz codes file ({type(e).__name__}); "
                       "write it again with write_codes") from None

    if arrays["format"].shape != () or str(arrays["format"]) != CODES_FORMAT:
        raise BadInput(f"{path}: {what}")
    v = arrays["version"]
    if v.shape != () or not np.issubdtype(v.dtype, np.integer) or int(v) != CODES_VERSION:
        raise BadInput(f"{path}: codes file version {v.tolist()!r} is not supported (expected {CODES_VERSION})")
    b = arrays["bits"]
    if b.shape != () or not np.issubdtype(b.dtype, np.integer) or not 1 <= int(b) <= MAX_BITS:
        raise BadInput(f"{path}: corrupted codes file: bits {b.tolist()} is not an integer in 1..{MAX_BITS}")
    bits = int(b)
    shape = arrays["shape"]
    if shape.shape != (2,) or not np.issubdtype(shape.dtype, np.integer) or (shape < 0).any():
        raise BadInput(f"{path}: corrupted codes file: shape {shape!r} is not [N, D]")
    n, d = (int(v) for v in shape)
    lo, hi = arrays["lo"], arrays["hi"]
    if (lo.shape != (d,) or hi.shape != (d,) or not np.issubdtype(lo.dtype, np.floating)
            or not np.issubdtype(hi.dtype, np.floating)
            or not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (hi < lo).any()):
        raise BadInput(f"{path}: corrupted codes file: quantiser range lo/hi does not fit {d} dimensions")
    packed = arrays["packed"]
    if packed.dtype != np.uint8 or packed.shape != (n, packed_bytes(d, bits)):
        raise BadInput(f"{path}: corrupted codes file: packed codes {packed.dtype} {packed.shape} do not "
                       f"match [N, D] = [{n}, {d}] at {bits} bits")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError:
        raise BadInput(f"{path}: corrupted codes file: meta is not JSON") from None
    if not isinstance(meta, dict):
        raise BadInput(f"{path}: corrupted codes file: meta is not a JSON object")
    quantizer = Quantizer(lo=lo, hi=hi, bits=bits)
    return CodesFile(unpack(packed, bits, d), quantizer, meta)


# ---------------------------------------------------------------------------------------------
# baselines


def _uint8_images(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != np.uint8:
        raise BadInput(f"{name}: expected uint8 pixels in 0..255, got {a.dtype}; scale and cast them")
    if a.ndim < 2 or a.shape[0] == 0:
        raise BadInput(f"{name}: expected (N, ...) images with N >= 1, got shape {a.shape}")
    return a


def pca_codec(train_flat, test_flat, dims: int, bits: int, tail: float = DEFAULT_TAIL) -> tuple[np.ndarray, int]:
    """PCA + uniform quantisation + packing: the linear codec a latent code has to beat.

    Pixels are scaled to [0, 1]; PCA (exact, `probe.pca_fit`) is fitted on the training images;
    a Quantizer is fitted on the training projections and applied to the test projections,
    which are decoded to bin centres, mapped back to pixels, rounded and clipped to uint8.

    Args:
        train_flat: (N, P) uint8 training images (any (N, ...) shape is flattened).
        test_flat: (M, P) uint8 test images (any (M, ...) shape with the same P).
        dims: PCA components kept, 1..min(N, P).
        bits: bits per component, 1..16.
        tail: the quantiser's clipped fraction per side (Quantizer.fit).
    Returns:
        (reconstructed test images, uint8, the shape of test_flat;
         bytes per image = ceil(dims * bits / 8), the same accounting as a latent code).
    """
    train = _uint8_images(train_flat, "train_flat")
    test = _uint8_images(test_flat, "test_flat")
    tr = train.reshape(len(train), -1).astype(np.float64) / 255.0              # (N, P)
    te = test.reshape(len(test), -1).astype(np.float64) / 255.0                # (M, P)
    if tr.shape[1] != te.shape[1]:
        raise BadInput(f"test_flat: has {te.shape[1]} pixels per image, the training images {tr.shape[1]}")
    bits = _check_bits(bits)
    basis = pca_fit(tr, dims)
    quantizer = Quantizer.fit(basis.transform(tr), bits, tail=tail)
    z = quantizer.decode(quantizer.encode(basis.transform(te)))                # (M, dims)
    recon = np.clip(np.rint(basis.inverse(z) * 255.0), 0, 255).astype(np.uint8)
    return recon.reshape(test.shape), packed_bytes(basis.dims, bits)


def _jpeg_scan_bytes(data: bytes) -> int:
    """Length of the entropy-coded data of a baseline JPEG: the bytes after the SOS marker
    segment up to (not including) the EOI marker (ITU-T T.81, B.2). Raises ValueError if the
    file does not have that layout. (The parsing lives in image_codecs.jpeg_payload.)"""
    return len(jpeg_payload(data))


def _jpeg_encode(images: np.ndarray, quality: int) -> list[bytes]:
    """One baseline JPEG file per image, standard Huffman tables, 4:2:0 for RGB: the headers
    are then identical for every image at this quality (image_codecs.encode)."""
    return encode(images, "jpeg", quality)


def jpeg_at_bytes(images_uint8, target_bytes: float, scan_only: bool = True) -> dict:
    """JPEG every image at the highest quality whose mean size per image is <= target_bytes.

    Binary search over Pillow qualities 1..95 (9 encodes of the set at most). JPEG size grows with
    quality almost always; the search assumes it, and it only ever returns a quality whose
    measured mean size fits, so the result never exceeds the target.

    Two sizes are measured per image: the whole file, and the entropy-coded scan only (the bytes
    after the SOS marker segment up to EOI). The headers and tables are the same for every image
    at a fixed quality (standard Huffman tables, no optimisation), so a codec that shares them
    pays them once; for 28 x 28 images they are most of the file. `scan_only` chooses which size
    is matched to the target.

    Args:
        images_uint8: (N, C, H, W) uint8, C = 1 (greyscale) or 3 (RGB).
        target_bytes: the byte budget per image, e.g. a latent code's bytes per image.
        scan_only: match the target on the scan-only mean (True) or the whole-file mean.
    Returns:
        {"images": decoded (N, C, H, W) uint8, "quality": int, "bytes": the matched mean size,
         "file_bytes": mean whole-file size, "scan_bytes": mean scan-only size}.
    Raises:
        BadInput if even quality 1 needs more than target_bytes (the message gives that size).
    """
    x = _uint8_images(images_uint8, "images_uint8")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise BadInput(f"images_uint8: expected (N, C, H, W) with C = 1 or 3, got shape {x.shape}")
    if not (isinstance(target_bytes, (int, float, np.integer, np.floating)) and math.isfinite(target_bytes)
            and target_bytes > 0):
        raise BadInput(f"target_bytes: must be a positive number of bytes per image, got {target_bytes!r}")
    measured: dict[int, tuple[float, float, float, list[bytes]]] = {}

    def measure(q: int) -> float:
        """Encode at quality q; cache (matched, file, scan means, files); return the matched mean."""
        if q not in measured:
            files = _jpeg_encode(x, q)
            file_mean = float(np.mean([len(f) for f in files]))
            scan_mean = float(np.mean([_jpeg_scan_bytes(f) for f in files]))
            measured[q] = (scan_mean if scan_only else file_mean, file_mean, scan_mean, files)
        return measured[q][0]

    lo_q, hi_q = JPEG_QUALITIES
    if measure(lo_q) > target_bytes:
        kind = "scan" if scan_only else "file"
        raise BadInput(f"target_bytes: {target_bytes:g} bytes per image is below JPEG's minimum "
                       f"({measured[lo_q][0]:.1f} {kind} bytes at quality {lo_q}); raise the target")
    if measure(hi_q) <= target_bytes:
        best = hi_q
    else:
        # invariant: lo_q fits, hi_q does not
        while hi_q - lo_q > 1:
            mid = (lo_q + hi_q) // 2
            if measure(mid) <= target_bytes:
                lo_q = mid
            else:
                hi_q = mid
        best = lo_q
    matched, file_mean, scan_mean, files = measured[best]
    mode = "L" if x.shape[1] == 1 else "RGB"
    decoded = []
    for f in files:
        with Image.open(io.BytesIO(f)) as im:
            a = np.asarray(im.convert(mode))
        decoded.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return {"images": np.stack(decoded), "quality": int(best), "bytes": matched,
            "file_bytes": file_mean, "scan_bytes": scan_mean}


def jpeg_curve(images_uint8, qualities=(1, 3, 6, 10, 20, 40, 70, 95)) -> list[dict]:
    """JPEG at fixed qualities, for a rate-distortion curve that exists even below the bytes of a
    latent code (28 x 28 images need ~40 bytes of scan data at quality 1): one dict per
    quality, {"quality", "images" decoded (N, C, H, W) uint8, "scan_bytes", "file_bytes"}
    (mean bytes per image, counted as in jpeg_at_bytes)."""
    x = _uint8_images(images_uint8, "images_uint8")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise BadInput(f"images_uint8: expected (N, C, H, W) with C = 1 or 3, got shape {x.shape}")
    mode = "L" if x.shape[1] == 1 else "RGB"
    out = []
    for q in qualities:
        files = _jpeg_encode(x, int(q))
        decoded = []
        for f in files:
            with Image.open(io.BytesIO(f)) as im:
                a = np.asarray(im.convert(mode))
            decoded.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
        out.append({"quality": int(q), "images": np.stack(decoded),
                    "scan_bytes": float(np.mean([_jpeg_scan_bytes(f) for f in files])),
                    "file_bytes": float(np.mean([len(f) for f in files]))})
    return out


def rate_distortion_point(original_uint8, reconstructed_uint8, bytes_per_image: float) -> dict:
    """One (rate, distortion) point: {"bytes", "bits_per_dim", "mse", "psnr"}.

    bytes: bytes_per_image as given. bits_per_dim: 8 * bytes / (C * H * W), bits per pixel
    value. mse: mean squared error over all pixel values on [0, 1] (intensities / 255).
    psnr: `inpainting.hole_psnr` with every pixel in the "hole" (its mask is 1 = known,
    0 = scored, so an all-zeros mask). It takes the uint8 images and divides by 255 itself, so
    the peak is 1, computes 10 log10(1 / MSE_i) per image (capped at 100 dB for a perfect image)
    and averages over images: the mean of per-image PSNRs, the convention of the completion
    metrics, not 10 log10(1 / mse) of the pooled mse above. The two agree for one image or equal
    per-image errors; otherwise the mean PSNR is the larger (Jensen: -log is convex).

    Args:
        original_uint8, reconstructed_uint8: (N, C, H, W) uint8, or (N, P) flat (scored as
            1 x 1 x P images).
        bytes_per_image: the rate, e.g. packed_bytes(D, bits) or jpeg_at_bytes(...)["bytes"].
    """
    a = _uint8_images(original_uint8, "original_uint8")
    b = _uint8_images(reconstructed_uint8, "reconstructed_uint8")
    if a.shape != b.shape:
        raise BadInput(f"reconstructed_uint8: shape {b.shape} differs from original_uint8 {a.shape}")
    if a.ndim == 2:
        a, b = a[:, None, None, :], b[:, None, None, :]                          # (N, 1, 1, P)
    if a.ndim != 4:
        raise BadInput(f"original_uint8: expected (N, C, H, W) or (N, P), got shape {a.shape}")
    if not (isinstance(bytes_per_image, (int, float, np.integer, np.floating)) and math.isfinite(bytes_per_image)
            and bytes_per_image >= 0):
        raise BadInput(f"bytes_per_image: must be a non-negative number, got {bytes_per_image!r}")
    n, c, h, w = a.shape
    mse = float(np.mean(((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2))
    # hole_psnr scores the hole, mask 0 (1 = known pixel): an all-ZEROS mask scores every pixel;
    # an all-ones mask would score none and give NaN
    psnr = hole_psnr(b, a, np.zeros((n, 1, h, w), np.float32))
    return {"bytes": float(bytes_per_image), "bits_per_dim": 8.0 * float(bytes_per_image) / (c * h * w),
            "mse": mse, "psnr": psnr}
