"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): the losses by hand, which gradient
each phase hands which network (against a reference rebuilt here), the joint discriminator, the
model contract and the config's refusals.

Tiny nets (28x28, width 8, latent 4, batches of 16) on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ganvae.config import replace
from ganvae.errors import BadInput
from ganvae.models.base import GenerativeModel
from ganvae.models.bigan import BiGANConfig, JointDiscriminator, bigan_losses
from ganvae.nets import dcgan_init
from ganvae.registry import resolve

TINY = {"width": 8, "latent": 4}
pytestmark = pytest.mark.usefixtures("one_thread")


def build(preset: str = "bigan", **overrides) -> GenerativeModel:
    cls, cfg = resolve(preset)
    torch.manual_seed(0)
    return cls(replace(cfg, {**TINY, **overrides}))


def fixed_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], what: str) -> None:
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert torch.equal(u, v), f"{what}[{i}]"


# ---------------------------------------------------------------- the losses
def test_bigan_losses_by_hand():
    l_real, l_fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 3.0])

    def sig(t):
        return 1 / (1 + math.exp(-t))

    # D: -log D(x, E(x)) - log(1 - D(G(z), z)), each averaged over the batch
    want_d = (-math.log(sig(0)) - math.log(sig(2))) / 2 + (-math.log(1 - sig(-1)) - math.log(1 - sig(3))) / 2
    # E and G, labels swapped: -log(1 - D(x, E(x))) - log D(G(z), z)
    want_eg = (-math.log(1 - sig(0)) - math.log(1 - sig(2))) / 2 + (-math.log(sig(-1)) - math.log(sig(3))) / 2
    loss_d, loss_eg = bigan_losses(l_real, l_fake)
    assert loss_d.shape == loss_eg.shape == ()
    assert float(loss_d) == pytest.approx(want_d, rel=1e-6)
    assert float(loss_eg) == pytest.approx(want_eg, rel=1e-6)
    # E+G's loss is D's with real and fake swapped
    torch.testing.assert_close(loss_eg, bigan_losses(l_fake, l_real)[0])
    # at D's indifference (every logit 0) both are 2 log 2
    zero = torch.zeros(3)
    for loss in bigan_losses(zero, zero):
        assert float(loss) == pytest.approx(2 * math.log(2))
    # finite for confident logits, with the gradients of the softplus forms: dL_D/dl_real =
    # -(1 - sigma(l_real)) / B, dL_EG/dl_real = sigma(l_real) / B
    big = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss_d, loss_eg = bigan_losses(big, big.detach())
    assert math.isfinite(float(loss_d.detach())) and math.isfinite(float(loss_eg.detach()))
    g_d, = torch.autograd.grad(loss_d, big)
    g_eg, = torch.autograd.grad(bigan_losses(big, big.detach())[1], big)
    torch.testing.assert_close(g_d, torch.tensor([-0.5, 0.0]))
    torch.testing.assert_close(g_eg, torch.tensor([0.0, 0.5]))


# ---------------------------------------------------------------- the phases
def reference(ref: GenerativeModel, x: torch.Tensor, seed: int, d_updated: dict[str, torch.Tensor]) -> dict:
    """The two phases rebuilt from the papers' objective, with the model's draws in its order
    (z, then the encoder's noise, then D's dropout in phase 1, then in phase 2).

    Phase 1 differentiates L_D w.r.t. D alone, E(x) and G(z) fixed inputs. Phase 2
    differentiates L_EG (labels swapped) w.r.t. E and G, with D's weights the updated ones
    `d_updated`, as constants.
    """
    c = ref.config
    enc, gen, dis = ref.encoder, ref.generator, ref.discriminator
    b = len(x)
    torch.manual_seed(seed)
    z = torch.randn(b, c.latent)                                         # (B, latent), the prior
    h = enc(x)
    if c.encoder == "gaussian":
        mu, logvar = h.chunk(2, dim=1)
        z_hat = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)      # a sample of q(z|x)
    else:
        z_hat = h                                                        # (B, latent) = E(x)
    x_fake = gen(z)                                                      # (B, C, H, W) = G(z)

    # phase 1: log D(x, E(x)) + log(1 - D(G(z), z)), maximised by D; E(x), G(z) fixed
    l_real, l_fake = dis(torch.cat([x, x_fake.detach()]), torch.cat([z_hat.detach(), z])).split(b)
    loss_d = -F.logsigmoid(l_real).mean() - F.logsigmoid(-l_fake).mean()
    grads_d = torch.autograd.grad(loss_d, list(dis.parameters()))

    # phase 2: against the updated D, held fixed (functional_call with detached weights)
    fixed = {k: v.detach() for k, v in d_updated.items()}
    l_real, l_fake = functional_call(dis, fixed, (torch.cat([x, x_fake]), torch.cat([z_hat, z]))).split(b)
    term_e = -F.logsigmoid(-l_real).mean()                               # -log(1 - D(x, E(x)))
    term_g = -F.logsigmoid(l_fake).mean()                                # -log D(G(z), z)
    loss_eg = term_e + term_g
    e_params, g_params = list(enc.parameters()), list(gen.parameters())
    grads_e = torch.autograd.grad(loss_eg, e_params, retain_graph=True)
    grads_g = torch.autograd.grad(loss_eg, g_params, retain_graph=True)
    # The encoder's gradient from the real-pair term alone (the fake pairs do not involve E), and
    # what it would be with the labels not swapped (E helping D): the routing must tell them apart.
    grads_e_real = torch.autograd.grad(term_e, e_params, retain_graph=True)
    grads_e_unswapped = torch.autograd.grad(-F.logsigmoid(l_real).mean(), e_params)
    return {"d": grads_d, "e": grads_e, "g": grads_g, "e_real": grads_e_real, "e_unswapped": grads_e_unswapped,
            "loss/d": loss_d.detach(), "loss/g": loss_eg.detach()}


