"""Classical image codecs as baselines for learned compression: JPEG, WebP and PNG through
Pillow, each image its own file, with the bytes counted the same way for all three; and
MS-SSIM for small images.

    encode / decode           one file per image, (N, C, H, W) uint8 <-> list of bytes
    payload / payload_bytes   the per-image part of a file, found by walking its markers/chunks
    codec_curve               fixed qualities: mean file and payload bytes, decoded images
    codec_at_bytes            the one quality for a whole set whose mean bytes is nearest a target
    ms_ssim, ms_ssim_config   multi-scale SSIM per image, in a configuration that fits the size

Rate accounting. Every file is counted twice:

    file_bytes      len(file): the whole file, as it would sit on disk.
    payload_bytes   what is left once the parts that are byte-for-byte the same for every image
                    at one setting (format, quality, image size and mode) are taken out, with
                    the length fields and checksums of the container: a file holding many
                    images would store the shared parts once and need its own framing anyway.
                    Per format:
        JPEG  the entropy-coded data of the one scan: the bytes after the SOS marker segment up
              to the EOI marker (ITU-T T.81, B.2). SOI, APP0, DQT, SOF0, DHT, the SOS header and
              EOI are shared: Pillow writes the standard Huffman tables (optimize=False) and one
              baseline scan, so at one quality and size they are identical for every image.
        WebP  the VP8 bitstream of the "VP8 " chunk less its 7 constant bytes: the 3-byte frame
              tag stays (it holds the 19-bit size of the first partition, which varies per image
              and which a decoder needs to find the token partition), then the first partition
              (modes, quantisers, probability updates) and the token partition(s). Left out:
              the RIFF header ("RIFF", size, "WEBP"), the chunk header, the pad byte of an odd
              chunk, and the key frame's start code (9d 01 2a) and 14-bit width / height with
              their scaling bits (RFC 6386, 9.1; the WebP container spec). For a lossless "VP8L"
              chunk: its data less the 5-byte header (signature 0x2f, width, height, alpha hint,
              version). An "ALPH" chunk's data would count too (RGB and grey images have none).
        PNG   the zlib stream: the data of the IDAT chunk(s), concatenated (its 2-byte zlib
              header and 4-byte Adler-32 included). Left out: the 8-byte signature, IHDR, IEND
              and every chunk's length, type and CRC.

Counting payloads is the fair comparison with a latent code (whose bytes are the packed levels,
decoder weights shared; metrics/codec.py counts the same way): at 28 x 28 the shared parts are
~330 bytes of a grey JPEG (625 RGB), 27 of a WebP and 57 of a PNG, more than the JPEG payload
itself at most qualities. Figures should use payload_bytes and say so; file_bytes is there to be
reported beside it.

Settings. JPEG: Pillow quality 1..95 searched (encode takes up to 100), standard tables, one
baseline scan, 4:2:0 chroma subsampling for RGB, mode "L" for grey. WebP: lossy, quality 0..100,
method 6 (libwebp's slowest and smallest). WebP has no grey mode (VP8 codes Y'CbCr 4:2:0, luma
in the studio range 16..235): a grey image is encoded as RGB with three equal channels and its
decoding is converted back to "L" (ITU-R 601 luma), so even quality 100 is not lossless. PNG:
lossless, zlib level 9, mode "L" or "RGB", one setting (no quality).

MS-SSIM is Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality
assessment", Asilomar 2003, computed with pytorch-msssim (1.0; see ms_ssim_config for the
configuration at small sizes). It was chosen over torchmetrics and piq: it needs only torch
(piq needs torchvision), and it computes SSIM and contrast-structure alike over the valid region
with the window it is given, where torchmetrics' MS-SSIM (its source as of 1.9) sizes the
Gaussian from sigma alone (kernel_size enters only its size check) and averages SSIM over a
reflect-padded image but contrast-structure over the valid part. Its one obstacle, a size
assertion that assumes 5 scales, is worked round for fewer scales in _ms_ssim_scales.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import BadInput

FORMATS = ("jpeg", "webp", "png")
# qualities encode accepts; and the range codec_at_bytes searches
QUALITY_LIMITS = {"jpeg": (1, 100), "webp": (0, 100)}
SEARCH_RANGE = {"jpeg": (1, 95), "webp": (0, 100)}
DEFAULT_QUALITIES = {"jpeg": (1, 3, 6, 10, 20, 40, 70, 95), "webp": (0, 5, 10, 20, 40, 70, 90, 100),
                     "png": (None,)}
WEBP_METHOD = 6
PNG_LEVEL = 9

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VP8_START_CODE = b"\x9d\x01\x2a"
VP8L_SIGNATURE = 0x2F


# ---------------------------------------------------------------------------------------------
# input checks


def _check_images(images, name: str = "images") -> np.ndarray:
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise BadInput(f"{name}: expected uint8 pixels in 0..255, got {x.dtype}; scale and cast them")
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise BadInput(f"{name}: expected (N, C, H, W) with N >= 1 and C = 1 or 3, got shape {x.shape}")
    return x


def _check_format(fmt) -> str:
    f = str(fmt).lower()
    f = "jpeg" if f == "jpg" else f
    if f not in FORMATS:
        raise BadInput(f"fmt: unknown image format {fmt!r}; use one of {', '.join(FORMATS)}")
    return f


def _check_quality(fmt: str, quality):
    if fmt == "png":
        if quality is not None:
            raise BadInput(f"quality: PNG is lossless and has one setting; pass None, not {quality!r}")
        return None
    lo, hi = QUALITY_LIMITS[fmt]
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not lo <= quality <= hi:
        raise BadInput(f"quality: {fmt} quality must be an integer in {lo}..{hi}, got {quality!r}")
    return int(quality)


# ---------------------------------------------------------------------------------------------
# encoding and decoding


def _to_pil(img: np.ndarray) -> Image.Image:
    """(C, H, W) uint8 -> a Pillow image, "L" for C = 1 and "RGB" for C = 3."""
    return Image.fromarray(img[0], "L") if img.shape[0] == 1 else Image.fromarray(img.transpose(1, 2, 0), "RGB")


def encode(images, fmt: str, quality: int | None = None) -> list[bytes]:
    """Encode every image as its own file.

    Args:
        images: (N, C, H, W) uint8, C = 1 (grey) or 3 (RGB).
        fmt: "jpeg", "webp" or "png".
        quality: JPEG 1..100, WebP 0..100; None for PNG.
    Returns:
        N byte strings, one complete file each.
    """
    x = _check_images(images)
    fmt = _check_format(fmt)
    quality = _check_quality(fmt, quality)
    out = []
    for img in x:
        im = _to_pil(img)
        buf = io.BytesIO()
        if fmt == "jpeg":
            # standard Huffman tables (optimize=False) and one baseline scan: the headers are then
            # the same for every image at this quality, which is what makes them shared
            im.save(buf, "JPEG", quality=quality, optimize=False, progressive=False, subsampling="4:2:0")
        elif fmt == "webp":
            # lossy VP8 has no grey mode: three equal channels, converted back on decoding
            im.convert("RGB").save(buf, "WEBP", quality=quality, lossless=False, method=WEBP_METHOD)
        else:
            im.save(buf, "PNG", compress_level=PNG_LEVEL)
        out.append(buf.getvalue())
    return out


def decode(files, channels: int) -> np.ndarray:
    """Decode files written by `encode` to (N, channels, H, W) uint8 (grey WebP back to "L")."""
    if channels not in (1, 3):
        raise BadInput(f"channels: must be 1 or 3, got {channels!r}")
    mode = "L" if channels == 1 else "RGB"
    decoded = []
    for f in files:
        with Image.open(io.BytesIO(f)) as im:
            a = np.asarray(im.convert(mode))
        decoded.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(decoded)


# ---------------------------------------------------------------------------------------------
# payloads


def jpeg_payload(data: bytes) -> bytes:
    """The entropy-coded data of a one-scan JPEG: the bytes after the SOS marker segment up to
    (not including) the EOI marker that ends the file (ITU-T T.81, B.2, B.3).

    The marker segments before SOS are walked by their lengths; inside the scan a 0xFF byte is
    followed by 0x00 (a stuffed zero) or a restart marker RST0..7 (both part of the scan data),
    so the first other marker ends the scan: it must be EOI, at the end of the file.

    Raises:
        ValueError if the file does not have that layout (no SOI / SOS / EOI, a truncated
        segment, a second scan as in a progressive JPEG, bytes after EOI).
    """
    n = len(data)
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI marker")
    i = 2
    while True:
        if i + 2 > n:
            raise ValueError("no SOS marker")
        if data[i] != 0xFF:
            raise ValueError(f"expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:                                   # a fill byte before a marker (B.1.1.2)
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:          # TEM, RSTn: markers without a segment
            i += 2
            continue
        if marker in (0xD8, 0xD9):
            raise ValueError(f"unexpected {'SOI' if marker == 0xD8 else 'EOI'} marker at byte {i}")
        if i + 4 > n:
            raise ValueError("truncated marker segment")
        length = int.from_bytes(data[i + 2:i + 4], "big")    # counts its own 2 bytes
        if length < 2 or i + 2 + length > n:
            raise ValueError(f"marker segment at byte {i} runs past the end of the file")
        if marker == 0xDA:                                   # SOS: the entropy-coded data follows
            start = i + 2 + length
            break
        i += 2 + length
    j = start
    while True:
        j = data.find(b"\xff", j)
        if j == -1 or j + 1 >= n:
            raise ValueError("no EOI marker")
        follower = data[j + 1]
        if follower == 0x00 or 0xD0 <= follower <= 0xD7:
            j += 2
            continue
        break
    if follower != 0xD9:
        raise ValueError(f"marker 0xFF{follower:02X} after the scan: not a one-scan (baseline) JPEG")
    if j + 2 != n:
        raise ValueError("bytes after the EOI marker")
    return data[start:j]


def _vp8_payload(body: bytes) -> bytes:
    """A lossy VP8 key frame less its start code and dimensions (RFC 6386, 9.1): frame tag +
    partitions."""
    if len(body) < 10:
        raise ValueError("VP8 chunk shorter than a key frame header")
    tag = int.from_bytes(body[:3], "little")
    if tag & 1:
        raise ValueError("VP8 frame is not a key frame")
    if (tag >> 1) & 7 > 3:
        raise ValueError(f"VP8 version {(tag >> 1) & 7} is not one of 0..3")
    if not (tag >> 4) & 1:
        raise ValueError("VP8 frame is not shown")
    if body[3:6] != VP8_START_CODE:
        raise ValueError("no VP8 start code")
    if 10 + (tag >> 5) > len(body):
        raise ValueError("VP8 first partition runs past the end of its chunk")
    return body[:3] + body[10:]


def _vp8l_payload(body: bytes) -> bytes:
    """A lossless VP8L bitstream less its 5-byte header (signature, size, alpha hint, version)."""
    if len(body) < 5 or body[0] != VP8L_SIGNATURE:
        raise ValueError("no VP8L signature")
    if int.from_bytes(body[1:5], "little") >> 29:
        raise ValueError("VP8L version is not 0")
    return body[5:]


def webp_payload(data: bytes) -> bytes:
    """The per-image part of a still WebP file: the "VP8 " bitstream less its 7 constant bytes
    (or the "VP8L" bitstream less its 5-byte header), after the data of an "ALPH" chunk if any.

    The RIFF chunks are walked by their sizes (odd sizes padded by one byte); VP8X, ICCP, EXIF,
    XMP and unknown chunks are metadata, not payload.

    Raises:
        ValueError on a file that is not a RIFF WEBP of that layout (wrong RIFF size, truncated
        chunk, no image chunk or two, an animation).
    """
    n = len(data)
    if n < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("no RIFF WEBP header")
    if int.from_bytes(data[4:8], "little") + 8 != n:
        raise ValueError("the RIFF size does not match the file")
    i, alpha, image = 12, b"", None
    while i < n:
        if i + 8 > n:
            raise ValueError(f"truncated chunk header at byte {i}")
        fourcc = data[i:i + 4]
        size = int.from_bytes(data[i + 4:i + 8], "little")
        if i + 8 + size > n:
            raise ValueError(f"chunk {fourcc!r} at byte {i} runs past the end of the file")
        body = data[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)
        if fourcc in (b"VP8 ", b"VP8L"):
            if image is not None:
                raise ValueError("more than one image chunk")
            image = _vp8_payload(body) if fourcc == b"VP8 " else _vp8l_payload(body)
        elif fourcc == b"ALPH":
            alpha = body
        elif fourcc in (b"ANIM", b"ANMF"):
            raise ValueError("an animated WebP, not a still image")
    if i != n:
        raise ValueError("the last chunk's padding runs past the end of the file")
    if image is None:
        raise ValueError("no VP8 or VP8L chunk")
    return alpha + image


def png_payload(data: bytes) -> bytes:
    """The zlib stream of a PNG: the data of its IDAT chunks, concatenated (PNG spec, 5.3, 11.2.4).

    Chunks are walked by their lengths and their CRCs checked.

    Raises:
        ValueError on a file that is not a PNG of that layout (no signature, IHDR not first,
        a bad CRC, IDAT chunks not consecutive or missing, no IEND at the end).
    """
    n = len(data)
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("no PNG signature")
    i, parts, idat_done, first = len(PNG_SIGNATURE), [], False, True
    while True:
        if i + 12 > n:
            raise ValueError(f"truncated chunk at byte {i}")
        length = int.from_bytes(data[i:i + 4], "big")
        ctype = data[i + 4:i + 8]
        end = i + 12 + length
        if end > n:
            raise ValueError(f"chunk {ctype!r} at byte {i} runs past the end of the file")
        body = data[i + 8:i + 8 + length]
        if zlib.crc32(ctype + body) != int.from_bytes(data[end - 4:end], "big"):
            raise ValueError(f"bad CRC in chunk {ctype!r} at byte {i}")
        if first and ctype != b"IHDR":
            raise ValueError("the first chunk is not IHDR")
        first = False
        if ctype == b"IDAT":
            if idat_done:
                raise ValueError("IDAT chunks are not consecutive")
            parts.append(body)
        elif parts:
            idat_done = True
        i = end
        if ctype == b"IEND":
            break
    if i != n:
        raise ValueError("bytes after the IEND chunk")
    if not parts:
        raise ValueError("no IDAT chunk")
    return b"".join(parts)


_PAYLOADS = {"jpeg": jpeg_payload, "webp": webp_payload, "png": png_payload}


def payload(data: bytes, fmt: str) -> bytes:
    """The per-image part of one file of `fmt` (see the module docstring for each format)."""
    return _PAYLOADS[_check_format(fmt)](data)


def payload_bytes(data: bytes, fmt: str) -> int:
    """len(payload(data, fmt)): the bytes of one file that are not shared at its setting."""
    return len(payload(data, fmt))


# ---------------------------------------------------------------------------------------------
# rate curves


def _measure(x: np.ndarray, fmt: str, quality) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """Encode the set at one setting: (files, (N,) file sizes, (N,) payload sizes)."""
    files = encode(x, fmt, quality)
    sizes = np.array([len(f) for f in files], np.int64)
    payloads = np.array([payload_bytes(f, fmt) for f in files], np.int64)
    return files, sizes, payloads


def _point(x: np.ndarray, fmt: str, quality, measured) -> dict:
    files, sizes, payloads = measured
    return {"format": fmt, "quality": quality, "file_bytes": float(sizes.mean()),
            "payload_bytes": float(payloads.mean()), "file_sizes": sizes, "payload_sizes": payloads,
            "images": decode(files, x.shape[1])}


def codec_curve(images, fmt: str, qualities=None) -> list[dict]:
    """One point per quality, the same quality for every image.

    Args:
        images: (N, C, H, W) uint8, C = 1 or 3.
        fmt: "jpeg", "webp" or "png".
        qualities: the qualities to encode at; None: DEFAULT_QUALITIES[fmt] (PNG: its one
            setting, quality None).
    Returns:
        [{"format", "quality", "file_bytes" and "payload_bytes" (means per image),
          "file_sizes" and "payload_sizes" ((N,) int64 per image), "images" decoded (N, C, H, W)
          uint8}], in the order of `qualities`.
    """
    x = _check_images(images)
    fmt = _check_format(fmt)
    qualities = DEFAULT_QUALITIES[fmt] if qualities is None else qualities
    out = []
    for q in qualities:
        q = _check_quality(fmt, q)
        out.append(_point(x, fmt, q, _measure(x, fmt, q)))
    return out


def codec_at_bytes(images, fmt: str, target_bytes: float, count: str = "payload") -> dict | None:
    """One quality for the whole set, the one whose mean bytes per image is nearest the target.

    Bisection over the integer qualities SEARCH_RANGE[fmt] (JPEG 1..95, WebP 0..100; 7 or 8
    encodes of the set) for the adjacent pair q, q + 1 with mean(q) <= target < mean(q + 1);
    of the two, the one nearer the target (on a tie the smaller). Bytes grow with quality
    almost always; where they do not, the pair found still brackets the target.

    Outside the range:
        target below the lowest quality's mean: None. The codec cannot get that small (WebP's
            quality 0 is ~70 payload bytes at 28 x 28 grey, JPEG's quality 1 ~40): there is no
            point of this codec at this rate, and a bigger file would not be a fair stand-in.
        target at or above the highest quality's mean: the highest quality, with its (smaller)
            bytes; "bracket" then has no "above".

    Args:
        images: (N, C, H, W) uint8, C = 1 or 3.
        fmt: "jpeg" or "webp" (PNG is lossless: one rate, see codec_curve).
        target_bytes: bytes per image to match, e.g. a latent code's.
        count: match the mean "payload" bytes (the default) or the whole-"file" bytes.
    Returns:
        codec_curve's dict for the chosen quality plus "count", "target", "bytes" (the matched
        mean) and "bracket": {"below": (quality, mean bytes), "above": (quality, mean bytes) or
        None}; or None (see above).
    """
    x = _check_images(images)
    fmt = _check_format(fmt)
    if fmt == "png":
        raise BadInput("fmt: PNG is lossless, with one rate; there is no quality to match a target with "
                       "(use codec_curve(images, 'png'))")
    if count not in ("payload", "file"):
        raise BadInput(f"count: must be 'payload' or 'file', got {count!r}")
    if not (isinstance(target_bytes, (int, float, np.integer, np.floating)) and not isinstance(target_bytes, bool)
            and math.isfinite(target_bytes) and target_bytes > 0):
        raise BadInput(f"target_bytes: must be a positive number of bytes per image, got {target_bytes!r}")
    measured: dict[int, tuple] = {}

    def mean(q: int) -> float:
        if q not in measured:
            measured[q] = _measure(x, fmt, q)
        return float(measured[q][2 if count == "payload" else 1].mean())

    lo, hi = SEARCH_RANGE[fmt]
    if mean(lo) > target_bytes:
        return None
    if mean(hi) <= target_bytes:
        best, bracket = hi, {"below": (hi, mean(hi)), "above": None}
    else:
        while hi - lo > 1:                                   # invariant: mean(lo) <= target < mean(hi)
            mid = (lo + hi) // 2
            if mean(mid) <= target_bytes:
                lo = mid
            else:
                hi = mid
        best = lo if target_bytes - mean(lo) <= mean(hi) - target_bytes else hi
        bracket = {"below": (lo, mean(lo)), "above": (hi, mean(hi))}
    out = _point(x, fmt, best, measured[best])
    out.update(count=count, target=float(target_bytes), bytes=mean(best), bracket=bracket)
    return out


# ---------------------------------------------------------------------------------------------
# MS-SSIM

# Wang, Simoncelli, Bovik 2003, section 3.3: the exponents beta_j = gamma_j (alpha_M = beta_M at
# the coarsest scale), finest scale first. They sum to 1.0001 as published.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_SIGMA = 1.5          # Wang et al. 2004: Gaussian window, standard deviation 1.5 ...
MS_SSIM_WINDOW = 11          # ... 11 x 11
MS_SSIM_MIN_WINDOW = 7       # +-2 sigma: the smallest truncation of that Gaussian used here


@dataclass(frozen=True)
class MSSSIMConfig:
    """The MS-SSIM configuration used for one image size.

    Attributes:
        scales: number of scales M (1..5): M - 1 halvings by 2 x 2 averaging.
        win_size: side of the Gaussian window (odd), the same at every scale.
        win_sigma: its standard deviation in pixels.
        weights: M exponents, finest scale first.
        sides: the shorter image side at each scale.
    """

    scales: int
    win_size: int
    win_sigma: float
    weights: tuple[float, ...]
    sides: tuple[int, ...]

    @property
    def standard(self) -> bool:
        """True for the published configuration: 5 scales, 11 x 11 window, sigma 1.5."""
        return self.scales == 5 and self.win_size == MS_SSIM_WINDOW and self.win_sigma == MS_SSIM_SIGMA

    def describe(self) -> str:
        """One line for a report, e.g. "MS-SSIM: 3 scales (28, 14, 7 px), 7x7 Gaussian ..."."""
        w = ", ".join(f"{v:.4f}" for v in self.weights)
        sides = ", ".join(str(s) for s in self.sides)
        kind = "the standard configuration" if self.standard else "reduced for the image size"
        return (f"MS-SSIM (pytorch-msssim): {self.scales} scales ({sides} px), {self.win_size}x{self.win_size} "
                f"Gaussian window, sigma {self.win_sigma:g}, weights [{w}] ({kind}; Wang et al. 2003)")


def _halve(side: int) -> int:
    """The side after one 2 x 2 average pooling as pytorch-msssim does it: an odd side is padded
    by one on each side first, so ceil(side / 2)."""
    return (side + 1) // 2


def ms_ssim_config(height: int, width: int) -> MSSSIMConfig:
    """The MS-SSIM configuration for (height, width) images.

    The published MS-SSIM (Wang et al. 2003) has 5 scales and, from SSIM (Wang et al. 2004), an
    11 x 11 Gaussian window of sigma 1.5; the window must fit inside the coarsest scale, which
    needs sides of more than 160 pixels (pytorch-msssim asserts exactly that). For smaller
    images, by this rule:

        scales   as many (at most 5) as leave a coarsest scale of at least 7 pixels, so that a
                 window of at least 7 x 7 (sigma 1.5 cut at +-2 sigma) fits it;
        window   the largest odd size <= 11 that fits the coarsest scale; sigma stays 1.5;
        weights  the first `scales` of the published five (finest first), divided by their sum
                 so they add to 1 as the five do; all five exactly as published at 5 scales.

    28 x 28 -> 3 scales (28, 14, 7 px), 7 x 7 window, weights 0.0711, 0.4530, 0.4760;
    32 -> 3 scales, 7 x 7; 48 -> 3 scales (48, 24, 12), 11 x 11; 64 -> 4 scales (64 .. 8), 7 x 7;
    sides > 160 -> the standard configuration, identical to pytorch_msssim.ms_ssim's defaults.
    The rule prefers more scales over the full window, since scales are what MS-SSIM adds.

    Raises:
        BadInput for a shorter side below 7 pixels.
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise BadInput(f"{name}: must be a positive integer, got {v!r}")
    side = int(min(height, width))
    if side < MS_SSIM_MIN_WINDOW:
        raise BadInput(f"ms_ssim: images of {height}x{width} are too small; MS-SSIM needs a side of at "
                       f"least {MS_SSIM_MIN_WINDOW} pixels")
    for scales in range(len(MS_SSIM_WEIGHTS), 0, -1):
        sides = [side]
        for _ in range(scales - 1):
            sides.append(_halve(sides[-1]))
        coarsest = sides[-1]
        window = min(MS_SSIM_WINDOW, coarsest if coarsest % 2 else coarsest - 1)
        if window >= MS_SSIM_MIN_WINDOW:
            break
    weights = MS_SSIM_WEIGHTS[:scales]
    if scales < len(MS_SSIM_WEIGHTS):
        total = sum(weights)
        weights = tuple(w / total for w in weights)
    return MSSSIMConfig(scales=scales, win_size=window, win_sigma=MS_SSIM_SIGMA, weights=tuple(weights),
                        sides=tuple(sides))


