"""VAE-GAN (Larsen et al. 2016): the gradient each network gets, against Algorithm 1 rebuilt here.

Tiny nets (28x28, width 8, latent 4, batches of 16) on CPU. The shared contract (sampling,
reconstruction, save/load) is tested with the other encoder models in test_autoencoders.py.
"""

from __future__ import annotations

import collections
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

    def d_parts(const, images):
        # Dis_l: the body's activations named by feat_layers, flattened and joined; with
        # const, D's parameters are constants (the other networks' losses)
        wrap = constant if const else (lambda m: m)
        acts, h = [], images
        for layer in dis.body.net:
            h = wrap(layer)(h)
            if isinstance(layer, nn.LeakyReLU):
                acts.append(h)                                           # (3B, F'_j, s_j, s_j)
        chosen = {"last": acts[-1:], "first": acts[:1], "all": acts}[c.feat_layers]
        feats = torch.cat([a.flatten(1) for a in chosen], 1).split(b)
        return feats, wrap(dis.head)(h).flatten().split(b)                         # Dis_l and logits of x, x_tilde, x_p

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
    fake_c = constant(dec)(torch.cat([z, z_p]))                          # (2B, C, H, W)
    feats, _ = d_parts(True, torch.cat([x, fake_c]))
    feat = l_feat(feats)

    def l_pixel(x_tilde):
        # the pixel term: a Gaussian likelihood of variance 1 / pixel, per image, up to a constant
        return (c.pixel * 0.5 * (x_tilde - x).square().sum((1, 2, 3))).mean()

    pixel = l_pixel(fake_c[:b])
    loss_enc = c.beta * kl + feat + pixel

    # Decoder: gamma * L_llike - L_GAN (non-saturating); z is the encoder's, a constant here,
    # and D's parameters are constants.
    fake = dec(torch.cat([z.detach(), z_p]))                             # (2B, C, H, W): x_tilde, x_p
    feats, (_, l_rec, l_p) = d_parts(True, torch.cat([x, fake]))
    gan_rec, gan_prior = -F.logsigmoid(l_rec).mean(), -F.logsigmoid(l_p).mean()   # -log D(x_tilde), -log D(x_p)
    gan_g = gan_rec + c.prior_weight * gan_prior
    loss_dec = c.gamma * l_feat(feats) + l_pixel(fake[:b]) + gan_g
    # the decoder's gradient norm from each of its terms (the model's diagnostics at step 0)
    diag = {}
    terms = [("dec_gan_rec", gan_rec), ("dec_gan_prior", gan_prior), ("dec_feat", c.gamma * l_feat(feats))]
    for key, term in terms + ([("dec_pixel", l_pixel(fake[:b]))] if c.pixel > 0 else []):
        g = torch.autograd.grad(term, list(dec.parameters()), retain_graph=True)
        diag[f"grad/{key}"] = torch.sqrt(sum(t.square().sum() for t in g))

    # Discriminator: the GAN loss on real vs x_tilde, x_p, both fixed inputs.
    _, (l_real, l_rec, l_p) = d_parts(False, torch.cat([x, fake.detach()]))
    # log(1 - sigmoid(l)) = logsigmoid(-l)
    loss_dis = -F.logsigmoid(l_real).mean() - F.logsigmoid(-l_rec).mean() - F.logsigmoid(-l_p).mean()

    model.zero_grad(set_to_none=True)
    (loss_enc + loss_dec + loss_dis).backward()
    grads = {name: [p.grad for p in getattr(model, name).parameters()] for name in NETS}
    logs = {"loss/kl": kl, "loss/feat": feat, "loss/enc": loss_enc, "loss/dec": loss_dec, "loss/d": loss_dis,
            **({"loss/pixel": pixel} if c.pixel > 0 else {})}
    # D's accuracy on each kind of image, and the batch's aggregate posterior against N(0, I)
    # per dimension: sum_d KL(N(m_d, v_d) || N(0, 1)), v_d the unbiased variance of z_d
    m, v = z.detach().mean(0), z.detach().var(0)
    logs.update({"diag/d_acc_real": (l_real > 0).float().mean(), "diag/d_acc_rec": (l_rec < 0).float().mean(),
                 "diag/d_acc_prior": (l_p < 0).float().mean(),
                 "diag/agg_kl": 0.5 * (v + m.square() - 1 - v.log()).sum(), **diag})
    return grads, {k: v.detach() for k, v in logs.items()}


@pytest.mark.parametrize("d_norm,gamma,beta,feat_layers,pixel,prior_weight", [
    ("batch", 0.01, 1.0, "last", 0.0, 1.0), ("layer", 0.3, 0.7, "first", 0.0, 1.0), ("none", 1.0, 4.0, "all", 0.0, 1.0),
    ("batch", 0.01, 1.0, "first", 2.0, 0.25), ("layer", 0.1, 1.0, "last", 0.5, 0.0)])
