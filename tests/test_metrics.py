"""Sample metrics against closed forms, reference implementations and their defining properties."""

import importlib
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganvae.errors import BadInput
from ganvae.metrics import (METRICS, classifier_score, classifier_score_splits, fd_from_features,
                            frechet_distance, gaussian_stats, kernel_inception_distance, mode_coverage,
                            prdc, sample_metrics)
from ganvae.metrics.kid import mmd2_unbiased, polynomial_kernel


def _random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d                                      # (d, d), PSD, rank <= rank


# ---------------------------------------------------------------- Fréchet distance

@pytest.mark.parametrize("d,s", [(1, 2.0), (8, 0.5), (64, 1.3)])
def test_fd_closed_form_isotropic(d, s):
    m = np.linspace(-1, 2, d)
    fd = frechet_distance(np.zeros(d), np.eye(d), m, s**2 * np.eye(d))
    assert fd == pytest.approx(m @ m + d * (1 - s) ** 2, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("d", [3, 32])
def test_fd_matches_sqrtm_formula(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    c1, c2 = _random_cov(rng, d), _random_cov(rng, d)
    ref = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(mu2, c2, mu1, c1) == pytest.approx(ref, rel=1e-8)


def test_fd_low_rank_covariances_are_finite():
    rng = np.random.default_rng(1)
    c1, c2 = _random_cov(rng, 20, rank=3), _random_cov(rng, 20, rank=5)
    fd = frechet_distance(np.zeros(20), c1, np.zeros(20), c2)
    assert math.isfinite(fd) and fd > 0


def test_fd_from_features_properties():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 12)).astype(np.float32)
    b = rng.normal(size=(300, 12)) * 1.5 + 0.2
    assert fd_from_features(a, a) == pytest.approx(0.0, abs=1e-9)
    assert fd_from_features(a, b) == pytest.approx(fd_from_features(b, a), rel=1e-9)
    assert fd_from_features(a, b) > 1.0
    assert fd_from_features(a, a + 1e-3 * rng.normal(size=a.shape)) >= 0.0
    mu, cov = gaussian_stats(a)
    assert mu.dtype == cov.dtype == np.float64 and cov.shape == (12, 12)
    np.testing.assert_allclose(cov, np.cov(a.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)
    with pytest.raises(BadInput):
        fd_from_features(a, b[:, :5])
    with pytest.raises(BadInput):
        fd_from_features(np.full((4, 12), np.nan), a)


# ---------------------------------------------------------------- KID

def test_kid_near_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 2000, 16))
    shifted = rng.normal(size=(2000, 16)) + 0.3
    same, same_std = kernel_inception_distance(a, b, subsets=50, subset_size=500, seed=1)
    diff, _ = kernel_inception_distance(a, shifted, subsets=50, subset_size=500, seed=1)
    assert abs(same) < same_std
    assert diff > 20 * max(abs(same), same_std)
    # deterministic given the seed; subset_size capped by the sample sizes
    assert kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=3) == \
        kernel_inception_distance(a, b, subsets=5, subset_size=100, seed=3)
    assert math.isfinite(kernel_inception_distance(a[:50], b, subsets=3, subset_size=1000)[0])


def test_kid_is_unbiased_where_the_v_statistic_is_not():
    """Averaged over independent pairs of small samples of one distribution, the estimate is
    ~0 (the true MMD^2); the biased V-statistic, which keeps the diagonal k(x_i, x_i), is not."""
    rng = np.random.default_rng(0)
    reps, n, d = 1500, 10, 4
    unbiased, biased = np.empty(reps), np.empty(reps)
    for r in range(reps):
        a, b = rng.normal(size=(2, n, d))
        unbiased[r] = kernel_inception_distance(a, b, subsets=1, subset_size=n, seed=r)[0]
        x, y = torch.from_numpy(a), torch.from_numpy(b)
        biased[r] = float(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean()
                          - 2 * polynomial_kernel(x, y).mean())
    se_u = unbiased.std(ddof=1) / math.sqrt(reps)
    se_b = biased.std(ddof=1) / math.sqrt(reps)
    assert abs(unbiased.mean()) < 4 * se_u
    assert biased.mean() > 10 * se_b


