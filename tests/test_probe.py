"""Probes of frozen features: label subsets, linear and k-NN probes, the PCA baseline, the curve."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ganvae.errors import BadInput
from ganvae.metrics.probe import (LOGREG_C, LOGREG_MAX_ITER, knn_probe, label_subset, linear_probe, pca_fit,
                                  probe_curve)


def blobs(n: int, k: int, d: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points of k Gaussian classes in d dims: class c centred at spread * e_c, unit variance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = np.zeros((k, d))
    centres[np.arange(k), np.arange(k)] = spread
    return centres[y] + rng.standard_normal((n, d)), y


# ---------------------------------------------------------------------------------------------
# label_subset


def test_label_subset_counts_and_short_class():
    y = np.repeat([0, 1, 2], [50, 30, 5])
    idx = label_subset(y, 10, seed=3)
    assert np.bincount(y[idx]).tolist() == [10, 10, 5]          # class 2 has only 5: all of it
    assert len(np.unique(idx)) == len(idx) and (np.diff(idx) > 0).all()   # distinct, sorted
    assert np.bincount(y[label_subset(y, 1000, seed=3)]).tolist() == [50, 30, 5]


def test_label_subset_is_nested_and_seeded():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 2000)
    small, mid, big = (set(label_subset(y, n, seed=7)) for n in (10, 100, 300))
    assert small <= mid <= big
    assert set(label_subset(y, 10, seed=7)) == small                      # reproducible
    assert set(label_subset(y, 10, seed=8)) != small                      # the seed matters


def test_label_subset_any_label_type_and_bad_input():
    y = np.array(["cat", "dog", "cat", "dog", "emu"])
    assert sorted(y[label_subset(y, 1, 0)]) == ["cat", "dog", "emu"]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(BadInput, match="per_class"):
            label_subset(y, bad, 0)
    with pytest.raises(BadInput, match="1-D"):
        label_subset(y.reshape(5, 1), 1, 0)


# ---------------------------------------------------------------------------------------------
# linear and k-NN probes


def _penalised_softmax_regression(tx, ty, vx, c):
    """An independent linear probe: standardise with the training rows' mean and population std,
    then minimise C * sum_i CE(W s_i + b, y_i) + ||W||^2 / 2 (the intercept unpenalised) in
    float64 with torch's L-BFGS to a gradient of ~0; returns the predicted classes of vx."""
    import torch

    mean, std = tx.mean(0), tx.std(0)
    s = torch.from_numpy((tx - mean) / std)
    t = torch.from_numpy((vx - mean) / std)
    y = torch.from_numpy(ty).long()
    k = int(ty.max()) + 1
    w = torch.zeros(s.shape[1], k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=2000, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=50, line_search_fn="strong_wolfe")

    def objective():
        opt.zero_grad()
        loss = c * torch.nn.functional.cross_entropy(s @ w + b, y, reduction="sum") + 0.5 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(objective)
    assert max(float(w.grad.abs().max()), float(b.grad.abs().max())) < 1e-5   # at the optimum
    with torch.no_grad():
        return (t @ w + b).argmax(1).numpy()


def test_linear_probe_is_the_penalised_softmax_regression_it_documents():
    # overlapping classes, so the accuracy is neither 0 nor 1 and a different fit would show;
    # compared against the objective solved independently (not sklearn again). Every test point
    # here is farther from a decision boundary than lbfgs's tolerance moves it, so the accuracy
    # is exactly equal (C = 1 would differ by one point, C = 0.01 by seven)
    x, y = blobs(600, 4, 20, spread=1.5, seed=1)
    tx, ty = x[:400].astype(np.float64), y[:400]
    vx, vy = x[400:].astype(np.float64), y[400:]
    expected = float(np.mean(_penalised_softmax_regression(tx, ty, vx, LOGREG_C) == vy))
    got = linear_probe(tx, ty, vx, vy)
    assert 0.4 < expected < 0.95
    assert got == expected
    # a different C is a different model: the comparison can tell them apart
    strong = float(np.mean(_penalised_softmax_regression(tx, ty, vx, 1e-4) == vy))
    assert linear_probe(tx, ty, vx, vy, c=1e-4) == strong
    assert linear_probe(tx, ty, vx, vy) == got                            # deterministic


def test_probes_separate_blobs():
    x, y = blobs(1000, 4, 16, spread=8.0, seed=2)                          # centres 8 sigma apart
    assert linear_probe(x[:500], y[:500], x[500:], y[500:]) > 0.95
    assert knn_probe(x[:500], y[:500], x[500:], y[500:]) > 0.95


def test_probes_at_chance_on_features_independent_of_the_labels():
    # Test labels drawn iid uniform over K classes, independently of everything the classifier
    # sees: each prediction is right with probability exactly 1/K, so the accuracy is
    # Binomial(M, 1/K) / M with std sqrt(p (1 - p) / M) = 0.0097 at K = 4, M = 2000. The
    # tolerance 0.05 is 5 standard deviations (a false failure has probability < 1e-6, and the
    # data are seeded anyway).
    rng = np.random.default_rng(3)
    k, m = 4, 2000
    tx, ty = rng.standard_normal((500, 16)), rng.integers(0, k, 500)
    vx, vy = rng.standard_normal((m, 16)), rng.integers(0, k, m)
    assert linear_probe(tx, ty, vx, vy) == pytest.approx(1 / k, abs=0.05)
    assert knn_probe(tx, ty, vx, vy) == pytest.approx(1 / k, abs=0.05)


