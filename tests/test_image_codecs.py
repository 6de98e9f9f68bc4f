"""JPEG / WebP / PNG baselines (file and payload bytes, rate curves, matching a byte target) and
MS-SSIM, checked against independent parses of the files and an independent MS-SSIM."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from ganvae.data.idx import read_idx
from ganvae.data.named import find
from ganvae.errors import BadInput
from ganvae.metrics.codec import _jpeg_scan_bytes, rate_distortion_point
from ganvae.metrics.image_codecs import (MS_SSIM_WEIGHTS, SEARCH_RANGE, MSSSIMConfig, codec_at_bytes, codec_curve,
                                         decode, encode, jpeg_payload, ms_ssim, ms_ssim_config, payload,
                                         payload_bytes, png_payload, webp_payload)

SETTINGS = [("jpeg", 50), ("webp", 50), ("png", None)]


@pytest.fixture(scope="module")
def fmnist():
    """The first 200 Fashion-MNIST test images, (200, 1, 28, 28) uint8."""
    d = find("fashion-mnist")
    if d is None:
        pytest.skip("Fashion-MNIST is not installed (ganvae datasets get fashion-mnist)")
    path = next(p for p in (d / "t10k-images-idx3-ubyte.gz", d / "t10k-images-idx3-ubyte") if p.is_file())
    return read_idx(path, ndim=3)[:200, None]


def colour(x: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) colour images from grey ones: three different channels."""
    return np.concatenate([x, np.roll(x, 3, axis=-1), 255 - x], axis=1)


@pytest.fixture(scope="module", params=["grey", "rgb"])
def images(request, fmnist):
    x = fmnist[:24]
    return x if request.param == "grey" else colour(x)


# ---------------------------------------------------------------------------------------------
# independent parses: each format's layout, read with struct, written apart from the module's


def ref_jpeg_spans(data: bytes) -> tuple[int, int]:
    """(start, end) of the scan data: segments walked by length up to SOS; the file ends in EOI."""
    assert data[:2] == b"\xff\xd8"
    i = 2
    while True:
        marker, length = struct.unpack(">2sH", data[i:i + 4])
        assert marker[0] == 0xFF
        i += 2 + length
        if marker[1] == 0xDA:
            break
    assert data[-2:] == b"\xff\xd9"
    scan = data[i:-2]
    # inside the scan 0xFF only comes stuffed (FF 00): there is no second marker
    assert all(scan[k + 1] == 0 for k in range(len(scan) - 1) if scan[k] == 0xFF)
    return i, len(data) - 2


