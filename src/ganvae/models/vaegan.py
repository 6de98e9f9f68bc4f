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

The defaults keep this routing but differ from the paper in three measured ways (each is one
config value; `feat_layers=last pixel=0 prior=normal` is the paper's model): Dis_l is D's first
layer, a pixel term joins L_feat, and samples decode draws from a mixture fitted to the
posterior means instead of N(0, I). At the demo's settings the paper's model covers 1-3 of 10
classes; see BENCHMARKS.md, "VAE-GAN", for what each change did, over 3 seeds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from .. import parallel
from ..augment import AugmentConfig, DiscriminatorAugment, paired_generators
from ..errors import BadInput
from ..nets import Decoder, Discriminator, Encoder, dcgan_init
from ..registry import register_model
from .regularizers import add_spectral_norm
from .autoencoder import FittedPrior
from .base import GenerativeModel, ModelConfig, seeded_generator
from .common import check_adam, evaluating, kl_normal, reparameterize, update_ema_
from .vae import GaussianEncoding


@dataclass
class VAEGANConfig(ModelConfig, AugmentConfig):
    # gamma weighs L_feat against the GAN loss in the decoder's objective. L_feat is a sum over
    # every discriminator feature (2*width*7*7 = 6272 of them at 28x28, width 64), so it is
    # hundreds of nats per image while the GAN loss is about one; at gamma=1 the decoder would
    # be a feature-space autoencoder that hardly hears the discriminator. Measured on `shapes`
    # (width 16, first 300 steps), the decoder's gradient from L_feat is 50-100x that from the
    # GAN loss, so gamma=0.01 makes the two comparable. The encoder always sees L_feat at full
    # weight, as in the paper.
    gamma: float = 0.01
    beta: float = 1.0           # weight of the KL in the encoder's loss
    # Weight of a pixel-space reconstruction term, pixel * 0.5 * |x - x_tilde|^2 per image (a
    # Gaussian likelihood with variance 1/pixel), added to the encoder's and the decoder's
    # losses beside L_feat. 0 = the paper's model, where reconstructions are judged only in
    # D's feature space. D's features are trained to discriminate, not to keep the image, so
    # early in training a feature match need not be a pixel match: measured at the demo's
    # settings, the paper's model reconstructs test images worse than a blank image would
    # (MSE 0.18 on [-1, 1] against 0.21 for a blank image); pixel=10 brings it to 0.013 and
    # covers 9 of 10 classes in reconstructions (BENCHMARKS.md, "VAE-GAN").
    pixel: float = 10.0
    lr: float = 3e-4
    # The discriminator's own learning rate (0 = lr): a D that wins too clearly passes the
    # decoder a saturated, uninformative gradient (two-timescale updates, Heusel et al. 2017,
    # use the opposite ratio for a D that must keep up).
    lr_d: float = 0.0
    # Weight of the decoder's GAN loss on prior samples x_p (the paper: 1). Only this term
    # shapes what the decoder does with latents the encoder never produces; see BENCHMARKS.md.
    prior_weight: float = 1.0
    # DCGAN's momentum for the adversarial game, used by all three optimizers.
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    # The encoder's and decoder's normalisation, as the VAE's `norm` (none or layer: each
    # image's code and reconstruction independent of the rest of its batch, as under DDP).
    norm: Literal["batch", "layer", "none"] = "batch"
    # The discriminator's normalisation. Its features are the similarity metric; it sees real
    # images, reconstructions and prior samples in one batch, so with "batch" all three are
    # normalised by the same statistics.
    d_norm: Literal["batch", "layer", "none"] = "batch"
    # Spectral normalisation of every D layer (Miyato et al. 2018): bounds D's Lipschitz
    # constant, so its features (the similarity metric) and its gradient cannot grow without limit.
    spectral: bool = False
    # Decay of an exponential moving average of the decoder, used for sample / decode /
    # reconstruct (Yazici et al. 2019); 0 = off. See gan.update_ema_ for the batch-norm buffers.
    ema: float = 0.0
    # Which discriminator activations are Dis_l, the space reconstructions are compared in:
    # "last" (the body's output, base x base), "first" (after the first stride-2 layer, S/2 x
    # S/2: finer, as the paper's third-of-four layer is) or "all" (every body activation).
    # "first": with "last" the feature loss hardly moves the decoder (its gradient 0.04 against
    # the GAN term's ~4, measured at the demo's settings) and reconstructions stay blank.
    feat_layers: Literal["last", "first", "all"] = "first"
    # The equilibrium rule of the paper's code (Larsen et al.'s released implementation): with
    # D's cross-entropy on real images and on decoded ones (reconstructions and prior samples),
    # skip D's update while either is below equilibrium - margin (D wins too clearly), and drop
    # the decoder's GAN term while either is above equilibrium + margin (D is lost, its gradient
    # is noise); if both would be skipped, both train. 0 = off; their values: 0.68 and 0.35.
    equilibrium: float = 0.0
    margin: float = 0.35
    # Every this many steps, log the decoder's gradient norm from each of its loss terms
    # (grad/dec_gan_rec, grad/dec_gan_prior, grad/dec_feat): which signal drives the decoder.
    # Three extra backward passes through the decoder when due; 0 = never.
    diag_every: int = 50
    # The density samples are drawn from (see autoencoder.FittedPrior): "normal" = N(0, I), the
    # paper's; "gaussian" / "gmm" = fitted to the posterior means after training (ex-post
    # density estimation, Ghosh et al. 2020). The KL pulls each q(z|x) towards N(0, I), but
    # their mixture keeps correlations and holes that N(0, I) draws fall into; the decoder's
    # only training on such draws is the GAN term, which collapses to a few classes. The GAN
    # term still trains on N(0, I) draws whatever this is: it is how the paper makes the
    # decoder generate, and a fitted density does not exist until training ends. "gmm" is the
    # default: at the demo's settings it turns 2 classes and FD ~30 from N(0, I) draws into
    # 9 classes and FD ~11 from the same decoder (BENCHMARKS.md, "VAE-GAN").
    prior: Literal["normal", "gaussian", "gmm"] = "gmm"
    gmm_components: int = 10    # K, for prior="gmm"

    def validate(self) -> None:
        super().validate()
        if self.arch != "dcgan":   # its feature loss reads the DCGAN discriminator's layers (Dis_l)
            raise BadInput(f"arch={self.arch}: vaegan has only the DCGAN nets so far; use arch=dcgan")
        self.validate_augment()
        if self.gamma < 0:
            raise BadInput(f"gamma={self.gamma}: must be at least 0")
        if self.beta < 0:
            raise BadInput(f"beta={self.beta}: must be at least 0")
        if self.pixel < 0:
            raise BadInput(f"pixel={self.pixel}: must be at least 0 (0 = the paper's feature loss alone)")
        if self.equilibrium < 0 or self.margin < 0:
            raise BadInput(f"equilibrium={self.equilibrium}, margin={self.margin}: must be at least 0")
        if self.diag_every < 0:
            raise BadInput(f"diag_every={self.diag_every}: must be at least 0 (0 = off)")
        if self.prior not in ("normal", "gaussian", "gmm"):
            raise BadInput(f"prior={self.prior!r}: choose normal, gaussian or gmm")
        if self.gmm_components < 1:
            raise BadInput(f"gmm_components={self.gmm_components}: must be at least 1")
        if self.prior_weight < 0:
            raise BadInput(f"prior_weight={self.prior_weight}: must be at least 0")
        if not 0 <= self.ema < 1:
            raise BadInput(f"ema={self.ema}: must be in [0, 1) (0 turns the EMA off)")
        if self.lr_d < 0:
            raise BadInput(f"lr_d={self.lr_d}: must be at least 0 (0 = the same as lr)")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)


