"""codec-gan (models/codec_gan.py): the learned codec with HiFiC's conditional GAN on its decoder.
On real Fashion-MNIST: the warm-up and gan_weight=0 are the plain codec number for number; from
gan_start D learns and the codec's loss carries the GAN term; the bitstreams stay bit-exact and
as long as the rate; saving and loading through the trainer; bad configs."""

import json
import math

import pytest
import torch

from ganvae.config import replace
from ganvae.errors import BadInput
from ganvae.models import Codec, CodecConfig, CodecGAN, CodecGANConfig, GenerativeModel
from ganvae.models.codec import HEADER

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(channels=1, size=28, width=8, latent_channels=4)


@pytest.fixture(scope="module")
def fmnist():
    """Fashion-MNIST through the package's own loading: the dataset and 256 training and 64 test
    images as floats in [-1, 1]."""
    from ganvae.data import load_dataset, to_float

    ds = load_dataset("fashion-mnist")
    return ds, to_float(torch.from_numpy(ds.train.x[:256])), to_float(torch.from_numpy(ds.test.x[:64]))


def gan_model(seed=0, **kw):
    torch.manual_seed(seed)
    return CodecGAN(CodecGANConfig(**{**TINY, "d_width": 8, **kw}))


def train(model, x, steps, batch=16):
    """`steps` train steps on consecutive batches of x; the logs of each."""
    return [model.train_step(x[(s * batch) % len(x):][:batch], s) for s in range(steps)]


@pytest.fixture(scope="module")
def trained(fmnist):
    """Both priors after 6 steps, the GAN on from step 2 (its D has learnt for 4)."""
    _, x, _ = fmnist
    out = {}
    for hyper in (False, True):
        model = gan_model(hyperprior=hyper, gan_start=2, lmbda=0.25)
        train(model, x, 6)
        out[hyper] = model.eval()
    return out


def test_gan_weight_zero_and_the_warm_up_are_the_plain_codec_number_for_number(fmnist):
    _, x, _ = fmnist
    torch.manual_seed(0)
    codec = Codec(CodecConfig(**TINY, lmbda=0.25))
    want = train(codec, x, 4)
    # D's weights come from a stream of their own: after construction the global stream, and so
    # the quantisation noise, is the codec's
    for kw in ({"gan_weight": 0.0, "gan_start": 0}, {"gan_start": 4}):
        model = gan_model(lmbda=0.25, **kw)
        d_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
        got = train(model, x, 4)
        for g, w in zip(got, want):
            assert g.keys() == w.keys() and all(torch.equal(g[k], w[k]) for k in w), (kw, g, w)
        codec_state = codec.state_dict()
        for k, v in model.state_dict().items():
            if k.startswith("discriminator."):
                assert torch.equal(v, d_before[k.removeprefix("discriminator.")]), k   # D rested
            else:
                assert torch.equal(v, codec_state[k]), k
        assert model.updates_done() == {"codec": 4, "d": 0}


def test_from_gan_start_d_learns_and_the_codec_loss_has_the_gan_term(fmnist):
    _, x, _ = fmnist
    model = gan_model(gan_start=2, lmbda=0.5, gan_weight=100.0)
    d0 = {k: v.clone() for k, v in model.discriminator.named_parameters()}
    logs = train(model, x, 2)
    assert all("loss/d" not in out and "loss/g" not in out for out in logs)
    assert all(torch.equal(p, d0[k]) for k, p in model.discriminator.named_parameters())
    logs = [model.train_step(x[32:48], 2), model.train_step(x[48:64], 3)]
    for out in logs:
        assert {"loss/d", "loss/g", "d/real", "d/fake", "loss/total", "loss/rate_bits", "loss/mse"} <= out.keys()
        assert all(torch.isfinite(v) and v.ndim == 0 and not v.requires_grad for v in out.values())
        # rate + lmbda * (MSE + gan_weight * -log D): the GAN term is in the codec's loss
        want = out["loss/rate_bits"] + 0.5 * (out["loss/mse"] + 100.0 * out["loss/g"])
        assert out["loss/total"].item() == pytest.approx(want.item(), rel=1e-6)
        assert 0 < out["loss/g"].item() and 0 < out["loss/d"].item() < 3   # ~log 2 and ~2 log 2 at the start
    assert any(not torch.equal(p, d0[k]) for k, p in model.discriminator.named_parameters())
    assert model.updates_done() == {"codec": 4, "d": 2}


