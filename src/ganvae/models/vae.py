"""VAE: the variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

The encoder gives a diagonal Gaussian q(z|x) = N(mu, exp(logvar)); the loss is the negative
evidence lower bound, -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)), in nats per image:
summed over pixels and latent dimensions, averaged over the batch.

- β-VAE (Higgins et al. 2017) weights the KL by beta; it is this class with beta=4 (the
  `beta-vae` preset), not a subclass.
- KL warm-up (Bowman et al. 2016; Sønderby et al. 2016) ramps that weight linearly from 0.
- Likelihoods p(x|z), and what their numbers mean:
  - `discretized-logistic` (the default) and `discretized-gaussian`: a proper distribution over
    the 256 values of each 8-bit pixel. Pixel value k maps to x = 2k/255 - 1, the centre of a
    bin of width 2/255; its probability is the mass of a logistic (Salimans et al. 2017,
    "PixelCNN++", §2.1) or Gaussian (Ho et al. 2020, "DDPM", eq. 13) with per-pixel mean and
    scale from the decoder, on that bin, the two edge bins taking the open tails. Their
    -log p(x) is a real NLL of the data: bits/dim lies in (0, 8], 8 being the uniform guess.
  - `bernoulli` on the intensities (x + 1) / 2 with decoder logits: a likelihood of binary
    data only (`data.binarize=dynamic|static`); on grey images it is a cross-entropy against
    soft targets, not a normalised density, and evaluation.py labels it so.
  - `gaussian`: a density on x in [-1, 1] with a fixed sigma or one learned sigma shared by all
    pixels ("σ-VAE", Rybkin et al. 2021); a continuous density of 8-bit data is not a
    probability of it (no discretisation), so its "NLL" can go negative and is labelled so.
- `log_likelihood(x, k)` is the importance-weighted bound of the IWAE (Burda et al. 2016),
  log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), which tightens towards log p(x) as k grows.

Sign conventions: `elbo(x)` and `log_likelihood(x, k)` are bounds on log p(x) (negative
numbers, higher is better); the logged `loss/*` scalars are the things minimised
(positive nats, lower is better): the logged `loss/nelbo` is -ELBO with beta=1, to compare with
`loss/total` when beta != 1 or during warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..custom import autoencoder_nets
from ..errors import BadInput
from ..nets import class_weights, dcgan_init, inference_decoder, make_decoder, make_encoder
from ..registry import register_model
from .autoencoder import FittedPrior
from .base import ClassConditionalConfig, GenerativeModel, ModelConfig, seeded_generator
from .common import check_adam, evaluating, kl_normal, normal, reparameterize

LOG_2PI = math.log(2 * math.pi)
LOG_SIGMA_FLOOR = -6.0   # a learned sigma stays above ~0.0025 (see VAE.log_sigma)
# The per-pixel log-scale of the discretized likelihoods is floored here (PixelCNN++ clamps at
# -7): a bin is 2/255 ~ 0.0078 wide, so a scale of e^-7 ~ 0.0009 already puts ~all the mass in
# one bin, and a smaller one only risks overflow in (x - mean) / scale.
LOG_SCALE_FLOOR = -7.0
HALF_BIN = 1.0 / 255.0   # pixel values are bin centres 2k/255 - 1; bins are 2/255 wide
DISCRETIZED = ("discretized-logistic", "discretized-gaussian")


@dataclass
class VAEConfig(ModelConfig, ClassConditionalConfig):
    # discretized-*: a probability of the 8-bit data (the default); bernoulli: of binary data;
    # gaussian: a continuous density (see the module docstring)
    likelihood: Literal["discretized-logistic", "discretized-gaussian", "bernoulli", "gaussian"] = \
        "discretized-logistic"
    sigma: float = 0.1            # std of the Gaussian likelihood (initial value if learned)
    learn_sigma: bool = False     # one learned log-sigma shared by all pixels (σ-VAE)
    beta: float = 1.0             # weight of the KL term (β-VAE: 4)
    kl_warmup: int = 0            # steps over which the KL weight rises linearly 0 -> beta; 0 = off
    # normalization in the encoder and decoder: batch norm (DCGAN's), layer norm or none; the
    # last two treat each image alone, so several DDP processes train as one does (to float rounding)
    norm: Literal["batch", "layer", "none"] = "batch"
    # The density `sample` draws latents from: "normal" = N(0, I), the model's prior (the
    # default, and the only one the ELBO, the IWAE bound and bits/dim refer to); "gaussian" /
    # "gmm" = fitted to the posterior means after training (ex-post density estimation, Ghosh
    # et al. 2020; autoencoder.FittedPrior), which samples where the aggregate posterior has
    # mass rather than into its holes. Offered so the VAE-GAN's fitted prior can be compared
    # with the same trick on its parent (BENCHMARKS.md, "VAE-GAN").
    prior: Literal["normal", "gaussian", "gmm"] = "normal"
    gmm_components: int = 10      # K, for prior="gmm"
    lr: float = 1e-3
    # Adam's default momentum: the ELBO is a plain minimisation (0.5 is DCGAN's remedy for
    # adversarial oscillation).
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.norm not in ("batch", "layer", "none"):
            raise BadInput(f"norm={self.norm!r}: choose batch, layer or none")
        if not self.sigma > 0:
            raise BadInput(f"sigma={self.sigma}: must be positive")
        if self.learn_sigma and not math.log(self.sigma) > LOG_SIGMA_FLOOR:
            raise BadInput(f"sigma={self.sigma}: a learned sigma starts above {math.exp(LOG_SIGMA_FLOOR):.4f}")
        if self.beta < 0:
            raise BadInput(f"beta={self.beta}: must be at least 0")
        if self.learn_sigma and self.likelihood != "gaussian":
            raise BadInput("learn_sigma=true: a learned sigma belongs to the gaussian likelihood; "
                           "set likelihood=gaussian")
        if self.prior not in ("normal", "gaussian", "gmm"):
            raise BadInput(f"prior={self.prior!r}: choose normal, gaussian or gmm")
        if self.gmm_components < 1:
            raise BadInput(f"gmm_components={self.gmm_components}: must be at least 1")
        if self.kl_warmup < 0:
            raise BadInput(f"kl_warmup={self.kl_warmup}: must be at least 0 (0 turns it off)")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)
        self.validate_conditional()
        if self.conditional and self.prior != "normal":
            raise BadInput(f"prior={self.prior} with conditional=true: a fitted prior would ignore the class; "
                           "the class-conditional VAE samples z from N(0, I)")


# ---- the terms of the ELBO, per image, in nats (pure functions; the tests check them)


def _log1mexp(t: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(t)) for t <= 0, accurate at both ends (Mächler 2012, "Accurately computing
    log(1 - exp(-|a|))"): expm1 near 0, log1p for large |t|."""
    # t = 0 happens only by rounding (two equal tail masses); keep it finite, and its gradient too
    t = t.clamp(max=-1e-20)
    near = t > -math.log(2)
    # each branch sees only inputs where it is accurate: torch.where back-propagates through
    # both, and log1p(-exp(t)) at t ~ 0 would turn the unused branch's inf into a NaN gradient
    return torch.where(near, torch.log(-torch.expm1(torch.where(near, t, -1.0))),
                       torch.log1p(-torch.exp(torch.where(near, -1.0, t))))


