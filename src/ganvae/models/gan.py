"""GAN: one family whose loss and discriminator regularizer are config, not subclasses.

Losses (on discriminator logits l; sigma the logistic function):
- minimax: the original saturating game, G minimizes log(1 - sigma(l_fake))
  (Goodfellow et al. 2014, "Generative Adversarial Nets", eq. 1).
- ns: the non-saturating generator loss -log sigma(l_fake) (Goodfellow et al. 2014, §3);
  with the DCGAN nets and Adam(2e-4, beta1 0.5) this is DCGAN (Radford et al. 2016).
- hinge: Lim & Ye 2017 "Geometric GAN"; used by Miyato et al. 2018 for SN-GAN.
- wasserstein: the critic estimate E[l_real] - E[l_fake] (Arjovsky et al. 2017).
- ls: least squares with a=0, b=1, c=1 (Mao et al. 2017, "Least Squares GANs", eq. 2).

Regularizers (see regularizers.py): spectral (Miyato et al. 2018), clip (Arjovsky et al.
2017), gp (Gulrajani et al. 2017), r1 (Mescheder et al. 2018), applied lazily every
`r1_every` steps and scaled by `r1_every`, with D's Adam adjusted for the extra update
(Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", Appendix B),
and gradclip (global gradient-norm clipping of D). gp and r1 need a discriminator without
batch norm: they constrain each sample's gradient, which batch statistics make depend on the
rest of the batch.

One `train_step` is the phases of StyleGAN2-ADA's training loop (Karras et al. 2020,
"Training GANs with Limited Data"): Dmain and Dreg on each of `n_critic` batches, then Gmain, then
the EMA of the generator's weights and norm statistics (Karras et al. 2018 "Progressive
Growing of GANs"; Yazici et al. 2019 "The Unusual Effectiveness of Averaging in GAN
Training"), optionally started late (`ema_start`) and with its half-life ramped up
(`ema_rampup`, as StyleGAN2-ADA's ema_rampup).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Callable, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import parallel
from ..augment import AugmentConfig, DiscriminatorAugment
from ..custom import gan_nets
from ..errors import BadInput
from ..nets import (Decoder, Discriminator, ResNetDecoder, ResNetDiscriminator, class_weights,
                    dcgan_init)
from ..registry import register_model
from .common import evaluating, update_ema_
from .base import ClassConditionalConfig, GenerativeModel, ModelConfig, seeded_generator
from .regularizers import add_spectral_norm, clip_weights_, gradient_penalty, r1_penalty


@dataclass
class GANConfig(ModelConfig, AugmentConfig, ClassConditionalConfig):
    loss: Literal["minimax", "ns", "hinge", "wasserstein", "ls"] = "minimax"
    reg: Literal["none", "spectral", "clip", "gp", "r1", "gradclip"] = "none"
    d_norm: Literal["batch", "layer", "none"] = "batch"  # gp and r1 refuse batch: BN mixes samples
    g_norm: Literal["batch", "layer", "none"] = "batch"
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    adam_beta1: float = 0.5      # Adam only; DCGAN's 0.5 instead of 0.9 (Radford et al. 2016)
    adam_beta2: float = 0.999    # Adam only
    # L2 weight decay on D's optimizer only: it limits the discriminator's capacity, which is
    # how it is studied as a GAN regularizer (Kurach et al. 2019, "A Large-Scale Study of
    # Regularization and Normalization in GANs"); decaying G has no such rationale and only
    # pulls the generator towards producing flat images.
    weight_decay: float = 0.0
    n_critic: int = 1            # D updates per G update (WGAN: 5)
    clip_value: float = 0.01     # reg=clip: D parameters kept in [-c, c]
    gp_weight: float = 10.0      # reg=gp: lambda
    r1_gamma: float = 10.0       # reg=r1: gamma; the penalty is gamma / 2 * R1
    r1_every: int = 16           # reg=r1: lazy interval (StyleGAN2); 1 = every step
    grad_clip: float = 1.0       # reg=gradclip: max global L2 norm of D's gradients
    ema: float = 0.0             # decay of an EMA copy of G used by sample(); 0 = off
    # The EMA copy is set equal to G for the first `ema_start` generator updates and averaged
    # after: the early generators are far from the later ones, and with decay 0.999 their
    # weights would linger in the average for thousands of updates.
    ema_start: int = 0
    # Warm-up of the decay: the EMA's half-life (in generator updates) is at most
    # ema_rampup * (generator updates before this one), so the average covers at most that
    # fraction of training so far (StyleGAN2-ADA's ema_rampup, 0.05 there); 0 = off.
    ema_rampup: float = 0.0
    # Freeze-D (Mo, Cho & Shin 2020, "Freeze the Discriminator"): when fine-tuning a transferred
    # run (--init-from), keep D's first K blocks (those nearest the image) fixed; 0 = train all.
    freeze_d: int = 0
    # conditional: how much faster than the other weights G's class gains and biases learn
    # (nets.ClassConditionalNorm gives the reason and the measurement; 1 = plain parametrisation)
    class_lr_mul: float = 30.0

    def validate(self) -> None:
        super().validate()
        self.validate_augment()
        self.validate_conditional()
        # Literal fields are checked when set from strings; a config built directly in Python
        # is not, so check the names here too, with the same kind of message.
        for key, table in (("loss", LOSSES), ("optimizer", OPTIMIZERS)):
            if getattr(self, key) not in table:
                raise BadInput(f"{key}={getattr(self, key)!r}: choose one of {', '.join(table)}")
        if self.augment == "ada" and ADA_MIDPOINTS[self.loss] is None:
            # ADA's overfitting signal is the sign of D(real) against an undecided D's output;
            # a critic has no such output (its loss ignores a constant added to it). The paper's
            # other heuristic r_v (a validation set) is not implemented.
            raise BadInput(f"augment=ada with loss={self.loss}: the critic's outputs have no midpoint for ADA's "
                           "overfitting signal sign(D(real)); use augment=diffaug")
        if self.reg not in REGS:
            raise BadInput(f"reg={self.reg!r}: choose one of {', '.join(REGS)}")
        checks = [
            (self.lr_g > 0, f"lr_g={self.lr_g}: must be positive"),
            (self.lr_d > 0, f"lr_d={self.lr_d}: must be positive"),
            (0 <= self.adam_beta1 < 1, f"adam_beta1={self.adam_beta1}: must be in [0, 1)"),
            (0 <= self.adam_beta2 < 1, f"adam_beta2={self.adam_beta2}: must be in [0, 1)"),
            (self.weight_decay >= 0, f"weight_decay={self.weight_decay}: must be at least 0"),
            (self.n_critic >= 1, f"n_critic={self.n_critic}: must be at least 1"),
            (self.clip_value > 0, f"clip_value={self.clip_value}: must be positive"),
            (self.gp_weight >= 0, f"gp_weight={self.gp_weight}: must be at least 0"),
            (self.r1_gamma >= 0, f"r1_gamma={self.r1_gamma}: must be at least 0"),
            (self.r1_every >= 1, f"r1_every={self.r1_every}: must be at least 1"),
            (self.grad_clip > 0, f"grad_clip={self.grad_clip}: must be positive"),
            (0 <= self.ema < 1, f"ema={self.ema}: must be in [0, 1) (0 turns the EMA off)"),
            (self.ema_start >= 0, f"ema_start={self.ema_start}: must be at least 0"),
            (self.ema_rampup >= 0, f"ema_rampup={self.ema_rampup}: must be at least 0 (0 turns it off)"),
            (self.freeze_d >= 0, f"freeze_d={self.freeze_d}: must be at least 0 (0 trains every D block)"),
            (self.class_lr_mul > 0, f"class_lr_mul={self.class_lr_mul}: must be positive (1 is the plain "
                                    "parametrisation)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)
        if self.reg in ("gp", "r1") and self.d_norm == "batch":
            # Both penalize ||grad_x D(x)|| per sample, which presumes D(x) is a function of x
            # alone; with batch statistics each logit depends on the whole batch (Gulrajani et
            # al. 2017, §4 drop BN from the critic for this reason).
            raise BadInput(f"reg={self.reg} with d_norm=batch: the per-sample gradient penalty is "
                           "ill-defined when batch norm makes each sample's logit depend on the "
                           "rest of the batch; set d_norm=layer or d_norm=none")


REGS = ("none", "spectral", "clip", "gp", "r1", "gradclip")


# ---- losses: pure functions of the logits, (B,) -> 0-d
def _d_logistic(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    # -log sigma(l_real) - log(1 - sigma(l_fake)); softplus is the stable form of both.
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def _g_minimax(logits_fake: torch.Tensor) -> torch.Tensor:
    # log(1 - sigma(l_fake)) = -softplus(l_fake): saturates (gradient -> 0) when D wins.
    return -F.softplus(logits_fake).mean()


def _g_ns(logits_fake: torch.Tensor) -> torch.Tensor:
    # -log sigma(l_fake): the same fixed point, strong gradients when D rejects the fakes.
    return F.softplus(-logits_fake).mean()


def _d_hinge(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()


def _d_wasserstein(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return logits_fake.mean() - logits_real.mean()


def _g_critic(logits_fake: torch.Tensor) -> torch.Tensor:
    # Hinge and Wasserstein generators both maximize the raw critic output.
    return -logits_fake.mean()


def _d_ls(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logits_real - 1).square().mean() + 0.5 * logits_fake.square().mean()


def _g_ls(logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logits_fake - 1).square().mean()


# ADA's midpoint m for r_t = E[sign(D(real) - m)] (augment.AdaptiveAugment): what a D that
# cannot tell real from fake outputs, halfway between its targets. 0 for the logistic losses
# (sigma(0) = 1/2) and hinge (margins at +-1); 0.5 for ls, whose optimal D is (b p_data + a p_g) /
# (p_data + p_g) = (a + b) / 2 at p_g = p_data (Mao et al. 2017, eq. 4; a = 0, b = 1 here).
# None: a Wasserstein critic is defined up to a constant, so no output is the undecided one.
ADA_MIDPOINTS: dict[str, float | None] = {"minimax": 0.0, "ns": 0.0, "hinge": 0.0, "wasserstein": None, "ls": 0.5}

DLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
GLoss = Callable[[torch.Tensor], torch.Tensor]

# loss name -> (D loss(logits_real, logits_fake), G loss(logits_fake))
LOSSES: dict[str, tuple[DLoss, GLoss]] = {
    "minimax": (_d_logistic, _g_minimax),
    "ns": (_d_logistic, _g_ns),
    "hinge": (_d_hinge, _g_critic),
    "wasserstein": (_d_wasserstein, _g_critic),
    "ls": (_d_ls, _g_ls),
}


def _adam(params, lr: float, cfg: GANConfig, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=weight_decay)


def _rmsprop(params, lr: float, cfg: GANConfig, weight_decay: float) -> torch.optim.Optimizer:
    # torch's defaults (alpha 0.99, no momentum), as in the WGAN authors' PyTorch code.
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": _adam, "rmsprop": _rmsprop}


PRESETS = {
    "dcgan": (dict(loss="ns", d_norm="batch", g_norm="batch", optimizer="adam", lr_g=2e-4, lr_d=2e-4,
                   adam_beta1=0.5, adam_beta2=0.999),
              "DCGAN: non-saturating loss, batch norm, Adam 2e-4 beta1 0.5 (Radford et al. 2016)"),
    "wgan": (dict(loss="wasserstein", reg="clip", clip_value=0.01, optimizer="rmsprop", lr_g=5e-5,
                  lr_d=5e-5, n_critic=5),
             "WGAN: weight clipping 0.01, RMSprop 5e-5, 5 critic steps (Arjovsky et al. 2017)"),
    # Batch norm would make each sample's critic value depend on the rest of the batch, so the
    # per-sample gradient norm the penalty constrains would not be the one of a function of x
    # (Gulrajani et al. 2017, §4 use layer norm in the critic).
    "wgan-gp": (dict(loss="wasserstein", reg="gp", gp_weight=10.0, d_norm="layer", optimizer="adam",
                     lr_g=1e-4, lr_d=1e-4, adam_beta1=0.0, adam_beta2=0.9, n_critic=5),
                "WGAN-GP: gradient penalty 10, layer-norm critic, Adam 1e-4 (0, 0.9), 5 critic steps "
                "(Gulrajani et al. 2017)"),
    # Miyato et al. 2018, Table 1 setting C (lr 2e-4, betas 0.5/0.999, n_dis 1): the DCGAN-like
    # setting in which SN-GANs stayed stable while WGAN-GP and BN-critics degraded (Fig. 1).
    # Miyato & Koyama 2018: conditional batch norm in G, a projection D with spectral norm and
    # the hinge loss; optimiser as our sngan (setting C of Miyato et al. 2018) for short runs.
    "cgan": (dict(conditional=True, loss="hinge", reg="spectral", d_norm="none", optimizer="adam", lr_g=2e-4,
                  lr_d=2e-4, adam_beta1=0.5, adam_beta2=0.999, n_critic=1),
             "cGAN: class-conditional, conditional batch norm in G, projection D, hinge + spectral norm "
             "(Miyato & Koyama 2018)"),
    "sngan": (dict(loss="hinge", reg="spectral", d_norm="none", optimizer="adam", lr_g=2e-4, lr_d=2e-4,
                   adam_beta1=0.5, adam_beta2=0.999, n_critic=1),
              "SN-GAN: hinge loss, spectral norm in D, Adam 2e-4 (0.5, 0.999) (Miyato et al. 2018)"),
}


class DMain(NamedTuple):
    """What the Dmain phase (GAN._d_main) computed for one D update."""
    loss: torch.Tensor          # D's main loss, 0-d float32 (before any penalty)
    logits_real: torch.Tensor   # (B,) float32, D on its view of the real batch
    logits_fake: torch.Tensor   # (B,) float32, D on its view of the fakes
    real_d: torch.Tensor        # (B, C, H, W) D's view of the real batch (augmented, if configured)
    fake_d: torch.Tensor        # (B, C, H, W) D's view of the fakes (detached from G)


@register_model("gan", presets=PRESETS)
class GAN(GenerativeModel):
    """GAN (Goodfellow et al. 2014): the original minimax game on the DCGAN nets."""

    Config = GANConfig
    ddp_ready = True
    custom_roles = ("g", "d")

    def __init__(self, config: GANConfig):
        config.validate()
        super().__init__(config)
        c = config
        k = c.num_classes if c.conditional else 0   # cgan: conditional BN in G, a projection D
        G, D = (ResNetDecoder, ResNetDiscriminator) if c.arch == "resnet" else (Decoder, Discriminator)
        self.g = G(c.latent, c.channels, c.size, c.width, norm=c.g_norm, out="tanh", num_classes=k,
                   class_lr_mul=c.class_lr_mul)
        self.d = D(c.channels, c.size, c.width, norm=c.d_norm, num_classes=k)
        if c.arch == "dcgan":   # the ResNets keep PyTorch's (He-uniform) initialisation
            dcgan_init(self.g)
            dcgan_init(self.d)
        g_user, d_user = gan_nets(c)   # a user's own nets (custom.py), with their own initialisation
        self.g, self.d = g_user or self.g, d_user or self.d
        if c.reg == "spectral":
            # After init: the parametrization starts its power iteration from these weights.
            add_spectral_norm(self.d)
        if d_user is None:
            self.d.body.freeze(c.freeze_d)
        # D's view of every image, real or fake (augment=none: the images themselves)
        self.augment = DiscriminatorAugment(c, midpoint=ADA_MIDPOINTS[c.loss] or 0.0)   # None: no ADA (validate)
        self.d_loss, self.g_loss = LOSSES[c.loss]
        if c.ema > 0:
            # A submodule (not a plain attribute), so state_dict and save_pretrained carry it.
            self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)

    # ---- the contract
    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        make = OPTIMIZERS[c.optimizer]
        lr_d, d_cfg = c.lr_d, c
        if c.reg == "r1" and c.r1_every > 1 and c.optimizer == "adam":
            # Lazy R1 gives D k + 1 optimizer steps per k batches (k Dmain, one Dreg). StyleGAN2
            # (Karras et al. 2020, Appendix B; `mb_ratio = reg_interval / (reg_interval + 1)` in
            # their training loop) scales the learning rate by c = k / (k + 1) and raises Adam's
            # betas to the power c: over k batches D's k + 1 steps then add up to k * lr and its
            # moment estimates decay by beta ** k, as k steps would without the extra one.
            ratio = c.r1_every / (c.r1_every + 1)
            lr_d = c.lr_d * ratio
            d_cfg = dataclasses.replace(c, adam_beta1=c.adam_beta1**ratio, adam_beta2=c.adam_beta2**ratio)
        d_params = [p for p in self.d.parameters() if p.requires_grad]     # without Freeze-D's blocks
        return {"g": make(self.g.parameters(), c.lr_g, c, 0.0),            # no decay on G: see GANConfig
                "d": make(d_params, lr_d, d_cfg, c.weight_decay)}

    def _z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # Drawn on the generator's own device, so a CPU generator gives the same z on any device.
        dev = generator.device if generator is not None else self.device
        return torch.randn(n, self.config.latent, generator=generator, device=dev).to(self.device)  # (n, latent)

    @property
    def batches_per_step(self) -> int:
        """One step is one generator update and the n_critic discriminator updates before it,
        each on its own batch: how StudioGAN and mimicry count a GAN's steps, so `--steps N`
        means N generator updates for every loss and regulariser."""
        return self.config.n_critic

    def updates_per_step(self) -> dict[str, float]:
        c = self.config
        d = float(c.n_critic)
        if c.reg == "r1":       # the lazy R1 phase is a separate D update every r1_every D steps
            d += c.n_critic / c.r1_every
        return {"g": 1.0, "d": d}

    def updates_done(self) -> dict[str, int] | None:
        """With lazy R1 the D updates that ran: n_critic per step plus R1's, which run at D
        updates 0, r1_every, 2 r1_every, ... (ceil(n / r1_every) of n, not the rounded mean
        rate); read from the optimizers' counters where they keep them."""
        return self.optimizer_steps() if self.config.reg == "r1" and self.config.r1_every > 1 else None

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One generator update and the n_critic discriminator updates before it.

        The phases of StyleGAN2-ADA's loop (Karras et al. 2020), each a method below:
        for each of the n_critic D updates, `_fakes` (G's samples for it), `_d_main` (D's main
        loss), `_d_gp` (reg=gp: joins Dmain's loss, so it shares its update), `_d_step` (the
        optimizer step, with reg=gradclip before it and reg=clip after it) and, on the D updates
        lazy R1 is due, `_d_reg` (its own update); then `_g_main` and the EMA. reg=spectral
        (Miyato et al. 2018) acts inside D's forward (add_spectral_norm), so no phase names it.

        Args:
            x: n_critic batches of real images stacked, (n_critic * B, C, H, W) in [-1, 1]:
                each D update gets its own batch of B.
            step: the generator updates done so far.
        Returns 0-d detached float32 tensors (no host sync): loss/d, d/real, d/fake (averaged
        over the D updates), loss/g, and reg/gp or reg/r1 when computed.
        """
        c = self.config
        opt = self.optimizers()
        if c.conditional:   # (images, labels): each image's class weights, (n_critic * B, K)
            x, y = x
            w_all = class_weights(y, len(y), c.num_classes, x.device).chunk(c.n_critic)
        batches = x.chunk(c.n_critic)
        b = batches[0].shape[0]
        out: dict[str, torch.Tensor] = {}
        sums: dict[str, torch.Tensor] = {}

        for i, xb in enumerate(batches):
            d_update = step * c.n_critic + i          # D updates done before this one
            # cgan: the fakes are drawn for the real batch's classes, so D compares like with like
            # and a penalty's interpolates keep one class (None: unconditional)
            w = w_all[i] if c.conditional else None
            # The last D update's fakes are kept with G's graph and reused by Gmain (as the
            # DCGAN reference loops do): G has not changed since they were drawn, so Gmain's
            # loss is the same function of G's weights, and one G forward per step is saved.
            fake_g = self._fakes(b, w, keep_graph=i == c.n_critic - 1, device=xb.device)   # (B, C, H, W)

            # (1) Dmain: one discriminator update on this batch against fresh fakes.
            d = self._d_main(xb, fake_g.detach(), w)
            total = d.loss
            if c.reg == "gp":
                gp = self._d_gp(d.real_d, d.fake_d, w)
                total = total + c.gp_weight * gp
                sums["reg/gp"] = sums.get("reg/gp", 0) + gp.detach()
            self._d_step(total, opt["d"])
            sums["loss/d"] = sums.get("loss/d", 0) + d.loss.detach()
            sums["d/real"] = sums.get("d/real", 0) + d.logits_real.detach().mean()
            sums["d/fake"] = sums.get("d/fake", 0) + d.logits_fake.detach().mean()

            # (2) Dreg: lazy R1, a separate update every r1_every D updates, scaled by r1_every
            # so the penalty's average strength matches applying it every step (StyleGAN2 §B).
            if c.reg == "r1" and d_update % c.r1_every == 0:
                out["reg/r1"] = self._d_reg(d.real_d, w, opt["d"])
        for k, v in sums.items():
            out[k] = v / c.n_critic

        # (3) Gmain: one generator update against the updated D, on the last D update's fakes.
        out["loss/g"] = self._g_main(fake_g, w, opt["g"])
        if c.augment == "ada":
            out["aug/p"] = self.augment.p                                # ADA's p(t), plotted by the report
        # (4) the EMA of G's weights and norm statistics
        if c.ema > 0:
            self._update_ema(step)
        return out

    # ---- the phases of train_step, in their order
    def _fakes(self, b: int, w: torch.Tensor | None, keep_graph: bool, device: torch.device) -> torch.Tensor:
        """b fresh fakes G(z), (b, C, H, W), from z ~ N(0, I) (b, latent); G's forward under
        autocast, so they may be bf16 / fp16. cgan: w (b, K) the real batch's class weights.
        With G's graph only when keep_graph (the fakes Gmain reuses). Under DDP, G's wrapper:
        Gmain's backward all-reduces G's gradients; z is this rank's rows of a draw for the
        global batch (see parallel.py)."""
        with torch.set_grad_enabled(keep_graph), self.autocast():
            return self.ddp("g")(parallel.randn(b, self.config.latent, device=device), w)   # (b, C, H, W)

    def _d_main(self, xb: torch.Tensor, fake: torch.Tensor, w: torch.Tensor | None) -> DMain:
        """Dmain: D's main loss on a real batch xb (B, C, H, W) against detached fakes
        (B, C, H, W), the configured loss of the logits (see LOSSES: Goodfellow et al. 2014;
        Arjovsky et al. 2017; Mao et al. 2017; Lim & Ye 2017). D's forwards under autocast; the
        loss on float32 logits. Also feeds ADA's overfitting heuristic the real logits. No
        backward: `_d_step` takes it, with any penalty that joins it."""
        # D judges augmented images only (augment=diffaug / ada), real and fake alike, so
        # the augmentations cannot leak into G (Zhao et al. 2020; Karras et al. 2020).
        xb_d, fake_d = self.augment(xb), self.augment(fake)
        with self.autocast():
            logits_real = self.ddp("d")(xb_d, w)                     # (B,)
            logits_fake = self.ddp("d")(fake_d, w)                   # (B,)
        logits_real, logits_fake = logits_real.float(), logits_fake.float()
        self.augment.observe(logits_real)                            # ADA's r_t (no-op otherwise)
        return DMain(self.d_loss(logits_real, logits_fake), logits_real, logits_fake, xb_d, fake_d)

    def _d_gp(self, real_d: torch.Tensor, fake_d: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        """reg=gp: the gradient penalty E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017),
        unweighted, 0-d float32, on interpolates of D's views of the real and fake batches
        (B, C, H, W) each (one draw of B interpolation weights). Differentiable in D's weights:
        the caller adds gp_weight times it to Dmain's loss, for the same update."""
        return gradient_penalty(lambda t: self._critic(t, w), real_d.detach(), fake_d.float())

    def _d_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """One optimizer step of D on `loss` (0-d: Dmain's loss, plus GP's term), with the
        regularizers that act on the step itself: reg=gradclip clips the gradients' global
        norm before it, reg=clip clips the weights after it (Arjovsky et al. 2017)."""
        c = self.config
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        if c.reg == "gradclip":
            self.unscale(opt)                     # clip the true gradients, not scaled ones
            torch.nn.utils.clip_grad_norm_(self.d.parameters(), c.grad_clip)
        self.step(opt)
        # Each update is followed by end_step: fp16's GradScaler allows one step per
        # optimizer between two scale updates, and D steps up to 2 * n_critic times here.
        self.end_step()
        if c.reg == "clip":
            # After the step, so that G (and the next D step) always see a clipped critic.
            clip_weights_(self.d, c.clip_value)

    def _d_reg(self, real_d: torch.Tensor, w: torch.Tensor | None, opt: torch.optim.Optimizer) -> torch.Tensor:
        """Dreg (reg=r1, when due): one D update on the R1 penalty ||grad_x D(x)||^2 (Mescheder
        et al. 2018, eq. 9) on D's view of the real batch real_d (B, C, H, W), i.e. on what D
        sees (ADA's R1), weighted gamma / 2 and scaled by r1_every for the lazy schedule
        (Karras et al. 2020, StyleGAN2 Appendix B). Returns the unweighted R1, 0-d, detached."""
        c = self.config
        seen: list[torch.Tensor] = []
        r1 = r1_penalty(lambda t: seen.append(self._critic(t, w, self.ddp("d"))) or seen[-1],
                        real_d.detach())                            # on what D sees (ADA's R1)
        opt.zero_grad(set_to_none=True)
        # + 0 * logits: R1's double backward gives D's last bias no gradient at all,
        # and a DDP wrapper waits for every parameter's (as StyleGAN2-ADA's Dr1 phase)
        self.backward(c.r1_gamma / 2 * r1 * c.r1_every + 0 * seen[0].sum())
        self.step(opt)
        self.end_step()
        return r1.detach()

    def _g_main(self, fake_g: torch.Tensor, w: torch.Tensor | None, opt: torch.optim.Optimizer) -> torch.Tensor:
        """Gmain: one generator update on the configured generator loss (see LOSSES: minimax
        and the non-saturating ns of Goodfellow et al. 2014, ls of Mao et al. 2017, -E[D(G(z))]
        for hinge and wasserstein) of the updated D's logits on D's view of fakes fake_g
        (B, C, H, W) that still carry G's graph (DiffAugment / ADA are differentiable: Zhao et
        al. 2020; Karras et al. 2020). Returns the loss, 0-d float32, detached."""
        fake_g = self.augment(fake_g)                                    # differentiable: G learns through it
        with self.autocast():
            logits_fake = self.d(fake_g, w)                              # (B,) against the updated D
        loss_g = self.g_loss(logits_fake.float())
        opt.zero_grad(set_to_none=True)
        # Only G's gradients: D's parameters are left untouched (and not computed).
        self.backward(loss_g, inputs=list(self.g.parameters()))
        self.step(opt)
        self.end_step()
        return loss_g.detach()

    def _critic(self, x: torch.Tensor, w: torch.Tensor | None = None, net: nn.Module | None = None) -> torch.Tensor:
        """D as the penalties differentiate it, with float32 logits. Under bf16 its forward is
        autocast (bf16 has float32's range); under fp16 it runs in float32: the input gradient
        of a loss-scaled critic overflows fp16's range (65504) within a few steps, and a
        penalty of inf would stop training as diverged. The outer backward of the penalty
        still goes through the scaler with the rest of D's loss."""
        net = net or self.d
        if self.scaler is not None:
            return net(x, w).float()
        with self.autocast():
            return net(x, w).float()

    def _ema_decay(self, n: int) -> float:
        """The decay of the n-th EMA update (n = 1 for the first generator update): 0 (copy G)
        while n <= ema_start, then `ema`, capped during the ramp-up so that the half-life is
        at most ema_rampup * (n - 1) updates (StyleGAN2-ADA: beta = 0.5 ** (1 / half-life))."""
        c = self.config
        if n <= c.ema_start:
            return 0.0
        if c.ema_rampup > 0:
            half_life = c.ema_rampup * (n - 1)
            return 0.0 if half_life == 0 else min(c.ema, 0.5 ** (1 / half_life))
        return c.ema

    def _update_ema(self, step: int) -> None:
        # The generator update this is: a step is one G update, so step + 1; stateless, so a
        # resumed run continues the same schedule.
        update_ema_(self.g_ema, self.g, self._ema_decay(step + 1))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (n, latent) -> images (n, C, H, W) in [-1, 1] from the EMA generator if
        enabled, else G, in eval mode. cgan: `labels` (n,) classes (or (n, K) class weights);
        None decodes with the uniform mixture of the classes."""
        net = self.g_ema if self.config.ema > 0 else self.g
        was_training = net.training
        net.eval()
        z = z.to(self.device)
        try:
            w = class_weights(labels, len(z), self.config.num_classes, self.device) if self.config.conditional else None
            return net(z, w)                                             # (n, C, H, W)
        finally:
            net.train(was_training)

    def realism(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """D's logit that images x (B, C, H, W) are real, (B,) in float32, in eval mode."""
        with evaluating(self.d):
            return self.d(x).float()

    def d_features(self, x: torch.Tensor) -> torch.Tensor:
        """D's penultimate activations for images x (B, C, H, W): the body's output before the
        logit head, flattened, (B, F) float32, in eval mode. What a GAN learnt about images, as
        features for a probe (Radford et al. 2016, sec. 5.1, classify with D's features)."""
        with evaluating(self.d):
            return self.d.features(x).float()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, *, seed: int | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [-1, 1] from prior draws z ~ N(0, I). cgan: of the classes
        `labels` (n,), or of classes drawn uniformly (after z, from the same generator)."""
        generator = seeded_generator(seed, generator)
        z = self._z(n, generator)
        if self.config.conditional and labels is None:
            dev = generator.device if generator is not None else self.device
            labels = torch.randint(self.config.num_classes, (n,), generator=generator, device=dev)
        return self.decode(z, labels)
