"""AAE (Makhzani et al. 2016): its losses by hand, which gradient reaches which network in each
phase, the model contract, config validation, and that the adversarial phase does its job.

Tiny nets (28x28, width 8, latent 4, batches of 16) on CPU; the whole file runs in seconds.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ganvae.config import replace
from ganvae.data import load_dataset, to_float
from ganvae.errors import BadInput
from ganvae.models.aae import AAE, AAEConfig, aggregate_kl, d_loss, g_loss, reconstruction_loss
from ganvae.registry import resolve

TINY = {"width": 8, "latent": 4, "d_hidden": 32}
pytestmark = pytest.mark.usefixtures("one_thread")


def build(**overrides) -> AAE:
    cls, cfg = resolve("aae")
    torch.manual_seed(0)
    return cls(replace(cfg, {**TINY, **overrides}))


def fixed_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


# ---------------------------------------------------------------------------------------------
# The losses, against the formulas written out with math

def test_d_and_g_losses_by_hand():
    lp, lc = [2.0, -1.0, 0.3], [0.5, -3.0, 1.7]          # logits of prior draws and of codes
    want_d = (-sum(math.log(sigmoid(v)) for v in lp) / 3      # -mean log D(z_prior)
              - sum(math.log(1 - sigmoid(v)) for v in lc) / 3)  # -mean log(1 - D(z_code))
    want_g = -sum(math.log(sigmoid(v)) for v in lc) / 3       # -mean log D(z_code)
    got_d = d_loss(torch.tensor(lp), torch.tensor(lc))
    got_g = g_loss(torch.tensor(lc))
    assert got_d.shape == got_g.shape == ()
    assert float(got_d) == pytest.approx(want_d, rel=1e-6)
    assert float(got_g) == pytest.approx(want_g, rel=1e-6)
    # Saturated logits stay finite and exact: -log sigmoid(-100) = 100 + log(1 + e^-100) ~ 100.
    assert float(d_loss(torch.tensor([-100.0]), torch.tensor([100.0]))) == pytest.approx(200.0)
    assert float(g_loss(torch.tensor([-100.0]))) == pytest.approx(100.0)
    # bf16 logits are scored in float32
    assert d_loss(torch.tensor(lp, dtype=torch.bfloat16), torch.tensor(lc)).dtype == torch.float32


def test_reconstruction_loss_by_hand():
    x = torch.tensor([[[[-1.0, 0.0], [0.5, 1.0]]], [[[1.0, 1.0], [-1.0, -0.5]]]])    # (2, 1, 2, 2)
    out = torch.tensor([[[[-0.5, 0.0], [0.5, 0.0]]], [[[0.0, 1.0], [2.0, -1.0]]]])
    # mse: squared errors on [-1, 1], summed per image
    want = [0.25 + 0 + 0 + 1.0, 1.0 + 0 + 9.0 + 0.25]
    torch.testing.assert_close(reconstruction_loss(out, x, "mse"), torch.tensor(want))
    # bce: -(t log s(o) + (1 - t) log(1 - s(o))), t = (x + 1) / 2, summed per image
    want = []
    for xi, oi in zip(x.flatten(1).tolist(), out.flatten(1).tolist()):
        want.append(-sum((xv + 1) / 2 * math.log(sigmoid(ov)) + (1 - (xv + 1) / 2) * math.log(1 - sigmoid(ov))
                         for xv, ov in zip(xi, oi)))
    torch.testing.assert_close(reconstruction_loss(out, x, "bce"), torch.tensor(want))


def test_reconstruction_matches_the_ae():
    # The same units as the AE's loss, so loss/recon compares across the two families.
    cls, cfg = resolve("ae")
    g = torch.Generator().manual_seed(1)
    x, out = fixed_batch(4), torch.randn(4, 1, 28, 28, generator=g)
    for kind in ("mse", "bce"):
        ae = cls(replace(cfg, {**{k: TINY[k] for k in ("width", "latent")}, "loss": kind}))
        torch.testing.assert_close(reconstruction_loss(out, x, kind), ae.recon_loss(out, x))


def test_aggregate_kl_by_hand():
    z = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 2.0]])
    # per dimension: mean 1 and 2, unbiased variance 1 and 1; KL = 0.5 (v + m^2 - 1 - log v)
    assert float(aggregate_kl(z)) == pytest.approx(0.5 * (1 + 1 - 1 - 0) + 0.5 * (1 + 4 - 1 - 0))
    # codes drawn from the prior score near 0
    assert float(aggregate_kl(torch.randn(20_000, 4, generator=torch.Generator().manual_seed(0)))) < 0.01


# ---------------------------------------------------------------------------------------------
# The phases: which network each loss reaches

def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _equal(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("encoder", ["deterministic", "gaussian"])
def test_phases_route_gradients(encoder):
    """Phase (1) moves D alone, with the gradient of L_D on detached codes; phase (2) moves the
    encoder and decoder, against the updated D, with the encoder's gradient that of
    L_recon + adv_weight * L_G and the decoder's that of L_recon alone; D gets nothing from it."""
    model = build(encoder=encoder, adv_weight=2.5)
    ref = copy.deepcopy(model)                            # same weights and buffers, never stepped
    x = fixed_batch()
    enc0, dec0, dis0 = _params(model.encoder), _params(model.decoder), _params(model.discriminator)
    seen = {}

    def at_disc(opt, args, kwargs):
        seen["disc"] = {"enc": _params(model.encoder), "dec": _params(model.decoder),
                        "enc_grad": [p.grad for p in model.encoder.parameters()],
                        "dec_grad": [p.grad for p in model.decoder.parameters()],
                        "dis_grad": [p.grad.clone() for p in model.discriminator.parameters()]}

    def at_ae(opt, args, kwargs):
        seen["ae"] = {"enc": _params(model.encoder), "dec": _params(model.decoder),
                      "dis": _params(model.discriminator),
                      "enc_grad": [p.grad.clone() for p in model.encoder.parameters()],
                      "dec_grad": [p.grad.clone() for p in model.decoder.parameters()]}

    opts = model.optimizers()
    assert set(opts) == {"ae", "disc"} and model.updates_per_step() == {"ae": 1.0, "disc": 1.0}
    opts["disc"].register_step_pre_hook(at_disc)
    opts["ae"].register_step_pre_hook(at_ae)
    torch.manual_seed(5)
    logs = model.train_step(x, 0)

    # The reference, written out: the same draws in the same order (q(z|x)'s noise, then the prior).
    torch.manual_seed(5)
    h = ref.encoder(x)
    if encoder == "gaussian":
        mu, logvar = h.chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    else:
        z = h
    z_prior = torch.randn_like(z)
    lp, lc = ref.discriminator(z_prior), ref.discriminator(z.detach())
    loss_d = -torch.log(torch.sigmoid(lp)).mean() - torch.log(1 - torch.sigmoid(lc)).mean()
    want_dis = torch.autograd.grad(loss_d, list(ref.discriminator.parameters()))

    # (1) D's step: the encoder and decoder untouched and without gradient, D's gradient L_D's.
    s = seen["disc"]
    assert _equal(s["enc"], enc0) and _equal(s["dec"], dec0)
    assert all(g is None for g in s["enc_grad"] + s["dec_grad"])
    for g, w in zip(s["dis_grad"], want_dis):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)

    # (2) the autoencoder's step: D already updated, and left as it was by this phase.
    s = seen["ae"]
    assert _equal(s["enc"], enc0) and _equal(s["dec"], dec0)      # D's phase moved neither
    assert not _equal(s["dis"], dis0)                             # D did move in phase (1)
    assert _equal(_params(model.discriminator), s["dis"])        # and not again in phase (2)
    for p, g in zip(model.discriminator.parameters(), seen["disc"]["dis_grad"]):
        assert torch.equal(p.grad, g)                             # phase (2) left no gradient in D
    with torch.no_grad():
        for p, w in zip(ref.discriminator.parameters(), s["dis"]):
            p.copy_(w)                                            # the reference's D, updated
    out = ref.decoder(z)
    recon = ((out - x) ** 2).flatten(1).sum(1).mean()
    gen = -torch.log(torch.sigmoid(ref.discriminator(z))).mean()  # -log D(E(x)), updated D
    enc_params, dec_params = list(ref.encoder.parameters()), list(ref.decoder.parameters())
    want_enc = torch.autograd.grad(recon + 2.5 * gen, enc_params, retain_graph=True)
    want_dec = torch.autograd.grad(recon, dec_params, retain_graph=True)
    for g, w in zip(s["enc_grad"], want_enc):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    for g, w in zip(s["dec_grad"], want_dec):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    # the adversarial term really reaches the encoder (the check above would see it missing)
    recon_only = torch.autograd.grad(recon, enc_params, retain_graph=True)
    assert not all(torch.allclose(g, w, rtol=1e-3, atol=1e-6) for g, w in zip(s["enc_grad"], recon_only))
    # ... and not the decoder: L_G depends on z alone
    assert all(g is None for g in torch.autograd.grad(gen, dec_params, allow_unused=True))

    # The logs are these losses (loss/g against the updated D, the accuracies from phase (1)).
    want = {"loss/d": loss_d, "loss/recon": recon, "loss/g": gen,
            "diag/d_acc_real": (lp > 0).float().mean(), "diag/d_acc_fake": (lc < 0).float().mean(),
            "diag/agg_kl": aggregate_kl(z)}
    if encoder == "gaussian":
        want["diag/post_std"] = torch.exp(0.5 * logvar).mean()
    assert set(logs) == set(want)
    for k, v in want.items():
        assert logs[k].shape == () and not logs[k].requires_grad, k
        torch.testing.assert_close(logs[k], v.detach(), rtol=1e-5, atol=1e-6, msg=k)


