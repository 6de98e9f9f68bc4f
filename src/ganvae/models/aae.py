"""AAE: the adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2016,
"Adversarial Autoencoders").

An autoencoder whose codes are pushed towards a prior p(z) = N(0, I) by a GAN played in the
latent space: a discriminator D tells codes drawn from the prior ("real") from codes of
training images ("fake"), and the encoder, as the generator, learns to fool it. What is matched
is the aggregate posterior q(z) = E_x q(z|x), not each q(z|x) as in a VAE, so the encoder may
be deterministic (the paper's first choice) or a Gaussian q(z|x) sampled by reparameterisation
(its second; `encode` then returns the mean). Once q(z) fills the prior, decoding prior draws
gives images: the decoder is the generative model. The adversary sees only the aggregate, so
nothing but L_recon acts on a Gaussian q(z|x)'s own variance, and it shrinks: on `shapes` the
logged diag/post_std fell from 1 to ~0.01 within 300 steps (the encoder turns nearly
deterministic).

    L_recon = E_x |x - Dec(z)|^2,  z ~ q(z|x)          (or BCE; summed over pixels, as the AE)
    L_D     = -E_{z ~ p} log D(z) - E_x log(1 - D(z)),  z ~ q(z|x)
    L_G     = -E_x log D(z)                             (non-saturating)

The paper trains in two phases on every batch: the reconstruction phase (encoder and decoder
minimise L_recon), then the regularization phase (D minimises L_D, then the encoder minimises
L_G). One `train_step` here is:

    (1) regularization, discriminator: D updates on prior draws against the batch's codes,
        which are fixed inputs for it (detached);
    (2) reconstruction + regularization, generator: one update of encoder and decoder on
        L_recon + adv_weight * L_G, against the updated D; D's weights get no gradient.

The paper's encoder takes two SGD steps per batch, one per phase, with a learning rate per
phase; to first order they are one step on L_recon + (lr_reg / lr_recon) * L_G, and adv_weight
is that ratio. The two encoder steps are merged because of Adam: its step is invariant to the
scale of its loss, so a separate Adam for the encoder's adversarial update would take full-size
steps whatever the weight and make adv_weight inert. One Adam over both terms keeps the weight
meaningful: the adversarial gradient counts relative to the reconstruction gradient. Each
optimizer ("ae": encoder + decoder, "disc": D) steps once per train_step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput
from ..nets import dcgan_init, make_decoder, make_encoder
from ..parallel import randn_rows
from ..registry import register_model
from .base import GenerativeModel, ModelConfig, seeded_generator
from .common import check_adam, evaluating, normal, reparameterize


@dataclass
class AAEConfig(ModelConfig):
    # deterministic: z = Enc(x); gaussian: q(z|x) = N(mu, exp(logvar)), z drawn by
    # reparameterisation (the paper's second option; encode() gives mu).
    encoder: Literal["deterministic", "gaussian"] = "deterministic"
    # mse: tanh decoder vs x in [-1, 1]; bce: logits vs (x + 1) / 2. Summed over pixels and
    # averaged over the batch, as the AE's loss, so loss/recon compares with its number.
    recon: Literal["mse", "bce"] = "mse"
    # normalization in the encoder and decoder: batch norm (DCGAN's), layer norm or none. Layer
    # norm and none treat each image alone, so N DDP processes compute what one process does
    # (to float rounding); batch norm normalises each process's B / N rows by their own statistics
    norm: Literal["batch", "layer", "none"] = "batch"
    # Weight of the encoder's adversarial loss L_G against L_recon. L_recon sums ~800 squared
    # pixel errors per image, L_G is about log 2, and while D is untrained the encoder's gradient
    # from L_recon is ~100x that from L_G (measured on `shapes`, width 16, batches of 64). Once
    # D separates codes from the prior, its gradient grows until the two are comparable (1.5-5x
    # apart at latents 32 and 64 with adv_weight 1): the game balances itself over a range of
    # weights. In 300 steps, weights 1, 3 and 10 all brought the codes near N(0, I); at latents
    # 32 and 64, 1 gave both the lowest reconstruction error (5% above the plain AE's,
    # adv_weight 0, at latent 32) and the codes closest to the prior, 10 the worst of both;
    # 100 doubled the reconstruction error. L_recon is a sum over pixels, so larger images
    # give it more weight at the same setting.
    adv_weight: float = 1.0
    d_hidden: int = 1000        # width of D's two hidden layers: the paper's; ~7% of a step at width 64
    lr: float = 1e-3            # encoder + decoder (the AE's)
    lr_d: float = 1e-3          # the latent discriminator
    # DCGAN's momentum, for both optimizers: the encoder is the generator of the latent game.
    # With 0.9 (latent 8, adv_weight 10, same seed) the game oscillated and the reconstruction
    # error ended 2.5x that at 0.5.
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.encoder not in ("deterministic", "gaussian"):
            raise BadInput(f"encoder={self.encoder!r}: choose deterministic or gaussian")
        if self.norm not in ("batch", "layer", "none"):
            raise BadInput(f"norm={self.norm!r}: choose batch, layer or none")
        if self.recon not in ("mse", "bce"):
            raise BadInput(f"recon={self.recon!r}: choose mse or bce")
        if not self.adv_weight >= 0:
            raise BadInput(f"adv_weight={self.adv_weight}: must be at least 0 (0 = a plain autoencoder)")
        if self.d_hidden < 1:
            raise BadInput(f"d_hidden={self.d_hidden}: must be at least 1")
        if not self.lr_d > 0:
            raise BadInput(f"lr_d={self.lr_d}: must be positive")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)


# ---- the losses, per batch, in float32 (pure functions; the tests check them by hand)

def reconstruction_loss(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction loss (B,), summed over pixels, as the AE's.

    Args:
        out: the decoder's output (B, C, H, W): tanh images for mse, logits for bce.
        x: real images (B, C, H, W) in [-1, 1].
        kind: "mse" (squared error on [-1, 1]) or "bce" (cross-entropy against (x + 1) / 2).
    """
    out, x = out.float(), x.float()
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none")
    else:
        per_pixel = (out - x).pow(2)
    return per_pixel.flatten(1).sum(1)


