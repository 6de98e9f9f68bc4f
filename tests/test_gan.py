"""GAN family and regularizers: known values first, then every preset and loss x reg pair, tiny."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn

from ganvae.config import replace
from ganvae.data import load_dataset, to_float
from ganvae.errors import BadInput
from ganvae.models.base import GenerativeModel
from ganvae.models.gan import LOSSES, REGS, GANConfig
from ganvae.models.regularizers import add_spectral_norm, clip_weights_, gradient_penalty, r1_penalty
from ganvae.nets import Discriminator, dcgan_init
from ganvae.registry import resolve
from tests.conftest import DATA, TINY as CLI_TINY

PRESETS = ["gan", "dcgan", "wgan", "wgan-gp", "sngan"]
TINY = {"width": 8, "latent": 8, "channels": 1, "size": 28}
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    ds = load_dataset("shapes:n=512,n_test=64")
    x = to_float(torch.from_numpy(ds.train.x[:16]))
    assert x.shape == (16, 1, 28, 28)
    return x


def tiny_model(preset: str = "gan", **overrides):
    cls, cfg = resolve(preset)
    cfg = replace(cfg, {**TINY, **overrides})
    torch.manual_seed(0)
    return cls(cfg)


def _snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(a, p) for a, p in zip(before, module.parameters()))


# ---------------------------------------------------------------- gradient penalty
def test_gradient_penalty_known_value_one_eps_per_sample_norm_over_chw():
    torch.manual_seed(1)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    seen = {}

    def d(x):  # grad_x d(x) = x
        seen["x_hat"] = x.detach().clone()
        return 0.5 * (x**2).sum((1, 2, 3))

    gp = gradient_penalty(d, real, fake, generator=torch.Generator().manual_seed(7))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    x_hat = eps * real + (1 - eps) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gp, expected)

    # The interpolation weight recovered pixel by pixel is one number per sample.
    per_pixel = (seen["x_hat"] - fake) / (real - fake)                   # (B, C, H, W)
    torch.testing.assert_close(per_pixel, per_pixel[:, :1, :1, :1].expand_as(per_pixel), rtol=1e-4, atol=1e-4)
    assert per_pixel[:, 0, 0, 0].unique().numel() == 5

    # A per-channel norm (a common bug) gives a different number on this input.
    per_channel = ((x_hat.flatten(2).norm(dim=2) - 1) ** 2).mean()
    assert not torch.allclose(gp, per_channel)


def test_gradient_penalty_zero_for_unit_gradient_and_differentiable():
    torch.manual_seed(2)
    w = torch.randn(1, 2, 3, 3)
    w = (w / w.flatten().norm()).requires_grad_(True)                   # ||w|| = 1 over C, H, W
    real, fake = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    gp = gradient_penalty(lambda x: (x * w).sum((1, 2, 3)), real, fake)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)

    # create_graph: the penalty reaches the critic's parameters. d/dw (||w|| - 1)^2 at
    # ||w|| = 2 is 2 * (2 - 1) * w / ||w||.
    w2 = (2 * w.detach()).requires_grad_(True)
    gradient_penalty(lambda x: (x * w2).sum((1, 2, 3)), real, fake).backward()
    torch.testing.assert_close(w2.grad, 2 * 1 * w2.detach() / 2)


def test_r1_penalty_linear_is_squared_weight_norm():
    torch.manual_seed(3)
    w = torch.randn(1, 3, 5, 5)
    real = torch.randn(6, 3, 5, 5)
    r1 = r1_penalty(lambda x: (x * w).sum((1, 2, 3)) + 3.0, real)
    torch.testing.assert_close(r1, w.square().sum())


# ---------------------------------------------------------------- spectral norm, clipping
def _sigma(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


def test_spectral_norm_linear_and_conv_reach_unit_norm():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(12, 6), nn.Sequential(nn.Conv2d(3, 5, 3), nn.ConvTranspose2d(5, 2, 4)))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(7)                                                     # far from norm 1
    assert _sigma(net[0].weight) > 2
    assert add_spectral_norm(net) is net
    add_spectral_norm(net)                                               # idempotent
    lin, conv, convt = net[0], net[1][0], net[1][1]
    for m in (lin, conv, convt):
        assert len(m.parametrizations.weight) == 1
    net.train()
    for _ in range(50):                                                  # one power iteration per call
        lin(torch.randn(2, 12))
        conv(torch.randn(2, 3, 6, 6))
    assert _sigma(lin.weight) == pytest.approx(1.0, abs=1e-3)
    # torch normalizes the (out, in*kh*kw) matrix of a convolution.
    assert _sigma(conv.weight) == pytest.approx(1.0, abs=1e-3)


def test_clip_weights_in_place():
    net = nn.Linear(4, 3)
    with torch.no_grad():
        net.weight.mul_(100)
    clip_weights_(net, 0.05)
    assert all(p.abs().max() <= 0.05 for p in net.parameters())


# ---------------------------------------------------------------- losses
L_REAL = torch.tensor([2.0, -1.0, 0.5])
L_FAKE = torch.tensor([-3.0, 0.25, 1.5])


def _log_sigmoid(t):
    return torch.log(torch.sigmoid(t))


CLOSED = {
    "minimax": (lambda r, f: (-_log_sigmoid(r) - torch.log(1 - torch.sigmoid(f))).mean(),
                lambda f: torch.log(1 - torch.sigmoid(f)).mean()),
    "ns": (lambda r, f: (-_log_sigmoid(r) - torch.log(1 - torch.sigmoid(f))).mean(),
           lambda f: -_log_sigmoid(f).mean()),
    "hinge": (lambda r, f: torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean(),
              lambda f: -f.mean()),
    "wasserstein": (lambda r, f: f.mean() - r.mean(), lambda f: -f.mean()),
    "ls": (lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
           lambda f: 0.5 * ((f - 1) ** 2).mean()),
}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_losses_closed_form(loss):
    d_fn, g_fn = LOSSES[loss]
    d_ref, g_ref = CLOSED[loss]
    torch.testing.assert_close(d_fn(L_REAL, L_FAKE), d_ref(L_REAL, L_FAKE))
    torch.testing.assert_close(g_fn(L_FAKE), g_ref(L_FAKE))


def test_losses_hand_values():
    # A few numbers worked out by hand, independent of the closed forms above.
    r, f = torch.tensor([0.0]), torch.tensor([0.0])
    assert LOSSES["minimax"][0](r, f).item() == pytest.approx(2 * math.log(2))
    assert LOSSES["minimax"][1](f).item() == pytest.approx(-math.log(2))
    assert LOSSES["hinge"][0](torch.tensor([0.5]), torch.tensor([-2.0])).item() == pytest.approx(0.5)
    assert LOSSES["ls"][0](torch.tensor([3.0]), torch.tensor([2.0])).item() == pytest.approx(2 + 2)
    assert LOSSES["ls"][1](torch.tensor([3.0])).item() == pytest.approx(2.0)


def test_minimax_saturates_ns_does_not():
    grads = {}
    for loss in ("minimax", "ns"):
        l_fake = torch.tensor([-5.0], requires_grad=True)               # D confidently rejects
        LOSSES[loss][1](l_fake).backward()
        grads[loss] = l_fake.grad.abs().item()
    assert grads["minimax"] == pytest.approx(torch.sigmoid(torch.tensor(-5.0)).item())  # ~0.0067
    assert grads["minimax"] < 0.01
    assert grads["ns"] > 0.99


# ---------------------------------------------------------------- train_step phases
def test_clip_keeps_d_in_box(batch):
    model = tiny_model("wgan")
    out = model.train_step(batch, 0)
    c = model.config.clip_value
    assert all(p.abs().max() <= c for p in model.d.parameters())
    for v in out.values():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad


def test_n_critic_schedule(batch):
    """A step is one G update after n_critic D updates, each D update on its own batch (as
    StudioGAN and mimicry count steps): the trainer hands over n_critic batches at once."""
    model = tiny_model("wgan-gp")
    assert model.config.n_critic == 5 and model.batches_per_step == 5
    assert model.updates_per_step() == {"g": 1.0, "d": 5.0}
    d_steps, g_steps, d_inputs = [], [], []
    model.optimizers()["d"].register_step_pre_hook(lambda *a: d_steps.append(len(g_steps)))
    model.optimizers()["g"].register_step_pre_hook(lambda *a: g_steps.append(len(d_steps)))
    model.d.register_forward_pre_hook(lambda m, args: d_inputs.append(args[0].detach().clone()))
    chunks = [batch + 0.01 * i for i in range(5)]      # five distinguishable real batches
    for step in range(2):
        out = model.train_step(torch.cat(chunks), step)
        assert "loss/g" in out and "reg/gp" in out
    # D, D, D, D, D, then G; twice
    assert d_steps == [0] * 5 + [1] * 5 and g_steps == [5, 10]
    # every chunk reached D exactly once per step, as a real batch, in order
    reals = [t for t in d_inputs if any(torch.equal(t, c) for c in chunks)]
    assert [next(i for i, c in enumerate(chunks) if torch.equal(t, c)) for t in reals] == [0, 1, 2, 3, 4] * 2


def test_lazy_r1_schedule(batch):
    model = tiny_model("dcgan", reg="r1", r1_every=4, d_norm="layer")
    seen = [step for step in range(9) if "reg/r1" in model.train_step(batch, step)]
    assert seen == [0, 4, 8]
    assert model.updates_per_step() == {"g": 1.0, "d": 1.25}   # a lazy R1 update every 4th D step


@pytest.mark.parametrize("d_norm", ["layer", "none"])
def test_lazy_r1_reg_phase_gradient_is_scaled_penalty_gradient(batch, d_norm):
    # The Dreg phase's gradient, read as D's optimizer is about to step, against gamma/2 * k *
    # E_x ||grad_x D(x)||^2 rebuilt here one sample at a time (no batch-sum trick) on a copy
    # of D taken at that moment. Gradients, not parameter deltas: Adam's first step is
    # nearly sign(grad) * lr and would hide a wrong scale.
    gamma, k = 0.7, 3
    model = tiny_model("dcgan", reg="r1", r1_every=k, r1_gamma=gamma, d_norm=d_norm)
    seen = []
    model.optimizers()["d"].register_step_pre_hook(
        lambda opt, args, kwargs: seen.append(([None if p.grad is None else p.grad.clone()
                                                for p in model.d.parameters()],
                                               copy.deepcopy(model.d))))
    model.train_step(batch, 1)                          # not a Dreg step: Dmain only
    assert len(seen) == 1
    seen.clear()
    model.train_step(batch, k)                          # Dmain, then Dreg
    assert len(seen) == 2
    _, (got, d_at_reg) = seen

    sq_norms = []
    for i in range(len(batch)):
        xi = batch[i:i + 1].clone().requires_grad_(True)                # (1, C, H, W)
        (g,) = torch.autograd.grad(d_at_reg(xi).sum(), xi, create_graph=True)
        sq_norms.append(g.square().sum())                                # over C, H, W
    penalty = gamma / 2 * k * torch.stack(sq_norms).mean()
    # allow_unused: the head's bias shifts D(x) but not its input gradient, so R1 leaves it
    # without a gradient (and Adam leaves it alone in this phase).
    want = torch.autograd.grad(penalty, list(d_at_reg.parameters()), allow_unused=True)
    assert sum(w is None for w in want) == 1
    # Equal, so Dmain's gradient (zeroed before) is not mixed in and the scale is gamma/2 * k.
    # The bias gets an explicit zero (the phase adds 0 * D(x), as StyleGAN2-ADA's Dr1, so
    # that a DDP wrapper sees a gradient for every parameter).
    for w, g in zip(want, got):
        if w is None:
            assert g is not None and not g.any()
        else:
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("k", [2, 16])
def test_lazy_r1_adam_settings_follow_stylegan2_mb_ratio(k):
    # Karras et al. 2020 (Appendix B; mb_ratio in their training loop): lr * c, betas ** c,
    # c = k / (k + 1), because D takes k + 1 steps per k batches.
    model = tiny_model("dcgan", reg="r1", r1_every=k, d_norm="layer", lr_d=3e-4, lr_g=1e-4,
                       adam_beta1=0.5, adam_beta2=0.99)
    c = k / (k + 1)
    opt = model.optimizers()
    (group,) = opt["d"].param_groups
    assert group["lr"] == pytest.approx(3e-4 * c, rel=1e-12)
    assert group["betas"] == pytest.approx((0.5**c, 0.99**c), rel=1e-12)
    assert opt["g"].param_groups[0]["lr"] == 1e-4 and opt["g"].param_groups[0]["betas"] == (0.5, 0.99)
    if k == 2:                                                          # by hand: c = 2/3
        assert group["lr"] == pytest.approx(2e-4) and group["betas"][1] == pytest.approx(0.99 ** (2 / 3))
    # Nothing changes without an extra update: R1 every step, another regularizer, or RMSprop
    # (the adjustment is StyleGAN2's, for Adam).
    for overrides in ({"r1_every": 1}, {"reg": "gp"}, {"optimizer": "rmsprop"}):
        other = tiny_model("dcgan", **{"reg": "r1", "r1_every": k, "d_norm": "layer", "lr_d": 3e-4,
                                       "adam_beta1": 0.5, "adam_beta2": 0.99, **overrides})
        (group,) = other.optimizers()["d"].param_groups
        assert group["lr"] == 3e-4, overrides
        if "betas" in group:
            assert group["betas"] == (0.5, 0.99), overrides


# ---------------------------------------------------------------- gp / r1 refuse batch norm
def _first_sample_gradient(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d logit_0 / d x_0: the gradient a per-sample penalty constrains for sample 0."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(d(x)[0], x)
    return g[0]                                                          # (C, H, W)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_batch_norm_makes_a_samples_gradient_depend_on_its_batch(norm):
    # Why gp and r1 refuse d_norm=batch: in training mode BN normalises with the batch's
    # statistics, so sample 0's input gradient (and its penalty) changes when the *other*
    # samples change, and the batch-sum trick of the penalties (grad of sum_j D(x)_j) is no
    # longer each sample's own gradient. Layer norm is per sample: neither happens.
    torch.manual_seed(0)
    d = Discriminator(1, 28, 8, norm=norm)
    dcgan_init(d)
    d.train()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(8, 1, 28, 28, generator=gen) * 2 - 1
    others = torch.rand(7, 1, 28, 28, generator=gen) * 2 - 1
    own = _first_sample_gradient(d, x)
    swapped = _first_sample_gradient(d, torch.cat([x[:1], others]))     # same sample 0
    xs = x.clone().requires_grad_(True)
    (summed,) = torch.autograd.grad(d(xs).sum(), xs)
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()               # noqa: E731
    if norm == "batch":
        assert rel(swapped, own) > 1e-2
        assert rel(summed[0], own) > 1e-2
        assert abs(swapped.norm() - own.norm()) / own.norm() > 1e-3    # the penalty's norm too
    else:
        torch.testing.assert_close(swapped, own)
        torch.testing.assert_close(summed[0], own)


@pytest.mark.parametrize("reg", ["gp", "r1"])
def test_gp_r1_with_batch_norm_refused_through_cli(reg, run_cli, tmp_path):
    code, out, err = run_cli("train", "gan", "--data", DATA, "--steps", "1", "--set", f"reg={reg}",
                             "--out", tmp_path / "run", *CLI_TINY)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("ganvae: error: "), err
    assert f"reg={reg} with d_norm=batch" in err and "depend on the rest of the batch" in err   # the reason
    assert not (tmp_path / "run").exists()                               # refused before anything is written
    assert err.rstrip().endswith("set d_norm=layer or d_norm=none"), err
    # The fix the message names works.
    code, out, err = run_cli("train", "gan", "--data", DATA, "--steps", "1", "--set", f"reg={reg}",
                             "--set", "d_norm=layer", "--set", "r1_every=1", "--out", tmp_path / "ok",
                             *CLI_TINY)
    assert code == 0, err


# ---------------------------------------------------------------- architecture
def _layers(module: nn.Module) -> list[tuple]:
    out = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            out.append((type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(("BN", m.num_features))
        elif isinstance(m, (nn.ReLU, nn.Tanh)):
            out.append((type(m).__name__,))
        elif isinstance(m, nn.LeakyReLU):
            out.append(("LReLU", m.negative_slope))
    return out


def test_dcgan28_architecture():
    cls, cfg = resolve("dcgan")
    model = cls(replace(cfg, {"channels": 1, "size": 28, "width": 64, "latent": 100}))
    assert _layers(model.g) == [
        ("ConvTranspose2d", 100, 256, 7, 1, 0), ("BN", 256), ("ReLU",),
        ("ConvTranspose2d", 256, 128, 4, 2, 1), ("BN", 128), ("ReLU",),
        ("ConvTranspose2d", 128, 1, 4, 2, 1), ("Tanh",)]
    assert _layers(model.d) == [
        ("Conv2d", 1, 64, 4, 2, 1), ("LReLU", 0.2),
        ("Conv2d", 64, 128, 4, 2, 1), ("BN", 128), ("LReLU", 0.2),
        ("Conv2d", 128, 1, 7, 1, 0)]
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    with torch.no_grad():
        x = model.g(torch.randn(2, 100))
    assert x.shape == (2, 1, 28, 28) and model.d(x).shape == (2,)


def test_presets_settings():
    expect = {
        "gan": dict(loss="minimax", reg="none"),
        "dcgan": dict(loss="ns", reg="none", d_norm="batch", optimizer="adam", lr_d=2e-4, adam_beta1=0.5),
        "wgan": dict(loss="wasserstein", reg="clip", clip_value=0.01, optimizer="rmsprop", lr_d=5e-5, n_critic=5),
        "wgan-gp": dict(loss="wasserstein", reg="gp", gp_weight=10.0, d_norm="layer", lr_d=1e-4,
                        adam_beta1=0.0, adam_beta2=0.9, n_critic=5),
        "sngan": dict(loss="hinge", reg="spectral", d_norm="none", lr_d=2e-4, n_critic=1),
    }
    for preset, fields in expect.items():
        _, cfg = resolve(preset)
        assert {k: getattr(cfg, k) for k in fields} == fields, preset
    for preset in PRESETS:
        resolve(preset)[1].validate()                                   # wgan-gp: layer norm
    model = tiny_model("wgan")
    assert isinstance(model.optimizers()["d"], torch.optim.RMSprop)
    model = tiny_model("dcgan", weight_decay=0.1)
    opt = model.optimizers()
    assert opt["d"].defaults["weight_decay"] == 0.1 and opt["g"].defaults["weight_decay"] == 0.0
    assert opt["g"].defaults["betas"] == (0.5, 0.999)


# ---------------------------------------------------------------- every preset and pair
def _run_and_sample(model, batch, steps=3):
    model.train()
    for step in range(steps):
        out = model.train_step(batch, step)
        for k, v in out.items():
            assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad, k
            assert torch.isfinite(v), (k, v)
    s = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 28, 28) and torch.isfinite(s).all()
    assert s.min() >= -1 and s.max() <= 1
    assert model.g.training  # sample() restores train mode


@pytest.mark.parametrize("loss,reg", list(itertools.product(LOSSES, REGS)))
def test_every_loss_reg_pair(loss, reg, batch):
    # gp and r1 need a critic without batch norm (validated); the rest keep the default.
    d_norm = "layer" if reg in ("gp", "r1") else "batch"
    _run_and_sample(tiny_model("gan", loss=loss, reg=reg, r1_every=2, d_norm=d_norm), batch)


def _round_trip(model, tmp_path):
    model.eval()
    s1 = model.sample(4, generator=torch.Generator().manual_seed(3))
    model.save_pretrained(tmp_path / "m")
    loaded = GenerativeModel.from_pretrained(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.config == model.config
    s2 = loaded.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_train_sample_round_trip(preset, batch, tmp_path):
    model = tiny_model(preset)
    _run_and_sample(model, batch)
    _round_trip(model, tmp_path)


def test_ema_round_trip_and_used_by_sample(batch, tmp_path):
    model = tiny_model("dcgan", ema=0.9)
    assert any(k.startswith("g_ema.") for k in model.state_dict())
    assert not any(p.requires_grad for p in model.g_ema.parameters())
    _run_and_sample(model, batch, steps=2)
    # The EMA weights lag behind G's after updates, and sample() uses them.
    assert _changed(model.g_ema, _snapshot(model.g))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    model.g_ema.eval()
    with torch.no_grad():
        expected = model.g_ema(z)
    torch.testing.assert_close(model.sample(4, generator=torch.Generator().manual_seed(1)), expected)
    _round_trip(model, tmp_path)
    assert "g_ema" not in dict(tiny_model("dcgan").named_children())


def _ema_cases():
    # (n_critic, ema, ema_start, ema_rampup, decay of each generator update, worked by hand)
    return [
        (1, 0.8, 0, 0.0, [0.8, 0.8, 0.8, 0.8]),
        (1, 0.8, 2, 0.0, [0, 0, 0.8, 0.8, 0.8]),          # copies G for the first 2 updates
        (2, 0.8, 1, 0.0, [0, 0.8, 0.8]),                  # two D updates per step, then G
        # half-life <= 0.5 * (updates before): 0, 0.5, 1, 1.5 updates -> 0 (copy), 0.5 ** 2,
        # 0.5, 0.5 ** (1 / 1.5) = 0.63 capped at 0.6.
        (1, 0.6, 0, 0.5, [0, 0.25, 0.5, 0.6, 0.6]),
    ]


@pytest.mark.parametrize("n_critic,ema,ema_start,rampup,decays", _ema_cases())
def test_ema_is_running_average_of_g_weights_and_statistics(batch, n_critic, ema, ema_start, rampup, decays):
    model = tiny_model("dcgan", ema=ema, ema_start=ema_start, ema_rampup=rampup, n_critic=n_critic, lr_g=1e-2)
    # The average kept here, from snapshots of G's state (weights, running_mean / running_var,
    # num_batches_tracked) after each generator update: ema = beta * ema + (1 - beta) * new.
    ref = {k: v.clone() for k, v in model.g.state_dict().items()}
    updates = 0
    for step in range(len(decays)):
        if "loss/g" not in model.train_step(torch.cat([batch] * n_critic), step):
            continue
        beta = decays[updates]
        updates += 1
        for k, new in model.g.state_dict().items():
            ref[k] = beta * ref[k] + (1 - beta) * new if new.is_floating_point() else new.clone()
        got = model.g_ema.state_dict()
        assert set(got) == set(ref)
        if updates <= ema_start:
            # Before ema_start the copy is G, exactly.
            assert all(torch.equal(got[k], v) for k, v in model.g.state_dict().items()), updates
        for k, want in ref.items():
            torch.testing.assert_close(got[k], want, rtol=1e-5, atol=1e-7, msg=f"{k} after update {updates}")
        assert any(k.endswith("running_var") for k in got)
    assert updates == len(decays)
    # Averaged, the EMA copy's statistics are its own, not G's latest.
    assert not torch.equal(got["net.1.running_var"], model.g.state_dict()["net.1.running_var"])


# ---------------------------------------------------------------- ADA's overfitting signal
# Halfway between D's targets for real and fake images, where an undecided D's outputs sit: 0
# for the logistic losses (sigma(0) = 1/2) and hinge (targets +-1); 0.5 for ls (Mao et al.
# 2017 with a = 0, b = 1: the optimal D is (b p_data + a p_g) / (p_data + p_g) = 1/2 at p_g =
# p_data). A Wasserstein critic has none: adding a constant changes neither player's loss.
MIDPOINTS = {"minimax": 0.0, "ns": 0.0, "hinge": 0.0, "ls": 0.5}


@pytest.mark.parametrize("loss", list(MIDPOINTS))
def test_ada_p_stays_at_zero_while_d_cannot_tell_real_from_fake(loss):
    # interval 1, 64 images per unit of p: one sign-heavy batch of 64 would move p by 1 (to p_max)
    model = tiny_model(loss=loss, augment="ada", ada_interval=1, ada_speed_images=64)
    mid, g = MIDPOINTS[loss], torch.Generator().manual_seed(0)
    for _ in range(20):
        # D at equilibrium: its outputs on the reals symmetric about the midpoint, so r_t = 0
        noise = 0.3 * torch.randn(32, generator=g)
        model.augment.observe(mid + torch.cat([noise, -noise]))
        model.augment.observe(torch.full((64,), mid))                    # exactly undecided
        assert float(model.augment.p) == 0.0
    # and the control: a D sure of its reals (all above the midpoint) raises p
    model.augment.observe(mid + 0.1 + torch.rand(64, generator=g))
    assert float(model.augment.p) == pytest.approx(0.8)


@pytest.mark.parametrize("loss", list(MIDPOINTS))
def test_ada_p_stays_at_zero_in_training_against_an_undecided_d(loss, batch):
    """Real train_steps with a D that outputs the midpoint for every image (its head's weights
    0, its bias the midpoint, frozen): it cannot tell real from fake, so p must not move."""
    model = tiny_model(loss=loss, augment="ada", ada_interval=1, ada_speed_images=16)
    with torch.no_grad():
        model.d.head.weight.zero_()
        model.d.head.bias.fill_(MIDPOINTS[loss])
    model.d.head.requires_grad_(False)                                   # before the optimizers exist
    for step in range(3):
        out = model.train_step(batch, step)
        assert float(out["d/real"]) == MIDPOINTS[loss] and float(out["aug/p"]) == 0.0


def test_ada_refused_for_a_wasserstein_critic():
    for preset in ("wgan", "wgan-gp"):
        _, cfg = resolve(preset)
        with pytest.raises(BadInput, match=r"^augment=ada with loss=wasserstein: .*augment=diffaug") as e:
            replace(cfg, {"augment": "ada"})
        assert "\n" not in str(e.value)
        assert replace(cfg, {"augment": "diffaug"}).augment == "diffaug"   # DiffAugment needs no signal
    with pytest.raises(BadInput, match="augment=ada"):
        GANConfig(loss="wasserstein", augment="ada").validate()


# ---------------------------------------------------------------- config validation
@pytest.mark.parametrize("bad", [
    {"n_critic": "0"}, {"loss": "bogus"}, {"reg": "dropout"}, {"d_norm": "instance"},
    {"lr_g": "-1e-4"}, {"lr_d": "0"}, {"ema": "1.0"}, {"ema": "-0.1"}, {"r1_every": "0"},
    {"clip_value": "0"}, {"adam_beta2": "1"}, {"weight_decay": "-1"}, {"grad_clip": "0"},
    {"ema_start": "-1"}, {"ema_rampup": "-0.05"}, {"reg": "gp"}, {"reg": "r1"},   # gan: d_norm=batch
])
def test_config_validation(bad):
    _, cfg = resolve("gan")
    with pytest.raises(BadInput) as e:
        replace(cfg, bad)
    assert "\n" not in str(e.value)


def test_direct_construction_is_validated():
    with pytest.raises(BadInput):
        GANConfig(loss="bogus").validate()
    cls, _ = resolve("gan")
    with pytest.raises(BadInput):
        cls(GANConfig(n_critic=0))


def test_lazy_r1_runs_report_the_d_updates_that_ran(tmp_path):
    # R1 runs at D updates 0, 4, 8, ...: 5 steps of dcgan take 5 + ceil(5 / 4) = 7 D optimizer
    # steps; the mean rate 1 + 1/4 would say round(6.25) = 6. Counted by a global step hook.
    import collections

    from torch.optim.optimizer import register_optimizer_step_post_hook

    from ganvae.trainer import train
    from tests.conftest import DATA

    ran, models = collections.Counter(), []
    hook = register_optimizer_step_post_hook(lambda opt, a, kw: ran.update([opt]))
    try:
        _, summary = train("dcgan", DATA, tmp_path / "r", steps=5, batch_size=16, progress=False,
                           callbacks=[lambda t: models.append(t.model)],
                           overrides={"width": 8, "latent": 8, "reg": "r1", "r1_every": 4, "d_norm": "layer"})
    finally:
        hook.remove()
    model = models[-1]
    assert {"g": ran[model.optimizers()["g"]], "d": ran[model.optimizers()["d"]]} == {"g": 5, "d": 7}
    assert summary["updates"] == {"g": 5, "d": 7}