def equilibrium_rule(err_real: float, err_fake: float, equilibrium: float, margin: float) -> tuple[bool, bool]:
    """(train D, keep the decoder's GAN term) from D's mean cross-entropies on real and on
    decoded images, as in Larsen et al.'s released code: D rests while it wins too clearly
    (either error below equilibrium - margin), the decoder's GAN term rests while D is lost
    (either error above equilibrium + margin), and if both would rest, both train."""
    train_d = not (err_real < equilibrium - margin or err_fake < equilibrium - margin)
    gan_on = not (err_real > equilibrium + margin or err_fake > equilibrium + margin)
    if not (train_d or gan_on):
        return True, True
    return train_d, gan_on


@register_model("vaegan", presets={
    "vaegan-paper": (dict(feat_layers="last", pixel=0.0, prior="normal"),
                     "VAE-GAN exactly as Larsen et al. 2016: feature loss alone, samples from N(0, I)")})
class VAEGAN(FittedPrior, GaussianEncoding, GenerativeModel):
    """VAE-GAN: a VAE with a discriminator-feature reconstruction loss and an adversarial decoder."""

    Config = VAEGANConfig
    has_encoder = True
    parents = ("vae", "dcgan")
    # DDP: train_step takes each net's gradient with autograd.grad and averages them over the
    # ranks itself (parallel.all_mean_); the noise is drawn for the global batch
    ddp_ready = True
    averages_own_gradients = True

    def __init__(self, config: VAEGANConfig):
        config.validate()
        super().__init__(config)
        c = config
        self.encoder = Encoder(c.channels, c.size, c.width, out_dim=2 * c.latent, norm=c.norm)   # -> (mu, logvar)
        self.decoder = Decoder(c.latent, c.channels, c.size, c.width, out="tanh", norm=c.norm)
        self.discriminator = Discriminator(c.channels, c.size, c.width, norm=c.d_norm)
        dcgan_init(self)
        if c.spectral:
            add_spectral_norm(self.discriminator)   # after init: the power iteration starts from these weights
        if c.ema > 0:
            # A submodule, so state_dict and save_pretrained carry it.
            self.decoder_ema = copy.deepcopy(self.decoder).eval().requires_grad_(False)
        self.init_prior(c.prior, c.latent, c.gmm_components)
        # D's view of every image (augment=none: the images). D's logits are the logistic loss's:
        # an undecided D outputs 0, ADA's midpoint.
        self.augment = DiscriminatorAugment(c, midpoint=0.0)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.adam_beta1, c.adam_beta2)
        return {"enc": torch.optim.Adam(self.encoder.parameters(), lr=c.lr, betas=betas),
                "dec": torch.optim.Adam(self.decoder.parameters(), lr=c.lr, betas=betas),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d or c.lr, betas=betas)}

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
        z_p = parallel.randn_rows(z)                                     # (B, latent), the prior
        with self.autocast():
            fake = self.decoder(torch.cat([z, z_p]))                     # (2B, C, H, W): x_tilde, x_p
            # One discriminator pass over real, reconstructed and prior images, so that batch
            # norm (if any) normalises all three with the same statistics and the features compare.
            # With augment=diffaug / ada D sees them augmented, each image and its reconstruction
            # by the same transform (one seed, equal batch sizes), so Dis_l still compares them.
            gens = paired_generators(3) if c.augment != "none" else [None] * 3
            h = torch.cat([self.augment(part, g) for part, g in zip((x, fake[:b], fake[b:]), gens)])
            acts = []                                                    # each body activation
            for layer in self.discriminator.body.net:
                h = layer(h)
                if isinstance(layer, torch.nn.LeakyReLU):
                    acts.append(h)
            logits = self.discriminator.head(h).flatten()                # (3B,)
        # Features and logits in float32: L_feat sums thousands of squared differences per image.
        chosen = {"last": acts[-1:], "first": acts[:1], "all": acts}[c.feat_layers]
        feats = torch.cat([a.flatten(1) for a in chosen], 1).float()     # (3B, F) = Dis_l
        logits = logits.float()
        f_real, f_rec, _ = feats.split(b)
        l_real, l_rec, l_p = logits.split(b)

        kl = kl_normal(mu, logvar).mean()                                # nats per image
        # The real features are the fixed target of the reconstruction (a Gaussian mean).
        feat = 0.5 * (f_rec - f_real.detach()).pow(2).sum(1).mean()
        x_rec = fake[:b].float()                                         # (B, C, H, W)
        pix = (0.5 * c.pixel) * (x_rec - x).pow(2).flatten(1).sum(1).mean() if c.pixel > 0 else feat.new_zeros(())
        # Non-saturating generator loss: -log D(x_tilde) - log D(x_p); softplus(-l) = -log sigmoid(l).
        gan_rec, gan_prior = F.softplus(-l_rec).mean(), F.softplus(-l_p).mean()
        # Discriminator: -log D(x) - log(1 - D(x_tilde)) - log(1 - D(x_p)).
        gan_d = F.softplus(-l_real).mean() + F.softplus(l_rec).mean() + F.softplus(l_p).mean()
        with torch.no_grad():
            # Diagnostics, no gradient: how often D is right on each kind of image, and how far
            # the aggregate posterior's per-dimension marginals are from N(0, 1) (a diagonal
            # Gaussian fitted to this batch's z: sum_d KL(N(m_d, v_d) || N(0, 1))).
            zd = z.detach()
            m, v = zd.mean(0), zd.var(0).clamp_min(1e-6)
            diag = {"d_acc_real": (l_real > 0).float().mean(), "d_acc_rec": (l_rec < 0).float().mean(),
                    "d_acc_prior": (l_p < 0).float().mean(),
                    "agg_kl": 0.5 * (v + m.pow(2) - 1 - v.log()).sum()}
        train_d, gan_on = True, True
        if c.equilibrium > 0:
            with torch.no_grad():
                err = {"real": float(F.softplus(-l_real).mean()),                 # -log D(x)
                       "fake": float(0.5 * (F.softplus(l_rec).mean() + F.softplus(l_p).mean()))}  # -log(1 - D(.))
                # under DDP the global batch's errors (the ranks' mean), so every rank decides alike
                err = parallel.all_mean(err, device=l_real.device)
                err_real, err_fake = err["real"], err["fake"]
            train_d, gan_on = equilibrium_rule(err_real, err_fake, c.equilibrium, c.margin)
        diag["train_d"] = torch.tensor(float(train_d))
        diag["gan_on"] = torch.tensor(float(gan_on))
        return {"kl": kl, "feat": feat, "pixel": pix, "gan_rec": gan_rec, "gan_prior": gan_prior, "logits_real": l_real,
                "enc": c.beta * kl + feat + pix,
                "dec": c.gamma * feat + pix + (gan_rec + c.prior_weight * gan_prior if gan_on else 0.0),
                "disc": gan_d, **diag}

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
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
        logs = {}
        if self.config.diag_every and step % self.config.diag_every == 0:
            # The decoder's gradient from each of its terms, at these weights (no update):
            # a collapsing VAE-GAN shows the prior-sample GAN term dwarfing the others.
            params = list(self.decoder.parameters())
            for key, term in (("dec_gan_rec", loss["gan_rec"]), ("dec_gan_prior", loss["gan_prior"]),
                              ("dec_feat", self.config.gamma * loss["feat"]),
                              *((("dec_pixel", loss["pixel"]),) if self.config.pixel > 0 else ())):
                g = torch.autograd.grad(term, params, retain_graph=True)
                logs[f"grad/{key}"] = torch.linalg.vector_norm(torch.stack([t.norm() for t in g]))
        if not bool(loss["train_d"]):   # the equilibrium rule: D rests this step
            groups.pop("disc")
        else:
            # ADA's r_t only on the steps D learns: a resting D is not becoming more overfit,
            # and p would keep moving on logits of the same weights
            self.augment.observe(loss["logits_real"])                    # (no-op without ADA)
        grads = {}
        for name, net in groups.items():
            params = list(net.parameters())
            # retain_graph: the three losses share the graph; it is freed when `loss` goes.
            # fp16: the loss is scaled here and the gradient unscaled by the scaler in step()
            grads[name] = torch.autograd.grad(self.scale(loss[name]), params, retain_graph=True)
        # under DDP: each gradient the ranks' mean (one collective), what one process's batch gives
        parallel.all_mean_([g for gs in grads.values() for g in gs])
        for name, net in groups.items():
            opts[name].zero_grad(set_to_none=True)
            for p, g in zip(net.parameters(), grads[name]):
                p.grad = g
            self.step(opts[name])
        self.end_step()
        if self.config.ema > 0:
            update_ema_(self.decoder_ema, self.decoder, self.config.ema)
        return {"loss/kl": loss["kl"].detach(), "loss/feat": loss["feat"].detach(),
                **({"loss/pixel": loss["pixel"].detach()} if self.config.pixel > 0 else {}),
                "loss/enc": loss["enc"].detach(), "loss/dec": loss["dec"].detach(),
                "loss/d": loss["disc"].detach(),
                **{f"diag/{k}": loss[k] for k in ("d_acc_real", "d_acc_rec", "d_acc_prior", "agg_kl")},
                **({"diag/train_d": loss["train_d"], "diag/gan_on": loss["gan_on"]}
                   if self.config.equilibrium > 0 else {}),
                **({"aug/p": self.augment.p} if self.config.augment == "ada" else {}),
                **logs}

    def updates_done(self) -> dict[str, int] | None:
        """Optimizer steps run so far, {"enc", "dec", "disc": count}: D's are fewer than the steps
        when the equilibrium rule rests it (optimizer_steps: Adam's own counters, so older runs'
        files load unchanged)."""
        return self.optimizer_steps()

    # ---- inference, as the VAE (eval mode); encode_dist / encode come from GaussianEncoding
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent) -> images (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            return (self.decoder_ema if self.config.ema > 0 else self.decoder)(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def realism(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Dis_l's logit that images x (B, C, H, W) are real, (B,) in float32, in eval mode."""
        with evaluating(self):
            return self.discriminator(x).float()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        return self.decode(self.sample_prior(n, seeded_generator(seed, generator)))
