"""Likelihoods that are probabilities of the data: discretized decoders, binarization, the
IWAE bound against the ELBO, bits per dimension, and the labels that keep invalid numbers
out of any ranking."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from ganvae.config import replace
from ganvae.data import load_dataset, to_float
from ganvae.data.binarize import binarize_batch, binarize_static
from ganvae.evaluation import NLL_IMAGES_FLOOR, EvalConfig, encoder_metrics, likelihood_space, plan_likelihood
from ganvae.errors import BadInput
from ganvae.models.autoencoder import normal
from ganvae.models.vae import discretized_gaussian_nll, discretized_logistic_nll
from ganvae.nets import Decoder, dcgan_init, inference_decoder
from ganvae.registry import resolve

pytestmark = pytest.mark.usefixtures("one_thread")
DISCRETIZED = {"discretized-logistic": discretized_logistic_nll, "discretized-gaussian": discretized_gaussian_nll}
VALUES = torch.arange(256, dtype=torch.float64) * 2 / 255 - 1          # the 256 pixel values in [-1, 1]


def build(preset="vae", **overrides):
    cls, cfg = resolve(preset)
    return cls(replace(cfg, {"width": 8, "latent": 4, **overrides}))


# ---------------------------------------------------------------------------------------------
# the discretized distributions, in closed form

@pytest.mark.parametrize("name", DISCRETIZED)
@pytest.mark.parametrize("mean,log_scale", [(0.3, -2.0), (-0.97, -6.5), (1.4, 0.3), (0.0, 2.5), (-3.0, -4.0)])
def test_the_256_values_of_a_pixel_sum_to_one(name, mean, log_scale):
    """A 1x1 image: P(k) over the 256 values of its pixel is a distribution."""
    x = VALUES.float().view(256, 1, 1, 1)
    m, s = torch.full_like(x, mean), torch.full_like(x, log_scale)
    p = torch.exp(-DISCRETIZED[name](m, s, x).double())                 # (256,)
    assert float(p.sum()) == pytest.approx(1.0, abs=2e-6)
    assert bool((p >= 0).all())


def _reference_cdf(name: str, t: torch.Tensor, mean: float, log_scale: float) -> torch.Tensor:
    """float64 CDFs from their textbook forms (torch.distributions / the logistic function)."""
    s = math.exp(log_scale)
    if name == "discretized-logistic":
        return torch.sigmoid((t - mean) / s)
    return Normal(torch.tensor(mean, dtype=torch.float64), s).cdf(t)


@pytest.mark.parametrize("name", DISCRETIZED)
def test_bin_masses_match_the_cdf(name):
    """Every bin's probability is the CDF difference over [x - 1/255, x + 1/255]; the edge bins
    take the open tails. Checked in float64 where nothing cancels (a wide scale)."""
    mean, log_scale = 0.2, -1.0
    x = VALUES.float().view(256, 1, 1, 1)
    ours = torch.exp(-DISCRETIZED[name](torch.full_like(x, mean), torch.full_like(x, log_scale), x).double())
    upper = _reference_cdf(name, VALUES + 1 / 255, mean, log_scale)
    lower = _reference_cdf(name, VALUES - 1 / 255, mean, log_scale)
    want = upper - lower
    want[0], want[-1] = upper[0], 1 - lower[-1]
    torch.testing.assert_close(ours, want, rtol=2e-5, atol=1e-9)


@pytest.mark.parametrize("name", DISCRETIZED)
def test_far_tails_stay_finite_with_finite_gradients(name):
    """A wild early decoder (means far outside [-1, 1], scales at the floor or huge) gives a large
    but finite NLL and finite gradients: no NaN reaches the weights."""
    from ganvae.models.vae import LOG_SCALE_FLOOR, softclip

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 6, 6), generator=g).float() * 2 / 255 - 1
    mean = (torch.randn(x.shape, generator=g) * 50).requires_grad_()
    raw = (torch.randn(x.shape, generator=g) * 15).requires_grad_()
    nll = DISCRETIZED[name](mean, softclip(raw, LOG_SCALE_FLOOR), x)
    nll.sum().backward()
    assert bool(torch.isfinite(nll).all()) and bool((nll > 0).all())
    assert bool(torch.isfinite(mean.grad).all()) and bool(torch.isfinite(raw.grad).all())


def test_vae_and_beta_vae_default_to_a_valid_likelihood():
    for preset in ("vae", "beta-vae"):
        _, cfg = resolve(preset)
        assert cfg.likelihood == "discretized-logistic"
        assert likelihood_space(build(preset)) == "8-bit"


def test_the_model_uses_the_discretized_term():
    """model.nll splits the decoder's 2C channels into mean and (floored) log-scale."""
    from ganvae.models.vae import LOG_SCALE_FLOOR, softclip

    model = build(likelihood="discretized-gaussian")
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (4, 1, 28, 28), generator=g).float() * 2 / 255 - 1
    out = torch.randn(4, 2, 28, 28, generator=g)
    want = discretized_gaussian_nll(out[:, :1], softclip(out[:, 1:], LOG_SCALE_FLOOR), x)
    torch.testing.assert_close(model.nll(out, x), want)
    assert model.decoder(torch.zeros(1, 4)).shape == (1, 2, 28, 28)


