"""BiGAN / ALI: a GAN that learns an encoder by discriminating (image, code) pairs.

Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning" (BiGAN); Dumoulin et al.
2017, "Adversarially Learned Inference" (ALI), the same game with a stochastic encoder.

Three networks: a generator G: z -> x, an encoder E: x -> z and a discriminator D(x, z) that
sees a pair. Real pairs are (x, E(x)) with x from the data; fake pairs are (G(z), z) with z
from the prior N(0, I). With sigma the logistic function and D = sigma(logit):

    V(D, E, G) = E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]

D maximises V; E and G minimise it. At the optimum the two joint distributions
p(x) q(z|x) and p(z) p(x|z) are equal, so E inverts G (BiGAN, Theorem 2: E = G^-1 almost
everywhere for a deterministic encoder). Neither network ever sees a reconstruction error:
inference is learned from the adversarial signal alone.

E and G do not minimise V itself but the "inverted" objective, the labels swapped, which
Donahue et al. train them with: E wants D to call its pairs fake, G wants D to call its pairs
real,

    L_D  = -log D(x, E(x)) - log(1 - D(G(z), z))
    L_EG = -log(1 - D(x, E(x))) - log D(G(z), z)

which has the same fixed point as the minimax game but strong gradients while D is winning
(Goodfellow et al. 2014, §3). Both are written as softplus of the logits (`bigan_losses`).

One `train_step` is two explicit phases, as gan.py's Dmain and Gmain:
  1. D: one update of D on the pairs, E(x) and G(z) detached (fixed inputs).
  2. E+G: one update of E and G together (one optimizer, "gen") against the updated D,
     reusing the E(x) and G(z) of phase 1: E and G have not changed since, so the loss is
     the same function of their weights, and one encoder and one generator forward are saved.
Alternating, as gan.py, rather than simultaneous (vaegan.py's one graph and
torch.autograd.grad per network): E and G answer the D they will face next, as in the DCGAN
loop, and a future D regulariser (R1, augmentation) has a D phase to go into.

Every `diag_every` steps, `diag/recon_mse` (G(E(x)) against x, on [0, 1] intensities, as
`ganvae eval` reports it) and `diag/latent_mse` (E(G(z)) against z, per dimension; 1 is what
an encoder that outputs 0 scores) show whether E is becoming G's inverse, in eval mode and
without gradients: the adversarial losses alone say little about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .. import parallel
from ..errors import BadInput
from ..nets import ConvBody, GlobalBatchDropout, dcgan_init, make_decoder, make_encoder
from ..registry import register_model
from .base import GenerativeModel, ModelConfig, seeded_generator
from .common import check_adam, evaluating, normal, reparameterize

ENCODERS = ("deterministic", "gaussian")
NORMS = ("batch", "layer", "none")


@dataclass
class BiGANConfig(ModelConfig):
    # deterministic: E(x) is a point (BiGAN); gaussian: E outputs (mu, logvar) and the real
    # pair's code is a reparameterized sample, so D's gradient reaches mu and sigma (ALI).
    # encode() returns mu either way.
    encoder: Literal["deterministic", "gaussian"] = "deterministic"
    # normalization in E and G (D's is d_norm): batch norm (DCGAN's), layer norm or none. Layer
    # norm and none treat each image alone, so N DDP processes compute what one process does
    # (to float rounding); batch norm normalises each process's B / N rows by their own statistics
    norm: Literal["batch", "layer", "none"] = "batch"
    # E and G share one optimizer ("gen") at lr_g: they are one player of the game.
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    # DCGAN's Adam (2e-4, momentum 0.5 instead of 0.9 for the adversarial game; Radford et al.
    # 2016), used by both optimizers.
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    # Normalisation of D's image branch. "layer" (per-sample) by default: the game is about
    # D(x, z) as a function of one pair, and BiGAN's optimal-D and inversion arguments are
    # pointwise. With "batch" each logit depends on the other pairs in the batch; D sees real
    # and fake pairs in one forward (so both are normalised by the same statistics, as in
    # vaegan.py, rather than by per-kind statistics that would let D tell the two batches
    # apart by their moments), but then G's gradient also flows through the real pairs' logits
    # via the shared statistics. (One seed, 500 steps on shapes at width 8: with "batch" D won
    # outright, L_D 0.03-0.07 over steps 100-400; with "layer" it stayed 0.3-0.7.)
    d_norm: Literal["batch", "layer", "none"] = "layer"
    # Dropout in D on the joined features of both branches and on its hidden layer; ALI uses
    # 0.2 in D (its preset sets that): noise against a D that memorises the pairs. 0 = off.
    d_dropout: float = 0.0
    # Every this many steps, log diag/recon_mse and diag/latent_mse (see the module
    # docstring): one no-grad encoder and generator pass over 2B images. 0 = never.
    diag_every: int = 10

    def validate(self) -> None:
        super().validate()
        # Literal fields are checked when set from strings; a config built in Python is not.
        if self.encoder not in ENCODERS:
            raise BadInput(f"encoder={self.encoder!r}: choose one of {', '.join(ENCODERS)}")
        if self.norm not in NORMS:
            raise BadInput(f"norm={self.norm!r}: choose one of {', '.join(NORMS)}")
        if self.d_norm not in NORMS:
            raise BadInput(f"d_norm={self.d_norm!r}: choose one of {', '.join(NORMS)}")
        for key in ("lr_g", "lr_d"):
            if not getattr(self, key) > 0:
                raise BadInput(f"{key}={getattr(self, key)}: must be positive")
        if not 0 <= self.d_dropout < 1:
            raise BadInput(f"d_dropout={self.d_dropout}: must be in [0, 1) (0 turns it off)")
        if self.diag_every < 0:
            raise BadInput(f"diag_every={self.diag_every}: must be at least 0 (0 = off)")
        # The learning rates are checked above (by their own names); this checks the betas.
        check_adam(self.lr_g, self.adam_beta1, self.adam_beta2)


def bigan_losses(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's and the encoder+generator's losses from D's logits.

    Args:
        logits_real: D's logits (B,) on real pairs (x, E(x)).
        logits_fake: D's logits (B,) on fake pairs (G(z), z).
    Returns:
        (loss_d, loss_eg), 0-d, means over the batch:
        loss_d  = -log sigma(l_real) - log(1 - sigma(l_fake)),
        loss_eg = -log(1 - sigma(l_real)) - log sigma(l_fake)   (the labels swapped).
    """
    # -log sigma(l) = softplus(-l) and -log(1 - sigma(l)) = softplus(l), stable for any l.
    loss_d = F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()
    loss_eg = F.softplus(logits_real).mean() + F.softplus(-logits_fake).mean()
    return loss_d, loss_eg


