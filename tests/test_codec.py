"""Latent codes (quantiser, bit packing, codes files) and the PCA / JPEG baselines."""

import math
from pathlib import Path

import numpy as np
import pytest

from ganvae.errors import BadInput
from ganvae.metrics.codec import (Quantizer, _jpeg_encode, _jpeg_scan_bytes, jpeg_at_bytes, pack, packed_bytes,
                                  pca_codec, rate_distortion_point, read_codes, unpack, write_codes)


def smooth_images(n: int, c: int, h: int, w: int, seed: int, noise: float = 0.0) -> np.ndarray:
    """(n, c, h, w) uint8 images: four random Gaussian bumps around grey, plus optional noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, c, h, w))
    for _ in range(4):
        cx, cy = rng.uniform(0, w, (n, c, 1, 1)), rng.uniform(0, h, (n, c, 1, 1))
        s, a = rng.uniform(2, 6, (n, c, 1, 1)), rng.uniform(-1, 1, (n, c, 1, 1))
        out += a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s ** 2))
    out = 128 + 100 * out + noise * rng.standard_normal(out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# quantiser


def test_quantizer_error_is_half_a_step_inside_and_clipped_outside():
    rng = np.random.default_rng(0)
    scales = np.array([0.01, 1.0, 30.0, 1.0, 5.0])
    codes = rng.standard_normal((2000, 5)) * scales + np.array([0, 3, -7, 0, 1])
    q = Quantizer.fit(codes, bits=4)
    np.testing.assert_array_equal(q.lo, np.quantile(codes, 0.001, axis=0))   # the clipped range
    np.testing.assert_array_equal(q.hi, np.quantile(codes, 0.999, axis=0))
    np.testing.assert_allclose(q.step, (q.hi - q.lo) / 16)

    test = rng.standard_normal((5000, 5)) * scales * 1.5 + np.array([0, 3, -7, 0, 1])   # some outside
    levels = q.encode(test)
    assert levels.dtype == np.uint8 and levels.min() >= 0 and levels.max() <= 15
    back = q.decode(levels)
    inside = (test >= q.lo) & (test <= q.hi)
    assert inside.mean() > 0.9 and (~inside).sum() > 50
    err = np.abs(back - test)
    assert (err[inside] <= (np.broadcast_to(q.step / 2, test.shape)[inside]) * (1 + 1e-12)).all()
    # outside the range a value decodes to the centre of the end bin on its side
    low, high = test < q.lo, test > q.hi
    np.testing.assert_allclose(back[low], np.broadcast_to(q.lo + q.step / 2, test.shape)[low])
    np.testing.assert_allclose(back[high], np.broadcast_to(q.hi - q.step / 2, test.shape)[high])
    assert (levels[low] == 0).all() and (levels[high] == 15).all()


def test_quantizer_edges_dtypes_and_constant_dimension():
    codes = np.column_stack([np.linspace(0, 1, 101), np.full(101, 2.5)])       # dim 1 constant
    q = Quantizer.fit(codes, bits=2, tail=0.0)                                 # range = min..max
    assert q.lo.tolist() == [0.0, 2.5] and q.hi.tolist() == [1.0, 2.5]
    # bins [0, .25) [.25, .5) [.5, .75) [.75, 1]: hi itself belongs to the top bin
    lv = q.encode(np.array([[0.0, 9.0], [0.25, -9.0], [0.74, 2.5], [1.0, 2.5]]))
    assert lv[:, 0].tolist() == [0, 1, 2, 3] and lv[:, 1].tolist() == [0, 0, 0, 0]
    assert q.decode(lv)[:, 0].tolist() == [0.125, 0.375, 0.625, 0.875]
    assert (q.decode(lv)[:, 1] == 2.5).all()                                  # constant dim: exact
    assert Quantizer.fit(codes, bits=12).encode(codes).dtype == np.uint16


def test_quantizer_bad_input():
    codes = np.random.default_rng(1).standard_normal((50, 3))
    for bits in (0, 17, 2.5, True):
        with pytest.raises(BadInput, match="bits"):
            Quantizer.fit(codes, bits)
    with pytest.raises(BadInput, match="tail"):
        Quantizer.fit(codes, 4, tail=0.5)
    q = Quantizer.fit(codes, 4)
    with pytest.raises(BadInput, match="dimensions"):
        q.encode(codes[:, :2])
    with pytest.raises(BadInput, match="0..15"):
        q.decode(np.full((2, 3), 16))
    with pytest.raises(BadInput, match="NaN"):
        q.encode(np.full((2, 3), np.nan))
    with pytest.raises(BadInput, match="hi >= lo"):
        Quantizer(lo=np.ones(3), hi=np.zeros(3), bits=4)


# ---------------------------------------------------------------------------------------------
# bit packing


@pytest.mark.parametrize("bits", range(1, 17))
def test_pack_unpack_round_trip(bits):
    rng = np.random.default_rng(bits)
    d = 13                                                     # 13 * bits is not a multiple of 8 for most bits
    levels = rng.integers(0, 1 << bits, (7, d))
    levels[0] = (1 << bits) - 1                                # all ones: the top bit must survive
    levels[1] = 0
    packed = pack(levels, bits)
    assert packed.dtype == np.uint8 and packed.shape == (7, math.ceil(d * bits / 8)) == (7, packed_bytes(d, bits))
    back = unpack(packed, bits, d)
    assert back.dtype == (np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(back, levels)


def test_pack_layout_by_hand():
    # 3 bits, MSB first: 5, 1, 7 -> 101 001 111 -> 10100111 1(0000000 padding)
    assert pack(np.array([[5, 1, 7]]), 3).tolist() == [[0b10100111, 0b10000000]]


def test_pack_bad_input():
    with pytest.raises(BadInput, match="0..7"):
        pack(np.array([[8]]), 3)
    with pytest.raises(BadInput, match="0..7"):
        pack(np.array([[-1]]), 3)
    with pytest.raises(BadInput, match="integers"):
        pack(np.array([[1.0]]), 3)
    with pytest.raises(BadInput, match="packed"):
        unpack(np.zeros((2, 3), np.uint8), 3, 9)               # 9 values at 3 bits need 4 bytes


# ---------------------------------------------------------------------------------------------
# codes files


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    q = Quantizer.fit(rng.standard_normal((300, 10)), bits=5)
    levels = q.encode(rng.standard_normal((40, 10)))
    path = tmp_path / "codes.bin"                             # any name: no ".npz" gets added
    meta = {"run": tmp_path / "run", "latent": 10, "note": "vae"}
    write_codes(path, levels, q, meta)
    assert path.is_file() and not (tmp_path / "codes.bin.npz").exists()
    got = read_codes(path)
    np.testing.assert_array_equal(got.levels, levels)
    np.testing.assert_array_equal(got.quantizer.lo, q.lo)
    np.testing.assert_array_equal(got.quantizer.hi, q.hi)
    assert got.quantizer.bits == 5
    assert got.meta == {"run": str(tmp_path / "run"), "latent": 10, "note": "vae"}
    np.testing.assert_array_equal(got.quantizer.decode(got.levels), q.decode(levels))
    with np.load(path, allow_pickle=False) as z:               # the payload is the packed bytes
        assert z["packed"].shape == (40, packed_bytes(10, 5))


def test_write_codes_bad_input(tmp_path):
    q = Quantizer.fit(np.random.default_rng(3).standard_normal((30, 4)), bits=3)
    lv = np.zeros((2, 4), np.uint8)
    with pytest.raises(BadInput, match="meta"):
        write_codes(tmp_path / "a", lv, q, {"x": object()})
    with pytest.raises(BadInput, match="dimensions"):
        write_codes(tmp_path / "a", lv[:, :3], q)
    with pytest.raises(BadInput, match="0..7"):
        write_codes(tmp_path / "a", lv + 9, q)
    assert not (tmp_path / "a").exists()


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    """Files that are not (valid) codes files, by what is wrong with them."""
    rng = np.random.default_rng(4)
    q = Quantizer.fit(rng.standard_normal((30, 6)), bits=7)
    good = tmp_path / "good.npz"
    write_codes(good, q.encode(rng.standard_normal((5, 6))), q, {"a": 1})
    data = good.read_bytes()
    files = {"missing": tmp_path / "nope.npz"}
    files["garbage"] = tmp_path / "garbage.npz"
    files["garbage"].write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    files["truncated"] = tmp_path / "truncated.npz"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["other npz"] = tmp_path / "other.npz"
    np.savez(files["other npz"], x=np.zeros(3))
    files["npy"] = tmp_path / "plain.npy"
    np.save(files["npy"], np.zeros(3))
    with np.load(good) as z:
        arrays = dict(z)
    for name, change in {"wrong bits": {"bits": np.array(9)},
                         "bits out of range": {"bits": np.array(40)},
                         "short lo": {"lo": arrays["lo"][:3]},
                         "not json": {"meta": np.array("{oops")},
                         "wrong format": {"format": np.array("something-else")},
                         "text version": {"version": np.array("one")},
                         "pickled": {"meta": np.array([{"a": 1}], dtype=object)}}.items():
        path = tmp_path / (name.replace(" ", "_") + ".npz")
        np.savez(path, **{**arrays, **change})
        files[name] = path
    return files


def test_read_codes_rejects_bad_files(tmp_path):
    for what, path in _bad_files(tmp_path).items():
        with pytest.raises(BadInput) as err:
            read_codes(path)
        assert str(path) in str(err.value), what
        assert "\n" not in str(err.value), what


# ---------------------------------------------------------------------------------------------
# PCA codec


def test_pca_codec_near_lossless_and_monotone():
    train = smooth_images(500, 1, 8, 8, seed=5, noise=2.0)                     # P = 64 pixels
    test = smooth_images(100, 1, 8, 8, seed=6, noise=2.0)
    recon, nbytes = pca_codec(train, test, dims=64, bits=16)                   # all dims, 16 bits
    assert recon.shape == test.shape and recon.dtype == np.uint8 and nbytes == 128
    # The only losses left are rounding and the quantiser clipping test projections outside the
    # training range (the 0.1% / 99.9% quantiles): a few pixels move by up to ~10 levels.
    err = np.abs(recon.astype(int) - test)
    assert (err <= 1).mean() > 0.97
    point = rate_distortion_point(test, recon, nbytes)
    assert point["psnr"] > 60 and point["mse"] < 1e-5
    # without clipping (tail 0: the range is min..max) the training images come back exactly
    np.testing.assert_array_equal(pca_codec(train, train, 64, 16, tail=0.0)[0], train)

    flat_train, flat_test = train.reshape(500, -1), test.reshape(100, -1)

    def psnr(dims, bits):
        r, b = pca_codec(flat_train, flat_test, dims, bits)
        assert b == math.ceil(dims * bits / 8)
        return rate_distortion_point(flat_test, r, b)["psnr"]

    by_dims = [psnr(d, 16) for d in (64, 32, 16, 8, 4)]
    by_bits = [psnr(64, b) for b in (16, 8, 4, 2)]
    assert all(a > b for a, b in zip(by_dims, by_dims[1:])), by_dims
    assert all(a > b for a, b in zip(by_bits, by_bits[1:])), by_bits


def test_pca_codec_bad_input():
    x = smooth_images(20, 1, 4, 4, seed=7)
    with pytest.raises(BadInput, match="uint8"):
        pca_codec(x.astype(np.float32), x, 4, 8)
    with pytest.raises(BadInput, match="pixels"):
        pca_codec(x, x[:, :, :2], 4, 8)
    with pytest.raises(BadInput, match="dims"):
        pca_codec(x, x, 17, 8)


# ---------------------------------------------------------------------------------------------
# JPEG at a byte budget


@pytest.mark.parametrize("channels,side", [(1, 28), (3, 32)])
def test_jpeg_at_bytes_fits_and_quality_rises_with_target(channels, side):
    images = smooth_images(24, channels, side, side, seed=8, noise=12.0)
    qualities = []
    for target in (60, 120, 250, 500, 1000):
        for scan_only in (True, False):
            try:
                r = jpeg_at_bytes(images, target, scan_only=scan_only)
            except BadInput as e:                    # a whole file cannot be this small
                assert not scan_only and "minimum" in str(e)
                continue
            assert r["bytes"] <= target                                        # never above the target
            assert r["bytes"] == (r["scan_bytes"] if scan_only else r["file_bytes"])
            assert r["scan_bytes"] < r["file_bytes"]
            assert r["images"].shape == images.shape and r["images"].dtype == np.uint8
            if scan_only:
                qualities.append(r["quality"])
    assert qualities == sorted(qualities) and qualities[0] < qualities[-1]    # rises with the target
    # the images really are coded at that quality: decoding differs from the input, but not wildly
    r = jpeg_at_bytes(images, 250)
    assert 20 < rate_distortion_point(images, r["images"], r["bytes"])["psnr"] < 60


def test_jpeg_headers_are_shared_at_a_fixed_quality():
    """What scan_only rests on: file - scan bytes are the same for every image at one quality."""
    images = smooth_images(10, 1, 28, 28, seed=9, noise=20.0)
    for quality in (10, 50, 90):
        files = _jpeg_encode(images, quality)
        headers = {len(f) - _jpeg_scan_bytes(f) for f in files}
        assert len(headers) == 1
        assert len({len(f) for f in files}) > 1                                # the scans do differ


def test_jpeg_at_bytes_limits():
    images = smooth_images(4, 1, 28, 28, seed=10, noise=40.0)
    assert jpeg_at_bytes(images, 1e6)["quality"] == 95                         # everything fits
    with pytest.raises(BadInput, match="minimum"):
        jpeg_at_bytes(images, 1)
    with pytest.raises(BadInput, match="target_bytes"):
        jpeg_at_bytes(images, -5)
    with pytest.raises(BadInput, match="C = 1 or 3"):
        jpeg_at_bytes(np.zeros((2, 2, 8, 8), np.uint8), 100)


# ---------------------------------------------------------------------------------------------
# rate-distortion points


def test_rate_distortion_point_by_hand():
    orig = np.zeros((1, 1, 2, 2), np.uint8)
    recon = np.array([[[[51, 0], [0, 0]]]], np.uint8)                          # one pixel off by 0.2
    p = rate_distortion_point(orig, recon, 3)
    mse = 0.2 ** 2 / 4
    assert p["mse"] == pytest.approx(mse)
    assert p["psnr"] == pytest.approx(10 * math.log10(1 / mse))
    assert p["bytes"] == 3 and p["bits_per_dim"] == pytest.approx(3 * 8 / 4)


def test_rate_distortion_psnr_is_the_mean_over_images():
    orig = np.zeros((2, 3, 2, 2), np.uint8)                                    # C = 3: 12 values per image
    recon = orig.copy()
    recon[0, 0, 0, 0] = 255                                                    # image 0: one value off by 1
    recon[1] = 51                                                              # image 1: all off by 0.2
    mse0, mse1 = 1 / 12, 0.04
    p = rate_distortion_point(orig, recon, 6)
    assert p["mse"] == pytest.approx((mse0 + mse1) / 2)                        # pooled over all values
    assert p["psnr"] == pytest.approx((10 * math.log10(1 / mse0) + 10 * math.log10(1 / mse1)) / 2)
    assert p["psnr"] > 10 * math.log10(1 / p["mse"])                          # Jensen
    assert p["bits_per_dim"] == pytest.approx(6 * 8 / 12)
    flat = rate_distortion_point(orig.reshape(2, -1), recon.reshape(2, -1), 6)
    assert flat == pytest.approx(p)
    assert rate_distortion_point(orig, orig, 1)["psnr"] == pytest.approx(100)  # the cap, not inf


def test_rate_distortion_point_bad_input():
    a = np.zeros((2, 1, 4, 4), np.uint8)
    with pytest.raises(BadInput, match="shape"):
        rate_distortion_point(a, a[:1], 1)
    with pytest.raises(BadInput, match="uint8"):
        rate_distortion_point(a, a.astype(float), 1)
    with pytest.raises(BadInput, match="bytes_per_image"):
        rate_distortion_point(a, a, float("nan"))
