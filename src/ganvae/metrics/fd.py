"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features are
Inception-v3's; here any evaluator's).

    FD = ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2})

References:
    Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter. "GANs Trained by a Two Time-Scale
    Update Rule Converge to a Local Nash Equilibrium." NeurIPS 2017 (FID).
    Dowson, Landau. "The Fréchet distance between multivariate normal distributions."
    J. Multivariate Analysis 1982 (the closed form).

Only the trace of (C1 C2)^{1/2} is needed. C1 C2 is not symmetric, but it is similar to
S C2 S with S = C1^{1/2} (C1 C2 = S (S C2 S) S^{-1} when C1 is invertible, and by continuity
otherwise), and S C2 S is symmetric positive semi-definite. So the trace is the sum of the
square roots of the eigenvalues of S C2 S, from two symmetric eigendecompositions (eigh),
which are stable and fast, unlike a general matrix square root (scipy.linalg.sqrtm), whose
Schur iteration can return complex parts or NaN for the nearly singular covariances of
low-rank features.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInput
from ._checks import as_features, same_width

# Added to both diagonals only when the exact computation fails (eigh does not converge or
# the result is not finite); the value pytorch-fid uses for the same fallback.
FALLBACK_EPS = 1e-6


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof=1) covariance of features, in float64.

    Args:
        features: (N, D) array, N >= 2.
    Returns:
        mu (D,), cov (D, D), both float64.
    """
    x = as_features(features, "features", min_rows=2).astype(np.float64)  # (N, D)
    mu = x.mean(axis=0)                                                   # (D,)
    xc = x - mu
    cov = xc.T @ xc / (len(x) - 1)                                        # (D, D)
    return mu, cov


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; round-off negatives clipped to 0."""
    w, v = np.linalg.eigh(c)                      # c = v diag(w) v^T
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(c1: np.ndarray, c2: np.ndarray) -> float:
    """Tr((C1 C2)^{1/2}) via the eigenvalues of C1^{1/2} C2 C1^{1/2}."""
    s = _psd_sqrt(c1)                             # (D, D)
    m = s @ c2 @ s
    m = (m + m.T) / 2                             # symmetric up to round-off; make it exact
    ev = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    Args:
        mu1, mu2: (D,) means.
        cov1, cov2: (D, D) symmetric PSD covariances.
    Returns:
        The distance (squared, as in FID), a float >= 0.
    """
    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    c1, c2 = (np.asarray(c, dtype=np.float64) for c in (cov1, cov2))
    if mu1.ndim != 1:
        raise BadInput(f"frechet_distance: mu1 has shape {mu1.shape}, expected a vector (D,)")
    d = mu1.shape[0]
    for name, arr, shape in (("mu1", mu1, (d,)), ("mu2", mu2, (d,)), ("cov1", c1, (d, d)), ("cov2", c2, (d, d))):
        if arr.shape != shape:
            raise BadInput(f"frechet_distance: {name} has shape {arr.shape}, expected {shape}")
        if not np.isfinite(arr).all():
            raise BadInput(f"frechet_distance: {name} contains NaN or infinite values")
    c1, c2 = (c1 + c1.T) / 2, (c2 + c2.T) / 2
    diff = mu1 - mu2
    try:
        tr_sqrt = _trace_sqrt_product(c1, c2)
    except np.linalg.LinAlgError:
        tr_sqrt = float("nan")
    if not np.isfinite(tr_sqrt):
        offset = FALLBACK_EPS * np.eye(d)
        c1, c2 = c1 + offset, c2 + offset
        tr_sqrt = _trace_sqrt_product(c1, c2)
    fd = float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * tr_sqrt)
    # The exact value is a squared distance (the 2-Wasserstein distance between Gaussians),
    # so a negative result is round-off of order 1e-12 * Tr(C): report it as 0.
    return max(fd, 0.0)


def fd_from_features(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    a = as_features(a, "a", min_rows=2)
    b = as_features(b, "b", min_rows=2)
    same_width(a, b, "fd_from_features")
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
