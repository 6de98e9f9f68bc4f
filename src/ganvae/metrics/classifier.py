"""Metrics on a classifier's outputs for generated samples: the Inception-Score formula and
mode coverage (how many classes are generated, and how far the class histogram is from the
real one).

References:
    Salimans, Goodfellow, Zaremba, Cheung, Radford, Chen. "Improved Techniques for Training
    GANs." NeurIPS 2016 (Inception Score: exp(E_x KL(p(y|x) || p(y)))).
    Barratt, Sharma. "A Note on the Inception Score." 2018 (why splits bias the score and
    why it only makes sense with the classifier of the data it was trained on).
    Metz, Poole, Pfau, Sohl-Dickstein. "Unrolled Generative Adversarial Networks." ICLR 2017
    (counting modes with a pretrained classifier, the KL of the class histograms).
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInput

PROB_FLOOR = 1e-12  # log() floor for probabilities; entries that are exactly 0 add 0 to a KL
HIST_EPS = 1e-6     # share added to every class before a histogram KL (see mode_coverage)


def _as_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
        raise BadInput(f"probs: expected a (N, K) array of class probabilities, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise BadInput("probs: rows must be finite, non-negative and sum to 1 "
                       "(softmax outputs, not logits)")
    return p


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p_i || q) for each row p_i of p (N, K) against q (K,), with 0 log 0 = 0."""
    logp = np.log(np.clip(p, PROB_FLOOR, None))
    logq = np.log(np.clip(q, PROB_FLOOR, None))
    return (p * (logp - logq)).sum(1)                      # (N,); p = 0 terms are exactly 0


def classifier_score_splits(probs, splits: int = 10) -> tuple[float, float]:
    """The Inception-Score formula on `splits` contiguous chunks: (mean, std) over chunks.

    Args:
        probs: (N, K) softmax outputs of a classifier on generated samples.
        splits: number of chunks; each chunk estimates its own marginal p(y).
    Returns:
        (mean, std) of exp(mean_x KL(p(y|x) || p(y))) over the chunks (std with ddof=0).
    """
    p = _as_probs(probs)
    if not 1 <= splits <= len(p):
        raise BadInput(f"classifier_score: splits={splits} must be between 1 and N={len(p)}")
    scores = []
    for chunk in np.array_split(p, splits):               # (n, K) each
        marginal = chunk.mean(0)                           # p(y) estimated on the chunk, (K,)
        scores.append(np.exp(_kl_rows(chunk, marginal).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def classifier_score(probs, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) || p(y))) on a classifier's softmax outputs (N, K); in [1, K].

    K for confident predictions spread evenly over all classes, 1 for a generator whose
    samples all get the same prediction. One split by default: the score uses p(y) estimated
    from the samples, and the mean KL is E H(p(y)) - E H(p(y|x)), whose first term a plug-in
    estimate from fewer samples underestimates; the traditional 10 splits therefore bias the
    score low and tie it to N / 10. Use `classifier_score_splits` for the split mean and std.

    Args:
        probs: (N, K) class probabilities (rows sum to 1).
        splits: chunks averaged (see above).
    """
    return classifier_score_splits(probs, splits)[0]


def _smoothed(h: np.ndarray, eps: float) -> np.ndarray:
    h = h + eps
    return h / h.sum()


def mode_coverage(probs_or_labels, num_classes: int | None = None, real_hist=None,
                  min_fraction: float = 0.5, eps: float = HIST_EPS) -> dict:
    """Class histogram of generated samples, the number of modes it covers, and its KL to the
    real class histogram in both directions.

    A class counts as a covered mode when its share of the samples is at least
    `min_fraction / num_classes`: with the default 0.5, half the share it would get under a
    uniform histogram, so a class that is generated only by rare accidents (or by the
    classifier's errors on other classes) does not count. For a real histogram far from
    uniform, read `kl` and `reverse_kl` rather than `modes`.

    The two KLs answer different questions (both are 0 when the histograms agree):
      kl         = KL(sample || real): large when the samples put mass on classes that are
                   rare in the real data (over-represented classes, spurious modes);
                   missing classes cost it little.
      reverse_kl = KL(real || sample): large when real classes are missing or
                   under-represented in the samples: the one that punishes mode dropping.
    Both histograms get `eps` added to every class and are renormalized before the KL, so a
    missing class gives a large but finite value (about share * log(share / eps)).

    Args:
        probs_or_labels: (N, K) class probabilities (the argmax is the class) or (N,) integer
            labels in [0, num_classes).
        num_classes: K; defaults to probs.shape[1] (required for labels).
        real_hist: (K,) class shares of the real data (normalized here); uniform if None.
        min_fraction: the share, relative to uniform, that makes a class a covered mode.
        eps: the smoothing share added to every class before the KLs.
    Returns:
        {"modes": int, "hist": list of K shares, "kl": float, "reverse_kl": float}.
    """
    y = np.asarray(probs_or_labels)
    if y.ndim == 2:
        labels = _as_probs(y).argmax(1)
        if num_classes is None:
            num_classes = y.shape[1]
        elif num_classes != y.shape[1]:
            raise BadInput(f"mode_coverage: probs have {y.shape[1]} classes, num_classes is {num_classes}")
    elif y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        if num_classes is None:
            raise BadInput("mode_coverage: num_classes is required with integer labels")
        labels = y
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise BadInput(f"mode_coverage: labels must lie in [0, {num_classes})")
    else:
        raise BadInput(f"mode_coverage: expected (N, K) probabilities or (N,) integer labels, "
                       f"got {y.dtype} {y.shape}")
    if len(labels) == 0:
        raise BadInput("mode_coverage: no samples")
    counts = np.bincount(labels, minlength=num_classes)                       # (K,)
    hist = counts / len(labels)
    if real_hist is None:
        real = np.full(num_classes, 1.0 / num_classes)
    else:
        real = np.asarray(real_hist, dtype=np.float64)
        if real.shape != (num_classes,) or not np.isfinite(real).all() or (real < 0).any() or real.sum() <= 0:
            raise BadInput(f"mode_coverage: real_hist must be {num_classes} non-negative shares, got {real.shape}")
        real = real / real.sum()
    p, q = _smoothed(hist, eps), _smoothed(real, eps)
    return {
        # share >= min_fraction / K, compared as counts so an exact boundary share counts
        "modes": int((counts * num_classes >= min_fraction * len(labels)).sum()),
        "hist": hist.tolist(),
        "kl": float((p * np.log(p / q)).sum()),
        "reverse_kl": float((q * np.log(q / p)).sum()),
    }