# ---------------------------------------------------------------------------------------------
# bounds and bits per dimension

@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes:n=512,n_test=64")


@pytest.fixture(scope="module")
def trained(shapes):
    torch.manual_seed(0)
    model = build(latent=8)
    x = to_float(torch.from_numpy(shapes.train.x))
    g = torch.Generator().manual_seed(0)
    for step in range(200):
        model.train_step(x[torch.randint(len(x), (32,), generator=g)], step)
    return model.eval()


def test_uniform_decoder_scores_exactly_8_bits_per_dim(shapes):
    """q(z|x) = p(z) (encoder head zeroed) and P(x|z) = 256^-D: log p(x) = -D ln 256, i.e. 8 bits
    per dimension, through the whole evaluation path (ELBO, IWAE bound, conversion)."""
    model = build().eval()
    with torch.no_grad():
        model.encoder.head.weight.zero_()
        model.encoder.head.bias.zero_()
    dims = math.prod(shapes.shape)
    model.nll = lambda out, x: torch.full((len(x),), dims * math.log(256))
    m = encoder_metrics(model, shapes, EvalConfig(nll_k=7, nll_images=16), log=lambda s: None)
    assert m["nll_bpd"] == pytest.approx(8.0, rel=1e-6)   # float32 sums of ~4,000 nats
    assert m["elbo"] == pytest.approx(-dims * math.log(256), rel=1e-6)


def test_iwae_is_above_the_elbo_and_rises_with_k(trained, shapes):
    x = to_float(torch.from_numpy(shapes.test.x[:48]))
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    elbo = float(trained.elbo(x, generator=gen()).mean())
    bounds = [float(trained.log_likelihood(x, k=k, generator=gen()).mean()) for k in (1, 10, 100)]
    assert bounds[1] > elbo and bounds[2] > bounds[1] > bounds[0]
    # k=1 is a one-sample ELBO: the same quantity as elbo(x) up to Monte Carlo noise
    assert abs(bounds[0] - elbo) < 0.05 * abs(elbo)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
@pytest.mark.parametrize("size,channels", [(28, 2), (32, 3)])
def test_inference_decoder_computes_the_eval_decoder(norm, size, channels):
    """Batch norm folded, the first layer as a matrix product, channels-last: the same function."""
    torch.manual_seed(0)
    dec = Decoder(6, channels, size, 8, norm=norm, out="none")
    dcgan_init(dec)
    with torch.no_grad():
        dec.train()(torch.randn(64, 6) * 3)        # running statistics far from (0, 1)
        for m in dec.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_()
    z = torch.randn(16, 6)
    fast = inference_decoder(dec)                   # from train mode: still the eval-mode function
    assert dec.training
    dec.eval()
    with torch.no_grad():
        want = dec(z)
        got = fast(z)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in fast.parameters())


def test_iwae_equals_a_per_image_reference(trained, shapes):
    """The batched bound against a direct transcription of Burda et al.'s estimator, image by
    image, with torch.distributions densities and the model's own decoder, on the same samples."""
    x = to_float(torch.from_numpy(shapes.test.x[:6]))
    k, latent = 40, trained.config.latent
    got = trained.log_likelihood(x, k=k, batch_size=6 * k, generator=torch.Generator().manual_seed(3))
    eps = normal((k, 6, latent), torch.Generator().manual_seed(3), x.device)      # the same draw
    want = []
    with torch.no_grad():
        mu, logvar = trained.posterior(x)
        for j in range(6):
            q = Normal(mu[j], torch.exp(0.5 * logvar[j]))
            z = q.loc + q.scale * eps[:, j]                                          # (k, D)
            log_px = -trained.nll(trained.decoder(z), x[j:j + 1].expand(k, *x.shape[1:]))
            log_w = log_px + Normal(0.0, 1.0).log_prob(z).sum(1) - q.log_prob(z).sum(1)
            want.append(torch.logsumexp(log_w.double(), 0) - math.log(k))
    torch.testing.assert_close(got.double(), torch.stack(want), rtol=1e-5, atol=1e-3)