def brute_knn_accuracy(tx, ty, vx, vy, k):
    """Standardise with the train mean and population std, then majority vote of the k nearest
    (Euclidean), ties to the smallest label."""
    mu, sd = tx.mean(0), tx.std(0)
    a, b = (tx - mu) / sd, (vx - mu) / sd
    d = ((b[:, None, :] - a[None, :, :]) ** 2).sum(-1)                    # (M, N)
    near = np.argsort(d, axis=1, kind="stable")[:, :k]                    # (M, k)
    votes = np.stack([np.bincount(ty[row], minlength=ty.max() + 1) for row in near])
    return float(np.mean(votes.argmax(1) == vy))


@pytest.mark.parametrize("k", [1, 5, 10])
def test_knn_probe_matches_brute_force(k):
    x, y = blobs(200, 3, 5, spread=1.5, seed=4)
    tx, ty, vx, vy = x[:80], y[:80], x[80:], y[80:]
    assert knn_probe(tx, ty, vx, vy, k=k) == pytest.approx(brute_knn_accuracy(tx, ty, vx, vy, k), abs=1e-12)


def test_knn_probe_with_k_above_the_training_size_votes_with_all():
    x, y = blobs(40, 2, 3, spread=3.0, seed=5)
    assert knn_probe(x[:8], y[:8], x[8:], y[8:], k=50) == brute_knn_accuracy(x[:8], y[:8], x[8:], y[8:], 8)


def test_probe_bad_input():
    x, y = blobs(50, 2, 3, spread=3.0, seed=6)
    with pytest.raises(BadInput, match="train_y"):
        linear_probe(x, y[:-1], x, y)                                     # one label short
    with pytest.raises(BadInput, match="single class"):
        linear_probe(x, np.zeros(50, int), x, y)
    with pytest.raises(BadInput, match="widths"):
        knn_probe(x, y, x[:, :2], y)
    with pytest.raises(BadInput, match="k:"):
        knn_probe(x, y, x, y, k=0)
    with pytest.raises(BadInput, match="NaN"):
        linear_probe(np.where(x > 1, np.nan, x), y, x, y)


# ---------------------------------------------------------------------------------------------
# PCA baseline


@pytest.mark.parametrize("randomized", [False, True])
def test_pca_reconstructs_data_in_a_3d_subspace(randomized):
    rng = np.random.default_rng(7)
    basis = rng.standard_normal((3, 30))                                  # a 3-D subspace of R^30
    train = rng.standard_normal((200, 3)) @ basis + 5.0                   # offset: the mean matters
    test = rng.standard_normal((50, 3)) @ basis + 5.0
    pca = pca_fit(train, 3, randomized=randomized)
    z = pca.transform(test)
    assert z.shape == (50, 3) and pca.dims == 3
    np.testing.assert_allclose(pca.inverse(z), test, atol=1e-8)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-10)
    assert (np.diff(pca.explained_variance) <= 0).all()                   # decreasing variance


def test_pca_fit_bad_input():
    x = np.random.default_rng(8).standard_normal((10, 4))
    for bad in (0, 5, 2.0):
        with pytest.raises(BadInput, match="dims"):
            pca_fit(x, bad)
    with pytest.raises(BadInput, match="features"):
        pca_fit(x, 2).transform(np.zeros((3, 5)))


# ---------------------------------------------------------------------------------------------
# the curve


def test_probe_curve_rows():
    x, y = blobs(400, 3, 8, spread=4.0, seed=9)
    tx, ty, vx, vy = x[:300], y[:300], x[300:], y[300:]
    feats = {"all": (tx, vx), "two": (tx[:, :2], vx[:, :2])}
    rows = probe_curve(feats, ty, vy, per_class=(5, 20, 1000), seeds=(0, 1), k=5)
    assert [(r["features"], r["per_class"]) for r in rows] == [
        ("all", 5), ("all", 20), ("all", 1000), ("two", 5), ("two", 20), ("two", 1000)]
    for r in rows:
        assert set(r) == {"features", "per_class", "n_train", "linear", "linear_std", "knn", "knn_std"}
        assert 0 <= r["linear"] <= 1 and 0 <= r["knn"] <= 1
        assert r["linear_std"] >= 0 and r["knn_std"] >= 0
    assert [r["n_train"] for r in rows[:3]] == [15, 60, 300]              # 1000/class: all 300
    assert rows[2]["linear_std"] == 0.0                                   # both seeds use every row
    # a row is the probes on label_subset: the same numbers as calling them directly
    idx = label_subset(ty, 20, 1)
    single = probe_curve({"all": feats["all"]}, ty, vy, per_class=(20,), seeds=(1,), k=5)[0]
    assert single["linear_std"] is None and single["knn_std"] is None
    assert single["linear"] == linear_probe(tx[idx], ty[idx], vx, vy)
    assert single["knn"] == knn_probe(tx[idx], ty[idx], vx, vy, k=5)


def test_probe_curve_bad_input():
    x, y = blobs(60, 2, 3, spread=3.0, seed=10)
    with pytest.raises(BadInput, match="features"):
        probe_curve({}, y, y)
    with pytest.raises(BadInput, match="rows"):
        probe_curve({"a": (x[:50], x)}, y, y)
    with pytest.raises(BadInput, match="pair"):
        probe_curve({"a": x}, y, y)