def _ms_ssim_scales(X, Y, config: MSSSIMConfig):
    """pytorch_msssim.ms_ssim's computation for any number of scales, on (B, C, H, W) float
    tensors in 0..255: the library's own window and per-scale SSIM and contrast-structure, then
    its pooling, clamping and product. Its ms_ssim asserts a side > 16 (win - 1) whatever the
    number of weights (it assumes 5 scales); this is that function without the assertion, for
    fewer scales. Returns (B,): per-channel MS-SSIM averaged over channels."""
    import importlib

    import torch
    import torch.nn.functional as F

    # the module, not the function: the package's __init__ rebinds the name `ssim` to its function
    library = importlib.import_module("pytorch_msssim.ssim")
    # The library has no public per-scale hook: its window and per-scale function are private
    # names of pytorch-msssim 1.0 (`_fspecial_gauss_1d`, `_ssim`, what its ms_ssim calls).
    # tests/test_image_codecs.py compares this path with the library's ms_ssim wherever that
    # accepts the configuration, so a change in the library shows there.
    win = library._fspecial_gauss_1d(config.win_size, config.win_sigma).repeat([X.shape[1], 1, 1, 1])
    weights = X.new_tensor(config.weights)
    mcs = []
    for i in range(config.scales):
        ssim_per_channel, cs = library._ssim(X, Y, data_range=255, win=win, size_average=False)  # (B, C) each
        if i < config.scales - 1:
            mcs.append(torch.relu(cs))
            padding = [s % 2 for s in X.shape[2:]]
            X = F.avg_pool2d(X, kernel_size=2, padding=padding)
            Y = F.avg_pool2d(Y, kernel_size=2, padding=padding)
    stacked = torch.stack(mcs + [torch.relu(ssim_per_channel)], dim=0)                     # (M, B, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def ms_ssim(a_uint8, b_uint8, batch: int = 256, config: MSSSIMConfig | None = None) -> np.ndarray:
    """(N,) MS-SSIM of each image pair, data range 255, in float64.

    For a colour image MS-SSIM is computed per channel (R, G, B) and averaged, as pytorch-msssim
    does. The configuration is ms_ssim_config(H, W) unless one is given; at 5 scales
    pytorch_msssim.ms_ssim itself is called (with win_size and weights; at sides > 160 with the
    library's defaults), with fewer scales the same computation without its 5-scale size
    assertion (_ms_ssim_scales). Symmetric in a and b; 1 for identical images.

    Args:
        a_uint8, b_uint8: (N, C, H, W) uint8 of one shape, C = 1 or 3.
        batch: images per pass (memory).
        config: an explicit MSSSIMConfig; its coarsest scale must hold its window.
    """
    import torch
    from pytorch_msssim import ms_ssim as library_ms_ssim

    a = _check_images(a_uint8, "a_uint8")
    b = _check_images(b_uint8, "b_uint8")
    if a.shape != b.shape:
        raise BadInput(f"b_uint8: shape {b.shape} differs from a_uint8 {a.shape}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise BadInput(f"batch: must be a positive integer, got {batch!r}")
    config = ms_ssim_config(a.shape[2], a.shape[3]) if config is None else config
    side = min(a.shape[2:])
    for _ in range(config.scales - 1):
        side = _halve(side)
    if side < config.win_size or len(config.weights) != config.scales:
        raise BadInput(f"config: {config.scales} scales with a {config.win_size}-pixel window do not fit "
                       f"{a.shape[2]}x{a.shape[3]} images (coarsest side {side}); use ms_ssim_config")
    out = np.empty(len(a))
    with torch.no_grad():
        for i in range(0, len(a), batch):
            X = torch.from_numpy(a[i:i + batch]).to(torch.float64)                         # (B, C, H, W)
            Y = torch.from_numpy(b[i:i + batch]).to(torch.float64)
            if config.scales == 5:
                v = library_ms_ssim(X, Y, data_range=255, size_average=False, win_size=config.win_size,
                                    win_sigma=config.win_sigma, weights=list(config.weights))
            else:
                v = _ms_ssim_scales(X, Y, config)
            out[i:i + batch] = v.numpy()
    return out
