"""Compressed files of images: what `ganvae compress` writes and `decompress` reads (issue 35).

One file holds one set of images and its size is the rate: bytes per image = file size / N.
Two kinds, told apart by their first two bytes:

    "GC"  a learned codec's own bitstream (models/codec.py: `model.compress(x)`), its latents
          entropy-coded under the density it was trained with.
    "GQ"  any other model with an encoder (ae, vae, ...): the latent code quantised to `bits`
          per dimension (metrics/codec.py's uniform Quantizer) and entropy-coded (ganvae.entropy,
          rANS) under each dimension's histogram of the training images' levels. The quantiser's
          ranges and the histograms travel in the file (zlib-compressed), so decompress needs
          only the file and the model.

Earlier versions wrote fixed-length packed codes in an .npz ("PK", a zip): `decompress` still
reads those.

The "GQ" file: a 20-byte header (magic, version, bits, N, image C H W, latent D, the first 4
bytes of the weights' sha256), a uint32 length and the zlib'd table (lo and hi float64 (D,),
counts uint16 (D, 2^bits)), then the ANS words. `payload` is the ANS words alone: what grows
with N; the header and table are shared by every image of the file and are what a many-file
container would store once.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .data import to_float, to_uint8
from .entropy import Decoder, PmfTable, encode as entropy_encode
from .errors import BadInput, GanvaeError
from .metrics.codec import Quantizer

GQ_MAGIC, GQ_VERSION = b"GQ", 1
GQ_HEADER = struct.Struct("<2sBBIHHHH4s")      # 20 bytes
TABLE_LEN = struct.Struct("<I")
BATCH = 1000                                  # images per encoder / decoder call
# Histogram counts are stored as uint16: a fit on more images is scaled down to this total
COUNT_MAX = 65535


@dataclass(frozen=True)
class Compressed:
    """A compressed set: the file's bytes, its images, and how many bytes are shared header /
    tables (the rest, `payload`, is the entropy-coded codes)."""

    data: bytes
    n: int
    shared: int

    @property
    def payload(self) -> int:
        return len(self.data) - self.shared

    @property
    def bytes_per_image(self) -> float:
        return len(self.data) / self.n

    @property
    def payload_per_image(self) -> float:
        return self.payload / self.n


def writes_own_bitstream(model) -> bool:
    """Whether the model codes its own latents (a learned codec) rather than being quantised here."""
    return callable(getattr(model, "compress", None)) and callable(getattr(model, "decompress", None))


def _fingerprint(model) -> bytes:
    from .models.base import weights_fingerprint

    return bytes.fromhex(weights_fingerprint(model)[:8])


def _codes(model, x: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) -> the encoder's codes (N, D) float64 (evaluation's batching)."""
    from .evaluation import model_features

    return model_features(model, x, desc=f"{model.name}: encoding")[1].astype(np.float64)


@torch.no_grad()
def _decode(model, codes: np.ndarray) -> np.ndarray:
    out = [to_uint8(model.decode(torch.from_numpy(np.ascontiguousarray(codes[i:i + BATCH], np.float32))
                                 .to(model.device))).cpu().numpy() for i in range(0, len(codes), BATCH)]
    return np.concatenate(out)


@dataclass(frozen=True)
class LevelModel:
    """What the "GQ" file carries besides the codes: the quantiser and, per dimension, the
    histogram of the training images' levels (the pmf the levels are coded with)."""

    quantizer: Quantizer
    counts: np.ndarray          # (D, 2^bits) uint16

    @classmethod
    def fit(cls, model, fit_x: np.ndarray, bits: int) -> "LevelModel":
        """Fit on uint8 training images (N, C, H, W): the ranges (Quantizer.fit) and histograms."""
        return cls.from_codes(_codes(model, fit_x), bits)

    @classmethod
    def from_codes(cls, z: np.ndarray, bits: int) -> "LevelModel":
        """Fit on the training images' codes (N, D)."""
        q = Quantizer.fit(z, bits)
        lv = q.encode(z).astype(np.int64)                                     # (N, D)
        counts = np.stack([np.bincount(lv[:, j], minlength=q.levels) for j in range(q.dims)])
        if counts.sum(1).max() > COUNT_MAX:   # keep each row's shape, in uint16
            counts = np.floor(counts * (COUNT_MAX / counts.sum(1, keepdims=True))).astype(np.int64)
        return cls(q, counts.astype(np.uint16))

    def table(self) -> PmfTable:
        """Row j: dimension j's levels 0..2^bits-1; every level gets half a count (so a level no
        training image used can still be coded, at a cost), and the escape tails none (a level
        is never outside the range: the quantiser clips)."""
        return PmfTable(lo=np.zeros(self.quantizer.dims, np.int64),
                        pmfs=tuple(np.concatenate([[0.0], c.astype(np.float64) + 0.5, [0.0]]) for c in self.counts))

    def pack(self) -> bytes:
        q = self.quantizer
        raw = q.lo.astype("<f8").tobytes() + q.hi.astype("<f8").tobytes() + self.counts.astype("<u2").tobytes()
        z = zlib.compress(raw, 9)
        return TABLE_LEN.pack(len(z)) + z

    @classmethod
    def unpack(cls, data: bytes, dims: int, bits: int) -> tuple["LevelModel", int]:
        """-> (the model, bytes read)."""
        if len(data) < TABLE_LEN.size:
            raise GanvaeError("truncated file: no table")
        (n,) = TABLE_LEN.unpack(data[:TABLE_LEN.size])
        try:
            raw = zlib.decompress(data[TABLE_LEN.size:TABLE_LEN.size + n])
        except zlib.error:
            raise GanvaeError("damaged file: its table does not decompress") from None
        if len(raw) != 16 * dims + 2 * dims * (1 << bits):
            raise GanvaeError("damaged file: its table does not fit its header")
        lo = np.frombuffer(raw[:8 * dims], "<f8")
        hi = np.frombuffer(raw[8 * dims:16 * dims], "<f8")
        counts = np.frombuffer(raw[16 * dims:], "<u2").reshape(dims, 1 << bits)
        try:
            q = Quantizer(lo=lo.copy(), hi=hi.copy(), bits=bits)
        except BadInput:
            raise GanvaeError("damaged file: its quantiser ranges are invalid") from None
        return cls(q, counts.copy()), TABLE_LEN.size + n