def discretized_logistic_nll(mean: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log P(x) (B,) for 8-bit images x (B, C, H, W) in [-1, 1], summed over pixels.

    P(x) = sigma((x + 1/255 - mean) / s) - sigma((x - 1/255 - mean) / s), with the lowest bin
    taking (-inf, -1 + 1/255] and the highest [1 - 1/255, inf) (Salimans et al. 2017, eq. 2).
    The bin difference is taken in log space without cancellation:
    sigma(p) - sigma(m) = sigma(p) (1 - sigma(m)) (1 - e^{-(p - m)}), and p - m = (2/255) / s > 0.
    """
    mean, log_scale, x = mean.float(), log_scale.float(), x.float()
    inv_s = torch.exp(-log_scale)
    plus = (x + HALF_BIN - mean) * inv_s                                # (B, C, H, W)
    minus = (x - HALF_BIN - mean) * inv_s
    log_cdf_plus = -F.softplus(-plus)                                   # log sigma(plus)
    log_sf_minus = -F.softplus(minus)                                   # log (1 - sigma(minus))
    log_mid = log_cdf_plus + log_sf_minus + _log1mexp(-(2 * HALF_BIN) * inv_s)
    log_p = torch.where(x < -1 + HALF_BIN, log_cdf_plus, torch.where(x > 1 - HALF_BIN, log_sf_minus, log_mid))
    return -log_p.flatten(1).sum(1)


def discretized_gaussian_nll(mean: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log P(x) (B,) for 8-bit images x in [-1, 1]: the mass of N(mean, s^2) on each pixel's bin
    of width 2/255, the edge bins open (as in Ho et al. 2020, eq. 13), summed over pixels.

    Phi(p) - Phi(m) is computed as Phi(p) (1 - Phi(m) / Phi(p)) with log_ndtr, on the side of the
    mean where Phi is small (Phi(p) - Phi(m) = Phi(-m) - Phi(-p)), so neither tail cancels.
    """
    # float64: torch's float32 log_ndtr has an inaccurate, then NaN, gradient below about -1e4
    # standard deviations, which a bad early decoder reaches (|x - mean| ~ 10 at scale e^-7);
    # the elementwise cost is small next to the networks.
    mean, log_scale, x = mean.double(), log_scale.double(), x.double()
    inv_s = torch.exp(-log_scale)
    plus = (x + HALF_BIN - mean) * inv_s
    minus = (x - HALF_BIN - mean) * inv_s
    upper = minus > 0                              # the bin lies above the mean: mirror it
    hi = torch.where(upper, -minus, plus)          # Phi(hi) - Phi(lo), both in the lower tail
    lo = torch.where(upper, -plus, minus)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    log_mid = log_hi + _log1mexp(log_lo - log_hi)
    low, high = x < -1 + HALF_BIN, x > 1 - HALF_BIN
    # the edge terms only where they are used (zeros elsewhere keep unused gradients finite)
    log_low = torch.special.log_ndtr(torch.where(low, plus, 0.0))
    log_high = torch.special.log_ndtr(torch.where(high, -minus, 0.0))
    log_p = torch.where(low, log_low, torch.where(high, log_high, log_mid))
    return -log_p.flatten(1).sum(1).float()


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) (B,) for a Bernoulli on intensities (x + 1) / 2 in [0, 1], from logits."""
    logits, x = logits.float(), x.float()
    return F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log N(x | mean, sigma^2 I) (B,) summed over pixels; log_sigma is a scalar tensor."""
    mean, x, log_sigma = mean.float(), x.float(), log_sigma.float()
    per_pixel = 0.5 * ((x - mean) * torch.exp(-log_sigma)).pow(2) + log_sigma + 0.5 * LOG_2PI
    return per_pixel.flatten(1).sum(1)