def test_the_decoder_gets_the_rounded_latents_straight_through(fmnist):
    """With ste, g_s decodes exactly the codes compress() writes, and y's gradient passes as if
    there were no rounding; the rate is still that of the noisy latents."""
    _, x, _ = fmnist
    model = gan_model()
    xb = x[:4].clone().requires_grad_(True)
    torch.manual_seed(3)
    bits, _, y_hat = model.rate_distortion(xb, noisy=True, ste=True)
    torch.manual_seed(3)
    bits_noisy, _, y_noisy = model.rate_distortion(xb, noisy=True)
    torch.testing.assert_close(bits, bits_noisy, rtol=0, atol=0)          # the same noisy rate
    m = model.offsets().view(1, -1, 1, 1)
    y = model.g_a(xb)
    assert torch.equal(y_hat.detach(), torch.round(y.detach() - m) + m)   # what compress rounds to
    assert not torch.equal(y_noisy.detach(), y_hat.detach())
    w = torch.randn_like(y)
    (g_ste,) = torch.autograd.grad((w * y_hat).sum(), xb)
    (g_y,) = torch.autograd.grad((w * y).sum(), xb)
    torch.testing.assert_close(g_ste, g_y)


@pytest.mark.parametrize("hyper", [False, True], ids=["codec-gan", "codec-gan+hyperprior"])
def test_compress_decompress_is_bit_exact_and_as_long_as_the_rate(trained, fmnist, hyper):
    model = trained[hyper]
    _, _, test = fmnist
    data = model.compress(test)
    assert torch.equal(model.decompress(data), model.reconstruct(test))
    assert torch.equal(model.decompress_codes(data).flatten(1), model.encode(test))
    # a 24-byte header, then whole 32-bit ANS words whose bits are the model's estimate of the
    # rate within ANS's overhead (tests/test_codec_model.py gives the margin's reasons)
    stream_bits = 8 * (len(data) - HEADER.size)
    estimate = model.rate_bits(test).sum().item()
    assert (len(data) - HEADER.size) % 4 == 0
    assert abs(stream_bits - estimate) <= 0.01 * estimate + 64, (stream_bits, estimate)
    assert data[:2] == b"GC" and int(data[3]) & 1 == int(hyper)


def test_sample_latent_nll_and_realism(trained, fmnist):
    _, _, test = fmnist
    model = trained[False]
    a = model.sample(4, seed=1)
    assert a.shape == (4, 1, 28, 28) and torch.equal(a, model.sample(4, seed=1)) and a.abs().max() <= 1
    z = model.encode(test[:3]).requires_grad_(True)
    nll = model.latent_nll(z)
    assert nll.shape == (3,) and torch.isfinite(nll).all()
    # realism: D's mean patch logit given the codes (x's own by default), differentiable in both
    xr = test[:3].clone().requires_grad_(True)
    logits = model.realism(xr, z)
    assert logits.shape == (3,) and logits.dtype == torch.float32
    torch.testing.assert_close(model.realism(test[:3]), logits.detach())
    logits.sum().backward()
    assert xr.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    y_hat = z.detach().view(3, *model.latent_shape) + model.offsets().view(1, -1, 1, 1)
    torch.testing.assert_close(logits.detach(), model.discriminator(test[:3], y_hat).mean((1, 2, 3)))
    assert CodecGAN.has_encoder and CodecGAN.ddp_ready and CodecGAN.averages_own_gradients