def test_adv_weight_zero_is_a_plain_autoencoder():
    # No adversarial gradient: the encoder's gradient is L_recon's (D still trains, for the logs).
    model = build(adv_weight=0.0)
    ref = copy.deepcopy(model)
    x = fixed_batch()
    seen = {}
    model.optimizers()["ae"].register_step_pre_hook(
        lambda o, a, k: seen.__setitem__("enc", [p.grad.clone() for p in model.encoder.parameters()]))
    model.train_step(x, 0)
    recon = ((ref.decoder(ref.encoder(x)) - x) ** 2).flatten(1).sum(1).mean()
    for g, w in zip(seen["enc"], torch.autograd.grad(recon, list(ref.encoder.parameters()))):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The contract, for both encoders and both reconstruction losses

KINDS = [{"encoder": "deterministic", "recon": "mse"}, {"encoder": "gaussian", "recon": "bce"}]


@pytest.mark.parametrize("overrides", KINDS, ids=lambda o: f"{o['encoder']}-{o['recon']}")
def test_aae_encoding(overrides):
    """What is particular to the AAE; sampling, reconstruction and save/load for both encoders
    are in test_autoencoders.test_contract."""
    model = build(**overrides)
    assert model.has_encoder and model.gaussian_latent and type(model).name == "aae"
    x = fixed_batch()
    model.train_step(x, 0)
    z = model.encode(x)
    assert z.shape == (16, 4) and model.training
    torch.testing.assert_close(model.decode(z), model.reconstruct(x))   # reconstruct = decode(encode(x))
    if overrides["encoder"] == "gaussian":               # encode is the posterior mean, no noise
        torch.testing.assert_close(model.encode(x), z, rtol=0, atol=0)


