"""VAE-GAN (Larsen et al. 2016): the gradient each network gets, against Algorithm 1 rebuilt here.

Tiny nets (28x28, width 8, latent 4, batches of 16) on CPU. The shared contract (sampling,
reconstruction, save/load) is tested with the other encoder models in test_autoencoders.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ganvae.config import replace
from ganvae.models.base import GenerativeModel
from ganvae.registry import resolve

TINY = {"width": 8, "latent": 4}
NETS = ("encoder", "decoder", "discriminator")
OPTS = {"encoder": "enc", "decoder": "dec", "discriminator": "disc"}
pytestmark = pytest.mark.usefixtures("one_thread")


def build(**overrides) -> GenerativeModel:
    cls, cfg = resolve("vaegan")
    torch.manual_seed(0)
    return cls(replace(cfg, {**TINY, **overrides}))


def fixed_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def constant(module: nn.Module):
    """`module` as a map whose parameters are constants (detached): its output passes
    gradients to its input but deposits none in its parameters."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return lambda *args: functional_call(module, params, args)


def algorithm_1(model, x: torch.Tensor, seed: int) -> tuple[dict, dict]:
    """Larsen et al. 2016, Algorithm 1, written out with a graph per loss and an explicit stop
    wherever the algorithm differentiates one network's loss w.r.t. that network alone. One
    backward of the sum then leaves each network exactly its own loss's gradient.

    The decoder always, and the discriminator with d_norm=batch, normalise with batch
    statistics in training mode, so each is a function of its whole input batch: the
    comparison is well-posed only on the same batches the model uses. So the decoder sees z
    and z_p together and D sees x, x_tilde and x_p together (the model's documented choice,
    so that one set of statistics normalises all three); what this checks is which gradient
    reaches which network, at which parameters.

    Returns:
        ({network: [grad of each parameter]}, {logged name: value}).
    """
    c = model.config
    enc, dec, dis = model.encoder, model.decoder, model.discriminator
    b = len(x)
    torch.manual_seed(seed)                                              # the model's draws, in its order
    mu, logvar = enc(x).chunk(2, dim=1)                                  # (B, latent) each
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)              # (B, latent), eps ~ N(0, I)
    z_p = torch.randn_like(mu)                                           # (B, latent), the prior

    def d_parts(body, head, images):
        h = body(images)                                                 # (3B, F', b, b)
        feats, logits = h.flatten(1).split(b), head(h).flatten().split(b)
        return feats, logits                                             # Dis_l and logits of x, x_tilde, x_p

    def l_feat(feats):
        # -log N(Dis_l(x) | Dis_l(x_tilde), I) up to a constant, summed over features, per image.
        # Dis_l(x) is the observation, a constant: without batch norm it depends on no
        # parameter being differentiated anyway, but with d_norm=batch it depends on x_tilde
        # and x_p through the batch statistics, and that path must not reach Enc and Dec
        # (it moves the target towards the reconstruction instead of the reverse).
        (f_real, f_rec, _) = feats
        return (0.5 * (f_real.detach() - f_rec).square().sum(1)).mean()

    # Encoder: beta * L_prior + L_llike; the decoder and D are fixed maps here.
    kl = (0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)).mean()
    feats, _ = d_parts(constant(dis.body), constant(dis.head), torch.cat([x, constant(dec)(torch.cat([z, z_p]))]))
    feat = l_feat(feats)
    loss_enc = c.beta * kl + feat

    # Decoder: gamma * L_llike - L_GAN (non-saturating); z is the encoder's, a constant here,
    # and D's parameters are constants.
    fake = dec(torch.cat([z.detach(), z_p]))                             # (2B, C, H, W): x_tilde, x_p
    feats, (_, l_rec, l_p) = d_parts(constant(dis.body), constant(dis.head), torch.cat([x, fake]))
    gan_g = -F.logsigmoid(l_rec).mean() - F.logsigmoid(l_p).mean()      # -log D(x_tilde) - log D(x_p)
    loss_dec = c.gamma * l_feat(feats) + gan_g

    # Discriminator: the GAN loss on real vs x_tilde, x_p, both fixed inputs.
    _, (l_real, l_rec, l_p) = d_parts(dis.body, dis.head, torch.cat([x, fake.detach()]))
    # log(1 - sigmoid(l)) = logsigmoid(-l)
    loss_dis = -F.logsigmoid(l_real).mean() - F.logsigmoid(-l_rec).mean() - F.logsigmoid(-l_p).mean()

    model.zero_grad(set_to_none=True)
    (loss_enc + loss_dec + loss_dis).backward()
    grads = {name: [p.grad for p in getattr(model, name).parameters()] for name in NETS}
    logs = {"loss/kl": kl, "loss/feat": feat, "loss/enc": loss_enc, "loss/dec": loss_dec, "loss/d": loss_dis}
    return grads, {k: v.detach() for k, v in logs.items()}


@pytest.mark.parametrize("d_norm,gamma,beta", [("batch", 0.01, 1.0), ("layer", 0.3, 0.7), ("none", 1.0, 4.0)])
def test_vaegan_gradients_match_algorithm_1(d_norm, gamma, beta):
    model = build(d_norm=d_norm, gamma=gamma, beta=beta)
    reference = copy.deepcopy(model).train()                             # same weights, same buffers
    x = fixed_batch()

    # The gradients the model's train_step hands each optimizer, read as it is about to step.
    got = {}
    for name in NETS:
        opt = model.optimizers()[OPTS[name]]
        opt.register_step_pre_hook(lambda o, args, kwargs, name=name: got.__setitem__(
            name, [p.grad.clone() for p in o.param_groups[0]["params"]]))
    torch.manual_seed(5)
    logs = model.train_step(x, 0)
    assert set(got) == set(NETS) and set(model.optimizers()) == set(OPTS.values())

    want, want_logs = algorithm_1(reference, x, seed=5)
    # All three at the parameters before the step (a simultaneous update): the reference
    # never steps, so a sequential update would show up as a mismatch here.
    for name in NETS:
        assert len(got[name]) == len(want[name])
        for (pname, _), g, w in zip(getattr(reference, name).named_parameters(), got[name], want[name]):
            assert w is not None, f"{name}.{pname} gets no gradient in Algorithm 1"
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-7, msg=f"{name}.{pname}")
    assert set(logs) == set(want_logs)
    for k, v in want_logs.items():
        torch.testing.assert_close(logs[k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_vaegan_gradient_check_is_sensitive_to_routing():
    # The check above would catch the classic mistakes: the encoder also minimising the GAN
    # loss, or D also minimising L_llike (collapsing its features).
    x = fixed_batch()
    model = build()
    reference = copy.deepcopy(model).train()
    want, _ = algorithm_1(reference, x, seed=5)
    wrong = copy.deepcopy(model).train()
    torch.manual_seed(5)
    loss = wrong.losses(x)
    for name, bad_loss in (("encoder", loss["enc"] + loss["dec"]), ("discriminator", loss["disc"] + loss["feat"])):
        bad = torch.autograd.grad(bad_loss, list(getattr(wrong, name).parameters()), retain_graph=True,
                                  allow_unused=True)
        assert any(b is not None and not torch.allclose(b, w, rtol=1e-4, atol=1e-7)
                   for b, w in zip(bad, want[name])), name


def test_vaegan_keeps_training_finite():
    model = build()
    for step in range(3):
        assert all(math.isfinite(float(v)) for v in model.train_step(fixed_batch(seed=step), step).values())