PHASE_CASES = [("bigan", {}), ("bigan", {"d_norm": "batch"}), ("bigan", {"d_norm": "none"}),
               ("ali", {}), ("ali", {"d_norm": "batch", "d_dropout": 0.0})]


@pytest.mark.parametrize("preset,overrides", PHASE_CASES,
                         ids=[f"{p}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for p, o in PHASE_CASES])
def test_phases_route_each_gradient_to_its_network(preset, overrides):
    model = build(preset, **overrides)
    ref = copy.deepcopy(model).train()                                  # same weights, never steps
    x = fixed_batch()
    e0, g0, d0 = snapshot(model.encoder), snapshot(model.generator), snapshot(model.discriminator)
    opts = model.optimizers()
    assert set(opts) == {"gen", "disc"}
    seen: dict[str, object] = {}

    def before_disc(opt, args, kwargs):
        # the D phase: D has gradients, E and G none, and nothing has moved yet
        seen["d_grads"] = [p.grad.clone() for p in model.discriminator.parameters()]
        seen["eg_grads_at_disc"] = [p.grad for p in [*model.encoder.parameters(), *model.generator.parameters()]]
        seen["eg_at_disc"] = (snapshot(model.encoder), snapshot(model.generator))

    def before_gen(opt, args, kwargs):
        # the E+G phase, after D's update
        seen["e_grads"] = [p.grad.clone() for p in model.encoder.parameters()]
        seen["g_grads"] = [p.grad.clone() for p in model.generator.parameters()]
        seen["d_grads_at_gen"] = [p.grad.clone() for p in model.discriminator.parameters()]
        seen["d_updated"] = {k: v.detach().clone() for k, v in model.discriminator.named_parameters()}
        seen["eg_at_gen"] = (snapshot(model.encoder), snapshot(model.generator))

    opts["disc"].register_step_pre_hook(before_disc)
    opts["gen"].register_step_pre_hook(before_gen)
    # the gen optimizer holds exactly E's and G's parameters, the disc optimizer D's
    gen_params = {id(p) for g in opts["gen"].param_groups for p in g["params"]}
    assert gen_params == {id(p) for p in [*model.encoder.parameters(), *model.generator.parameters()]}
    assert {id(p) for g in opts["disc"].param_groups for p in g["params"]} == \
        {id(p) for p in model.discriminator.parameters()}

    torch.manual_seed(5)                       # the reference reseeds so: the same z, eps and dropout masks
    logs = model.train_step(x, 0)
    assert set(seen) >= {"d_grads", "e_grads"}, "an optimizer did not step"
    want = reference(ref, x, seed=5, d_updated=seen["d_updated"])

    # Phase 1 changes D only, by L_D's gradient at the initial weights.
    assert all(g is None for g in seen["eg_grads_at_disc"]), "the D phase computed E or G gradients"
    assert_same(seen["eg_at_disc"][0], e0, "encoder before the D step")
    assert_same(seen["eg_at_disc"][1], g0, "generator before the D step")
    for i, (got, w) in enumerate(zip(seen["d_grads"], want["d"])):
        torch.testing.assert_close(got, w, rtol=1e-4, atol=1e-7, msg=f"D grad {i}")
    assert_same(seen["eg_at_gen"][0], e0, "encoder after the D step")
    assert_same(seen["eg_at_gen"][1], g0, "generator after the D step")
    assert any(not torch.equal(a, b) for a, b in zip(d0, seen["d_updated"].values())), "D did not move"

    # Phase 2 changes E and G only, by L_EG's gradient against the updated, fixed D.
    for name, got_all in (("e", seen["e_grads"]), ("g", seen["g_grads"])):
        for i, (got, w) in enumerate(zip(got_all, want[name])):
            torch.testing.assert_close(got, w, rtol=1e-4, atol=1e-7, msg=f"{name} grad {i}")
    # the encoder's gradient is that of -log(1 - D(x, E(x))) alone, not of the unswapped label
    for i, (got, w) in enumerate(zip(seen["e_grads"], want["e_real"])):
        torch.testing.assert_close(got, w, rtol=1e-4, atol=1e-7, msg=f"e grad (real term) {i}")
    assert any(not torch.allclose(got, w, rtol=1e-3, atol=1e-6)
               for got, w in zip(seen["e_grads"], want["e_unswapped"]))
    # E+G's backward left D's gradients as phase 1 made them, and D's weights as its step left them
    assert_same(seen["d_grads_at_gen"], seen["d_grads"], "D grads after the E+G backward")
    assert_same(snapshot(model.discriminator), list(seen["d_updated"].values()), "D after the E+G step")
    assert any(not torch.equal(a, b) for a, b in zip(e0, model.encoder.parameters())), "E did not move"
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters())), "G did not move"

    torch.testing.assert_close(logs["loss/d"], want["loss/d"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logs["loss/g"], want["loss/g"], rtol=1e-5, atol=1e-6)


def test_each_phase_lowers_its_own_loss():
    """One step of each phase descends its own loss on the same pairs: L_D after D's step (E and
    G as they were), L_EG after E and G's step (against the same, updated D). A sign error in
    either loss, or a gradient that reaches the wrong network, turns one of these around."""
    model = build()
    x = fixed_batch()
    before = copy.deepcopy(model).train()
    seen = {}
    model.optimizers()["gen"].register_step_pre_hook(lambda o, a, k: seen.__setitem__(
        "d_updated", {n: v.detach().clone() for n, v in model.discriminator.named_parameters()}))
    torch.manual_seed(3)
    logs = model.train_step(x, 1)
    # L_D: D updated, E and G not yet; the same draws (seed 3), so the same pairs
    d_stepped = copy.deepcopy(before)
    d_stepped.discriminator.load_state_dict({**d_stepped.discriminator.state_dict(), **seen["d_updated"]})
    loss_d_after = reference(d_stepped, x, seed=3, d_updated=seen["d_updated"])["loss/d"]
    assert float(loss_d_after) < float(logs["loss/d"])
    # L_EG: E and G updated (the model after its step), against the same updated D
    loss_eg_after = reference(copy.deepcopy(model).train(), x, seed=3, d_updated=seen["d_updated"])["loss/g"]
    assert float(loss_eg_after) < float(logs["loss/g"])


# ---------------------------------------------------------------- the joint discriminator
def test_joint_discriminator_depends_on_x_and_z():
    torch.manual_seed(0)
    d = JointDiscriminator(1, 28, 8, 4, norm="layer")
    dcgan_init(d)
    x, z = fixed_batch(8), torch.randn(8, 4)
    base = d(x, z)
    assert base.shape == (8,)
    other_z, other_x = d(x, torch.randn(8, 4)), d(fixed_batch(8, seed=1), z)
    assert ((other_z - base).abs() > 1e-6).all(), "the logit ignores z"
    assert ((other_x - base).abs() > 1e-6).all(), "the logit ignores x"
    # both inputs get a gradient
    xg, zg = x.clone().requires_grad_(True), z.clone().requires_grad_(True)
    gx, gz = torch.autograd.grad(d(xg, zg).sum(), [xg, zg])
    assert gx.abs().sum() > 0 and (gz.abs().sum(1) > 0).all()
    # with per-sample normalisation (the default) a pair's logit is a function of that pair alone,
    # in training mode too; with batch norm it depends on the rest of the batch
    d.train()
    torch.testing.assert_close(d(x[:1], z[:1]), base[:1], rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    d_bn = JointDiscriminator(1, 28, 8, 4, norm="batch").train()
    dcgan_init(d_bn)
    assert not torch.allclose(d_bn(x[:2], z[:2]), d_bn(x, z)[:2])


def test_dropout_is_in_d_and_off_in_eval():
    torch.manual_seed(0)
    d = JointDiscriminator(1, 28, 8, 4, norm="layer", dropout=0.5)
    x, z = fixed_batch(4), torch.randn(4, 4)
    assert not torch.equal(d(x, z), d(x, z))                             # masks differ in training
    d.eval()
    assert torch.equal(d(x, z), d(x, z))


# ---------------------------------------------------------------- the contract
CONTRACT = [("bigan", {}), ("ali", {}), ("bigan", {"d_norm": "batch"})]


@pytest.mark.parametrize("preset,overrides", CONTRACT,
                         ids=[f"{p}{'-' if o else ''}{'-'.join(map(str, o.values()))}" for p, o in CONTRACT])
def test_contract(preset, overrides, tmp_path):
    model = build(preset, **overrides)
    x = fixed_batch()
    logs = model.train_step(x, 0)                                        # step 0: the diagnostics too
    assert set(logs) == {"loss/d", "loss/g", "diag/d_acc_real", "diag/d_acc_fake", "diag/recon_mse",
                         "diag/latent_mse"}
    assert all(torch.is_tensor(v) and v.shape == () and not v.requires_grad and v.dtype == torch.float32
               and math.isfinite(float(v)) for v in logs.values())
    assert 0 <= float(logs["diag/d_acc_real"]) <= 1 and 0 <= float(logs["diag/recon_mse"]) <= 1
    assert "diag/recon_mse" not in model.train_step(x, 1)                # every diag_every steps
    # sampling, reconstruction and save/load: test_autoencoders.test_contract
    z = model.encode(x)
    assert z.shape == (16, model.config.latent) and torch.equal(z, model.encode(x))   # the mean, no noise
    torch.testing.assert_close(model.reconstruct(x), model.decode(z), rtol=0, atol=0)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_keeps_losses_float32(precision, monkeypatch):
    model = build("ali")
    model.set_precision(precision, "cpu")
    under_autocast = []
    for opt in model.optimizers().values():
        original = opt.step

        def step(*a, _original=original, **kw):
            under_autocast.append(torch.is_autocast_enabled("cpu"))
            return _original(*a, **kw)
        monkeypatch.setattr(opt, "step", step)
    x = fixed_batch()
    for i in range(2):
        logs = model.train_step(x, i)
        assert all(v.dtype == torch.float32 and math.isfinite(float(v)) for v in logs.values())
    # (fp16: a step whose gradients overflowed is skipped by the scaler, so count at least one)
    assert under_autocast and not any(under_autocast)
    assert all(p.dtype == torch.float32 for p in model.parameters())


# ---------------------------------------------------------------- the config
@pytest.mark.parametrize("field,value", [
    ("encoder", "stochastic"), ("d_norm", "group"), ("lr_g", 0.0), ("lr_d", -1e-4), ("adam_beta1", 1.0),
    ("adam_beta2", -0.1), ("d_dropout", 1.0), ("d_dropout", -0.1), ("diag_every", -1), ("latent", 0),
    ("width", 0)])
def test_config_refuses_bad_values(field, value):
    cfg = dataclasses.replace(BiGANConfig(**TINY), **{field: value})
    with pytest.raises(BadInput, match=f"^{field}="):
        cfg.validate()
    with pytest.raises(BadInput, match=f"^{field}="):                    # the model validates too
        resolve("bigan")[0](cfg)
    with pytest.raises(BadInput, match=f"{field}="):                     # and so does --set
        replace(BiGANConfig(), {field: str(value)})


def test_presets():
    _, cfg = resolve("bigan")
    assert cfg.encoder == "deterministic" and cfg.d_norm == "layer" and cfg.d_dropout == 0.0
    _, cfg = resolve("ali")
    assert cfg.encoder == "gaussian" and cfg.d_dropout == 0.2
    # ALI's encoder outputs (mu, logvar); BiGAN's the code itself
    assert build("ali").encoder.head.out_channels == 2 * TINY["latent"]
    assert build("bigan").encoder.head.out_channels == TINY["latent"]


def test_global_batch_dropout_is_inverted_dropout_drawn_for_the_global_batch():
    # One process: keep each unit with probability 1 - p and scale by 1 / (1 - p), so the mean
    # is kept; the same generator state gives the same mask (what every DDP rank draws, each
    # keeping its rows); eval mode and p = 0 are the identity.
    from ganvae.nets import GlobalBatchDropout

    drop = GlobalBatchDropout(0.25).train()
    h = torch.ones(4000, 50)
    torch.manual_seed(0)
    out = drop(h)
    kept = out != 0
    assert float(kept.float().mean()) == pytest.approx(0.75, abs=0.01)
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.75))
    torch.manual_seed(0)
    assert torch.equal(drop(h), out)
    assert torch.equal(drop.eval()(h), h) and torch.equal(GlobalBatchDropout(0.0).train()(h), h)