def softclip(t: torch.Tensor, low: float) -> torch.Tensor:
    """A smooth max(t, low) that keeps a gradient everywhere."""
    return low + F.softplus(t - low)


class GaussianEncoding:
    """encode_dist / encode for models whose `posterior(x)` gives (mu, logvar) (VAE, VAE-GAN)."""

    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) in [-1, 1] -> (mu, logvar) of q(z|x), each (B, latent), in eval mode."""
        with evaluating(self):
            return self.posterior(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (B, latent)."""
        return self.encode_dist(x)[0]


@register_model("vae", presets={
    "beta-vae": ({"beta": 4.0}, "β-VAE: the VAE with beta=4 (Higgins et al. 2017)"),
    "cvae": ({"conditional": True}, "CVAE: class-conditional VAE, the label into encoder and decoder "
                                    "(Sohn, Lee & Yan 2015)")})
class VAE(FittedPrior, GaussianEncoding, GenerativeModel):
    """Variational autoencoder: Gaussian posterior, N(0, I) prior, discretized, Bernoulli or
    Gaussian pixels."""

    Config = VAEConfig
    ddp_ready = True
    custom_roles = ("encoder", "decoder")
    has_encoder = True
    has_likelihood = True

    def likelihood_space(self, binarize: str = "none") -> str:
        if self.config.likelihood in DISCRETIZED:
            return "8-bit"
        if self.config.likelihood == "bernoulli" and binarize != "none":
            return "binary"
        return "invalid"      # a Bernoulli on grey levels, or a continuous Gaussian density

    def __init__(self, config: VAEConfig):
        config.validate()
        super().__init__(config)
        c = config
        # CVAE (Sohn et al. 2015): q(z | x, y) and p(x | z, y), the class as K more input planes
        # of the encoder (one-hot, constant over the image) and K more inputs of the decoder
        k = c.num_classes if c.conditional else 0
        self.encoder = make_encoder(c.arch, c.channels + k, c.size, c.width, out_dim=2 * c.latent,
                                    norm=c.norm)                                 # -> (mu, logvar)
        # Raw outputs: Bernoulli logits, Gaussian means, or for the discretized likelihoods a
        # mean and a log-scale per pixel (2C channels); `decode` maps them into [-1, 1].
        out_channels = 2 * c.channels if c.likelihood in DISCRETIZED else c.channels
        self.decoder = make_decoder(c.arch, c.latent + k, out_channels, c.size, c.width, out="none", norm=c.norm)
        dcgan_init(self)
        enc, dec = autoencoder_nets(c, 2 * c.latent, out_channels, "vae")   # a user's own (custom.py)
        self.encoder, self.decoder = enc or self.encoder, dec or self.decoder
        if c.likelihood == "gaussian" and c.learn_sigma:
            # Stored before the soft floor of `log_sigma`, inverted so that sigma starts at c.sigma.
            lifted = math.log(c.sigma) - LOG_SIGMA_FLOOR
            self.log_sigma_raw = nn.Parameter(torch.tensor(LOG_SIGMA_FLOOR + math.log(math.expm1(lifted))))
        self.init_prior(c.prior, c.latent, c.gmm_components)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"vae": torch.optim.Adam(self.parameters(), lr=c.lr, betas=(c.adam_beta1, c.adam_beta2))}

    # ---- pieces
    def log_sigma(self) -> torch.Tensor:
        """The Gaussian likelihood's log std, a scalar tensor."""
        if self.config.learn_sigma:   # validate() ensures likelihood == "gaussian"
            # A smooth floor at sigma ~ 0.0025: as reconstructions sharpen, an unbounded learned
            # sigma heads to 0 and -log p(x|z) to -inf (the σ-VAE authors bound it likewise).
            return softclip(self.log_sigma_raw, LOG_SIGMA_FLOOR)
        return torch.tensor(math.log(self.config.sigma), device=self.device)

    def posterior(self, x: torch.Tensor, w: torch.Tensor | None = None,
                  encoder: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, latent), in the current train/eval mode; the CVAE's needs
        class weights w (B, K). `encoder`: the net to run (train_step passes its DDP wrapper)."""
        if self.config.conditional:
            planes = w.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])     # (B, K, H, W)
            x = torch.cat([x, planes], 1)
        return (encoder or self.encoder)(x).chunk(2, dim=1)

    def _decoder_input(self, z: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        """(B, latent) -> the decoder's input: z, and for the CVAE z with its class weights."""
        return torch.cat([z, w.to(z.dtype)], 1) if self.config.conditional else z

    def _weights(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        return class_weights(labels, n, self.config.num_classes, self.device) if self.config.conditional else None

    @torch.no_grad()
    def infer_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The CVAE's class for images x (B, C, H, W) when none is given: the y with the best
        ELBO at the posterior mean, argmax_y -log p(x | mu_y, y) - KL(q(z | x, y) || p(z)), an
        estimate of argmax_y p(y | x) under the model (uniform p(y)); K passes. (B,) int64."""
        scores = []
        with evaluating(self):
            for k in range(self.config.num_classes):
                w = class_weights(torch.full((len(x),), k, device=x.device), len(x), self.config.num_classes,
                                  x.device)
                mu, logvar = self.posterior(x, w)
                out = self.decoder(self._decoder_input(mu, w))
                scores.append(-(self.nll(out, x) + kl_normal(mu.float(), logvar.float())))
        return torch.stack(scores, 1).argmax(1)

    def encode_dist(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) in [-1, 1] -> (mu, logvar) of q(z|x), each (B, latent), in eval mode. The
        CVAE's q(z | x, y) takes `labels` (B,), or the ones `infer_labels` finds."""
        with evaluating(self):
            if self.config.conditional and labels is None:
                labels = self.infer_labels(x)
            return self.posterior(x, self._weights(labels, len(x)))

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean (B, latent)."""
        return self.encode_dist(x, labels)[0]

    def nll(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image (B,), in float32, from the decoder's raw output for z."""
        kind = self.config.likelihood
        if kind in DISCRETIZED:
            mean, raw_scale = out.chunk(2, dim=1)                        # (B, C, H, W) each
            log_scale = softclip(raw_scale.float(), LOG_SCALE_FLOOR)
            fn = discretized_logistic_nll if kind == "discretized-logistic" else discretized_gaussian_nll
            return fn(mean, log_scale, x)
        if kind == "bernoulli":
            return bernoulli_nll(out, x)
        return gaussian_nll(out, x, self.log_sigma())

    def kl_weight(self, step: int) -> float:
        """beta at this step: a linear ramp from 0 over kl_warmup steps, then beta."""
        c = self.config
        if c.kl_warmup <= 0:
            return c.beta
        return c.beta * min(1.0, max(step, 0) / c.kl_warmup)

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self.train()
        opt = self.optimizers()["vae"]
        w = None
        if self.config.conditional:                        # CVAE: (images, labels)
            x, y = x
            w = self._weights(y, len(y))                   # (B, K) one-hot
        with self.autocast():
            mu, logvar = self.posterior(x, w, self.ddp("encoder"))   # (B, latent) each
        mu, logvar = mu.float(), logvar.float()            # the KL and the noise in float32
        z = reparameterize(mu, logvar)
        with self.autocast():
            out = self.ddp("decoder")(self._decoder_input(z, w))    # (B, C, H, W) raw decoder output
        recon = self.nll(out, x).mean()                    # nats per image; nll works in float32
        kl = kl_normal(mu, logvar).mean()
        beta = self.kl_weight(step)
        loss = recon + beta * kl
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(opt)
        self.end_step()
        # detached 0-d tensors: no device sync per step (the trainer averages them)
        recon, kl = recon.detach(), kl.detach()
        logs = {"loss/recon": recon, "loss/kl": kl, "loss/total": loss.detach(),
                "loss/nelbo": recon + kl, "kl/beta": torch.tensor(float(beta))}
        if self.config.learn_sigma:
            logs["sigma"] = self.log_sigma().detach().exp()
        return logs

    # ---- inference (eval mode: batch norm on its running statistics); encode_dist / encode
    # come from GaussianEncoding
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, latent) -> the mean image of p(x|z), (B, C, H, W) in [-1, 1]. CVAE: of p(x|z, y)
        for `labels` (B,) (or (B, K) class weights); None: the uniform mixture of the classes."""
        with evaluating(self):
            out = self.decoder(self._decoder_input(z, self._weights(labels, len(z))))
        out = out.float()
        if self.config.likelihood == "bernoulli":
            return 2 * torch.sigmoid(out) - 1       # E[(x+1)/2] = sigmoid(logits), mapped back
        if self.config.likelihood in DISCRETIZED:
            # the location of each pixel's distribution (its median, and its mean but for the
            # mass the open edge bins collect)
            out = out.chunk(2, dim=1)[0]
        return out.clamp(-1, 1)

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.config.conditional and labels is None:   # the class the model sees in x
            labels = self.infer_labels(x)
        return self.decode(self.encode(x, labels), labels)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None, *, seed: int | None = None) -> torch.Tensor:
        """n images; the CVAE's of the classes `labels` (n,), or of classes drawn uniformly
        (after z, from the same generator)."""
        generator = seeded_generator(seed, generator)
        z = self.sample_prior(n, generator)
        if self.config.conditional and labels is None:
            dev = generator.device if generator is not None else self.device
            labels = torch.randint(self.config.num_classes, (n,), generator=generator, device=dev)
        return self.decode(z, labels)

    def _per_class(self, bound, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """A bound on log p(x) (B,) from one on log p(x | y): the CVAE without labels
        marginalises the class under its uniform p(y), log (1/K) sum_y exp(bound_y), itself a
        lower bound on log p(x) as each bound_y is on log p(x | y) (K times the work)."""
        if not self.config.conditional:
            return bound(x, None)
        if labels is not None:
            return bound(x, self._weights(labels, len(x)))
        k = self.config.num_classes
        per_class = [bound(x, self._weights(torch.full((len(x),), y, device=x.device), len(x))) for y in range(k)]
        return torch.logsumexp(torch.stack(per_class), 0) - math.log(k)

    @torch.no_grad()
    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        """The ELBO per image (B,) in nats: a one-sample reconstruction term, closed-form KL.
        CVAE: of log p(x | y) for `labels`; without them a bound on log p(x) (see _per_class)."""
        def bound(x, w):
            mu, logvar = self.posterior(x, w)
            z = mu + torch.exp(0.5 * logvar) * normal(mu.shape, generator, mu.device)
            return -(self.nll(self.decoder(self._decoder_input(z, w)), x) + kl_normal(mu, logvar))

        with evaluating(self):
            return self._per_class(bound, x, labels)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, k: int = 1000, batch_size: int = 4096,
                       generator: torch.Generator | None = None,
                       precision: Literal["fp32", "bf16"] = "fp32",
                       labels: torch.Tensor | None = None) -> torch.Tensor:
        """The importance-weighted bound on log p(x) per image (B,), in nats (Burda et al. 2016).

        log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x). k=1 is an unbiased one-sample
        ELBO; the bound is non-decreasing in k (in expectation) and tends to log p(x).

        Its cost is k decoder passes per image, so the decoder runs as `inference_decoder` (batch
        norm folded, channels-last) on batches that mix images and samples. `precision="bf16"`
        runs only those decoder passes in bfloat16; the likelihood, log q, log p and the
        log-sum-exp stay in float32 (the bound moves by well under 0.1 nats, tested).

        Args:
            x: images (B, C, H, W) in [-1, 1].
            k: importance samples per image.
            batch_size: the most latents decoded at once (images x samples), bounding memory.
            generator: seeds the samples.
            precision: of the decoder passes.
            labels: CVAE only: the bound on log p(x | y) for these classes (B,); without them
                the bound on log p(x) with the class marginalised (see _per_class).
        """
        if k < 1 or batch_size < 1:
            raise BadInput(f"log_likelihood: k={k}, batch_size={batch_size}; both must be at least 1")
        if precision not in ("fp32", "bf16"):
            raise BadInput(f"log_likelihood: precision {precision!r}; choose fp32 or bf16")
        decoder = inference_decoder(self.decoder)
        with evaluating(self):
            return self._per_class(lambda x, w: self._iwae(x, w, k, batch_size, generator, precision, decoder),
                                   x, labels)

    def _iwae(self, x: torch.Tensor, w: torch.Tensor | None, k: int, batch_size: int,
              generator: torch.Generator | None, precision: str, decoder: nn.Module) -> torch.Tensor:
        """log_likelihood's bound (B,) for class weights w (B, K) (None: unconditional)."""
        d = self.config.latent
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        out = []
        for start_b in range(0, len(x), batch_size):
            xb = x[start_b:start_b + batch_size]
            wb = None if w is None else w[start_b:start_b + batch_size]
            b = len(xb)
            mu, logvar = self.posterior(xb, wb)                 # (b, D)
            std = torch.exp(0.5 * logvar)
            chunk = max(1, batch_size // b)                     # samples per decoder call
            log_w = []
            for start in range(0, k, chunk):
                s = min(chunk, k - start)
                eps = normal((s, b, d), generator, xb.device)   # (s, b, D)
                z = mu + std * eps                              # (s, b, D)
                # log q(z|x) from eps directly: (z - mu) / std = eps, without the division.
                log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)      # (s, b)
                log_p = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)                 # (s, b)
                zs = z.reshape(s * b, d)
                if wb is not None:                                          # the CVAE's class, per row
                    zs = self._decoder_input(zs, wb.repeat(s, 1))
                with autocast:
                    dec = decoder(zs)                                       # (s*b, C', H, W)
                # Sample-major order: row i*b + j is sample i of image j, as in z.reshape.
                target = xb.expand(s, *xb.shape).reshape(s * b, *xb.shape[1:])
                log_px = -self.nll(dec, target).view(s, b)                  # (s, b), float32
                log_w.append(log_px + log_p - log_q)
            # log-mean-exp over the k samples, stably.
            out.append(torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k))   # (b,)
        return torch.cat(out)