def d_loss(logits_prior: torch.Tensor, logits_code: torch.Tensor) -> torch.Tensor:
    """D's cross-entropy: -mean log D(z_prior) - mean log(1 - D(z_code)), from logits (B,) each.

    softplus(-l) = -log sigmoid(l) and softplus(l) = -log(1 - sigmoid(l)), stable for any l.
    """
    return F.softplus(-logits_prior.float()).mean() + F.softplus(logits_code.float()).mean()


def g_loss(logits_code: torch.Tensor) -> torch.Tensor:
    """The encoder's non-saturating adversarial loss -mean log D(z_code), from logits (B,)."""
    return F.softplus(-logits_code.float()).mean()


def aggregate_kl(z: torch.Tensor) -> torch.Tensor:
    """sum_d KL(N(m_d, v_d) || N(0, 1)) for the diagonal Gaussian fitted to codes z (B, latent).

    How far the aggregate posterior's per-dimension mean and variance are from the prior's (a
    moment check only: a non-Gaussian q(z) with the right moments scores 0). As VAE-GAN's
    diag/agg_kl: unbiased variances, floored so a dead dimension gives a large finite number.
    """
    z = z.detach().float()
    m, v = z.mean(0), z.var(0).clamp_min(1e-6)                           # (latent,) each
    return 0.5 * (v + m.pow(2) - 1 - v.log()).sum()


class LatentDiscriminator(nn.Module):
    """z (B, latent) -> logits (B,): an MLP with two hidden layers, as the paper's latent D.

    LeakyReLU(0.2) so no unit's gradient dies for the codes of a whole region of the latent
    space, where the encoder would then get no signal. The Linear layers keep PyTorch's default
    initialisation (dcgan_init sets only convolutions and norms: this is no DCGAN net).
    """

    def __init__(self, latent: int, hidden: int, slope: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.LeakyReLU(slope),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(slope),
                                 nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).flatten()


