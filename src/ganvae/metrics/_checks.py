"""Input checks shared by the metric functions: a clear error instead of a silent NaN."""

from __future__ import annotations

import numpy as np

from ..errors import BadInput


class TooFewRows(BadInput):
    """A metric was given fewer rows than it can be computed from (a covariance of N <= D codes,
    k-NN balls with k >= N, an unbiased estimate from one row).

    Its own class, a BadInput still, so that the evaluation suite can leave out a metric a small
    test split cannot support, note why, and keep every other score, while any other bad input
    (NaN features, mismatched widths: a bug upstream) stays an error.
    """


def as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
    """`x` as a finite floating (N, D) array (float16 and integers become float32).

    Args:
        x: array-like of shape (N, D).
        name: how the error message names it.
        min_rows: the fewest rows the metric can work with.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise BadInput(f"{name}: expected a 2-D (N, D) array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize < 4:
        x = x.astype(np.float32)
    if len(x) < min_rows:
        raise TooFewRows(f"{name}: needs at least {min_rows} rows, got {len(x)}")
    if not np.isfinite(x).all():
        raise BadInput(f"{name}: contains NaN or infinite values")
    return x


def same_width(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise BadInput(f"{names}: feature widths differ ({a.shape[1]} vs {b.shape[1]})")
