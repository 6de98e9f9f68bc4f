"""Completion metrics against closed forms and scikit-image."""

import math

import numpy as np
import pytest

from ganvae.errors import BadInput
from ganvae.metrics.inpainting import hole_mse, hole_mse_per_image, hole_psnr, ssim, ssim_per_image


def test_hole_mse_and_psnr_by_hand():
    """Two 2x2 images; only the hole pixels count, per image, then the mean over images."""
    orig = np.array([[[[0, 255], [255, 0]]], [[[100, 100], [100, 100]]]], np.uint8)      # (2, 1, 2, 2)
    done = np.array([[[[51, 255], [0, 0]]], [[[100, 100], [100, 100]]]], np.uint8)
    mask = np.array([[[[0, 1], [0, 1]]], [[[1, 0], [1, 1]]]], np.float32)                # 1 = known
    # image 0: hole pixels (0,0) and (1,0): errors 51/255 = 0.2 and 1.0 -> (0.04 + 1) / 2
    # image 1: hole pixel (0,1): error 0 (the known pixels are ignored wherever they differ)
    per = hole_mse_per_image(done, orig, mask)
    assert per == pytest.approx([0.52, 0.0])
    assert hole_mse(done, orig, mask) == pytest.approx(0.26)
    # PSNR per image: 10 log10(1/0.52) and the 100 dB cap of a perfect hole, then the mean
    assert hole_psnr(done, orig, mask) == pytest.approx((10 * math.log10(1 / 0.52) + 100) / 2)


def test_known_pixels_do_not_count():
    rng = np.random.default_rng(0)
    orig = rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    mask = (rng.random((4, 1, 8, 8)) < 0.5).astype(np.float32)
    done = np.where(mask.astype(bool), rng.integers(0, 256, orig.shape, dtype=np.uint8), orig)
    assert hole_mse(done, orig, mask) == 0.0            # every error is on a known pixel


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    for shape in ((3, 1, 28, 28), (2, 3, 32, 32)):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        b = np.clip(a.astype(int) + rng.integers(-60, 61, shape), 0, 255).astype(np.uint8)
        ours = ssim_per_image(b, a)
        for i in range(shape[0]):
            ref = skm.structural_similarity(a[i].astype(np.float64) / 255, b[i].astype(np.float64) / 255,
                                            gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                            data_range=1.0, channel_axis=0)
            assert ours[i] == pytest.approx(ref, abs=1e-10)


def test_ssim_closed_forms():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    # constant images c1 and c2: variances 0, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
    c1, c2 = np.full((1, 1, 16, 16), 51, np.uint8), np.full((1, 1, 16, 16), 204, np.uint8)
    m1, m2, k = 0.2, 0.8, 0.01 ** 2
    assert ssim(c1, c2) == pytest.approx((2 * m1 * m2 + k) / (m1 ** 2 + m2 ** 2 + k))


def test_shapes_checked():
    a = np.zeros((2, 1, 8, 8), np.uint8)
    with pytest.raises(BadInput, match="must both be"):
        hole_mse(a, a[:1], np.ones((2, 1, 8, 8)))
    with pytest.raises(BadInput, match="does not fit"):
        hole_mse(a, a, np.ones((2, 1, 4, 4)))
    with pytest.raises(BadInput, match="too small"):
        ssim(np.zeros((1, 1, 6, 6), np.uint8), np.zeros((1, 1, 6, 6), np.uint8))
