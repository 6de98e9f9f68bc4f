"""The encoder families: AE (with fitted priors), VAE / β-VAE (ELBO terms, IWAE bound), VAE-GAN.

Tiny nets (28x28, width 8, latent 4-8, batches of 16) on CPU; the whole file runs in seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, MixtureSameFamily, Categorical, MultivariateNormal, Normal

from ganvae.config import replace
from ganvae.data import load_dataset, to_float
from ganvae.models.autoencoder import fit_gaussian, fit_gmm, gmm_log_prob
from ganvae.models.base import GenerativeModel
from ganvae.models.vae import bernoulli_nll, gaussian_nll, kl_normal
from ganvae.registry import resolve

TINY = {"width": 8, "latent": 4}
pytestmark = pytest.mark.usefixtures("one_thread")


def build(preset: str, **overrides) -> GenerativeModel:
    cls, cfg = resolve(preset)
    return cls(replace(cfg, {**TINY, **overrides}))


@pytest.fixture(scope="module")
def shapes() -> tuple[torch.Tensor, torch.Tensor]:
    ds = load_dataset("shapes:n=512,n_test=64")
    return to_float(torch.from_numpy(ds.train.x)), to_float(torch.from_numpy(ds.test.x))


def fixed_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


# ---------------------------------------------------------------------------------------------
# VAE: the terms of the ELBO

def test_kl_matches_closed_form_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 5, generator=g, dtype=torch.float64)
    std = (0.5 * logvar).exp()
    q = Independent(Normal(mu, std), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(std)), 1)
    ours = kl_normal(mu, logvar)                                         # (3,)
    # Closed form, computed independently by torch.distributions.
    torch.testing.assert_close(ours, torch.distributions.kl_divergence(q, p))
    # Monte Carlo: E_q[log q(z) - log p(z)].
    torch.manual_seed(0)
    z = q.sample((200_000,))                                             # (S, 3, 5)
    terms = q.log_prob(z) - p.log_prob(z)                                # (S, 3)
    stderr = terms.std(0) / math.sqrt(len(terms))
    assert ((terms.mean(0) - ours).abs() < 5 * stderr + 1e-3).all(), (terms.mean(0), ours)


def test_bernoulli_term_is_bce_on_mapped_targets():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    logits = torch.randn(4, 1, 28, 28, generator=g) * 3
    want = torch.stack([F.binary_cross_entropy_with_logits(logits[i], (x[i] + 1) / 2, reduction="sum")
                        for i in range(4)])
    torch.testing.assert_close(bernoulli_nll(logits, x), want)
    # The model uses the same term for its bernoulli likelihood.
    model = build("vae", likelihood="bernoulli")
    torch.testing.assert_close(model.nll(logits, x), want)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_term_is_negative_normal_log_prob(learn_sigma):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 28, 28, generator=g) * 2 - 1
    mean = torch.randn(4, 1, 28, 28, generator=g) * 0.5
    want = torch.stack([-Normal(mean[i], 0.3).log_prob(x[i]).sum() for i in range(4)])
    torch.testing.assert_close(gaussian_nll(mean, x, torch.tensor(math.log(0.3))), want)
    model = build("vae", likelihood="gaussian", sigma=0.3, learn_sigma=learn_sigma)
    torch.testing.assert_close(model.nll(mean, x), want, rtol=1e-5, atol=1e-3)
    if learn_sigma:  # sigma is a parameter that the likelihood's gradient reaches
        model.nll(mean, x).sum().backward()
        assert model.log_sigma_raw.grad is not None and model.log_sigma_raw.grad != 0


def test_learn_sigma_needs_gaussian():
    from ganvae.errors import BadInput

    cls, cfg = resolve("vae")
    with pytest.raises(BadInput, match="gaussian"):
        replace(cfg, {"learn_sigma": True})


# ---------------------------------------------------------------------------------------------
# VAE: training, warm-up, presets, the importance-weighted bound

@pytest.fixture(scope="module")
def trained_vae(shapes):
    x_train, _ = shapes
    torch.manual_seed(0)
    model = build("vae", latent=8)
    g = torch.Generator().manual_seed(0)
    first = last = None
    for step in range(150):
        logs = model.train_step(x_train[torch.randint(len(x_train), (16,), generator=g)], step)
        first = first if first is not None else logs
        last = logs
    assert all(math.isfinite(v) for v in last.values())
    assert last["loss/total"] < 0.6 * first["loss/total"]        # it learned something
    return model


def test_vae_logs_consistent_scalars():
    torch.manual_seed(0)
    model = build("vae", beta=2.0)
    logs = {k: float(v) for k, v in model.train_step(fixed_batch(), 0).items()}
    assert set(logs) >= {"loss/recon", "loss/kl", "loss/total", "loss/nelbo", "kl/beta"}
    assert logs["kl/beta"] == 2.0
    assert logs["loss/total"] == pytest.approx(logs["loss/recon"] + 2.0 * logs["loss/kl"], rel=1e-5)
    assert logs["loss/nelbo"] == pytest.approx(logs["loss/recon"] + logs["loss/kl"], rel=1e-5)


def test_iwae_bound(trained_vae, shapes):
    _, x_test = shapes
    x = x_test[:32]
    torch.manual_seed(1)
    # k=1 is a one-sample estimate of the ELBO: equal in expectation (average a few draws).
    elbo = torch.stack([trained_vae.elbo(x) for _ in range(10)]).mean()
    iw1 = torch.stack([trained_vae.log_likelihood(x, k=1) for _ in range(10)]).mean()
    assert elbo < 0 and iw1 < 0                                      # log-likelihood bounds, in nats
    assert abs(iw1 - elbo) < 0.02 * abs(elbo) + 1.0, (iw1, elbo)
    g = torch.Generator().manual_seed(2)
    bounds = {k: trained_vae.log_likelihood(x, k=k, generator=g).mean() for k in (1, 10, 100)}
    assert bounds[1] <= bounds[10] <= bounds[100], bounds
    assert bounds[100] >= elbo, (bounds, elbo)


def test_iwae_chunks_and_shape(trained_vae, shapes):
    _, x_test = shapes
    x = x_test[:6]
    # A decoder budget smaller than the batch splits images and samples; still one value per image.
    ll = trained_vae.log_likelihood(x, k=5, batch_size=4)
    assert ll.shape == (6,) and torch.isfinite(ll).all()
    # Seeded: the same generator gives the same bound.
    a = trained_vae.log_likelihood(x, k=7, generator=torch.Generator().manual_seed(3))
    b = trained_vae.log_likelihood(x, k=7, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_beta_vae_preset():
    cls, cfg = resolve("beta-vae")
    assert cls.name == "vae" and cfg.beta == 4.0
    assert resolve("vae")[1].beta == 1.0


def test_kl_warmup_ramps_linearly():
    torch.manual_seed(0)
    model = build("vae", beta=2.0, kl_warmup=10)
    x = fixed_batch()
    logged = {step: float(model.train_step(x, step)["kl/beta"]) for step in (0, 2, 5, 10, 20)}
    assert logged == pytest.approx({0: 0.0, 2: 0.4, 5: 1.0, 10: 2.0, 20: 2.0})


# ---------------------------------------------------------------------------------------------
# AE: losses and fitted priors

@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_ae_loss_decreases(loss, shapes):
    torch.manual_seed(0)
    model = build("ae", loss=loss)
    x = shapes[0][:16]
    losses = [float(model.train_step(x, step)["loss/recon"]) for step in range(100)]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-10:]) / 10 < 0.6 * losses[0], (losses[0], losses[-10:])


def test_fit_gaussian_recovers_mean_and_covariance():
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor([1.0, -2.0, 0.5])
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [-0.3, 0.2, 0.3]])
    cov = a @ a.T
    z = mean + torch.randn(20_000, 3, generator=g) @ a.T
    m, chol = fit_gaussian(z)
    assert chol.shape == (3, 3) and torch.equal(chol, chol.tril())
    torch.testing.assert_close(m.float(), mean, atol=0.05, rtol=0)
    torch.testing.assert_close((chol @ chol.T).float(), cov, atol=0.05, rtol=0)


def test_fit_gaussian_survives_a_dead_dimension():
    z = torch.randn(100, 3)
    z[:, 1] = 0.0                                  # a code dimension the encoder never uses
    m, chol = fit_gaussian(z)
    assert torch.isfinite(chol).all() and (chol.diagonal() > 0).all()


def test_gmm_log_prob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    k, d = 3, 2
    w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    means = torch.randn(k, d, generator=g, dtype=torch.float64)
    a = torch.randn(k, d, d, generator=g, dtype=torch.float64)
    chols = torch.linalg.cholesky(a @ a.transpose(1, 2) + 0.5 * torch.eye(d, dtype=torch.float64))
    z = torch.randn(7, d, generator=g, dtype=torch.float64)
    mix = MixtureSameFamily(Categorical(w), MultivariateNormal(means, scale_tril=chols))
    torch.testing.assert_close(torch.logsumexp(gmm_log_prob(z, w, means, chols), 1), mix.log_prob(z))


def test_gmm_em_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-10.0, 0.0], [10.0, 0.0], [0.0, 12.0]])
    n = torch.tensor([200, 300, 100])
    z = torch.cat([c + 0.5 * torch.randn(int(m), 2, generator=g) for c, m in zip(centres, n)])
    weights, means, chols = fit_gmm(z, 3, seed=0)
    # Match components to clusters by nearest mean (the labels are arbitrary).
    order = torch.cdist(centres.double(), means).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(means[order].float(), centres, atol=0.15, rtol=0)
    torch.testing.assert_close(weights[order].float(), n / n.sum(), atol=0.02, rtol=0)
    covs = (chols @ chols.transpose(1, 2))[order].float()
    torch.testing.assert_close(covs, 0.25 * torch.eye(2).expand(3, 2, 2), atol=0.08, rtol=0)
    # Reproducible: the same seed gives the same fit.
    torch.testing.assert_close(fit_gmm(z, 3, seed=0)[1], means)


def test_gmm_needs_enough_codes():
    from ganvae.errors import BadInput

    with pytest.raises(BadInput, match="at least 5"):
        fit_gmm(torch.randn(3, 2), 5)


@pytest.mark.parametrize("prior", ["gaussian", "gmm"])
def test_ae_samples_from_fitted_prior(prior, shapes):
    torch.manual_seed(0)
    model = build("ae", prior=prior, gmm_components=3)
    x = shapes[0][:128]
    assert not bool(model.prior_fitted)
    model.fit_prior(x)
    assert bool(model.prior_fitted) and model.training       # fit_prior leaves the mode alone
    z_data = model.encode(x)                                   # (128, latent)
    z = model.sample_prior(4000, torch.Generator().manual_seed(0))
    # The prior's samples have the codes' mean and spread (a standard normal would not).
    spread = z_data.std(0)
    assert ((z.mean(0) - z_data.mean(0)).abs() < 0.15 * spread + 1e-3).all()
    torch.testing.assert_close(z.std(0), spread, rtol=0.2, atol=1e-3)
    # sample() decodes exactly those codes.
    torch.testing.assert_close(model.sample(4, torch.Generator().manual_seed(5)),
                               model.decode(model.sample_prior(4, torch.Generator().manual_seed(5))))


@pytest.mark.parametrize("prior", ["gaussian", "gmm"])
def test_ae_prior_round_trip(prior, shapes, tmp_path):
    torch.manual_seed(0)
    model = build("ae", prior=prior, gmm_components=3)
    model.fit_prior(shapes[0][:64])
    model.save_pretrained(tmp_path)
    loaded = GenerativeModel.from_pretrained(tmp_path)
    assert bool(loaded.prior_fitted)
    for name, buf in model.named_buffers():
        assert torch.equal(buf, dict(loaded.named_buffers())[name]), name
    torch.testing.assert_close(loaded.sample(4, torch.Generator().manual_seed(7)),
                               model.sample(4, torch.Generator().manual_seed(7)), rtol=0, atol=0)


# VAE-GAN's gradient routing is tested in test_vaegan.py.


# ---------------------------------------------------------------------------------------------
# Every model here: the shared contract

MODELS = [("ae", {}), ("ae", {"loss": "bce", "prior": "gmm", "gmm_components": 2}),
          ("vae", {}), ("vae", {"likelihood": "gaussian", "learn_sigma": True}), ("beta-vae", {}),
          ("vae", {"prior": "gmm", "gmm_components": 2}),
          ("vaegan", {}), ("vaegan", {"prior": "normal", "pixel": 0.0, "feat_layers": "last"}),
          ("vaegan", {"spectral": True, "ema": 0.9, "d_norm": "none"}), ("aae", {}),
          ("aae", {"encoder": "gaussian", "recon": "bce"}), ("bigan", {}), ("ali", {})]


@pytest.mark.parametrize("preset,overrides", MODELS, ids=[f"{p}{'+' if o else ''}{'-'.join(map(str, o.values()))}"
                                                          for p, o in MODELS])
def test_contract(preset, overrides, tmp_path):
    torch.manual_seed(0)
    model = build(preset, **overrides)
    x = fixed_batch()
    assert all(math.isfinite(float(v)) for v in model.train_step(x, 0).values())
    assert model.training
    s = model.sample(4, torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 28, 28) and s.min() >= -1 and s.max() <= 1
    assert model.training                                # sample restores train mode
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= -1 and r.max() <= 1
    assert model.encode(x).shape == (16, model.config.latent)
    model.fit_prior(x)                                   # a no-op where the prior is N(0, I)
    model.save_pretrained(tmp_path)
    loaded = GenerativeModel.from_pretrained(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config
    # on a CPU a loaded model's convolutions are NHWC, as the trainer trains them; in the same
    # layout its outputs are the saved model's, bit for bit
    convs = [m.weight for m in loaded.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(loaded.sample(4, torch.Generator().manual_seed(3)),
                               model.sample(4, torch.Generator().manual_seed(3)), rtol=0, atol=0)
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)


def test_eval_psnr_is_the_mean_of_per_image_psnrs():
    # Issue 30: eval reported 10 log10(1 / pooled MSE), compress / complete / translate the mean
    # of per-image PSNRs (the same VAE: 16.58 against 15.64 dB). One definition now: per image.
    from ganvae.evaluation import EvalConfig, encoder_metrics

    torch.manual_seed(0)
    ds = load_dataset("shapes:n=64,n_test=48")
    model = build("ae").eval()
    out = encoder_metrics(model, ds, EvalConfig(n=48, batch=20), log=lambda m: None)
    with torch.no_grad():
        x = to_float(torch.from_numpy(ds.test.x[:48]))
        x_hat = model.reconstruct(x).clamp(-1, 1)
    per = [float(((a - b) / 2).double().pow(2).mean()) for a, b in zip(x_hat, x)]
    assert out["psnr"] == pytest.approx(sum(10 * math.log10(1 / m) for m in per) / len(per), rel=1e-6)
    assert out["recon_mse"] == pytest.approx(sum(per) / len(per), rel=1e-6)
    assert out["psnr"] > 10 * math.log10(1 / out["recon_mse"])    # Jensen: never the pooled figure
