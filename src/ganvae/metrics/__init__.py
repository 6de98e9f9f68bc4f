"""Sample-quality metrics: pure functions on feature arrays and class probabilities, and the
registry that names each metric and says which direction is better.

    fd.py          Fréchet distance (Heusel et al. 2017)
    kid.py         kernel inception distance (Binkowski et al. 2018)
    prdc.py        precision / recall (Kynkäänniemi et al. 2019), density / coverage (Naeem et al. 2020)
    classifier.py  Inception-Score formula (Salimans et al. 2016), mode coverage and class-histogram KLs

`METRICS` is the single source of metric names and directions. Metrics computed together
(precision, recall, density and coverage come from one pass over the distances) share one
family function, which `sample_metrics` calls once; a family is registered with
`register_family`, so a new metric is one decorated function, not a branch in an if/elif.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import BadInput
from ._checks import TooFewRows
from .classifier import classifier_score, classifier_score_splits, mode_coverage
from .fd import fd_from_features, frechet_distance, gaussian_stats
from .kid import kernel_inception_distance
from .prdc import prdc

__all__ = [
    "METRICS", "KINDS", "Metric", "MetricInputs", "register_family", "sample_metrics", "directions",
    "frechet_distance", "gaussian_stats", "fd_from_features", "kernel_inception_distance", "prdc",
    "classifier_score", "classifier_score_splits", "mode_coverage", "TooFewRows",
]


@dataclass(frozen=True)
class MetricInputs:
    """Everything a family function may read; features are (N, D) / (M, D), probs (., K)."""

    real_feats: np.ndarray
    fake_feats: np.ndarray
    real_probs: np.ndarray | None = None
    fake_probs: np.ndarray | None = None
    num_classes: int | None = None
    real_hist: np.ndarray | None = None
    k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0


# kind -> whether metrics of that kind can be computed from the given inputs
KINDS: dict[str, Callable[[MetricInputs], bool]] = {
    "features": lambda inp: inp.real_feats is not None and inp.fake_feats is not None,
    "probs": lambda inp: inp.fake_probs is not None,
}


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    function is the family function it is computed by: MetricInputs -> {name: value} for
    every metric of the family and its extras (outputs reported beside it, such as kid_std,
    which have no better direction).
    """

    name: str
    higher_is_better: bool
    kind: str                    # a key of KINDS: "features" | "probs"
    description: str
    function: Callable[[MetricInputs], dict[str, float]]
    extras: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {}