class JointDiscriminator(nn.Module):
    """D(x, z): images (B, C, S, S) and codes (B, latent) -> logits (B,).

    x branch: the DCGAN discriminator's body, flattened (no 1-logit head: the decision is
    about the pair, so the image features go to the joint layers whole). z branch: one
    Linear-LeakyReLU. Joint: concatenation, Linear-LeakyReLU, Linear to one logit.
    """

    def __init__(self, channels: int, size: int, width: int, latent: int, norm: str = "layer",
                 dropout: float = 0.0):
        super().__init__()
        self.body = ConvBody(channels, size, width, norm)              # -> (B, 2w, b, b) at 28x28
        fx = self.body.out_channels * self.body.base ** 2              # 2w * 7 * 7 at 28x28
        hidden = 8 * width                                             # 512 at DCGAN width 64
        self.z_net = nn.Sequential(nn.Linear(latent, hidden), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(GlobalBatchDropout(dropout), nn.Linear(fx + hidden, hidden), nn.LeakyReLU(0.2),
                                   GlobalBatchDropout(dropout), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """Logits (B,) of the pairs (x, z); `groups`: B is that many stacked parts (dropout)."""
        hx = self.body(x).flatten(1)                                   # (B, fx)
        hz = self.z_net(z)                                             # (B, hidden)
        h = torch.cat([hx, hz], 1)
        for layer in self.joint:
            h = layer(h, groups) if isinstance(layer, GlobalBatchDropout) else layer(h)
        return h.flatten()                                             # (B,)


@register_model("bigan", presets={
    "ali": ({"encoder": "gaussian", "d_dropout": 0.2},
            "ALI: BiGAN with a stochastic (reparameterized) encoder and dropout 0.2 in D (Dumoulin et al. 2017)")})
class BiGAN(GenerativeModel):
    """BiGAN (Donahue et al. 2017): a GAN whose discriminator judges (image, code) pairs, learning an encoder."""

    Config = BiGANConfig
    ddp_ready = True
    has_encoder = True
    parents = ("ae", "dcgan")

    def __init__(self, config: BiGANConfig):
        config.validate()
        super().__init__(config)
        c = config
        out_dim = 2 * c.latent if c.encoder == "gaussian" else c.latent   # (mu, logvar) or z
        # arch=resnet: the encoder and the generator; the joint (x, z) discriminator stays DCGAN's
        self.encoder = make_encoder(c.arch, c.channels, c.size, c.width, out_dim=out_dim, norm=c.norm)
        self.generator = make_decoder(c.arch, c.latent, c.channels, c.size, c.width, out="tanh", norm=c.norm)
        self.discriminator = JointDiscriminator(c.channels, c.size, c.width, c.latent, c.d_norm, c.d_dropout)
        # Convolutions and norms as DCGAN. D's Linear layers keep PyTorch's fan-in-scaled
        # default: a fixed std of 0.02 would scale the joint layer's output with the square root
        # of its width (6784 inputs at 28x28, width 64).
        dcgan_init(self)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.adam_beta1, c.adam_beta2)
        gen = list(self.encoder.parameters()) + list(self.generator.parameters())
        return {"gen": torch.optim.Adam(gen, lr=c.lr_g, betas=betas),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=betas)}

    def _codes(self, h: torch.Tensor, sample: bool) -> torch.Tensor:
        """The encoder's output (B, out_dim) -> codes (B, latent): itself (deterministic), or
        for the gaussian encoder a reparameterized sample (sample=True) or the mean."""
        if self.config.encoder == "deterministic":
            return h
        mu, logvar = h.chunk(2, dim=1)                                 # (B, latent) each
        return reparameterize(mu, logvar) if sample else mu

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One D update, then one E+G update (see the module docstring).

        Args:
            x: real images (B, C, H, W) in [-1, 1].
            step: the steps done so far (schedules the diagnostics).
        Returns 0-d detached float32 tensors: loss/d (before D's update), loss/g (E and G's
        loss, against the updated D), diag/d_acc_real and diag/d_acc_fake (how often D is right
        on each kind of pair, before its update), and every diag_every steps diag/recon_mse and
        diag/latent_mse.
        """
        c = self.config
        self.train()
        opts = self.optimizers()
        b = len(x)
        # The pairs. Draws in a fixed order (the tests rebuild them): z, then the encoder's noise.
        z = parallel.randn(b, c.latent, device=x.device)               # (B, latent), from the prior
        with self.autocast():
            h = self.ddp("encoder")(x)                                 # (B, latent) or (B, 2 latent)
        z_hat = self._codes(h.float(), sample=True)                    # (B, latent): E(x), float32
        with self.autocast():
            x_fake = self.ddp("generator")(z)                          # (B, C, H, W): G(z)
        # Real pairs first, fakes after, in one D forward: with d_norm=batch both kinds share
        # one set of statistics (see BiGANConfig.d_norm); otherwise it is just one call.
        pairs_x = torch.cat([x, x_fake])                               # (2B, C, H, W)
        pairs_z = torch.cat([z_hat, z])                                # (2B, latent)

        # (1) D: E(x) and G(z) are fixed inputs (detached): L_D reaches D's weights only.
        with self.autocast():
            logits = self.ddp("discriminator")(pairs_x.detach(), pairs_z.detach(), groups=2)   # (2B,)
        l_real, l_fake = logits.float().split(b)
        loss_d, _ = bigan_losses(l_real, l_fake)
        opts["disc"].zero_grad(set_to_none=True)
        self.backward(loss_d, inputs=list(self.discriminator.parameters()))
        self.step(opts["disc"])

        # (2) E+G against the updated D: L_EG reaches E through z_hat and G through x_fake; D's
        # weights are constants here (inputs= leaves their gradients uncomputed).
        with self.autocast():
            logits_eg = self.discriminator(pairs_x, pairs_z, groups=2)  # (2B,)
        _, loss_eg = bigan_losses(*logits_eg.float().split(b))
        gen = [p for group in opts["gen"].param_groups for p in group["params"]]
        opts["gen"].zero_grad(set_to_none=True)
        self.backward(loss_eg, inputs=gen)
        self.step(opts["gen"])
        # One scale update per train_step: each optimizer stepped once since the last one.
        self.end_step()

        out = {"loss/d": loss_d.detach(), "loss/g": loss_eg.detach(),
               "diag/d_acc_real": (l_real.detach() > 0).float().mean(),
               "diag/d_acc_fake": (l_fake.detach() < 0).float().mean()}
        if c.diag_every and step % c.diag_every == 0:
            out.update(self._inversion_errors(x, z))
        return out

    @torch.no_grad()
    def _inversion_errors(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """How far E is from inverting G, both ways, in eval mode (what encode / decode use)."""
        b = len(x)
        with evaluating(self), self.autocast():
            # eval-mode batch norm is per sample, so one batch of 2B computes each half alone
            images = self.generator(torch.cat([self._codes(self.encoder(x).float(), sample=False), z]))
            x_rec, x_gen = images.float().split(b)                     # G(E(x)), G(z): (B, C, H, W) each
            z_rec = self._codes(self.encoder(x_gen).float(), sample=False)   # E(G(z)): (B, latent)
        # recon on [0, 1] intensities, as `ganvae eval`'s recon_mse
        return {"diag/recon_mse": ((x_rec - x.float()) / 2).pow(2).mean(),
                "diag/latent_mse": (z_rec - z.float()).pow(2).mean()}

    # ---- inference, in eval mode (batch norm on running statistics)
    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [-1, 1] -> codes (B, latent): E(x), or its mean for ALI."""
        with evaluating(self):
            return self._codes(self.encoder(x), sample=False)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent) -> images (B, C, H, W) in [-1, 1]: G(z)."""
        with evaluating(self):
            return self.generator(z.to(self.device))

    def realism(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """D's logit that the pair (x, z) is a real image with its code, (B,), in eval mode."""
        with evaluating(self):
            return self.discriminator(x, z).float()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)): images (B, C, H, W) in [-1, 1]."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [-1, 1] from prior draws z ~ N(0, I)."""
        generator = seeded_generator(seed, generator)
        return self.decode(normal((n, self.config.latent), generator, self.device))
