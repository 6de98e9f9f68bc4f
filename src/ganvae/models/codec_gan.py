"""Codec-GAN: the learned codec whose decoder is also a GAN generator, judged by a conditional D.

Mentzer, Toderici, Tschannen & Agustsson 2020, "High-Fidelity Generative Image Compression"
(HiFiC, NeurIPS), at the scale of this library (28-64 px images, no LPIPS term). The codec is
models/codec.py's, unchanged (factorized prior, or the scale hyperprior with hyperprior=true),
and so are its bitstreams: compress / decompress / encode / decode / rate_bits / sample /
latent_nll are Codec's. What changes is training:

    codec (E, G, P):  rate_bits + lmbda * (MSE + gan_weight * -log D(x_hat, y_hat))
    discriminator:    -log D(x, y_hat) - log(1 - D(x_hat, y_hat))

(HiFiC's losses for E, G, P and for D, with their d = MSE and without LPIPS; non-saturating, on
logits.) The GAN's weight is relative to the distortion's, `lmbda * gan_weight`: HiFiC keeps
the weights of distortion and realism fixed (k_M, beta) and moves the rate's weight along the
rate-distortion curve, so the balance between blur and realism is the same at every rate. In
this library's units (the rate has weight 1, the MSE lmbda) that is the GAN term scaled with
lmbda: a sweep over lmbda then moves the rate alone, as HiFiC's over lambda does.

The discriminator D(x, y_hat) is conditional on the quantised latent, as HiFiC's:
y_hat (B, M, h, w) goes through a 1x1 convolution to `d_cond_channels` channels and a leaky
ReLU, is upsampled nearest-neighbour to the image's size and concatenated with the image, and
a small PatchGAN-like body of spectrally normalised convolutions (Miyato et al. 2018) gives one
logit per patch, (B, 1, H/4, W/4): for 28x28 the 7x7 grid of the latent itself. Conditioning
tells D which image the latent describes, so the decoder is pushed towards realistic images
*of this latent* rather than towards any realistic image.

Warm start (HiFiC initialises E, G, P from a model trained without the GAN): for the first
`gan_start` steps codec-gan trains exactly as `codec` (the same noise, the same loss, the same
numbers); then D starts learning and the GAN term joins the codec's loss.

Quantisation while the GAN trains (HiFiC's setting, after Minnen & Singh 2020): the rate term
keeps the uniform-noise relaxation (the density of y + U(-1/2, 1/2) at the noisy latents is
the rounded latents' pmf, so the rate estimate stays the papers'), but the decoder gets y
rounded exactly as compress() rounds it, with a straight-through gradient. The GAN term is about
what the decoder makes of the codes it will really receive: with noisy inputs it would learn
to be realistic on latents that never occur, and D, conditioned on y_hat, would be conditioned
on them too. `ste=false` keeps the noisy latents for the decoder as in the warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadInput
from ..registry import register_model
from .codec import Codec, CodecConfig
from .common import evaluating
from .regularizers import add_spectral_norm


@dataclass
class CodecGANConfig(CodecConfig):
    # Weight of the generator's GAN loss, in units of the distortion: the codec minimises
    # rate + lmbda * (MSE + gan_weight * -log D), the MSE per pixel on the 0..255 scale, -log D
    # in nats averaged over D's patches. HiFiC's ratio beta / k_M is 0.15 / (0.075 * 2^-5) = 64,
    # beside an LPIPS term that carries most of their perceptual weight; without it, on 28x28
    # Fashion-MNIST (lmbda 0.25, 700 steps of batch 32, GAN from step 200, 1,000 test images), 64
    # barely moves the decoder (gradient magnitude 0.86x the real images', as with STE alone),
    # 1024 brings it to 1.02x and the high-frequency energy from 0.29x to 0.54x with no loss of
    # PSNR, and 4096 overshoots (1.23x: grain) for 0.7 dB. 0 = the plain codec (D never trains).
    gan_weight: float = 1024.0
    # Steps of plain rate-distortion training before D and the GAN term start (HiFiC's warm
    # start; they give each phase half their steps). A D started at once would judge the blobs
    # of an untrained decoder; the density settles onto the latents in ~100 steps (CodecConfig.
    # prior_lr_mult), and 500 of a ~3,000-step run (batch 32) leaves D the other five sixths.
    gan_start: int = 500
    # While the GAN trains, the decoder decodes rounded latents with a straight-through gradient
    # (HiFiC) rather than noisy ones (see the module docstring); the rate term stays noisy.
    ste: bool = True
    # D's own learning rate and Adam betas: the library's GANs' (DCGAN's 2e-4 and momentum 0.5 for
    # an adversarial game, Radford et al. 2016; HiFiC: 1e-4 and Adam's defaults, over 1M steps). With spectral
    # norm D stays near undecided (loss/d ~1.3 of 1.39) while the decoder learns from it.
    lr_d: float = 2e-4
    d_adam_beta1: float = 0.5
    d_adam_beta2: float = 0.999
    # D's base channel count: widths d_width, 2 d_width, 4 d_width over its three convolutions.
    d_width: int = 32
    # Channels of the latent after D's 1x1 conditioning convolution (HiFiC: 12, for their 220-
    # channel latent); 0 = an unconditional D that sees the image alone (their ablation).
    d_cond_channels: int = 8

    def validate(self) -> None:
        super().validate()
        if not (self.gan_weight >= 0 and math.isfinite(self.gan_weight)):
            raise BadInput(f"gan_weight={self.gan_weight}: must be a number at least 0 (0 = the plain codec)")
        if isinstance(self.gan_start, bool) or not isinstance(self.gan_start, int) or self.gan_start < 0:
            raise BadInput(f"gan_start={self.gan_start!r}: must be a whole number of steps, at least 0")
        if not (self.lr_d > 0 and math.isfinite(self.lr_d)):
            raise BadInput(f"lr_d={self.lr_d}: must be positive")
        for name in ("d_adam_beta1", "d_adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BadInput(f"{name}={getattr(self, name)}: must be in [0, 1)")
        if self.d_width < 1:
            raise BadInput(f"d_width={self.d_width}: must be at least 1")
        if self.d_cond_channels < 0:
            raise BadInput(f"d_cond_channels={self.d_cond_channels}: must be at least 0 (0 = an unconditional D)")


class ConditionalDiscriminator(nn.Module):
    """D(x, y_hat): images (B, C, H, W) and latents (B, M, h, w) -> patch logits (B, 1, H', W'),
    H' = floor(H / 4) (28 -> 7, 32 -> 8, 64 -> 16): HiFiC's conditional D (Mentzer et al. 2020)
    with two stride-2 stages for small images. No normalisation layer: each image's logits
    depend on it alone (a per-sample loss, and DDP-safe); spectral norm is added by the model
    after construction."""

    def __init__(self, channels: int, latent_channels: int, width: int, cond_channels: int):
        super().__init__()
        # 1x1 convolution of the latent to a few channels, then nearest-neighbour upsampling:
        # every pixel sees the code of the latent position it lies under
        self.cond = nn.Conv2d(latent_channels, cond_channels, 1) if cond_channels else None
        c_in = channels + cond_channels
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),               # (B, w, H/2, W/2)
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),          # (B, 2w, H/4, W/4)
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.LeakyReLU(0.2),                # (B, 4w, H/4, W/4)
            nn.Conv2d(4 * width, 1, 1))                                                      # (B, 1, H/4, W/4)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> torch.Tensor:
        if self.cond is not None:
            c = F.leaky_relu(self.cond(y_hat.to(x.dtype)), 0.2)                              # (B, k, h, w)
            c = F.interpolate(c, size=x.shape[-2:], mode="nearest")                          # (B, k, H, W)
            x = torch.cat([x, c.to(x.dtype)], 1)                                             # (B, C + k, H, W)
        return self.body(x)


D_SEED_OFFSET = 7919      # D's stream: the run's seed plus this (any constant; a prime, for luck)


@register_model("codec-gan")
class CodecGAN(Codec):
    """Codec-GAN: the learned codec trained with a conditional GAN on its decoder (HiFiC,
    Mentzer et al. 2020): the same bitstreams, sharper reconstructions at low rates."""

    Config = CodecGANConfig
    parents = ("codec",)      # the report sets its scores beside the plain codec's
    # DDP: train_step takes each update's gradients with backward(inputs=...) (so the codec's
    # loss gives D none and D's loss gives the codec none) and averages them over the ranks
    # itself (average_gradients), with no net wrapped; the codec's quantisation noise is drawn
    # for the global batch (Codec.rate_distortion). D has no batch norm, the codec's GDN is per
    # pixel, so every row's loss depends on its row alone and N ranks compute one process's
    # gradients; one exception, harmless: LowerBound's gate (codec.py) reads the sign of each
    # rank's own gradient, so a GDN entry stuck below its bound (gamma = 0 there) may leave it on
    # one process count and not the other (tests/test_codec_gan.py, 2 ranks against 1).
    ddp_ready = True
    averages_own_gradients = True

    def __init__(self, config: CodecGANConfig):
        super().__init__(config)      # validates the config (CodecGANConfig.validate)
        c = config
        # D's initial weights (and spectral norm's u, v) from a stream of their own, derived from
        # the run's seed, so that the global stream after construction is the codec's: the warm-up
        # then draws the very noise `codec` draws with the same seed, and matches it number for number
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch.initial_seed() + D_SEED_OFFSET)
            self.discriminator = ConditionalDiscriminator(c.channels, c.latent_channels, c.d_width, c.d_cond_channels)
            # after init: the power iteration starts from these weights (regularizers.add_spectral_norm)
            add_spectral_norm(self.discriminator)

    def codec_parameters(self) -> list[nn.Parameter]:
        """The codec's parameters (transforms and densities): all but D's."""
        ids = {id(p) for p in self.discriminator.parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=(c.d_adam_beta1, c.d_adam_beta2))
        return {**super().make_optimizers(), "d": d}     # the codec's Adam as Codec's, without D's parameters

    def updates_done(self) -> dict[str, int] | None:
        """{"codec": steps, "d": steps since gan_start}: D rests during the warm-up (Adam's own
        counters, so checkpoints and resume carry them)."""
        return self.optimizer_steps()

    def gan_on(self, step: int) -> bool:
        """Whether D trains and the GAN term is in the codec's loss at this step."""
        return self.config.gan_weight > 0 and step >= self.config.gan_start

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """One codec update (and, from gan_start on, one D update before it) on images x
        (B, C, H, W) in [-1, 1]; step: the steps done so far. One codec forward serves both
        phases: D learns on its detached reconstructions, then the codec steps against the
        updated D (as gan.py's Gmain reuses the last Dmain's fakes).

        Returns 0-d detached tensors: loss/total, loss/rate_bits, loss/mse, loss/psnr (as the
        codec's), and while the GAN trains loss/g (the non-saturating -log D(x_hat, y_hat)),
        loss/d, d/real and d/fake (D's mean patch logits)."""
        self.train()
        gan = self.gan_on(step)
        # bits (B,) on the noisy latents; x_hat (B, C, H, W) from the rounded ones (STE) while
        # the GAN trains, else from the noisy ones (the warm-up is the plain codec)
        bits, x_hat, y_hat = self.rate_distortion(x, noisy=True, ste=gan and self.config.ste)
        out: dict[str, torch.Tensor] = {}
        # D's conditioning is y_hat detached, in both players' losses (HiFiC's code stops the
        # gradient there too): the GAN term reaches the encoder only through the decoder's
        # image. Through D's conditioning input the encoder could fool D by reshaping the
        # latents D reads rather than by making the image realistic, bending the code towards
        # what confuses D instead of what the rate and distortion ask of it.
        y_cond = y_hat.detach() if gan else None
        if gan:
            out.update(self._d_main(x, x_hat.detach(), y_cond))
        out.update(self._codec_main(x, bits, x_hat, y_cond))
        self.end_step()
        return out

    # ---- the phases of train_step, in their order
    def _d_main(self, x: torch.Tensor, x_hat: torch.Tensor, y_hat: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's update: the logistic loss -log D(x, y_hat) - log(1 - D(x_hat, y_hat)) averaged over
        patches and images, real x and detached reconstructions x_hat (B, C, H, W) both
        conditioned on the detached y_hat (B, M, h, w) of x (HiFiC's D loss)."""
        opt = self.optimizers()["d"]
        with self.autocast():
            # one forward over both halves: one power iteration of spectral norm per update
            logits = self.discriminator(torch.cat([x, x_hat]), torch.cat([y_hat, y_hat]))   # (2B, 1, H', W')
        real, fake = logits.float().chunk(2)
        loss = F.softplus(-real).mean() + F.softplus(fake).mean()
        params = list(self.discriminator.parameters())
        opt.zero_grad(set_to_none=True)
        self.backward(loss, inputs=params)
        self.average_gradients(params)          # under DDP: the ranks' mean (a no-op on one process)
        self.step(opt)
        return {"loss/d": loss.detach(), "d/real": real.detach().mean(), "d/fake": fake.detach().mean()}

    def _codec_main(self, x: torch.Tensor, bits: torch.Tensor, x_hat: torch.Tensor,
                    y_cond: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The codec's update on rate + lmbda * MSE (Ballé 2017, eq. 2; Codec.train_step's loss
        exactly), plus lmbda * gan_weight * -log D(x_hat, y_cond) when y_cond (the detached
        latents, (B, M, h, w)) is given. x_hat is unclamped, as the MSE sees it: clamping would
        cut the gradient of every pixel the decoder overshoots, most of a black background."""
        c = self.config
        opt = self.optimizers()["codec"]
        mse = ((x_hat - x.float()) * 127.5).pow(2).flatten(1).mean(1)          # (B,) 8-bit units
        rate = bits.mean()
        loss = rate + c.lmbda * mse.mean()
        out = {}
        if y_cond is not None:
            with self.autocast():
                logits = self.discriminator(x_hat, y_cond)                      # (B, 1, H', W'), the updated D
            g = F.softplus(-logits.float()).mean()                              # non-saturating: -log D
            loss = loss + (c.lmbda * c.gan_weight) * g
            out["loss/g"] = g.detach()
        params = self.codec_parameters()
        opt.zero_grad(set_to_none=True)
        self.backward(loss, inputs=params)      # the codec's gradients only; D's stay D's own
        self.average_gradients(params)
        self.step(opt)
        psnr = 10 * torch.log10(255.0 ** 2 / mse.detach().clamp_min(1e-10))
        return {"loss/total": loss.detach(), "loss/rate_bits": rate.detach(), "loss/mse": mse.mean().detach(),
                "loss/psnr": psnr.mean(), **out}

    # ---- the image discriminator's contract (base.py: realism)
    def realism(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """D's logit that images x (B, C, H, W) are real given codes z (B, latent) as encode
        gives them (None: x's own codes, encode(x)), (B,) float32: the mean over D's patches, in
        eval mode, differentiable in x and z."""
        self.check_images(x)
        codes = self.encode(x) if z is None else z
        if codes.ndim != 2 or codes.shape != (len(x), self.config.latent):
            raise BadInput(f"realism: expected codes ({len(x)}, {self.config.latent}), got {tuple(codes.shape)}")
        y_hat = codes.float().reshape(len(x), *self.latent_shape) + self.offsets().view(1, -1, 1, 1)
        with evaluating(self), self.autocast():
            logits = self.discriminator(x, y_hat)
        return logits.float().flatten(1).mean(1)