def test_iwae_with_a_bf16_decoder_stays_within_a_tenth_of_a_nat(trained, shapes):
    x = to_float(torch.from_numpy(shapes.test.x[:32]))
    runs = {p: trained.log_likelihood(x, k=200, generator=torch.Generator().manual_seed(5), precision=p)
            for p in ("fp32", "bf16")}
    assert runs["fp32"].dtype == runs["bf16"].dtype == torch.float32
    assert abs(float(runs["bf16"].mean() - runs["fp32"].mean())) < 0.1
    with pytest.raises(BadInput, match="precision"):
        trained.log_likelihood(x, k=2, precision="fp16")


def test_trained_model_bits_per_dim_in_range(trained, shapes):
    m = encoder_metrics(trained, shapes, EvalConfig(nll_k=50, nll_images=32), log=lambda s: None)
    assert 0 < m["nll_bpd"] <= 8
    assert m["nll"] <= -m["elbo"] + 1e-6          # IWAE (k=50) at least as tight as the ELBO
    assert m["nll_images"] == 32 and "nll_invalid" not in m


# ---------------------------------------------------------------------------------------------
# binary data and invalid likelihoods

def test_static_binarization_is_one_seeded_draw():
    x = np.random.default_rng(0).integers(0, 256, (400, 1, 8, 8)).astype(np.uint8)
    a, b, c = binarize_static(x, 0), binarize_static(x, 0), binarize_static(x, 1)
    assert set(np.unique(a)) <= {0, 255} and np.array_equal(a, b) and not np.array_equal(a, c)
    # pixel k is white with probability k / 255: the binary images keep the grey means
    assert abs(a.mean() / 255 - x.mean() / 255) < 0.01
    assert np.array_equal(binarize_static(np.full((2, 1, 3, 3), 255, np.uint8), 5), np.full((2, 1, 3, 3), 255))
    assert not binarize_static(np.zeros((2, 1, 3, 3), np.uint8), 5).any()


def test_dynamic_binarization_draws_afresh():
    torch.manual_seed(0)
    x = torch.full((64, 1, 8, 8), 0.0)                  # grey 127.5: white with probability 1/2
    a, b = binarize_batch(x.clone()), binarize_batch(x.clone())
    assert set(a.unique().tolist()) == {-1.0, 1.0} and not torch.equal(a, b)
    assert abs(float((a > 0).float().mean()) - 0.5) < 0.03


def test_bernoulli_on_grey_is_labelled_and_never_ranked(shapes):
    from ganvae.evaluation import directions

    model = build(likelihood="bernoulli").eval()
    assert likelihood_space(model, "none") == "invalid"
    m = encoder_metrics(model, shapes, EvalConfig(nll_k=3, nll_images=8), log=lambda s: None)
    assert "nll_invalid" in m and "nll" not in m and "nll_bpd" not in m and "nll_invalid_bpd" not in m
    assert directions()["nll_invalid"] is None and directions()["elbo_invalid"] is None
    b = encoder_metrics(model, shapes, EvalConfig(nll_k=3, nll_images=8), log=lambda s: None, binarize="static")
    assert "nll_binary" in b and 0 < b["nll_binary_bpd"]
    assert likelihood_space(build(likelihood="gaussian"), "static") == "invalid"


def test_binarized_run_end_to_end(tmp_path, run_cli):
    """`--set data.binarize=dynamic` trains on binary batches; eval scores binary test images and
    says which data space its NLL is in."""
    run = tmp_path / "bin"
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=256,n_test=64", "--steps", "30", "--out", run,
                           "--set", "likelihood=bernoulli", "--set", "data.binarize=dynamic", "--set", "width=8",
                           "--set", "latent=4", "--batch-size", "16", "--quiet")
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["data"]["binarize"] == "dynamic"
    code, out, err = run_cli("eval", run, "-n", "200", "--nll-k", "5", "--nll-images", "16")
    assert code == 0, err
    result = json.loads((run / "eval.json").read_text())
    assert result["likelihood"]["space"] == "binary" and result["likelihood"]["valid"]
    # binary pixels: 1 bit/dim is the uniform guess, and the mostly black shapes are far below it
    assert 0 < result["metrics"]["nll_binary_bpd"] < 1.0
    assert "nll_binary (IWAE, k=5)" in out and "binarized pixels" in out