def test_trains_through_the_trainer_and_loads_back_to_identical_reconstructions(fmnist, tmp_path):
    import ganvae

    ds, _, test = fmnist
    run, summary = ganvae.train("codec-gan", "fashion-mnist", tmp_path / "run", dataset=ds, steps=4, batch_size=16,
                                overrides={"width": 8, "latent_channels": 4, "d_width": 8, "gan_start": 2},
                                log_every=1, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert ["loss/d" in r for r in rows] == [False, False, True, True]         # D from step 2 (0-based)
    assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    model = ganvae.load(run)
    assert type(model) is CodecGAN and model.config.gan_start == 2 and model.config.d_width == 8
    data = model.compress(test)
    again = GenerativeModel.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert again.compress(test) == data                       # the same weights: the same fingerprint
    assert torch.equal(again.reconstruct(test), model.reconstruct(test))
    assert torch.equal(again.decompress(data), model.reconstruct(test))
    torch.testing.assert_close(again.realism(test[:4]), model.realism(test[:4]), rtol=0, atol=0)


@pytest.mark.parametrize("field,value,msg", [("gan_weight", -1.0, "gan_weight=-1.0: must be a number at least 0"),
                                             ("gan_weight", math.inf, "gan_weight=inf"),
                                             ("gan_start", -5, "gan_start=-5: must be a whole number"),
                                             ("lr_d", 0.0, "lr_d=0.0: must be positive"),
                                             ("d_adam_beta1", 1.0, r"d_adam_beta1=1.0: must be in \[0, 1\)"),
                                             ("d_adam_beta2", -0.1, "d_adam_beta2=-0.1"),
                                             ("d_width", 0, "d_width=0: must be at least 1"),
                                             ("d_cond_channels", -1, "d_cond_channels=-1: must be at least 0"),
                                             ("lmbda", 0.0, "lmbda=0.0: must be a positive")])   # the codec's own
def test_bad_configs_are_one_line_errors_naming_the_key(field, value, msg):
    from ganvae.registry import resolve

    cls, cfg = resolve("codec-gan")
    assert cls is CodecGAN
    with pytest.raises(BadInput, match=msg) as e:
        cls(replace(cfg, {field: value}))
    assert "\n" not in str(e.value)


def test_an_unconditional_d_ignores_the_latents(fmnist):
    """d_cond_channels=0: HiFiC's ablation, D sees the image alone."""
    _, x, _ = fmnist
    model = gan_model(d_cond_channels=0, gan_start=0)
    out = train(model, x, 2)
    assert all(torch.isfinite(v) for o in out for v in o.values())
    z = model.encode(x[:2])
    torch.testing.assert_close(model.realism(x[:2], z), model.realism(x[:2], z + 3), rtol=0, atol=0)


# ~25 s of a torchrun job on gloo: the slow suite's (make test-all)
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["codec", "codec-gan"])
def test_two_processes_train_the_weights_one_process_does(tmp_path, preset):
    """Under DDP codec-gan averages its own gradients (backward(inputs=...), no wrappers) and
    draws the codec's noise for the global batch: 2 ranks of 8 images compute what one process
    of 16 computes, warm-up and GAN phase both (as tests/test_ddp.py for the other models)."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    import ganvae

    over = {"width": 8, "latent_channels": 4} | ({"d_width": 8, "gan_start": 2} if preset == "codec-gan" else {})
    weights = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):     # the second rounds differently: the yardstick of float rounding
            torch.set_num_threads(threads)
            # (no dataset=: that is taken as the run's split as it is, while the torchrun job below
            # holds the validation split out of its training images, as a run loads its data)
            run, _ = ganvae.train(preset, "fashion-mnist", tmp_path / f"one-{threads}", steps=4,
                                  batch_size=16, overrides=over, log_every=1, progress=False)
            weights[threads] = load_file(str(run / "model" / "model.safetensors"))
    finally:
        torch.set_num_threads(before)
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    p = subprocess.run([sys.executable, "-m", "ganvae", "train", preset, "--data", "fashion-mnist", "--steps", "4",
                        "--batch-size", "16", "--log-every", "1", "--device", "cpu", "--quiet", "--nproc", "2",
                        "--out", str(tmp_path / "two"), *sets], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "GANVAE_DDP_TIMEOUT": "60"})
    assert p.returncode == 0, p.stderr[-3000:]
    two = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))

    from ganvae.models.codec import GDN

    def effective(k, v):
        """GDN's stored sqrt-parameters as the gamma and beta they give (GDN.gamma / beta): an
        entry below its bound is clamped there, and LowerBound's gate lets it move when the
        gradient is negative, a sign each rank reads of its own half-batch; such an entry may
        stand anywhere below the bound (or just above: gamma ~1e-7) on 1 or 2 processes alike."""
        if k.endswith("gamma_p"):
            return v.double().clamp_min(math.sqrt(GDN.PEDESTAL)) ** 2 - GDN.PEDESTAL
        if k.endswith("beta_p"):
            return v.double().clamp_min(math.sqrt(GDN.BETA_MIN + GDN.PEDESTAL)) ** 2 - GDN.PEDESTAL
        return v.double()

    def max_diff(a, b):
        assert a.keys() == b.keys()
        return max(float((effective(k, a[k]) - effective(k, b[k])).abs().max()) for k in a)

    rounding = max_diff(weights[1], weights[2])
    assert max_diff(weights[1], two) <= max(1e-5, 4 * rounding)
    if preset == "codec-gan":
        untrained = CodecGAN(CodecGANConfig(**{**TINY, "d_width": 8}))
        assert any(not torch.equal(two[k], v) for k, v in untrained.state_dict().items()
                   if k.startswith("discriminator."))
    # ... and the logged losses, averaged over the ranks, are the global batch's
    rows1, rows2 = ([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
                    for run in (tmp_path / "one-1", tmp_path / "two"))
    assert ["loss/d" in r for r in rows2] == ([False, False, True, True] if preset == "codec-gan" else [False] * 4)
    for r1, r2 in zip(rows1, rows2):
        assert r1.keys() == r2.keys()
        for k in r1:
            if k.startswith("loss/"):
                assert r2[k] == pytest.approx(r1[k], rel=1e-4, abs=1e-4), k
