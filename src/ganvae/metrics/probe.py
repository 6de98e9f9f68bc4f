"""Probes: how good a frozen feature space is for classification, given few or many labels.

The caller extracts features (a model's latent means, raw pixels, a PCA projection) and passes
arrays; nothing here touches a model. Two probes, both on standardised features:

    linear_probe   multinomial logistic regression (the "linear evaluation protocol" of
                   self-supervised learning: Zhang, Isola, Efros, "Colorful Image Colorization",
                   ECCV 2016; Kolesnikov, Zhai, Beyer, "Revisiting Self-Supervised Visual
                   Representation Learning", CVPR 2019)
    knn_probe      k-nearest-neighbour vote in Euclidean distance (Wu, Xiong, Yu, Lin,
                   "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
                   CVPR 2018, evaluate features with a k-NN classifier)

`probe_curve` runs both on nested label subsets of 10 / 100 / 1000 labels per class: the
semi-supervised question of Kingma, Rezende, Mohamed, Welling, "Semi-Supervised Learning with
Deep Generative Models", NeurIPS 2014 (their M1 model is exactly a classifier on VAE latents).
`pca_fit` gives the baseline a latent has to beat: PCA of the raw pixels with as many
dimensions as the latent (Pearson 1901; Hotelling 1933).

Speed and determinism (measured on 10,000 x 784 Fashion-MNIST pixels, 2 cores with a
benchmark running on them):
  * BLAS runs on ONE thread inside every probe. OpenBLAS threads busy-wait, and on a loaded
    machine two of them thrash: the same logistic regression took 186 s on 2 threads and 13 s
    on 1; PCA's eigendecomposition 7.1 s vs 0.3 s. One thread also fixes the order of every
    floating-point reduction, so results do not depend on the machine's core count.
  * Features are cast to float32 before fitting: lbfgs on float32 was 2.3x faster than on
    float64 (57 s vs 135 s, 2 threads) at the same test accuracy (0.8353 vs 0.8354).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import BadInput
from ._checks import as_features, same_width

# See the module docstring: one BLAS/OpenMP thread is faster on a shared machine and deterministic.
BLAS_THREADS = 1

# Inverse L2 strength of the logistic regression. sklearn minimises
#   C * sum_i loss_i + ||W||^2 / 2,
# so the penalty per example is 1 / (2 C n): stronger with fewer labels, like a fixed Gaussian
# prior on W. One C for every feature set and label count, chosen on Fashion-MNIST's validation
# split (5,000 images held out of train; never the test split) by `benchmarks/tune_tasks.py
# probe` (benchmarks/results/tune_probe.json, BENCHMARKS.md "Tuning the tasks"): among C in
# {1, 0.1, 0.01, 0.001}, on pixels and 32-d PCA at 10/100/1,000 labels per class, 0.1 is never
# more than 1.04 points below the best C of a cell (0.01: 1.6, 1 and 0.001: 3.4-3.6). (It was
# first chosen on test accuracy; the validation split picks the same value.)
LOGREG_C = 0.1
# lbfgs needed 564 iterations on 10,000 standardised 784-dim pixels at C = 0.1 (tol 1e-4); lower
# dimensional features need far fewer. 2000 leaves a margin; sklearn warns (ConvergenceWarning)
# if it is ever reached.
LOGREG_MAX_ITER = 2000


# ---------------------------------------------------------------------------------------------
# input checks


def _labels(y, name: str, rows: int | None = None) -> np.ndarray:
    """`y` as a 1-D array of class labels, with `rows` entries when given."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise BadInput(f"{name}: expected a 1-D array of class labels, got shape {y.shape}")
    if len(y) == 0:
        raise BadInput(f"{name}: holds no labels; pass one label per example")
    if rows is not None and len(y) != rows:
        raise BadInput(f"{name}: has {len(y)} labels for {rows} feature rows; pass one label per row")
    return y


