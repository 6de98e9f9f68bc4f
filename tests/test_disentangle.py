"""Disentanglement metrics against closed forms and hand-built codes."""

import numpy as np
import pytest

from ganvae.errors import BadInput
from ganvae.metrics.disentangle import dci, dims_to_factors, factor_vae_score, gaussian_total_correlation, mig

N = 3000
LEVELS = (3, 4, 6, 8)
NAMES = ["shape", "scale", "x", "y"]


def random_rotation(d: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal (d, d) matrix: QR of a Gaussian with R's diagonal made positive
    (Mezzadri 2007, "How to generate random matrices from the classical compact groups")."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def data():
    """Independent uniform factors (N, 4); a disentangled code (N, 5): each factor's standardised
    level plus noise of std 0.05 in its own dim, and a pure-noise dim; and that code rotated by
    a random orthogonal matrix (every dim a mix of every factor and the noise)."""
    rng = np.random.default_rng(0)
    f = np.stack([rng.integers(0, k, N) for k in LEVELS], axis=1)
    fs = (f - f.mean(axis=0)) / f.std(axis=0)
    good = np.concatenate([fs + 0.05 * rng.normal(size=fs.shape), rng.normal(size=(N, 1))], axis=1)
    return f, good, good @ random_rotation(5, 0)


@pytest.fixture(scope="module")
def dci_scores(data):
    f, good, mixed = data
    return dci(good, f), dci(mixed, f)


def test_mig_disentangled_vs_entangled(data):
    f, good, mixed = data
    g, m = mig(good, f), mig(mixed, f)
    assert g["mig"] > 0.8 and min(g["per_factor"]) > 0.8
    assert g["mi"].shape == (5, 4) and ((g["mi"] >= 0) & (g["mi"] <= 1)).all()
    # the factor's own dim carries almost all of its entropy; the noise dim almost none
    np.testing.assert_allclose(np.diag(g["mi"][:4]), 1, atol=0.1)
    assert g["mi"][4].max() < 0.02
    assert m["mig"] < 0.5 * g["mig"]


def test_mig_closed_forms():
    f = np.repeat(np.arange(4), 250)[:, None]                     # one factor, 4 equal levels
    # a dim that keeps one bit of the two (level // 2) has normalised MI log 2 / log 4 = 1/2
    half = mig((f // 2).astype(float), f)
    np.testing.assert_allclose(half["mi"], [[0.5]], atol=1e-12)
    assert half["mig"] == pytest.approx(0.5)                      # one dim: the gap is its MI
    # two exact copies of the factor: each has all of it, so the gap is 0
    copies = mig(np.concatenate([f, f], axis=1).astype(float), f)
    np.testing.assert_allclose(copies["mi"], 1, atol=1e-12)
    assert copies["mig"] == pytest.approx(0.0, abs=1e-12)


def test_factor_vae_score(data):
    f, good, mixed = data
    assert factor_vae_score(good, f) > 0.95
    low = factor_vae_score(mixed, f)
    assert low < 0.9
    # deterministic in its seed
    assert factor_vae_score(mixed, f, seed=1) == factor_vae_score(mixed, f, seed=1)
    # the maximally entangled mix: each of 4 dims carries every factor with equal weight (a
    # Hadamard matrix / 2), so the argmin dim says almost nothing about the factor: near chance 1/4
    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2
    assert factor_vae_score(good[:, :4] @ h, f) < 0.45
    # a collapsed dim is dropped, not voted for: appending one leaves the score alone
    collapsed = np.concatenate([good, 1e-6 * np.random.default_rng(1).normal(size=(N, 1))], axis=1)
    assert factor_vae_score(collapsed, f) > 0.95


def test_dci_disentangled_vs_entangled(dci_scores):
    good, mixed = dci_scores
    assert good["disentanglement"] > 0.8 and good["completeness"] > 0.8 and good["informativeness"] > 0.95
    assert good["importance"].shape == (5, 4)
    assert mixed["disentanglement"] < 0.5 * good["disentanglement"]
    assert mixed["completeness"] < 0.5 * good["completeness"]
    # a rotation loses no information in principle, but axis-aligned trees need more of it
    assert mixed["informativeness"] > 0.6


def test_dci_one_dim_carrying_two_factors(data):
    """One dim codes factors 0 and 1 jointly (level0 + 10 * level1), the others one each, plus
    noise. Every factor column of R sums to 1, so the shared dim holds about half the importance
    with entropy log 2 / log 4 = 1/2: disentanglement ~ 0.5 * (1 - 1/2) + 0.5 * 1 = 0.75, while
    every factor still lives in one dim: completeness ~ 1."""
    f, good, _ = data
    rng = np.random.default_rng(2)
    joint = (f[:, 0] + 10 * f[:, 1])[:, None] + 0.05 * rng.normal(size=(N, 1))
    codes = np.concatenate([joint, good[:, 2:]], axis=1)
    s = dci(codes, f)
    assert 0.65 < s["disentanglement"] < 0.85
    assert s["completeness"] > 0.8 and s["informativeness"] > 0.95


def test_gaussian_total_correlation_closed_form():
    rng = np.random.default_rng(0)
    n, rho = 20_000, 0.6
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    # sampling sd of the estimate is ~ rho / (1 - rho^2) * (1 - rho^2) / sqrt(n) (delta method) ~ 0.004
    assert gaussian_total_correlation(z) == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.02)
    # independent dims: the estimate is ~ r^2 / 2 with r ~ N(0, 1/n)
    assert gaussian_total_correlation(rng.normal(size=(n, 3))) < 2e-3
    # 3-D: 0.5 (sum log diag - log det); invariant to each dim's scale
    cov = np.array([[2.0, 0.8, 0.3], [0.8, 1.0, -0.4], [0.3, -0.4, 0.5]])
    want = 0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1])
    z = rng.multivariate_normal(np.zeros(3), cov, n)
    assert gaussian_total_correlation(z) == pytest.approx(want, abs=0.03)
    assert gaussian_total_correlation(z * [10, 0.1, 3]) == pytest.approx(gaussian_total_correlation(z))
    # a constant dim adds nothing; a copied dim makes it infinite
    assert gaussian_total_correlation(np.c_[z, np.ones(n)]) == pytest.approx(gaussian_total_correlation(z))
    assert gaussian_total_correlation(np.c_[z, z[:, 0]]) == np.inf