def test_vaegan_gradients_match_algorithm_1(d_norm, gamma, beta, feat_layers, pixel, prior_weight):
    model = build(d_norm=d_norm, gamma=gamma, beta=beta, feat_layers=feat_layers, pixel=pixel,
                  prior_weight=prior_weight)
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


@pytest.mark.parametrize("err_real,err_fake,want", [
    (0.70, 0.65, (True, True)),      # near equilibrium: both train
    (0.20, 0.70, (False, True)),     # D too sure of the real images: D rests
    (0.70, 0.10, (False, True)),     # D too sure of the decoded ones: D rests
    (1.20, 0.70, (True, False)),     # D lost on real images: the decoder's GAN term rests
    (0.70, 1.50, (True, False)),
    (0.10, 1.50, (True, True)),      # both would rest: both train
])
def test_equilibrium_rule_truth_table(err_real, err_fake, want):
    from ganvae.models.vaegan import equilibrium_rule

    assert equilibrium_rule(err_real, err_fake, 0.68, 0.35) == want


def test_equilibrium_rule_rests_the_right_network(monkeypatch):
    import ganvae.models.vaegan as vaegan

    x = fixed_batch()
    # D rests: its weights stay; the encoder and decoder move
    model = build(equilibrium=0.68)
    before = copy.deepcopy(model.state_dict())
    monkeypatch.setattr(vaegan, "equilibrium_rule", lambda *a: (False, True))
    logs = model.train_step(x, 1)
    after = model.state_dict()
    assert float(logs["diag/train_d"]) == 0.0
    for k, v in before.items():
        if k.startswith("discriminator.") and v.is_floating_point() and "running" not in k:
            assert torch.equal(v, after[k]), k
    assert not torch.equal(before["decoder.net.0.weight"], after["decoder.net.0.weight"])
    # the GAN term rests: the decoder's gradient is gamma * dL_feat alone
    model = build(equilibrium=0.68)
    monkeypatch.setattr(vaegan, "equilibrium_rule", lambda *a: (True, False))
    torch.manual_seed(3)
    loss = model.losses(x)
    assert float(loss["gan_on"]) == 0.0
    params = list(model.decoder.parameters())
    got = torch.autograd.grad(loss["dec"], params, retain_graph=True)
    want = torch.autograd.grad(model.config.gamma * loss["feat"] + loss["pixel"], params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_vaegan_d_learning_rate_and_prior_weight_are_applied():
    model = build(lr=3e-4, lr_d=5e-5)
    assert model.optimizers()["disc"].param_groups[0]["lr"] == 5e-5
    assert model.optimizers()["dec"].param_groups[0]["lr"] == 3e-4
    assert build().optimizers()["disc"].param_groups[0]["lr"] == build().config.lr   # 0 = lr
    # prior_weight scales only the prior-sample GAN term of the decoder's loss
    x = fixed_batch()
    losses = []
    for w in (1.0, 0.25):
        m = build(prior_weight=w, pixel=0.0)   # no large pixel term to subtract away in float32
        torch.manual_seed(2)
        losses.append(m.losses(x))
    a, b = losses
    torch.testing.assert_close(a["dec"] - b["dec"], 0.75 * a["gan_prior"])
    torch.testing.assert_close(a["enc"], b["enc"])


def test_vaegan_pixel_term_is_the_gaussian_likelihood():
    model = build(pixel=3.0)
    x = fixed_batch()
    torch.manual_seed(4)
    loss = model.losses(x)
    # the same draws again, to rebuild x_tilde = Dec(mu + sigma * eps) by hand
    torch.manual_seed(4)
    mu, logvar = model.posterior(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    x_tilde = model.decoder(torch.cat([z, torch.randn_like(z)]))[: len(x)]
    want = 3.0 * 0.5 * ((x_tilde - x) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(loss["pixel"], want)
    torch.testing.assert_close(loss["enc"], model.config.beta * loss["kl"] + loss["feat"] + want)
    assert float(build(pixel=0.0).losses(x)["pixel"].detach()) == 0.0   # off: the paper's model


def test_vaegan_samples_from_the_fitted_prior(tmp_path):
    x = fixed_batch(64)
    normal_model = build(prior="normal")
    assert not any(k.startswith(("prior_", "gmm_")) for k in normal_model.state_dict())
    before = normal_model.sample(8, torch.Generator().manual_seed(1))
    normal_model.fit_prior(x)                                            # "normal": nothing to fit
    torch.testing.assert_close(normal_model.sample(8, torch.Generator().manual_seed(1)), before, rtol=0, atol=0)
    for kind in ("gaussian", "gmm"):
        model = build(prior=kind, gmm_components=2)
        before = model.sample(8, torch.Generator().manual_seed(1))
        model.fit_prior(x)
        assert bool(model.prior_fitted)
        after = model.sample(8, torch.Generator().manual_seed(1))
        assert not torch.allclose(before, after)
        # samples are decoded draws of the fitted density, whose mean is the codes' mean
        torch.testing.assert_close(after, model.decode(model.sample_prior(8, torch.Generator().manual_seed(1))))
        z = model.sample_prior(4000, torch.Generator().manual_seed(0))
        codes = model.encode(x)
        assert (z.mean(0) - codes.mean(0)).abs().max() < 0.1 + 0.1 * codes.std(0).max()
        model.save_pretrained(tmp_path / kind)
        loaded = GenerativeModel.from_pretrained(tmp_path / kind)
        torch.testing.assert_close(loaded.sample(8, torch.Generator().manual_seed(1)), after, rtol=0, atol=0)


def test_vaegan_spectral_norm_and_decoder_ema():
    from torch.nn.utils.parametrize import is_parametrized

    model = build(spectral=True, ema=0.9)
    convs = [m for m in model.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(is_parametrized(m, "weight") for m in convs)
    assert not any(is_parametrized(m, "weight") for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d))
    # one step: the average moves a tenth of the way from its start (the old decoder) to the new
    old = copy.deepcopy(model.decoder.state_dict())
    model.train_step(fixed_batch(), 0)
    new = model.decoder.state_dict()
    for k, v in model.decoder_ema.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.9 * old[k] + 0.1 * new[k])
    # sampling and reconstruction decode with the average, not the latest decoder
    z = torch.randn(4, TINY["latent"])
    torch.testing.assert_close(model.decode(z), model.decoder_ema.eval()(z))
    assert not torch.allclose(model.decode(z), model.decoder.eval()(z))


@pytest.mark.parametrize("augment", ["ada", "diffaug"])
def test_vaegan_d_sees_a_real_image_and_its_reconstruction_through_one_transform(augment):
    """Inside train_step, D's view of x and of its reconstruction x_tilde must be the same
    transform of each (else L_feat compares an image with a differently moved copy). The decoder
    is made to return x itself, so equal transforms give equal images, and L_feat is 0."""
    model = build(augment=augment)
    if augment == "ada":
        model.augment.ada.p.fill_(1.0)                                   # every op on every image
    x = fixed_batch()
    # x_tilde = x_p = x, with the decoder's graph kept (each network still gets its gradient)
    model.decoder.register_forward_hook(lambda m, args, out: out * 0 + torch.cat([x, x]))
    seen = []                                                            # D's input, (3B, C, H, W)
    model.discriminator.body.net[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    logs = model.train_step(x, 0)
    (h,) = seen
    real, rec, prior = h.split(len(x))
    assert ((real - x).flatten(1).abs().amax(1) > 1e-2).all()           # every image augmented
    assert torch.equal(rec, real) and torch.equal(prior, real)           # by the same transform
    assert float(logs["loss/feat"]) < 1e-6                               # so Dis_l matches exactly


def test_vaegan_reports_the_d_updates_that_ran_across_a_resume(tmp_path, monkeypatch):
    """The equilibrium rule rests D on some steps: the run summary's `updates` must count the
    optimizer steps that ran (through a checkpoint and resume), and ADA must observe D's logits
    only on the steps D updates (its p follows the D it steers)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    import ganvae.models.vaegan as vaegan
    from ganvae.trainer import train
    from tests.conftest import DATA

    calls = []

    def rest_d_but_every_third(*args):                                   # D trains on steps 0, 3, 6, ...
        calls.append(args)
        return len(calls) % 3 == 1, True

    monkeypatch.setattr(vaegan, "equilibrium_rule", rest_d_but_every_third)
    ran, models = collections.Counter(), []
    hook = register_optimizer_step_post_hook(lambda opt, a, kw: ran.update([opt]))
    try:
        run, opts = tmp_path / "run", {"progress": False, "callbacks": [lambda t: models.append(t.model)]}
        _, first = train("vaegan", DATA, run, steps=4, batch_size=16, **opts, overrides={
            **TINY, "equilibrium": 0.68, "augment": "ada", "ada_interval": 1000, "diag_every": 0, "prior": "normal"})
        _, second = train("", run_dir=run, resume=True, steps=7, **opts)
    finally:
        hook.remove()
    assert len(calls) == 7
    done = {name: sum(ran[m.optimizers()[name]] for m in {id(m): m for m in models}.values())
            for name in ("enc", "dec", "disc")}
    assert done == {"enc": 7, "dec": 7, "disc": 3}                       # D on steps 0, 3 and 6
    assert first["updates"] == {"enc": 4, "dec": 4, "disc": 2}
    assert second["updates"] == done
    ada = models[-1].augment.ada                                         # interval 1000: nothing reset
    assert int(ada.calls) == 3 and float(ada.sign_count) == 3 * 16


@pytest.mark.parametrize("field,value", [("pixel", -1.0), ("prior_weight", -0.5), ("lr_d", -1e-4),
                                         ("prior", "uniform"), ("gmm_components", 0), ("ema", 1.0)])
def test_vaegan_rejects_bad_config(field, value):
    from ganvae.errors import BadInput

    with pytest.raises(BadInput, match=field):
        build(**{field: value})