def test_mmd2_unbiased_by_hand():
    kxx = torch.tensor([[9.0, 1.0], [1.0, 7.0]])
    kyy = torch.tensor([[5.0, 2.0, 3.0], [2.0, 5.0, 4.0], [3.0, 4.0, 5.0]])
    kxy = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    # off-diagonal means: xx (1+1)/2 = 1, yy (2+3+2+4+3+4)/6 = 3; xy mean 3.5
    assert mmd2_unbiased(kxx, kyy, kxy) == pytest.approx(1 + 3 - 2 * 3.5)


# ---------------------------------------------------------------- precision / recall / density / coverage

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shift,n_fake,k", [(0.0, 500, 5), (0.5, 400, 5), (1.0, 300, 3)])
def test_prdc_equals_reference_package(dtype, shift, n_fake, k):
    reference = pytest.importorskip("prdc")
    rng = np.random.default_rng(int(shift * 10) + k)
    real = rng.normal(size=(500, 16)).astype(dtype)
    fake = (rng.normal(size=(n_fake, 16)) * 1.2 + shift).astype(dtype)
    ours = prdc(real, fake, k=k)
    ref = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    for name in ("precision", "recall", "density", "coverage"):
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-6, err_msg=name)


def test_prdc_blocks_do_not_change_the_result(monkeypatch):
    # the package attribute `prdc` is the function; the module is reached through importlib
    prdc_module = importlib.import_module("ganvae.metrics.prdc")
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 8)), rng.normal(size=(250, 8)) + 0.3
    whole = prdc(real, fake, k=5)
    monkeypatch.setattr(prdc_module, "BLOCK_BYTES", 8 * 300 * 7)   # 7-row blocks
    monkeypatch.setattr(prdc_module, "_RADII", type(prdc_module._RADII)())  # no cached real radii
    assert prdc(real, fake, k=5) == whole


def test_prdc_reuses_real_radii_only_for_the_same_real_features(monkeypatch):
    reference = pytest.importorskip("prdc")
    prdc_module = importlib.import_module("ganvae.metrics.prdc")
    monkeypatch.setattr(prdc_module, "_RADII", type(prdc_module._RADII)())
    calls = []
    real_knn = prdc_module.knn_radii
    monkeypatch.setattr(prdc_module, "knn_radii", lambda x, *a: calls.append(len(x)) or real_knn(x, *a))
    rng = np.random.default_rng(8)
    real = rng.normal(size=(400, 8)).astype(np.float32)
    for shift in (0.0, 0.7):                                   # two models against one real set
        fake = (rng.normal(size=(300, 8)) + shift).astype(np.float32)
        ours = prdc(real, fake, k=5)
        ref = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
        for name in ours:
            np.testing.assert_allclose(ours[name], ref[name], rtol=1e-6, err_msg=name)
    assert calls == [400, 300, 300]                            # real radii once, fake radii each time
    real[0] += 1.0                                             # new content: computed afresh
    prdc(real, fake, k=5)
    assert calls[3:] == [400, 300]


def test_prdc_identical_sets():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 10))
    out = prdc(x, x.copy(), k=5)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    assert out["density"] > 0.5
    with pytest.raises(BadInput):
        prdc(x[:5], x, k=5)


# ---------------------------------------------------------------- classifier metrics

def test_classifier_score_extremes():
    k = 10
    balanced = np.eye(k)[np.arange(1000) % k]              # (1000, 10) one-hot, 100 per class
    assert classifier_score(balanced) == pytest.approx(k, rel=1e-12)
    assert classifier_score(np.eye(k)[np.zeros(1000, dtype=int)]) == pytest.approx(1.0, rel=1e-12)
    assert classifier_score(np.full((50, k), 1.0 / k)) == pytest.approx(1.0, rel=1e-12)
    mean, std = classifier_score_splits(balanced, splits=10)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(BadInput):
        classifier_score(np.random.default_rng(0).normal(size=(20, k)))   # logits, not probs