def test_mixed_precision_paths():
    # bf16: forwards autocast, losses and logs float32, optimizer steps outside autocast;
    # fp16: every backward scaled, the scale updated once per train_step.
    x = fixed_batch()
    model = build()
    model.set_precision("bf16", "cpu")
    seen = []
    for opt in model.optimizers().values():
        opt.register_step_pre_hook(lambda o, a, k: seen.append(torch.is_autocast_enabled("cpu")))
    logs = model.train_step(x, 0)
    assert seen == [False, False]
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in logs.values())
    model = build()
    model.set_precision("fp16", "cpu")
    calls = {"scale": 0, "update": 0}
    scale, update = model.scaler.scale, model.scaler.update
    model.scaler.scale = lambda t: (calls.__setitem__("scale", calls["scale"] + 1), scale(t))[1]
    model.scaler.update = lambda *a: (calls.__setitem__("update", calls["update"] + 1), update(*a))[1]
    for step in range(2):
        logs = model.train_step(x, step)
    assert calls == {"scale": 4, "update": 2}
    assert all(torch.isfinite(v) for v in logs.values())


# ---------------------------------------------------------------------------------------------
# Config validation: a one-line BadInput naming the field

@pytest.mark.parametrize("key,value", [("adv_weight", -0.5), ("d_hidden", 0), ("lr", 0.0), ("lr_d", -1e-3),
                                       ("adam_beta1", 1.0), ("adam_beta2", -0.1), ("encoder", "vmf"),
                                       ("recon", "l1"), ("latent", 0)])
def test_bad_config(key, value):
    cls, cfg = resolve("aae")
    with pytest.raises(BadInput, match=key) as e:
        replace(cfg, {key: value})
    assert "\n" not in str(e.value)
    # a config built in Python (no string coercion) is refused when the model is built
    with pytest.raises(BadInput, match=key):
        AAE(AAEConfig(**{key: value}))


# ---------------------------------------------------------------------------------------------
# Learning: the adversarial phase moves the codes to the prior

@pytest.fixture(scope="module")
def shapes() -> torch.Tensor:
    return to_float(torch.from_numpy(load_dataset("shapes:n=512,n_test=16").train.x))


def _train(x_train, adv_weight, steps=120):
    model = build(adv_weight=adv_weight)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    recon = []
    for step in range(steps):
        logs = model.train_step(x_train[torch.randint(len(x_train), (16,), generator=g)], step)
        recon.append(float(logs["loss/recon"]))
    assert all(math.isfinite(float(v)) for v in logs.values())
    return model, recon


def test_adversarial_phase_matches_codes_to_the_prior(shapes):
    """120 steps with and without the adversarial term, from the same weights and batches: both
    learn to reconstruct, but only the AAE's codes (eval mode, 256 training images) come near
    N(0, I) in mean and variance; the plain autoencoder's drift wherever reconstruction puts
    them. (Seeds 0-3 at 100 steps: agg_kl 1.1-1.9 with the adversary, 6.9-10.7 without.)"""
    aae, recon = _train(shapes, 1.0)
    plain, recon_plain = _train(shapes, 0.0)
    for r in (recon, recon_plain):
        assert sum(r[-10:]) / 10 < 0.3 * r[0], (r[0], r[-10:])
    x = shapes[:256]
    kl, kl_plain = float(aggregate_kl(aae.encode(x))), float(aggregate_kl(plain.encode(x)))
    assert kl < 3.0 and kl < 0.4 * kl_plain, (kl, kl_plain)