def register_family(kind: str, metrics: dict[str, tuple[bool, str]], extras: tuple[str, ...] = ()):
    """Decorator: register the metrics one family function computes.

    Args:
        kind: a key of KINDS, the inputs the family needs.
        metrics: {name: (higher_is_better, one-line description)}.
        extras: further names the function returns, reported with the family's first metric.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown metric kind {kind!r}")

    def deco(fn):
        for i, (name, (higher, text)) in enumerate(metrics.items()):
            if name in METRICS:
                raise ValueError(f"metric {name!r} registered twice")
            METRICS[name] = Metric(name, higher, kind, text, fn, extras if i == 0 else ())
        return fn

    return deco


@register_family("features", {"fd": (False, "Fréchet distance between Gaussians fitted to the features")})
def _fd(inp: MetricInputs) -> dict[str, float]:
    return {"fd": fd_from_features(inp.real_feats, inp.fake_feats)}


@register_family("features", {"kid": (False, "kernel inception distance: unbiased MMD^2, cubic kernel, "
                                             "mean over subsets")}, extras=("kid_std",))
def _kid(inp: MetricInputs) -> dict[str, float]:
    mean, std = kernel_inception_distance(inp.real_feats, inp.fake_feats, subsets=inp.kid_subsets,
                                          subset_size=inp.kid_subset_size, seed=inp.seed)
    return {"kid": mean, "kid_std": std}


@register_family("features", {
    "precision": (True, "share of samples inside the real k-NN manifold (fidelity)"),
    "recall": (True, "share of real images inside the samples' k-NN manifold (diversity)"),
    "density": (True, "real k-NN balls holding a sample, per sample and k (fidelity; ~1 for real data)"),
    "coverage": (True, "share of real k-NN balls holding at least one sample (diversity)"),
})
def _prdc(inp: MetricInputs) -> dict[str, float]:
    return prdc(inp.real_feats, inp.fake_feats, k=inp.k)


@register_family("probs", {"classifier_score": (True, "Inception-Score formula exp(E KL(p(y|x) || p(y))) "
                                                      "with the dataset's classifier; in [1, K]")})
def _classifier_score(inp: MetricInputs) -> dict[str, float]:
    return {"classifier_score": classifier_score(inp.fake_probs)}


@register_family("probs", {
    "mode_coverage": (True, "classes generated with at least half their uniform share"),
    "mode_kl": (False, "KL(sample class histogram || real class histogram)"),
    "mode_reverse_kl": (False, "KL(real class histogram || sample class histogram); punishes missing modes"),
})
def _modes(inp: MetricInputs) -> dict[str, float]:
    real_hist = inp.real_hist
    if real_hist is None and inp.real_probs is not None:
        # without labels, the classifier's own histogram on real data is the reference: its
        # errors then cancel instead of counting against the model
        k = np.asarray(inp.real_probs).shape[1]
        real_hist = np.bincount(np.asarray(inp.real_probs).argmax(1), minlength=k) / len(inp.real_probs)
    mc = mode_coverage(inp.fake_probs, inp.num_classes, real_hist)
    return {"mode_coverage": mc["modes"], "mode_kl": mc["kl"], "mode_reverse_kl": mc["reverse_kl"]}


def directions() -> dict[str, bool]:
    """{metric name: higher is better} for every registered metric."""
    return {name: m.higher_is_better for name, m in METRICS.items()}


def sample_metrics(real_feats, fake_feats, real_probs=None, fake_probs=None, num_classes=None,
                   real_hist=None, k: int = 5, kid_subsets: int = 100, kid_subset_size: int = 1000,
                   seed: int = 0, skipped: dict[str, str] | None = None) -> dict[str, float]:
    """Every registered metric that the inputs allow, as plain floats.

    Args:
        real_feats, fake_feats: (N, D) and (M, D) evaluator features.
        real_probs, fake_probs: (N, K), (M, K) class probabilities; the "probs" metrics are
            computed only when fake_probs is given.
        num_classes: K (defaults to fake_probs.shape[1]).
        real_hist: (K,) real class shares; if None, the argmax histogram of real_probs, and
            if that is None too, uniform.
        k: neighbours for precision / recall / density / coverage.
        kid_subsets, kid_subset_size, seed: KID's subsets and their seed.
        skipped: None: a family that cannot be computed from this few rows raises TooFewRows.
            A dict: that family's metrics (and extras) are left out and recorded in it as
            {name: why}; every other error still raises.
    Returns:
        {name: value} in registry order, plus each family's extras (kid_std).
    """
    inp = MetricInputs(real_feats, fake_feats, real_probs, fake_probs, num_classes, real_hist,
                       k, kid_subsets, kid_subset_size, seed)
    if fake_probs is not None and real_probs is not None and np.shape(real_probs)[1:] != np.shape(fake_probs)[1:]:
        raise BadInput(f"real probs have shape {np.shape(real_probs)}, fake probs {np.shape(fake_probs)}")
    computed: dict[Callable, dict[str, float] | TooFewRows] = {}   # family function -> its outputs, or why not
    out: dict[str, float] = {}
    for name, metric in METRICS.items():
        if not KINDS[metric.kind](inp):
            continue
        if metric.function not in computed:
            try:
                computed[metric.function] = metric.function(inp)
            except TooFewRows as e:
                if skipped is None:
                    raise
                computed[metric.function] = e
        values = computed[metric.function]
        if isinstance(values, TooFewRows):   # the whole family is out: each of its names says why
            skipped.update({key: str(values) for key in (name, *metric.extras)})
            continue
        for key in (name, *metric.extras):
            out[key] = float(values[key])
    return out
