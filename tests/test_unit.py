"""UNIT (Liu, Breuel & Kautz 2017): its loss against hand-computed numbers, the weight sharing
that defines it, both update phases, channel counts, save / load and a short training signal.

Tiny nets (28x28, width 8, batches of 4) on CPU, one thread.
"""

from __future__ import annotations

import math

import pytest
import torch

from ganvae.errors import BadInput
from ganvae.models.base import GenerativeModel
from ganvae.models.translation import l1
from ganvae.models.unit import UNIT, UNITConfig, kl, unit_loss

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = {"loss/g", "loss/adv", "loss/kl", "loss/recon", "loss/cycle_kl", "loss/cycle", "loss/d", "d/real", "d/fake"}


def build(channels: int = 1, channels_a: int = 1, seed: int = 0, **overrides) -> UNIT:
    torch.manual_seed(seed)
    return UNIT(UNITConfig(channels=channels, channels_a=channels_a, size=28, width=8, **overrides))


def images(n: int, channels: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 28, 28, generator=g) * 2 - 1


def blobs(n: int, seed: int, size: int = 28) -> torch.Tensor:
    """(n, 1, S, S) in [-1, 1]: the brighter of two Gaussian bumps of random place and radius."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    centre = torch.rand(n, 2, 2, generator=g) * (size - 8) + 4               # (n, bump, yx)
    radius = torch.rand(n, 2, generator=g) * 3 + 3                           # (n, bump)
    d2 = (yy - centre[..., 0, None, None]) ** 2 + (xx - centre[..., 1, None, None]) ** 2
    img = torch.exp(-d2 / (2 * radius[..., None, None] ** 2)).amax(1)        # (n, S, S) in (0, 1]
    return (img * 2 - 1)[:, None]


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---- 1. the loss, by hand

def test_unit_loss_matches_hand_computed_numbers_with_the_papers_weights():
    c = UNITConfig()
    weights = (c.gan_weight, c.kl_weight, c.recon_weight, c.cycle_kl_weight, c.cycle_weight)
    assert weights == (10, 0.1, 100, 0.1, 100)                # λ0 ... λ4 of §3
    assert (c.norm, c.loss) == ("instance", "ls")
    t = torch.tensor
    a = t([[[[1.0, -1.0], [0.5, 0.0]]]])                 # (1, 1, 2, 2)
    b = torch.zeros(1, 1, 2, 2)
    pieces = dict(
        a=a, b=b,
        x_aa=t([[[[0.5, -1.0], [0.5, 1.0]]]]),           # |diff| 0.5, 0, 0, 1   -> 0.375
        x_bb=torch.full((1, 1, 2, 2), 0.25),              #                        -> 0.25
        mu_a=t([2.0, 0.0]).view(1, 2, 1, 1),              # (4 + 0) / 2 / 2        -> 1.0
        mu_b=t([1.0, 1.0]).view(1, 2, 1, 1),              # (1 + 1) / 2 / 2        -> 0.5
        mu_aba=torch.zeros(1, 2, 1, 1),                   #                        -> 0
        mu_bab=t([3.0, 1.0]).view(1, 2, 1, 1),            # (9 + 1) / 2 / 2        -> 2.5
        x_aba=a.clone(),                                  #                        -> 0
        x_bab=torch.ones(1, 1, 2, 2),                     #                        -> 1
        logits_ab=t([1.0, 0.0]).view(1, 1, 1, 2),         # LS: (0 + 1) / 2        -> 0.5
        logits_ba=t([3.0]).view(1, 1, 1, 1),              # LS: (3 - 1)^2          -> 4
    )
    total, parts = unit_loss(c, **pieces)
    expected = {"adv": 4.5, "kl": 1.5, "recon": 0.625, "cycle_kl": 2.5, "cycle": 1.0}
    assert set(parts) == set(expected)
    for k, v in expected.items():
        assert parts[k].item() == pytest.approx(v), k
        assert parts[k].dtype == torch.float32
    # 10 * 4.5 + 0.1 * 1.5 + 100 * 0.625 + 0.1 * 2.5 + 100 * 1
    assert total.item() == pytest.approx(45 + 0.15 + 62.5 + 0.25 + 100)

    # the non-saturating GAN loss: -log s(0) = log 2 per translation; bf16 pieces are cast
    ns = UNITConfig(loss="ns", gan_weight=1.0, kl_weight=0, recon_weight=0, cycle_kl_weight=0, cycle_weight=0)
    pieces.update(logits_ab=torch.zeros(1, 1, 3, 3, dtype=torch.bfloat16), logits_ba=torch.zeros(2, 1, 2, 2))
    total, parts = unit_loss(ns, **pieces)
    assert total.dtype == torch.float32 and total.item() == pytest.approx(2 * math.log(2))
    assert kl(torch.tensor([[-2.0]])).item() == pytest.approx(2.0)


# ---- 2. the weight sharing

def test_shared_layers_are_one_set_of_weights_used_by_both_domains():
    m = build()
    gens = m._generators()
    a2b, b2a = gens["a2b"], gens["b2a"]
    assert a2b.enc_shared is b2a.enc_shared is m.enc_shared
    assert a2b.dec_shared is b2a.dec_shared is m.dec_shared
    shared = list(m.enc_shared.parameters()) + list(m.dec_shared.parameters())
    # the parameters both translation paths use are exactly the shared ones
    common = {id(p) for p in a2b.parameters()} & {id(p) for p in b2a.parameters()}
    assert common == {id(p) for p in shared} and len(shared) == 4
    # and the model holds each weight once: no module registered twice, no storage twice
    assert len(list(m.named_parameters(remove_duplicate=False))) == len(list(m.parameters()))
    state = m.state_dict()
    ptrs = [v.data_ptr() for v in state.values() if v.numel()]
    assert len(ptrs) == len(set(ptrs))
    assert sorted(k for k in state if "shared" in k) == [
        "dec_shared.0.weight", "enc_shared.0.weight", "enc_shared.3.bias", "enc_shared.3.weight"]
    # the optimizer lists them once too
    g_ids = [id(p) for group in m.optimizers()["g"].param_groups for p in group["params"]]
    assert len(g_ids) == len(set(g_ids)) and {id(p) for p in shared} <= set(g_ids)


def test_a_loss_on_domain_a_alone_trains_the_shared_layers_that_domain_b_then_uses():
    m = build()
    a, b = images(4, 1, seed=1), images(4, 1, seed=2)
    with torch.no_grad():
        b_recon, b_to_a = m.reconstruct(b, "b"), m.translate(b, "b2a")
    b_private = list(m.enc_b.parameters()) + list(m.dec_b.parameters())
    b_before = [p.detach().clone() for p in b_private]

    l1(m.reconstruct(a, "a"), a).backward()               # G_a(E_a(a)) vs a: nothing of B's
    for net in (m.enc_a, m.enc_shared, m.dec_shared, m.dec_a):
        for p in net.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in b_private)

    opt = torch.optim.Adam(m._g_params(), lr=1e-2)        # skips the parameters without gradients
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(b_private, b_before))
    with torch.no_grad():
        # B's own reconstruction uses only B's private layers (unchanged) and the shared ones,
        # so its change is the A-only step reaching B through the shared weights
        assert (m.reconstruct(b, "b") - b_recon).abs().max() > 1e-3
        assert (m.translate(b, "b2a") - b_to_a).abs().max() > 1e-3


# ---- 3. train_step: values, precision, which phase moves what

@pytest.mark.parametrize("precision,reg", [("fp32", "none"), ("bf16", "none"), ("fp32", "r1")])
def test_train_step_updates_g_then_d_each_leaving_the_other_alone(precision, reg):
    m = build(reg=reg)
    m.set_precision(precision, "cpu")
    states, d_grads = [snapshot(m)], []
    update = m.update

    def spy(opt, loss, params):                           # the state after each optimizer step
        update(opt, loss, params)
        states.append(snapshot(m))
        d_grads.append([p.grad is not None for p in m._d_params()])

    m.update = spy
    out = m.train_step((images(4, 1, seed=1), images(4, 1, seed=2)), 0)
    assert set(out) == KEYS | ({"reg/r1"} if reg == "r1" else set())
    for k, v in out.items():
        assert v.dim() == 0 and v.dtype == torch.float32 and not v.requires_grad, k
        assert torch.isfinite(v), k
    assert out["loss/g"] > 0 and out["loss/d"] > 0
    weighted = (10 * out["loss/adv"] + 0.1 * out["loss/kl"] + 100 * out["loss/recon"]
                + 0.1 * out["loss/cycle_kl"] + 100 * out["loss/cycle"])
    assert out["loss/g"].item() == pytest.approx(weighted.item(), rel=1e-5)

    start, after_g, after_d = states
    is_d = lambda k: k.startswith(("d_a.", "d_b."))       # noqa: E731
    g_keys = [k for k in start if not is_d(k)]
    d_keys = [k for k in start if is_d(k)]
    assert all(torch.equal(after_g[k], start[k]) for k in d_keys)            # G step: D untouched,
    assert not any(d_grads[0])                                               # ... not even a gradient
    assert all(d_grads[1])
    assert all(not torch.equal(after_g[k], start[k]) for k in g_keys)        # ... every E / G weight moved
    assert all(torch.equal(after_d[k], after_g[k]) for k in g_keys)          # D step: E / G untouched
    assert any(not torch.equal(after_d[k], after_g[k]) for k in d_keys)


def test_training_draws_z_around_mu():
    """The reconstructions in train_step decode z = mu + eps: the same model on the same batch
    gives other losses under another seed (nothing else in the step is random)."""
    m = build()
    batch = (images(4, 1, seed=1), images(4, 1, seed=2))
    state = snapshot(m)
    runs = []
    for seed in (0, 0, 1):
        m.load_state_dict(state)
        m._optimizers = None                               # fresh Adam moments each time
        torch.manual_seed(seed)
        runs.append(m.train_step(batch, 0)["loss/recon"].item())
    assert runs[0] == runs[1] != runs[2]


# ---- 4. different channel counts

def test_channels_differ_between_domains():
    m = build(channels=3, channels_a=1)
    a, b = images(4, 1, seed=1), images(4, 3, seed=2)
    out = m.train_step((a, b), 0)
    assert set(out) == KEYS and all(torch.isfinite(v) for v in out.values())
    with torch.no_grad():
        ab, ba = m.translate(a, "a2b"), m.translate(b, "b2a")
        assert ab.shape == (4, 3, 28, 28) and ba.shape == (4, 1, 28, 28)
        assert ab.dtype == ba.dtype == torch.float32 and ab.abs().max() <= 1
        assert m.encode(a, "a").shape == m.encode(b, "b").shape == (4, m.config.latent, 7, 7)
        assert torch.equal(m.translate(a, "a2b"), ab)      # z = mu: no noise when translating
    with pytest.raises(BadInput, match="a2b and b2a"):
        m.translate(a, "b2b")
    with pytest.raises(BadInput, match="domain"):
        m.encode(a, "c")


# ---- 5. save / load

def test_save_and_load_give_identical_translations(tmp_path):
    m = build(channels=3, channels_a=1)
    m.train_step((images(4, 1, seed=1), images(4, 3, seed=2)), 0)     # weights away from init
    m.save_pretrained(tmp_path / "unit")
    loaded = GenerativeModel.from_pretrained(tmp_path / "unit")
    assert isinstance(loaded, UNIT) and loaded.config == m.config and not loaded.training
    m = m.to(memory_format=torch.channels_last).eval()   # the loaded model's layout on a CPU
    a, b = images(4, 1, seed=3), images(4, 3, seed=4)
    with torch.no_grad():
        assert torch.equal(loaded.translate(a, "a2b"), m.translate(a, "a2b"))
        assert torch.equal(loaded.translate(b, "b2a"), m.translate(b, "b2a"))


# ---- 6. a short training signal

@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_a_short_run_learns_to_reconstruct_and_cycle():
    """Unpaired smooth blobs, B the negatives of other blobs: 150 steps cut recon + cycle to
    about a third (measured 0.31 to 0.33 over three seeds); asserted below one half."""
    m = build(seed=0)
    pool_a, pool_b = blobs(64, seed=1), -blobs(64, seed=2)
    g = torch.Generator().manual_seed(3)
    hist = []
    for step in range(150):
        ia, ib = torch.randint(0, 64, (4,), generator=g), torch.randint(0, 64, (4,), generator=g)
        out = m.train_step((pool_a[ia], pool_b[ib]), step)
        assert torch.isfinite(out["loss/g"]) and torch.isfinite(out["loss/d"])
        hist.append((out["loss/recon"] + out["loss/cycle"]).item())
    first, last = sum(hist[:20]) / 20, sum(hist[-20:]) / 20
    assert last < 0.5 * first, (first, last)


# ---- 7. bad configs

@pytest.mark.parametrize("overrides,match", [
    (dict(size=30), "divisible by 4"),
    (dict(size=4, d_layers=0), "d_layers=0"),
    (dict(size=4), "too deep for 4x4"),
    (dict(d_layers=4), "d_layers=4"),
    (dict(kl_weight=-0.1), "kl_weight"),
    (dict(cycle_weight=-1.0), "cycle_weight"),
    (dict(gan_weight=float("nan")), "gan_weight"),
    (dict(norm="group"), "norm"),
])
def test_bad_configs_are_refused(overrides, match):
    cfg = dict(channels=1, channels_a=1, size=28, width=8)
    with pytest.raises(BadInput, match=match):
        UNIT(UNITConfig(**{**cfg, **overrides}))


def test_registration_and_what_unit_does_not_do():
    from ganvae.registry import MODELS, PRESET_HELP

    assert MODELS["unit"] is UNIT and PRESET_HELP["unit"].startswith("UNIT:")
    assert UNIT.translation == "unpaired" and UNIT.directions == ("a2b", "b2a")
    m = build()
    assert set(m.optimizers()) == {"g", "d"} and m.updates_per_step() == {"g": 1.0, "d": 1.0}
    with pytest.raises(BadInput, match="translates"):
        m.sample(2)
    with pytest.raises(BadInput, match="translate"):
        m.decode(torch.zeros(2, 64, 7, 7))
