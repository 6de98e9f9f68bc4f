"""GAN family and regularizers: known values first, then every preset and loss x reg pair, tiny."""

from __future__ import annotations

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
from ganvae.registry import resolve

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
    model = tiny_model("wgan-gp")
    assert model.config.n_critic == 5
    g_steps, keys = [], []
    for step in range(10):
        g0, d0 = _snapshot(model.g), _snapshot(model.d)
        out = model.train_step(batch, step)
        assert _changed(model.d, d0), step
        if _changed(model.g, g0):
            g_steps.append(step)
        keys.append("loss/g" in out)
        assert "reg/gp" in out
    assert g_steps == [4, 9]
    assert [s for s, k in enumerate(keys) if k] == [4, 9]


def test_lazy_r1_schedule(batch):
    model = tiny_model("dcgan", reg="r1", r1_every=4)
    seen = [step for step in range(9) if "reg/r1" in model.train_step(batch, step)]
    assert seen == [0, 4, 8]


def test_lazy_r1_is_a_separate_scaled_update(batch):
    # With r1_every = 3 at a step that regularizes, D moves twice (Dmain, then Dreg): same
    # Dmain as reg=none (same seed), then an extra step from gamma/2 * R1 * 3.
    a = tiny_model("dcgan", reg="r1", r1_every=3, r1_gamma=1.0, lr_d=1e-2)
    b = tiny_model("dcgan", reg="none", lr_d=1e-2)
    torch.manual_seed(5)
    a.train_step(batch, 1)  # not a Dreg step: identical to reg=none
    torch.manual_seed(5)
    b.train_step(batch, 1)
    assert all(torch.equal(p, q) for p, q in zip(a.d.parameters(), b.d.parameters()))
    torch.manual_seed(6)
    a.train_step(batch, 3)
    torch.manual_seed(6)
    b.train_step(batch, 3)
    assert not all(torch.equal(p, q) for p, q in zip(a.d.parameters(), b.d.parameters()))


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
        "dcgan": dict(loss="ns", reg="none", d_norm="batch", optimizer="adam", lr_d=2e-4, beta1=0.5),
        "wgan": dict(loss="wasserstein", reg="clip", clip_value=0.01, optimizer="rmsprop", lr_d=5e-5, n_critic=5),
        "wgan-gp": dict(loss="wasserstein", reg="gp", gp_weight=10.0, d_norm="layer", lr_d=1e-4,
                        beta1=0.0, beta2=0.9, n_critic=5),
        "sngan": dict(loss="hinge", reg="spectral", d_norm="none", lr_d=2e-4, n_critic=1),
    }
    for preset, fields in expect.items():
        _, cfg = resolve(preset)
        assert {k: getattr(cfg, k) for k in fields} == fields, preset
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
    _run_and_sample(tiny_model("gan", loss=loss, reg=reg, r1_every=2), batch)


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


# ---------------------------------------------------------------- config validation
@pytest.mark.parametrize("bad", [
    {"n_critic": "0"}, {"loss": "bogus"}, {"reg": "dropout"}, {"d_norm": "instance"},
    {"lr_g": "-1e-4"}, {"lr_d": "0"}, {"ema": "1.0"}, {"ema": "-0.1"}, {"r1_every": "0"},
    {"clip_value": "0"}, {"beta2": "1"}, {"weight_decay": "-1"}, {"grad_clip": "0"},
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
