"""Completion (inpainting) quality: pure functions of completed images, originals and masks.

All take uint8 images (N, C, H, W) and a mask (N, 1, H, W) or (N, C, H, W) with 1 = known
pixel, 0 = hole, and measure on intensities in [0, 1].

    hole_mse     mean squared error over the hole pixels only, per image, then averaged
    hole_psnr    10 log10(1 / hole_mse) per image (peak 1), then averaged; the usual way
                 inpainting papers report PSNR (Yeh et al. 2017, Pathak et al. 2016)
    ssim         structural similarity of the whole image (Wang, Bovik, Sheikh, Simoncelli,
                 "Image quality assessment: from error visibility to structural similarity",
                 IEEE TIP 2004), Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, population
                 (co)variances, mean over the interior where the window fits: the settings of
                 the paper, and of scikit-image's `structural_similarity(gaussian_weights=True,
                 use_sample_covariance=False, data_range=1)`, which the tests check against.

Only the hole is scored by MSE and PSNR because the known pixels are pasted back: counting them
would dilute every score towards perfect by the known share of the image.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from ..errors import BadInput

# A perfect hole gives MSE 0 and infinite PSNR; capped here (1e-10 -> 100 dB) so means stay finite.
MSE_FLOOR = 1e-10


def _check(completed: np.ndarray, original: np.ndarray, mask: np.ndarray | None = None):
    if completed.shape != original.shape or completed.ndim != 4:
        raise BadInput(f"completion metrics: completed {completed.shape} and original {original.shape} "
                       "must both be (N, C, H, W)")
    a = completed.astype(np.float64) / 255.0
    b = original.astype(np.float64) / 255.0
    if mask is None:
        return a, b, None
    m = np.asarray(mask)
    if m.ndim != 4 or m.shape[0] != a.shape[0] or m.shape[2:] != a.shape[2:] or m.shape[1] not in (1, a.shape[1]):
        raise BadInput(f"completion metrics: mask {m.shape} does not fit images {a.shape}")
    hole = np.broadcast_to(m < 0.5, a.shape)                      # (N, C, H, W), True in the hole
    return a, b, hole


def hole_mse_per_image(completed: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) mean squared error over each image's hole pixels on [0, 1]; NaN for an image without a hole."""
    a, b, hole = _check(completed, original, mask)
    se = ((a - b) ** 2 * hole).reshape(len(a), -1).sum(1)
    count = hole.reshape(len(a), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, se / np.maximum(count, 1), np.nan)


def hole_mse(completed: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    """Mean over images (with a hole) of the per-image hole MSE on [0, 1]."""
    return float(np.nanmean(hole_mse_per_image(completed, original, mask)))


def psnr_of(mse_per_image: np.ndarray) -> float:
    """ganvae's one PSNR: the mean over images of 10 log10(1 / MSE_i) in dB, MSE_i each image's
    mean squared error on [0, 1] intensities (peak 1), capped at 100 dB for a perfect image;
    NaN entries (images with nothing scored) are left out. Every PSNR ganvae reports (eval's
    reconstructions, compress, complete, translate) is this, never 10 log10(1 / pooled MSE),
    which the worst images dominate and which reads lower (Jensen; 0.65-1.0 dB on the β sweep's
    VAEs in BENCHMARKS.md; docs/results.md)."""
    mse = np.asarray(mse_per_image, dtype=np.float64)
    mse = mse[~np.isnan(mse)]
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, MSE_FLOOR))))


def hole_psnr(completed: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    """Mean over images (with a hole) of 10 log10(1 / hole MSE), in dB (peak intensity 1)."""
    return psnr_of(hole_mse_per_image(completed, original, mask))


def ssim_per_image(completed: np.ndarray, original: np.ndarray, sigma: float = 1.5,
                   k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """(N,) SSIM of each whole image, averaged over its channels (Wang et al. 2004).

    Local means, variances and the covariance come from a Gaussian filter (std sigma, cut at
    3.5 sigma: an 11 x 11 window at sigma 1.5) with reflected borders; the SSIM map is averaged
    over the pixels at least half a window from the border, where the window fits.
    """
    a, b, _ = _check(completed, original)
    n, c, h, w = a.shape
    truncate = 3.5
    pad = int(truncate * sigma + 0.5)                              # (window - 1) / 2
    if h <= 2 * pad or w <= 2 * pad:
        raise BadInput(f"ssim: images of {h}x{w} are too small for a Gaussian window of sigma {sigma}")
    c1, c2 = (k1 * 1.0) ** 2, (k2 * 1.0) ** 2                      # data range 1
    out = np.empty(n)

    def blur(t):  # filter the two image axes of (N*C, H, W) only
        return gaussian_filter(t, sigma=(0, sigma, sigma), truncate=truncate, mode="reflect")

    x = a.reshape(n * c, h, w)
    y = b.reshape(n * c, h, w)
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))   # (N*C, H, W)
    inner = s[:, pad:h - pad, pad:w - pad].reshape(n, c, -1).mean(2)                          # (N, C)
    out[:] = inner.mean(1)
    return out


def ssim(completed: np.ndarray, original: np.ndarray) -> float:
    """Mean SSIM over images (see ssim_per_image)."""
    return float(ssim_per_image(completed, original).mean())