def compress_quantised(model, x: np.ndarray, levels: LevelModel, codes: np.ndarray | None = None) -> Compressed:
    """uint8 images (N, C, H, W) -> a "GQ" file of their quantised, entropy-coded codes (the
    encoder's `codes` (N, D) of x, if already at hand)."""
    q = levels.quantizer
    lv = q.encode(_codes(model, x) if codes is None else codes).astype(np.int64)       # (N, D)
    rows = np.broadcast_to(np.arange(q.dims), lv.shape)
    c, h, w = x.shape[1:]
    head = GQ_HEADER.pack(GQ_MAGIC, GQ_VERSION, q.bits, len(x), c, h, w, q.dims, _fingerprint(model)) + levels.pack()
    return Compressed(head + entropy_encode([(lv, rows, levels.table())]), len(x), len(head))


def compress(model, x: np.ndarray, *, bits: int | None = None, fit_x: np.ndarray | None = None,
             levels: LevelModel | None = None) -> Compressed:
    """uint8 images (N, C, H, W) -> their compressed file. A learned codec writes its own
    bitstream; any other encoder model is quantised at `bits` per dimension, with a LevelModel
    given or fitted on the uint8 training images `fit_x`."""
    if not len(x):
        raise BadInput("compress: no images")
    if writes_own_bitstream(model):
        from .models.codec import HEADER
        return Compressed(model.compress(to_float(torch.from_numpy(x)).to(model.device)), len(x), HEADER.size)
    if levels is None:
        if bits is None or fit_x is None:
            raise BadInput("compress: a model without its own codec needs bits and training images to fit on")
        levels = LevelModel.fit(model, fit_x, bits)
    return compress_quantised(model, x, levels)


def kind(data: bytes) -> str:
    """"codec", "quantised" or "npz" (the old packed codes) from a file's first bytes."""
    head = bytes(data[:2])
    if head == b"GC":
        return "codec"
    if head == GQ_MAGIC:
        return "quantised"
    if head == b"PK":
        return "npz"
    raise BadInput("not a ganvae compressed file (it starts with neither GC nor GQ): write one with `ganvae compress`")


def read_quantised(model, data: bytes) -> tuple[np.ndarray, LevelModel, tuple[int, int, int]]:
    """A "GQ" file -> (levels (N, D) int64, its LevelModel, the image shape (C, H, W)); refuses a
    file made by another model or format version."""
    if len(data) < GQ_HEADER.size:
        raise GanvaeError("truncated file: shorter than its header")
    magic, version, bits, n, c, h, w, dims, fp = GQ_HEADER.unpack(bytes(data[:GQ_HEADER.size]))
    if version != GQ_VERSION:
        raise BadInput(f"format version {version}; this ganvae reads version {GQ_VERSION}")
    cfg = model.config
    if (c, h, w) != (cfg.channels, cfg.size, cfg.size) or dims != cfg.latent or fp != _fingerprint(model):
        raise BadInput(f"made by another model ({c}x{h}x{w} images, {dims}-dim codes): decompress it with that model")
    levels, used = LevelModel.unpack(bytes(data[GQ_HEADER.size:]), dims, bits)
    dec = Decoder(bytes(data[GQ_HEADER.size + used:]))
    lv = dec.decode(np.broadcast_to(np.arange(dims), (n, dims)).reshape(-1), levels.table()).reshape(n, dims)
    dec.finish()
    return lv, levels, (c, h, w)


def decompress(model, data: bytes) -> np.ndarray:
    """A file's bytes ("GC" or "GQ") -> the decoded images, uint8 (N, C, H, W)."""
    k = kind(data)
    if k == "codec":
        if not writes_own_bitstream(model):
            raise BadInput(f"written by a learned codec; {model.name} is not one: decompress it with that run")
        return to_uint8(model.decompress(data)).cpu().numpy()
    if k == "npz":
        raise BadInput("an .npz of packed codes: read it with metrics.codec.read_codes")
    if writes_own_bitstream(model):
        raise BadInput(f"written from quantised codes of another kind of model; {model.name} is a learned codec")
    lv, levels, _ = read_quantised(model, data)
    return _decode(model, levels.quantizer.decode(lv))