def test_grey_bernoulli_run_says_not_a_likelihood(tmp_path, run_cli):
    run = tmp_path / "grey"
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=256,n_test=64", "--steps", "5", "--out", run,
                           "--set", "likelihood=bernoulli", "--set", "width=8", "--set", "latent=4",
                           "--batch-size", "16", "--quiet")
    assert code == 0, err
    code, out, err = run_cli("eval", run, "-n", "200", "--nll-k", "3", "--nll-images", "8")
    assert code == 0, err
    assert "not a likelihood of the data" in out
    assert json.loads((run / "eval.json").read_text())["likelihood"]["valid"] is False


def test_the_likelihood_plan_fits_the_stated_time_and_keeps_given_counts(shapes):
    """k and the image count are sized from the decoder speed the plan measures: the most that
    fit nll_seconds, up to the targets; a count given is kept as given."""
    model = build().eval()
    x = to_float(torch.from_numpy(shapes.test.x[:64]))
    given = plan_likelihood(model, x, EvalConfig(nll_k=7, nll_images=500))
    assert (given["k"], given["images"], given["auto"], given["decodes_per_second"]) == (7, 64, False, None)
    roomy = plan_likelihood(model, x, EvalConfig(nll_seconds=1e6))
    assert (roomy["k"], roomy["images"], roomy["auto"]) == (1000, 64, True) and roomy["decodes_per_second"] > 0
    tight = plan_likelihood(model, x, EvalConfig(nll_seconds=1e-4))   # nothing fits: the fewest that still mean something
    assert (tight["k"], tight["images"]) == (1, NLL_IMAGES_FLOOR)
    for seconds in (0.05, 0.5):
        p = plan_likelihood(model, x, EvalConfig(nll_seconds=seconds))
        assert p["k"] * p["images"] <= p["decodes_per_second"] * seconds or p["images"] == NLL_IMAGES_FLOOR
        # images are given up only to keep k >= 50, and never below the floor
        assert p["images"] == 64 or p["k"] >= 50 or p["images"] == NLL_IMAGES_FLOOR
    k_given = plan_likelihood(model, x, EvalConfig(nll_k=10, nll_seconds=1e-4))
    assert (k_given["k"], k_given["images"]) == (10, 1)
    n_given = plan_likelihood(model, x, EvalConfig(nll_images=8, nll_seconds=1e6))
    assert (n_given["k"], n_given["images"]) == (1000, 8)


def test_eval_sizes_the_bound_to_nll_seconds_and_says_so(tmp_path, run_cli):
    run = tmp_path / "vae"
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=256,n_test=64", "--steps", "5", "--out", run,
                           "--set", "width=8", "--set", "latent=4", "--batch-size", "16", "--quiet")
    assert code == 0, err
    code, out, err = run_cli("eval", run, "-n", "200", "--nll-images", "8", "--nll-seconds", "0.5")
    assert code == 0, err
    lk = json.loads((run / "eval.json").read_text())["likelihood"]
    assert lk["images"] == 8 and 1 <= lk["k"] <= 1000 and lk["seconds"] > 0
    assert f"IWAE bound (k={lk['k']}) on 8 test images, sized to fit --nll-seconds 0.5" in err
    assert f"k={lk['k']}" in out and "--nll-seconds" in out
    code, _, err = run_cli("eval", run, "--nll-seconds", "0")
    assert code != 0 and "--nll-seconds 0" in err and "Traceback" not in err


def test_eval_and_tasks_show_progress_unless_quiet(tmp_path, run_cli, monkeypatch):
    """Work over a few seconds draws a bar (forced on here: stderr is no terminal in a test);
    --quiet draws none."""
    run = tmp_path / "vae"
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=256,n_test=64", "--steps", "3", "--out", run,
                           "--set", "width=8", "--set", "latent=4", "--batch-size", "16", "--quiet")
    assert code == 0, err
    monkeypatch.setenv("GANVAE_PROGRESS", "1")
    code, _, err = run_cli("eval", run, "-n", "200", "--nll-k", "4", "--nll-images", "8")
    assert code == 0, err
    assert "sampling (vae)" in err and "evaluator features" in err and "IWAE bound (k=4)" in err
    code, _, err = run_cli("probe", run, "--per-class", "2,4", "--seeds", "2", "--n-test", "50")
    assert code == 0, err
    assert "probe: draws of the labelled images" in err
    code, _, quiet = run_cli("probe", run, "--per-class", "2,4", "--n-test", "50", "--quiet")
    assert code == 0 and "probe: draws" not in quiet
    code, _, quiet = run_cli("eval", run, "-n", "200", "--nll-k", "4", "--nll-images", "8", "--quiet")
    assert code == 0 and "sampling (vae)" not in quiet and "evaluator features" not in quiet
    assert "IWAE bound (k=4) on 8 test images, as given" in quiet   # the log line stays