def test_dims_to_factors(data):
    f, good, _ = data
    labels = dims_to_factors(good, f, NAMES)
    assert [lab[0] for lab in labels[:4]] == NAMES and all(lab[1] > 0.9 for lab in labels[:4])
    assert labels[4] is None                                      # the noise dim matches nothing
    # the order of the dims does not matter
    assert [lab[0] for lab in dims_to_factors(good[:, [3, 0, 2, 1]], f, NAMES)] == ["y", "shape", "x", "scale"]


@pytest.mark.parametrize("fn", [mig, factor_vae_score, dci, lambda z, f: dims_to_factors(z, f, NAMES)])
def test_bad_input(data, fn):
    f, good, _ = data
    with pytest.raises(BadInput, match="row counts differ"):
        fn(good[:100], f)
    with pytest.raises(BadInput, match="codes: expected a 2-D"):
        fn(good[:, 0], f)
    with pytest.raises(BadInput, match="factors: expected a 2-D"):
        fn(good, f[:, 0])
    with pytest.raises(BadInput, match="integer level indices"):
        fn(good, f + 0.5)
    with pytest.raises(BadInput, match="column 1 takes a single value"):
        fn(good, np.c_[f[:, 0], np.zeros(N, int)])
    with pytest.raises(BadInput, match="NaN"):
        fn(np.where(np.arange(5) == 2, np.nan, good), f)


def test_bad_options(data):
    f, good, _ = data
    with pytest.raises(BadInput, match="bins=1"):
        mig(good, f, bins=1)
    with pytest.raises(BadInput, match="names: 3 names for 4 factors"):
        dims_to_factors(good, f, NAMES[:3])
    with pytest.raises(BadInput, match="batch=1"):
        factor_vae_score(good, f, batch=1)
    with pytest.raises(BadInput, match="n_votes=0"):
        factor_vae_score(good, f, n_votes=0)
    with pytest.raises(BadInput, match="at least 2 code dims and 2 factors"):
        dci(good, f[:, :1])
    with pytest.raises(BadInput, match="model='svm'"):
        dci(good, f, model="svm")
    with pytest.raises(BadInput, match="more rows than dims"):
        gaussian_total_correlation(good[:4])
    with pytest.raises(BadInput, match="codes: expected a 2-D"):
        gaussian_total_correlation(good[:, 0])