def _pair(train_x, train_y, test_x, test_y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (train_x (N, D) float32, train_y (N,), test_x (M, D) float32, test_y (M,))."""
    train_x = as_features(train_x, "train_x")
    test_x = as_features(test_x, "test_x")
    same_width(train_x, test_x, "train_x / test_x")
    train_y = _labels(train_y, "train_y", len(train_x))
    test_y = _labels(test_y, "test_y", len(test_x))
    if len(np.unique(train_y)) < 2:
        raise BadInput("train_y: holds a single class; a classifier needs at least two")
    # float32: see the module docstring (2.3x faster, same accuracy)
    return train_x.astype(np.float32, copy=False), train_y, test_x.astype(np.float32, copy=False), test_y


# ---------------------------------------------------------------------------------------------
# label subsets


def label_subset(y, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` examples of every class of `y`, drawn at random but nested.

    A class with fewer than `per_class` examples contributes all of them (no error, no
    warning): the returned size is sum_c min(per_class, count_c), which `probe_curve` reports
    as `n_train`. Call `np.bincount`/`np.unique` on `y[idx]` to see the actual counts.

    Nested: each class gets one permutation, drawn from a generator seeded by `seed` in
    sorted-class order, and the subset is its first `per_class` entries. The draws do not depend
    on `per_class`, so with the same seed the 10-per-class subset lies inside the 100-per-class
    one: a curve over label counts only adds labels, it never swaps them.

    Args:
        y: (N,) class labels (any sortable type).
        per_class: examples wanted per class, >= 1.
        seed: seed of the permutations.
    Returns:
        (n,) int64 indices into y, sorted ascending.
    """
    y = _labels(y, "y")
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise BadInput(f"per_class: must be a positive integer, got {per_class!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):                                       # sorted: a fixed draw order
        members = np.flatnonzero(y == c)                         # (count_c,)
        chosen.append(members[rng.permutation(len(members))[:per_class]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# probes


def _linear(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
            c: float) -> float:
    scaler = StandardScaler().fit(train_x)                        # statistics of train_x only
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=LOGREG_MAX_ITER)
    model.fit(scaler.transform(train_x), train_y)
    return float(np.mean(model.predict(scaler.transform(test_x)) == test_y))


def _knn(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int) -> float:
    scaler = StandardScaler().fit(train_x)
    # k larger than the training set means "vote among all of it"; sklearn would raise instead
    model = KNeighborsClassifier(n_neighbors=min(k, len(train_x)))  # uniform votes, Euclidean
    model.fit(scaler.transform(train_x), train_y)
    return float(np.mean(model.predict(scaler.transform(test_x)) == test_y))


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise BadInput(f"k: the number of neighbours must be a positive integer, got {k!r}")
    return int(k)


def linear_probe(train_x, train_y, test_x, test_y, c: float = LOGREG_C) -> float:
    """Test accuracy of a multinomial logistic regression on standardised features.

    Pipeline: StandardScaler fitted on train_x (zero-variance features are left unscaled),
    LogisticRegression(C=c, solver="lbfgs", max_iter=LOGREG_MAX_ITER) with the softmax
    (multinomial) loss, both on float32. Deterministic: lbfgs has no randomness and BLAS runs on
    one thread. See LOGREG_C for the choice of C.

    Args:
        train_x: (N, D) features; train_y: (N,) labels, at least two classes.
        test_x: (M, D) features; test_y: (M,) labels.
        c: inverse regularisation strength.
    Returns:
        fraction of test examples classified correctly, in [0, 1].
    """
    if not c > 0:
        raise BadInput(f"c: the inverse regularisation strength must be > 0, got {c!r}")
    args = _pair(train_x, train_y, test_x, test_y)
    with threadpool_limits(BLAS_THREADS):
        return _linear(*args, c=float(c))


def knn_probe(train_x, train_y, test_x, test_y, k: int = 10) -> float:
    """Test accuracy of a k-nearest-neighbour majority vote on standardised features.

    StandardScaler fitted on train_x, then sklearn KNeighborsClassifier with uniform weights and
    Euclidean distance; a vote tie goes to the smallest class label. If k exceeds the number of
    training examples, all of them vote.

    Args:
        train_x: (N, D); train_y: (N,); test_x: (M, D); test_y: (M,).
        k: neighbours that vote.
    Returns:
        fraction of test examples classified correctly, in [0, 1].
    """
    k = _check_k(k)
    args = _pair(train_x, train_y, test_x, test_y)
    with threadpool_limits(BLAS_THREADS):
        return _knn(*args, k=k)


# ---------------------------------------------------------------------------------------------
# PCA baseline


@dataclass(frozen=True)
class PCABasis:
    """A fitted PCA: z = (x - mean) @ components.T, x_hat = z @ components + mean.

    Attributes:
        mean: (D,) float64 training mean.
        components: (dims, D) float64 orthonormal rows, by decreasing variance.
        explained_variance: (dims,) float64 variance of the training data along each row.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x) -> np.ndarray:
        """(N, D) -> (N, dims) float64 projections."""
        x = as_features(x, "x")
        if x.shape[1] != self.components.shape[1]:
            raise BadInput(f"x: has {x.shape[1]} features; this PCA was fitted on {self.components.shape[1]}")
        return (x - self.mean) @ self.components.T

    def inverse(self, z) -> np.ndarray:
        """(N, dims) -> (N, D) float64 reconstruction in the original space."""
        z = as_features(z, "z")
        if z.shape[1] != self.dims:
            raise BadInput(f"z: has {z.shape[1]} columns; this PCA has {self.dims} components")
        return z @ self.components + self.mean


def pca_fit(train_x, dims: int, seed: int = 0, randomized: bool = False) -> PCABasis:
    """PCA of train_x keeping `dims` components, e.g. pixels with as many dims as a latent.

    Exact by default: sklearn's "covariance_eigh" solver (eigendecomposition of the D x D
    covariance) when N >= D, "full" SVD otherwise. On 10,000 x 784 pixels (one thread) the
    exact solver took 0.3 s and the randomized SVD (Halko, Martinsson, Tropp, SIAM Review 2011)
    0.4 s at 32 dims and 8.7 s (2 threads, loaded) at 128 dims, where it also left 0.45% more
    reconstruction error; so exact is both the faster and the fair baseline here.
    `randomized=True` is for wide data (D in the tens of thousands) where a D x D eigenproblem
    is too big; `seed` seeds it and is otherwise unused.

    Args:
        train_x: (N, D) training data (uint8 pixels are cast to float32; scale them first if
            a [0, 1] range is wanted).
        dims: components to keep, 1 <= dims <= min(N, D).
    Returns:
        a PCABasis with .transform(x) -> (N, dims) and .inverse(z) -> (N, D).
    """
    x = as_features(train_x, "train_x", min_rows=2)
    n, d = x.shape
    if isinstance(dims, bool) or not isinstance(dims, (int, np.integer)) or not 1 <= dims <= min(n, d):
        raise BadInput(f"dims: must be an integer in 1..{min(n, d)} (min of rows and features), got {dims!r}")
    solver = "randomized" if randomized else ("covariance_eigh" if n >= d else "full")
    with threadpool_limits(BLAS_THREADS):
        pca = PCA(n_components=int(dims), svd_solver=solver, random_state=seed).fit(x)
    return PCABasis(mean=pca.mean_.astype(np.float64), components=pca.components_.astype(np.float64),
                    explained_variance=pca.explained_variance_.astype(np.float64))


# ---------------------------------------------------------------------------------------------
# the curve


def probe_curve(features: Mapping[str, tuple], train_y, test_y, per_class: Iterable[int] = (10, 100, 1000),
                seeds: Iterable[int] = (0,), k: int = 10, c: float = LOGREG_C) -> list[dict]:
    """Linear and k-NN probe accuracy of every feature set at every labels-per-class count.

    For each count n and seed s the training rows are `label_subset(train_y, n, s)`, the same
    rows for every feature set (a paired comparison); the test set is always all of it. Each
    probe standardises with the statistics of its labelled subset, exactly as `linear_probe`
    and `knn_probe` do when called on it.

    Args:
        features: {name: (train (N, D_name), test (M, D_name))}; every train has N rows.
        train_y: (N,) labels; test_y: (M,) labels.
        per_class: labels-per-class counts.
        seeds: subset seeds; accuracies are averaged over them.
        k: neighbours of the k-NN probe.
        c: the linear probe's inverse L2 strength (LOGREG_C; tasks.tuning chooses it).
    Returns:
        one row per (feature set, count), in the order given:
        {"features": name, "per_class": n, "n_train": labelled examples actually used (smaller
        than n * classes when some class has fewer than n), "linear": mean accuracy,
        "linear_std": sample std (ddof 1) over seeds, None for one seed, "knn", "knn_std"}.

    Time (Fashion-MNIST, 10,000 x 784 pixels train and test, one feature set, 10/100/1000 per
    class, one seed): see the report that added this module; the 1000-per-class linear fit
    dominates.
    """
    if not isinstance(features, Mapping) or not features:
        raise BadInput("features: pass a non-empty dict {name: (train_features, test_features)}")
    k = _check_k(k)
    counts = [int(n) for n in per_class]
    seed_list = [int(s) for s in seeds]
    if not counts:
        raise BadInput("per_class: give at least one labels-per-class count")
    if not seed_list:
        raise BadInput("seeds: give at least one seed")
    train_y = _labels(train_y, "train_y")
    test_y = _labels(test_y, "test_y")
    if len(np.unique(train_y)) < 2:
        raise BadInput("train_y: holds a single class; a classifier needs at least two")

    # validate every feature set once, not once per fit
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, pair in features.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise BadInput(f"features[{name!r}]: expected a (train, test) pair of arrays")
        tr = as_features(pair[0], f"features[{name!r}] train")
        te = as_features(pair[1], f"features[{name!r}] test")
        same_width(tr, te, f"features[{name!r}] train / test")
        if len(tr) != len(train_y):
            raise BadInput(f"features[{name!r}] train: has {len(tr)} rows for {len(train_y)} train labels")
        if len(te) != len(test_y):
            raise BadInput(f"features[{name!r}] test: has {len(te)} rows for {len(test_y)} test labels")
        checked[name] = (tr.astype(np.float32, copy=False), te.astype(np.float32, copy=False))

    subsets = {(n, s): label_subset(train_y, n, s) for n in counts for s in seed_list}
    rows = []
    with threadpool_limits(BLAS_THREADS):
        for name, (tr, te) in checked.items():
            for n in counts:
                lin, knn = [], []
                for s in seed_list:
                    idx = subsets[(n, s)]
                    lin.append(_linear(tr[idx], train_y[idx], te, test_y, c=c))
                    knn.append(_knn(tr[idx], train_y[idx], te, test_y, k=k))
                many = len(seed_list) > 1
                rows.append({
                    "features": name,
                    "per_class": n,
                    "n_train": int(len(subsets[(n, seed_list[0])])),   # the same for every seed
                    "linear": float(np.mean(lin)),
                    "linear_std": float(np.std(lin, ddof=1)) if many else None,
                    "knn": float(np.mean(knn)),
                    "knn_std": float(np.std(knn, ddof=1)) if many else None,
                })
    return rows