def ref_chunks_png(data: bytes) -> list[tuple[bytes, int, int]]:
    """[(type, start of chunk, end of chunk)] of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        out.append((data[i + 4:i + 8], i, i + 12 + length))
        i += 12 + length
    assert out[-1][0] == b"IEND" and i == len(data)
    return out


def ref_chunks_webp(data: bytes) -> list[tuple[bytes, int, int]]:
    """[(fourcc, start of data, end of data)] of a RIFF WEBP file."""
    riff, size, webp = struct.unpack("<4sI4s", data[:12])
    assert riff == b"RIFF" and webp == b"WEBP" and size == len(data) - 8
    out, i = [], 12
    while i < len(data):
        fourcc, n = struct.unpack("<4sI", data[i:i + 8])
        out.append((fourcc, i + 8, i + 8 + n))
        i += 8 + n + n % 2
    return out


def ref_payload_size(data: bytes, fmt: str) -> int:
    if fmt == "jpeg":
        start, end = ref_jpeg_spans(data)
        return end - start
    if fmt == "png":
        return sum(end - start - 12 for t, start, end in ref_chunks_png(data) if t == b"IDAT")
    (vp8,) = [(s, e) for t, s, e in ref_chunks_webp(data) if t == b"VP8 "]
    return vp8[1] - vp8[0] - 7                      # less the start code and the dimensions


def shared_part(data: bytes, fmt: str) -> bytes:
    """The file less its payload, its length fields and checksums: what should be the same for
    every image at one setting."""
    if fmt == "jpeg":
        start, end = ref_jpeg_spans(data)
        return data[:start] + data[end:]
    if fmt == "png":
        return b"".join(data[s:e] for t, s, e in ref_chunks_png(data) if t != b"IDAT")
    out = data[:4] + data[8:12]                     # RIFF, WEBP; not the RIFF size
    for fourcc, s, e in ref_chunks_webp(data):
        out += fourcc + (data[s + 3:s + 10] if fourcc == b"VP8 " else data[s:e])
    return out


def rebuild(shared_from: bytes, body: bytes, fmt: str) -> bytes:
    """A file with the shared parts of one file and the payload `body` of another."""
    if fmt == "jpeg":
        start, end = ref_jpeg_spans(shared_from)
        return shared_from[:start] + body + shared_from[end:]
    if fmt == "png":
        chunks = ref_chunks_png(shared_from)
        idat = [(s, e) for t, s, e in chunks if t == b"IDAT"]
        new = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
        return shared_from[:idat[0][0]] + new + shared_from[idat[-1][1]:]
    (s, e), = [(s, e) for t, s, e in ref_chunks_webp(shared_from) if t == b"VP8 "]
    vp8 = body[:3] + shared_from[s + 3:s + 10] + body[3:]
    chunk = b"VP8 " + struct.pack("<I", len(vp8)) + vp8 + b"\x00" * (len(vp8) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


# ---------------------------------------------------------------------------------------------
# bytes


@pytest.mark.parametrize("fmt,quality", SETTINGS)
def test_file_and_payload_bytes_match_an_independent_parse(images, fmt, quality):
    files = encode(images, fmt, quality)
    (point,) = codec_curve(images, fmt, [quality])
    np.testing.assert_array_equal(point["file_sizes"], [len(f) for f in files])
    np.testing.assert_array_equal(point["payload_sizes"], [ref_payload_size(f, fmt) for f in files])
    assert point["file_bytes"] == pytest.approx(np.mean([len(f) for f in files]))
    assert point["payload_bytes"] == pytest.approx(np.mean([ref_payload_size(f, fmt) for f in files]))
    assert all(payload_bytes(f, fmt) == len(payload(f, fmt)) for f in files)
    assert point["quality"] == quality and point["format"] == fmt
    if fmt == "jpeg":                      # metrics/codec.py's scan count is the same parse
        assert [_jpeg_scan_bytes(f) for f in files] == [payload_bytes(f, "jpeg") for f in files]


@pytest.mark.parametrize("fmt,quality", SETTINGS)
def test_payload_is_all_that_differs_between_images(images, fmt, quality):
    """Outside the payload (and the length fields and checksums) every file at one setting is the
    same bytes; and one image's payload in another image's file decodes to the first image."""
    files = encode(images, fmt, quality)
    assert len({shared_part(f, fmt) for f in files}) == 1
    assert len({payload(f, fmt) for f in files}) == len(files)
    c = images.shape[1]
    want = decode(files, c)
    swapped = [rebuild(files[0], payload(f, fmt), fmt) for f in files]
    np.testing.assert_array_equal(decode(swapped, c), want)


def test_png_is_lossless_and_its_payload_is_the_zlib_stream(images):
    files = encode(images, "png")
    np.testing.assert_array_equal(decode(files, images.shape[1]), images)
    (point,) = codec_curve(images, "png")                     # its one setting
    assert point["quality"] is None
    np.testing.assert_array_equal(point["images"], images)
    assert rate_distortion_point(images, point["images"], point["payload_bytes"])["psnr"] == 100   # the cap
    n, c, h, w = images.shape
    for f in files:                                          # filter byte + pixels per row
        assert len(zlib.decompress(png_payload(f))) == h * (1 + w * c)


def test_hand_built_png_with_two_idat_chunks():
    img = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    stream = zlib.compress(b"".join(b"\x00" + row.tobytes() for row in img), 9)    # filter 0 per row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 8, 6, 8, 0, 0, 0, 0)                           # 8 x 6, 8-bit grey
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"k\x00v")
            + chunk(b"IDAT", stream[:7]) + chunk(b"IDAT", stream[7:]) + chunk(b"IEND", b""))
    assert png_payload(data) == stream and payload_bytes(data, "png") == len(stream)
    np.testing.assert_array_equal(decode([data], 1)[0, 0], img)
    bad = bytearray(data)
    bad[-20] ^= 1                                                                   # inside the last IDAT
    with pytest.raises(ValueError, match="CRC"):
        png_payload(bytes(bad))
    split = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stream[:7]) + chunk(b"tEXt", b"k\x00v")
             + chunk(b"IDAT", stream[7:]) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match="consecutive"):
        png_payload(split)


def test_parsers_refuse_other_layouts(fmnist):
    x = fmnist[:1]
    buf = io.BytesIO()
    Image.fromarray(x[0, 0], "L").save(buf, "JPEG", quality=50, progressive=True)
    with pytest.raises(ValueError, match="one-scan"):
        jpeg_payload(buf.getvalue())                        # progressive: several scans
    jpeg = encode(x, "jpeg", 50)[0]
    for bad in (jpeg[:-2], jpeg[:100], jpeg + b"\x00", b"GIF89a"):
        with pytest.raises(ValueError):
            jpeg_payload(bad)
    webp = encode(x, "webp", 50)[0]
    for bad in (webp[:-1], webp[:4] + struct.pack("<I", len(webp)) + webp[8:], webp.replace(b"VP8 ", b"VP8X")):
        with pytest.raises(ValueError):
            webp_payload(bad)
    with pytest.raises(ValueError):
        png_payload(encode(x, "png")[0][:-4])


def test_lossless_webp_payload_is_the_vp8l_bitstream(fmnist):
    buf = io.BytesIO()
    Image.fromarray(fmnist[0, 0], "L").convert("RGB").save(buf, "WEBP", lossless=True)
    data = buf.getvalue()
    (vp8l,) = [(s, e) for t, s, e in ref_chunks_webp(data) if t == b"VP8L"]
    assert webp_payload(data) == data[vp8l[0] + 5:vp8l[1]]


# ---------------------------------------------------------------------------------------------
# quality


@pytest.mark.parametrize("fmt,qualities", [("jpeg", (5, 20, 50, 90)), ("webp", (0, 20, 50, 90, 100))])
def test_lossy_codecs_lose_less_as_quality_rises(images, fmt, qualities):
    curve = codec_curve(images, fmt, qualities)
    psnr = [rate_distortion_point(images, p["images"], p["payload_bytes"])["psnr"] for p in curve]
    assert all(a < b for a, b in zip(psnr, psnr[1:])), psnr
    assert all(a["payload_bytes"] < b["payload_bytes"] for a, b in zip(curve, curve[1:]))
    for p in curve:
        assert p["images"].shape == images.shape and p["images"].dtype == np.uint8
        assert (p["images"] != images).any()               # lossy, even WebP at quality 100
        assert p["payload_bytes"] < p["file_bytes"]
    assert 10 < psnr[0] and psnr[-1] < 60


def test_grey_webp_is_coded_as_rgb_and_decoded_to_grey(fmnist):
    x = fmnist[:8]
    files = encode(x, "webp", 80)
    with Image.open(io.BytesIO(files[0])) as im:
        assert im.mode == "RGB"
        rgb = np.asarray(im)
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() <= 3                 # near-equal channels
    grey = decode(files, 1)
    assert grey.shape == x.shape
    with Image.open(io.BytesIO(files[0])) as im:
        np.testing.assert_array_equal(grey[0, 0], np.asarray(im.convert("L")))


# ---------------------------------------------------------------------------------------------
# matching a byte target


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_codec_at_bytes_picks_the_nearer_of_the_bracketing_qualities(fmnist, fmt):
    x = fmnist[:10]
    lo, hi = SEARCH_RANGE[fmt]
    every = {q: encode(x, fmt, q) for q in range(lo, hi + 1)}                  # the whole range, by hand
    mean = {count: {q: np.mean([len(f) if count == "file" else payload_bytes(f, fmt) for f in fs])
                    for q, fs in every.items()} for count in ("payload", "file")}
    for count in ("payload", "file"):
        m = mean[count]
        for target in np.linspace(m[lo] + 1, m[hi] - 1, 5):
            r = codec_at_bytes(x, fmt, target, count=count)
            (q_lo, b_lo), (q_hi, b_hi) = r["bracket"]["below"], r["bracket"]["above"]
            assert q_hi == q_lo + 1 and b_lo == pytest.approx(m[q_lo]) and b_hi == pytest.approx(m[q_hi])
            assert b_lo <= target < b_hi
            assert r["quality"] in (q_lo, q_hi) and r["bytes"] == pytest.approx(m[r["quality"]])
            assert abs(r["bytes"] - target) == pytest.approx(min(target - b_lo, b_hi - target))
            assert r["bytes"] == pytest.approx(r["payload_bytes"] if count == "payload" else r["file_bytes"])
            np.testing.assert_array_equal(r["images"], decode(every[r["quality"]], 1))
            assert r["count"] == count and r["target"] == target
    # below the lowest quality: no point; above the highest: the highest, with its smaller bytes
    assert codec_at_bytes(x, fmt, mean["payload"][lo] - 0.5) is None
    r = codec_at_bytes(x, fmt, mean["payload"][hi] + 100)
    assert r["quality"] == hi and r["bracket"]["above"] is None and r["bytes"] == pytest.approx(mean["payload"][hi])


def test_codec_bad_input(fmnist):
    x = fmnist[:2]
    with pytest.raises(BadInput, match="lossless"):
        codec_at_bytes(x, "png", 100)
    with pytest.raises(BadInput, match="count"):
        codec_at_bytes(x, "jpeg", 100, count="scan")
    for target in (0, -3, float("nan"), "100"):
        with pytest.raises(BadInput, match="target_bytes"):
            codec_at_bytes(x, "jpeg", target)
    with pytest.raises(BadInput, match="format"):
        encode(x, "gif", 50)
    with pytest.raises(BadInput, match="quality"):
        encode(x, "jpeg", 0)
    with pytest.raises(BadInput, match="quality"):
        encode(x, "webp", 101)
    with pytest.raises(BadInput, match="PNG"):
        encode(x, "png", 50)
    with pytest.raises(BadInput, match="uint8"):
        encode(x.astype(np.float32), "png")
    with pytest.raises(BadInput, match="C = 1 or 3"):
        encode(np.zeros((1, 2, 8, 8), np.uint8), "png")


# ---------------------------------------------------------------------------------------------
# MS-SSIM


def ref_ms_ssim(a: np.ndarray, b: np.ndarray, win: int, sigma: float, weights) -> float:
    """Multi-scale SSIM of two (C, H, W) images in numpy (Wang et al. 2003): a Gaussian window
    (win taps, std sigma, normalised) over the valid region; C1 = (0.01 * 255)^2,
    C2 = (0.03 * 255)^2; contrast-structure at every scale but the coarsest, full SSIM there,
    each clamped at 0; 2 x 2 average pooling between scales, an odd side zero-padded by one
    first (a 2 x 2 block at the border averages over the padding too); the weighted product
    per channel, averaged over channels."""
    g = np.exp(-((np.arange(win) - win // 2) ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(t):                                                   # (C, H, W) -> valid region
        t = sliding_window_view(t, win, axis=2) @ g
        return sliding_window_view(t, win, axis=1) @ g

    def pool(t):
        _, h, w = t.shape
        t = np.pad(t, ((0, 0), (h % 2, h % 2), (w % 2, w % 2)))
        h2, w2 = t.shape[1] // 2, t.shape[2] // 2
        t = t[:, :2 * h2, :2 * w2]
        return t.reshape(len(t), h2, 2, w2, 2).mean(axis=(2, 4))

    x, y = a.astype(np.float64), b.astype(np.float64)
    terms = []
    for j in range(len(weights)):
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
        cs = (2 * cov + c2) / (vx + vy + c2)
        if j < len(weights) - 1:
            terms.append(np.maximum(cs.mean(axis=(1, 2)), 0))
            x, y = pool(x), pool(y)
        else:
            lum = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            terms.append(np.maximum((lum * cs).mean(axis=(1, 2)), 0))
    per_channel = np.prod([t ** w for t, w in zip(terms, weights)], axis=0)
    return float(per_channel.mean())


def noisy(x: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(x + sigma * rng.standard_normal(x.shape)), 0, 255).astype(np.uint8)


def test_ms_ssim_config_by_size():
    c = ms_ssim_config(28, 28)
    assert (c.scales, c.win_size, c.win_sigma, c.sides) == (3, 7, 1.5, (28, 14, 7))
    np.testing.assert_allclose(c.weights, np.array(MS_SSIM_WEIGHTS[:3]) / sum(MS_SSIM_WEIGHTS[:3]))
    assert sum(c.weights) == pytest.approx(1) and not c.standard
    assert "3 scales" in c.describe() and "7x7" in c.describe()
    assert (ms_ssim_config(64, 64).scales, ms_ssim_config(64, 64).win_size) == (4, 7)
    assert (ms_ssim_config(48, 64).scales, ms_ssim_config(48, 64).win_size) == (3, 11)   # the shorter side
    assert ms_ssim_config(192, 192).standard and ms_ssim_config(192, 192).weights == MS_SSIM_WEIGHTS
    # the library's 5-scale size limit, side > 16 (win - 1), is where 11 x 11 fits the coarsest scale
    assert ms_ssim_config(161, 161).standard and not ms_ssim_config(160, 160).standard
    with pytest.raises(BadInput, match="too small"):
        ms_ssim_config(6, 28)


def test_ms_ssim_identical_noisy_and_symmetric(fmnist):
    for x in (fmnist[:16], colour(fmnist[:16])):
        np.testing.assert_allclose(ms_ssim(x, x), 1.0, atol=1e-12)
        by_noise = [ms_ssim(x, noisy(x, s), batch=5) for s in (2, 8, 20, 50)]
        assert all((v < 1).all() for v in by_noise)
        assert all((a > b).all() for a, b in zip(by_noise, by_noise[1:]))
        y = noisy(x, 10)
        np.testing.assert_allclose(ms_ssim(x, y), ms_ssim(y, x), atol=1e-12)


def test_ms_ssim_equals_the_library_default_at_192_pixels(fmnist):
    from pytorch_msssim import ms_ssim as library_ms_ssim

    big = np.kron(fmnist[:3], np.ones((1, 1, 7, 7), np.uint8))[:, :, :192, :192]           # (3, 1, 192, 192)
    for x in (big, colour(big[:2])):
        y = noisy(x, 12)
        assert ms_ssim_config(192, 192).standard
        want = library_ms_ssim(torch.from_numpy(x).double(), torch.from_numpy(y).double(), data_range=255,
                               size_average=False).numpy()
        np.testing.assert_allclose(ms_ssim(x, y), want, rtol=0, atol=1e-12)
        want32 = library_ms_ssim(torch.from_numpy(x).float(), torch.from_numpy(y).float(), data_range=255,
                                 size_average=False).numpy()                                # the usual call
        np.testing.assert_allclose(ms_ssim(x, y), want32, atol=1e-5)


def test_ms_ssim_fewer_scales_follow_the_library(fmnist):
    """Below 5 scales ms_ssim runs the library's steps itself; where the library's own ms_ssim
    accepts the same configuration (side > 16 (win - 1)), the two agree."""
    from pytorch_msssim import ms_ssim as library_ms_ssim

    x = np.kron(fmnist[:2], np.ones((1, 1, 4, 4), np.uint8))[:, :, :101, :101]            # odd: padded pooling
    y = noisy(x, 15)
    config = MSSSIMConfig(scales=3, win_size=7, win_sigma=1.5, weights=ms_ssim_config(28, 28).weights,
                          sides=(101, 51, 26))
    want = library_ms_ssim(torch.from_numpy(x).double(), torch.from_numpy(y).double(), data_range=255,
                           size_average=False, win_size=7, weights=list(config.weights)).numpy()
    np.testing.assert_allclose(ms_ssim(x, y, config=config), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("side", [28, 30])
def test_ms_ssim_equals_a_numpy_reference_at_small_sizes(fmnist, side):
    x = fmnist[:6]
    if side != 28:                                                   # 30 -> 15 -> 8: odd pooling
        x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    cfg = ms_ssim_config(side, side)
    assert cfg.scales == 3 and cfg.win_size == 7
    for imgs in (x, colour(x[:3])):
        y = noisy(imgs, 10, seed=1)
        got = ms_ssim(imgs, y)
        want = [ref_ms_ssim(a, b, cfg.win_size, cfg.win_sigma, cfg.weights) for a, b in zip(imgs, y)]
        # float64 throughout; what is left (~1e-7) is the library's Gaussian, built in float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_ms_ssim_bad_input(fmnist):
    x = fmnist[:2]
    with pytest.raises(BadInput, match="shape"):
        ms_ssim(x, x[:1])
    with pytest.raises(BadInput, match="uint8"):
        ms_ssim(x.astype(np.float64), x)
    with pytest.raises(BadInput, match="fit"):
        ms_ssim(x, x, config=ms_ssim_config(192, 192))
    with pytest.raises(BadInput, match="batch"):
        ms_ssim(x, x, batch=0)