def test_classifier_score_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 5)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p.mean(0)
    ref = math.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))
    assert classifier_score(p) == pytest.approx(ref, rel=1e-10)
    assert 1.0 <= classifier_score(p) <= 5.0


def test_mode_coverage_hand_made_histogram():
    k, eps = 4, 1e-6
    labels = np.repeat(np.arange(k), [50, 30, 20, 0])      # shares .5 .3 .2 0
    out = mode_coverage(labels, num_classes=k, eps=eps)
    assert out["hist"] == pytest.approx([0.5, 0.3, 0.2, 0.0])
    assert out["modes"] == 3                                # threshold 0.5 / 4 = 0.125
    p = (np.array([0.5, 0.3, 0.2, 0.0]) + eps) / (1 + k * eps)
    q = np.full(k, 0.25)
    assert out["kl"] == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-9)
    assert out["kl"] == pytest.approx(0.5 * math.log(2) + 0.3 * math.log(1.2) + 0.2 * math.log(0.8), rel=1e-4)
    assert out["reverse_kl"] == pytest.approx(np.sum(q * np.log(q / p)), rel=1e-9)
    assert out["reverse_kl"] > 2.5                          # a missing class costs ~0.25 log(0.25 / eps)
    # probabilities give the same histogram through the argmax
    probs = np.eye(k)[labels] * 0.7 + 0.3 / k
    assert mode_coverage(probs)["hist"] == out["hist"]
    # against a non-uniform real histogram; 12.5% exactly is still a mode
    labels = np.repeat(np.arange(k), [40, 35, 15, 10])
    real = np.array([4.0, 3.0, 2.0, 1.0])                  # normalized inside
    out = mode_coverage(labels, k, real_hist=real, min_fraction=0.5, eps=0)
    assert out["modes"] == 3
    assert mode_coverage(np.repeat(np.arange(k), [50, 25, 13, 12]), k, eps=0)["modes"] == 3
    assert mode_coverage(np.repeat(np.arange(k), [50, 25, 12, 13]), k, eps=0)["modes"] == 3
    assert mode_coverage(np.repeat(np.arange(k), [25, 25, 25, 25]), k)["modes"] == 4
    h, r = np.array([0.4, 0.35, 0.15, 0.1]), real / real.sum()
    assert out["kl"] == pytest.approx(np.sum(h * np.log(h / r)), rel=1e-12)
    assert out["reverse_kl"] == pytest.approx(np.sum(r * np.log(r / h)), rel=1e-12)
    same = mode_coverage(np.repeat(np.arange(k), [40, 30, 20, 10]), k, real_hist=real)
    assert same["kl"] == pytest.approx(0.0, abs=1e-12) and same["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- registry and sample_metrics

def test_registry_directions():
    expected = {"fd": False, "kid": False, "precision": True, "recall": True, "density": True,
                "coverage": True, "classifier_score": True, "mode_coverage": True, "mode_kl": False,
                "mode_reverse_kl": False}
    assert {name: m.higher_is_better for name, m in METRICS.items()} == expected
    assert all(m.name == name and m.kind in ("features", "probs") and m.description for name, m in METRICS.items())


def test_sample_metrics_returns_every_applicable_metric():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(120, 8)), rng.normal(size=(100, 8)) + 0.2
    logits = rng.normal(size=(2, 120, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    kw = dict(kid_subsets=4, kid_subset_size=50)
    with_probs = sample_metrics(real, fake, probs[0], probs[1][:100], **kw)
    assert set(with_probs) == set(METRICS) | {"kid_std"}
    assert all(type(v) is float and math.isfinite(v) for v in with_probs.values())
    features_only = sample_metrics(real, fake, **kw)
    assert set(features_only) == {n for n, m in METRICS.items() if m.kind == "features"} | {"kid_std"}
    assert features_only["precision"] == prdc(real, fake)["precision"]
    assert features_only["kid"] == kernel_inception_distance(real, fake, subsets=4, subset_size=50)[0]
