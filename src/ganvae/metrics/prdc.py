"""Precision, recall, density and coverage of generated features against real features, from
k-nearest-neighbour balls.

References:
    Kynkäänniemi, Karras, Laine, Lehtinen, Aila. "Improved Precision and Recall Metric for
    Assessing Generative Models." NeurIPS 2019 (precision, recall).
    Naeem, Oh, Uh, Choi, Yoo. "Reliable Fidelity and Diversity Metrics for Generative
    Models." ICML 2020 (density, coverage).

With r_k(z) the distance from z to its k-th nearest neighbour within its own set (z itself
not counted), real x_i (i < N) and fake y_j (j < M):
    precision = 1/M  sum_j [exists i: d(x_i, y_j) < r_k(x_i)]     fakes inside the real manifold
    recall    = 1/N  sum_i [exists j: d(x_i, y_j) < r_k(y_j)]     reals inside the fake manifold
    density   = 1/(kM) sum_j sum_i [d(x_i, y_j) < r_k(x_i)]       how many real balls hold a fake
    coverage  = 1/N  sum_i [min_j d(x_i, y_j) < r_k(x_i)]         real balls that hold any fake
Strict inequalities, as in the reference implementation of Naeem et al. (the `prdc`
package), whose results these equal.

Memory: distances are never held as a full matrix. Each block of rows is computed as
||x||^2 + ||y||^2 - 2 x.y in float64 (the expansion loses ~1e-16 * ||x||^2 absolute, harmless
at k-NN radii), then rounded to the features' precision (float32 features give float32
distances, exactly as sklearn's pairwise_distances inside `prdc` does, so ties break alike)
and reduced at once; a block holds about BLOCK_BYTES of float64 distances (128 MB), so
10,000 x 10,000 needs ~1,600 rows per block and ~250 MB at peak, not an 800 MB matrix.

The real set's radii are the largest single cost (N^2 distances) and do not depend on the
fakes: the last few are kept, keyed by a hash of the real features, so a comparison that
scores many models against one test set computes them once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Iterator

import numpy as np
import torch

from ..errors import BadInput
from ._checks import TooFewRows, as_features, same_width

BLOCK_BYTES = 1 << 27  # float64 distances per block: 128 MB
_RADII: OrderedDict[tuple, torch.Tensor] = OrderedDict()   # real radii by (features hash, k, dtype)
_RADII_KEEP = 4


def _distance_blocks(x: torch.Tensor, y: torch.Tensor, out_dtype: torch.dtype,
                     same: bool = False) -> Iterator[tuple[slice, torch.Tensor]]:
    """Euclidean distances from row blocks of x to all of y: yields (rows, (B, M) block).

    Args:
        x: (N, D) float64; y: (M, D) float64.
        out_dtype: the precision distances are rounded to before the square root.
        same: x is y; the diagonal is then set to exactly 0 (round-off would leave ~1e-8).
    """
    x2 = (x * x).sum(1)                                     # (N,)
    y2 = (y * y).sum(1)                                     # (M,)
    rows = max(1, BLOCK_BYTES // (8 * y.shape[0]))
    for start in range(0, x.shape[0], rows):
        sl = slice(start, min(start + rows, x.shape[0]))
        # -2 x.y + ||x||^2 + ||y||^2 in place (sklearn's order of operations)
        d2 = (x[sl] @ y.T).mul_(-2.0).add_(x2[sl, None]).add_(y2[None, :])   # (B, M)
        if same:
            d2[torch.arange(d2.shape[0]), torch.arange(sl.start, sl.stop)] = 0.0
        yield sl, d2.to(out_dtype).clamp_min_(0.0).sqrt_()


def knn_radii(x: torch.Tensor, k: int, out_dtype: torch.dtype) -> torch.Tensor:
    """Distance from each row of x (N, D) to its k-th nearest other row: (N,)."""
    radii = torch.empty(x.shape[0], dtype=out_dtype)
    for sl, d in _distance_blocks(x, x, out_dtype, same=True):
        # the k+1 smallest include the point itself (distance 0), so the largest of them
        # is the k-th neighbour's distance
        radii[sl] = torch.topk(d, k + 1, dim=1, largest=False, sorted=False).values.amax(1)
    return radii


def _cached_radii(real: np.ndarray, x: torch.Tensor, k: int, out_dtype: torch.dtype) -> torch.Tensor:
    key = (hashlib.sha256(np.ascontiguousarray(real).tobytes()).hexdigest(), real.shape, k, out_dtype)
    if key in _RADII:
        _RADII.move_to_end(key)
        return _RADII[key]
    radii = _RADII[key] = knn_radii(x, k, out_dtype)
    while len(_RADII) > _RADII_KEEP:
        _RADII.popitem(last=False)
    return radii


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage of fake (M, D) against real (N, D) features.

    Args:
        real: (N, D) real features, N > k.
        fake: (M, D) generated features, M > k.
        k: the neighbour whose distance is a ball's radius (5 in both papers).
    Returns:
        {"precision", "recall", "density", "coverage"}: floats; density may exceed 1.
    """
    real = as_features(real, "real")
    fake = as_features(fake, "fake")
    same_width(real, fake, "prdc")
    if k < 1:
        raise BadInput(f"prdc: k={k} must be at least 1")
    if k >= min(len(real), len(fake)):   # a ball needs k neighbours besides its own centre
        raise TooFewRows(f"prdc: k={k} needs 1 <= k < the number of samples in each set "
                         f"(real {len(real)}, fake {len(fake)})")
    out_dtype = torch.float32 if np.result_type(real.dtype, fake.dtype) == np.float32 else torch.float64
    x = torch.from_numpy(real).to(torch.float64)              # (N, D)
    y = torch.from_numpy(fake).to(torch.float64)              # (M, D)
    r_real = _cached_radii(real, x, k, out_dtype)             # (N,)
    r_fake = knn_radii(y, k, out_dtype)                       # (M,)

    in_real_balls = torch.zeros(len(fake), dtype=torch.int64)  # (M,) real balls holding fake j
    recalled = torch.zeros(len(real), dtype=torch.bool)        # (N,) real i in some fake ball
    covered = torch.zeros(len(real), dtype=torch.bool)         # (N,) real ball i holds a fake
    for sl, d in _distance_blocks(x, y, out_dtype):           # d: (B, M) real block x fakes
        in_real_balls += (d < r_real[sl, None]).sum(0)
        recalled[sl] = (d < r_fake[None, :]).any(1)
        covered[sl] = d.amin(1) < r_real[sl]
    return {
        "precision": float((in_real_balls > 0).double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(in_real_balls.double().mean() / k),
        "coverage": float(covered.double().mean()),
    }
