"""VAE-GAN: a VAE whose reconstruction error is measured by a GAN discriminator.

Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a learned
similarity metric". The decoder doubles as the GAN generator; the pixel likelihood of a VAE
is replaced by a Gaussian likelihood on the discriminator's features Dis_l(x):

    L_prior = KL(q(z|x) || N(0, I))
    L_feat  = -log N(Dis_l(x) | Dis_l(x_tilde), I) = 0.5 |Dis_l(x) - Dis_l(x_tilde)|^2 (+ const)
    L_GAN   = log D(x) + log(1 - D(x_tilde)) + log(1 - D(x_p)),   x_tilde = Dec(z), x_p = Dec(z_p)

and each network minimises its own part (the paper's Algorithm 1):

    encoder:        beta * L_prior + L_feat
    decoder:        gamma * L_feat + GAN generator loss on x_tilde and x_p (non-saturating)
    discriminator:  the GAN discriminator loss, real vs (x_tilde, x_p)

The discriminator never minimises L_feat (it would collapse its features to make every
reconstruction perfect), and the encoder never sees the GAN loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import BadInput
from ..nets import Decoder, Discriminator, Encoder, dcgan_init
from ..registry import register_model
from .autoencoder import check_adam, evaluating, normal
from .base import GenerativeModel, ModelConfig
from .vae import GaussianEncoding, kl_normal, reparameterize


@dataclass
class VAEGANConfig(ModelConfig):
    # gamma weighs L_feat against the GAN loss in the decoder's objective. L_feat is a sum over
    # every discriminator feature (2*width*7*7 = 6272 of them at 28x28, width 64), so it is
    # hundreds of nats per image while the GAN loss is about one; at gamma=1 the decoder would
    # be a feature-space autoencoder that hardly hears the discriminator. Measured on `shapes`
    # (width 16, first 300 steps), the decoder's gradient from L_feat is 50-100x that from the
    # GAN loss, so gamma=0.01 makes the two comparable. The encoder always sees L_feat at full
    # weight, as in the paper.
    gamma: float = 0.01
    beta: float = 1.0           # weight of the KL in the encoder's loss
    lr: float = 3e-4
    # DCGAN's momentum for the adversarial game, used by all three optimizers.
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    # The discriminator's normalisation. Its features are the similarity metric; it sees real
    # images, reconstructions and prior samples in one batch, so with "batch" all three are
    # normalised by the same statistics.
    d_norm: Literal["batch", "layer", "none"] = "batch"

    def validate(self) -> None:
        super().validate()
        if self.gamma < 0:
            raise BadInput(f"gamma={self.gamma}: must be at least 0")
        if self.beta < 0:
            raise BadInput(f"beta={self.beta}: must be at least 0")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)


@register_model("vaegan")
class VAEGAN(GaussianEncoding, GenerativeModel):
    """VAE-GAN: a VAE with a discriminator-feature reconstruction loss and an adversarial decoder."""

    Config = VAEGANConfig
    has_encoder = True

    def __init__(self, config: VAEGANConfig):
        config.validate()
        super().__init__(config)
        c = config
        self.encoder = Encoder(c.channels, c.size, c.width, out_dim=2 * c.latent)   # -> (mu, logvar)
        self.decoder = Decoder(c.latent, c.channels, c.size, c.width, out="tanh")
        self.discriminator = Discriminator(c.channels, c.size, c.width, norm=c.d_norm)
        dcgan_init(self)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.adam_beta1, c.adam_beta2)
        return {"enc": torch.optim.Adam(self.encoder.parameters(), lr=c.lr, betas=betas),
                "dec": torch.optim.Adam(self.decoder.parameters(), lr=c.lr, betas=betas),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=betas)}

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, latent), in the current train/eval mode."""
        return self.encoder(x).chunk(2, dim=1)

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three networks' losses on one batch, from one forward graph (no updates)."""
        c = self.config
        b = len(x)
        with self.autocast():
            mu, logvar = self.posterior(x)                               # (B, latent) each
        mu, logvar = mu.float(), logvar.float()
        z = reparameterize(mu, logvar)                                   # (B, latent)
        z_p = torch.randn_like(z)                                        # (B, latent), the prior
        with self.autocast():
            fake = self.decoder(torch.cat([z, z_p]))                     # (2B, C, H, W): x_tilde, x_p
            # One discriminator pass over real, reconstructed and prior images, so that batch
            # norm (if any) normalises all three with the same statistics and the features compare.
            h = self.discriminator.body(torch.cat([x, fake]))            # (3B, F', b, b)
            logits = self.discriminator.head(h).flatten()                # (3B,)
        # Features and logits in float32: L_feat sums thousands of squared differences per image.
        feats = h.flatten(1).float()                                     # (3B, F) = Dis_l
        logits = logits.float()
        f_real, f_rec, _ = feats.split(b)
        l_real, l_rec, l_p = logits.split(b)

        kl = kl_normal(mu, logvar).mean()                                # nats per image
        # The real features are the fixed target of the reconstruction (a Gaussian mean).
        feat = 0.5 * (f_rec - f_real.detach()).pow(2).sum(1).mean()
        # Non-saturating generator loss: -log D(x_tilde) - log D(x_p); softplus(-l) = -log sigmoid(l).
        gan_g = F.softplus(-l_rec).mean() + F.softplus(-l_p).mean()
        # Discriminator: -log D(x) - log(1 - D(x_tilde)) - log(1 - D(x_p)).
        gan_d = F.softplus(-l_real).mean() + F.softplus(l_rec).mean() + F.softplus(l_p).mean()
        return {"kl": kl, "feat": feat,
                "enc": c.beta * kl + feat,
                "dec": c.gamma * feat + gan_g,
                "disc": gan_d}

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, float]:
        self.train()
        opts = self.optimizers()
        loss = self.losses(x)
        # Each network gets exactly the gradient of its own loss, and only it: the three losses
        # share one graph, and torch.autograd.grad(loss, params) differentiates a loss with
        # respect to the named parameters only, treating everything else as constant. So the
        # GAN loss never reaches the encoder (it is not in loss["enc"]), L_feat never reaches
        # the discriminator, and the discriminator's loss sees x_tilde and x_p as fixed inputs
        # (as if detached). All three gradients are taken at the same parameters before any
        # update, then each optimizer steps: a simultaneous update, as in Algorithm 1.
        groups = {"enc": self.encoder, "dec": self.decoder, "disc": self.discriminator}
        grads = {}
        for name, net in groups.items():
            params = list(net.parameters())
            # retain_graph: the three losses share the graph; it is freed when `loss` goes.
            # fp16: the loss is scaled here and the gradient unscaled by the scaler in step()
            grads[name] = torch.autograd.grad(self.scale(loss[name]), params, retain_graph=True)
        for name, net in groups.items():
            opts[name].zero_grad(set_to_none=True)
            for p, g in zip(net.parameters(), grads[name]):
                p.grad = g
            self.step(opts[name])
        self.end_step()
        return {"loss/kl": loss["kl"].detach(), "loss/feat": loss["feat"].detach(),
                "loss/enc": loss["enc"].detach(), "loss/dec": loss["dec"].detach(),
                "loss/d": loss["disc"].detach()}

    # ---- inference, as the VAE (eval mode); encode_dist / encode come from GaussianEncoding
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent) -> images (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(normal((n, self.config.latent), generator, self.device))