@register_model("aae")
class AAE(GenerativeModel):
    """AAE (Makhzani et al. 2016): an autoencoder whose codes a latent GAN matches to N(0, I)."""

    Config = AAEConfig
    ddp_ready = True
    has_encoder = True
    parents = ("ae", "dcgan")

    def __init__(self, config: AAEConfig):
        config.validate()
        super().__init__(config)
        c = config
        gaussian = c.encoder == "gaussian"
        self.encoder = make_encoder(c.arch, c.channels, c.size, c.width,
                                    out_dim=2 * c.latent if gaussian else c.latent, norm=c.norm)
        # bce: raw logits (the loss applies the sigmoid stably); mse: tanh images in [-1, 1].
        self.decoder = make_decoder(c.arch, c.latent, c.channels, c.size, c.width,
                                    out="none" if c.recon == "bce" else "tanh", norm=c.norm)
        self.discriminator = LatentDiscriminator(c.latent, c.d_hidden)
        dcgan_init(self)   # the encoder and decoder as every family's, so families compare fairly

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.adam_beta1, c.adam_beta2)
        ae = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {"ae": torch.optim.Adam(ae, lr=c.lr, betas=betas),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=betas)}

    def codes(self, x: torch.Tensor, encoder: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, logvar) for a batch in the current mode: z (B, latent) in float32, a draw of
        q(z|x) for the gaussian encoder (logvar (B, latent)), Enc(x) for the deterministic one
        (logvar None)."""
        with self.autocast():
            h = (encoder or self.encoder)(x)                             # (B, latent) or (B, 2 latent)
        h = h.float()                                                    # the noise and the losses in float32
        if self.config.encoder == "gaussian":
            mu, logvar = h.chunk(2, dim=1)                               # (B, latent) each
            return reparameterize(mu, logvar), logvar
        return h, None

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self.train()
        c = self.config
        opts = self.optimizers()
        # One encoding serves both phases: the encoder does not change before phase (2).
        z, logvar = self.codes(x, self.ddp("encoder"))                   # (B, latent)

        # (1) Regularization phase, discriminator: prior draws are "real", the codes "fake".
        # The codes are detached: this loss trains D alone.
        z_prior = randn_rows(z)                                          # (B, latent) ~ N(0, I)
        with self.autocast():
            logits_prior = self.ddp("discriminator")(z_prior)            # (B,)
            logits_code = self.ddp("discriminator")(z.detach())          # (B,)
        logits_prior, logits_code = logits_prior.float(), logits_code.float()
        loss_d = d_loss(logits_prior, logits_code)
        opts["disc"].zero_grad(set_to_none=True)
        self.backward(loss_d, inputs=list(self.discriminator.parameters()))
        self.step(opts["disc"])

        # (2) Reconstruction phase and the encoder's adversarial update, as one step of
        # encoder and decoder (see the module docstring), against the D just updated.
        with self.autocast():
            out = self.ddp("decoder")(z)                                 # (B, C, H, W)
            logits_gen = self.discriminator(z)                           # (B,), D fixed below
        # Summed over pixels, in float32 (a bf16 sum over 784 pixels keeps ~3 digits).
        recon = reconstruction_loss(out, x, c.recon).mean()
        loss_g = g_loss(logits_gen)
        loss_ae = recon + c.adv_weight * loss_g if c.adv_weight > 0 else recon
        ae_params = [*self.encoder.parameters(), *self.decoder.parameters()]
        opts["ae"].zero_grad(set_to_none=True)
        # inputs: only the autoencoder's leaves get gradients; D's weights are constants here,
        # and L_G reaches the decoder not at all (it depends on z alone), so the decoder's
        # gradient is L_recon's.
        self.backward(loss_ae, inputs=ae_params)
        self.step(opts["ae"])
        self.end_step()   # each optimizer stepped once: one scale update (fp16)

        # Diagnostics from phase (1)'s logits: how often D was right on each side; and how far
        # the batch's codes are from N(0, I) in their first two moments.
        logs = {"loss/recon": recon.detach(), "loss/d": loss_d.detach(), "loss/g": loss_g.detach(),
                "diag/d_acc_real": (logits_prior.detach() > 0).float().mean(),
                "diag/d_acc_fake": (logits_code.detach() < 0).float().mean(),
                "diag/agg_kl": aggregate_kl(z)}
        if logvar is not None:
            # the posterior's mean standard deviation: a gaussian encoder that drives it to 0
            # has become a deterministic one
            logs["diag/post_std"] = logvar.detach().mul(0.5).exp().mean()
        return logs

    # ---- inference (eval mode: batch norm on its running statistics)
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> codes (B, latent); the mean of q(z|x) for the gaussian encoder."""
        with evaluating(self):
            h = self.encoder(x)
        return h[:, :self.config.latent] if self.config.encoder == "gaussian" else h

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent) -> images (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            out = self.decoder(z)
        return 2 * torch.sigmoid(out) - 1 if self.config.recon == "bce" else out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        """Decoded draws of the prior N(0, I), which the aggregate posterior was matched to."""
        generator = seeded_generator(seed, generator)
        return self.decode(normal((n, self.config.latent), generator, self.device))
