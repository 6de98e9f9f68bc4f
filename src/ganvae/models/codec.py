"""Codec: a learned image codec trained for rate and distortion, with real entropy-coded bits.

Two papers, one switch (`hyperprior`):
- `codec`: the factorized prior of Ballé, Laparra & Simoncelli 2017 ("End-to-end optimized
  image compression", ICLR): an analysis transform g_a with GDN maps x to latents y, which are
  rounded to integers and coded with a learned per-channel density; a synthesis transform g_s
  with inverse GDN maps them back. The loss is R + lambda * D (their eq. 2).
- `codec-hyper`: the scale hyperprior of Ballé, Minnen, Singh, Hwang & Johnston 2018
  ("Variational image compression with a scale hyperprior", ICLR): side information z =
  h_a(|y|), itself coded with the factorized density, gives each element of y its own scale,
  y ~ N(0, sigma^2) * U(-1/2, 1/2) with sigma = h_s(z_hat) (their Fig. 4, scaled down).

Sized for small images: two stride-2 stages, so 28x28 -> 7x7, 32 -> 8x8, 64 -> 16x16 latents
of `latent_channels` (M) channels; the hyperprior halves twice more (7x7 -> 2x2).

Quantisation. Training adds U(-1/2, 1/2) noise in place of rounding (the papers' relaxation:
the noisy latent's density, sampled at integers, is the rounded latent's pmf). At evaluation y
is rounded around each channel's median m: the code is s = round(y - m) and y_hat = s + m. A
channel the encoder barely uses sits at a constant; rounded on the plain integer grid it would
cost up to a bit per element (the density learnt from y + U straddles two bins), around its
median it costs almost nothing. The medians (and the support's tails) are found by bisection on
the learnt CDF whenever they are needed, so no parameters track them and there is no auxiliary
loss (the density's parameters are trained by the rate term itself, in their own param group).

Bits. `compress(x)` writes a real ANS bitstream (ganvae.entropy) whose length is the rate:
a 24-byte header and 32-bit words. `rate_bits(x)` is the model's own estimate, -log2 of the
likelihoods of the rounded latents; the file is within a fraction of a percent of it (plus the
header and a few words of ANS state).

Encoder-model contract: `encode(x)` gives the integer codes flattened to (B, M*h*w) and
`decode(z)` maps such codes (integers or not) back to images, so the latent-space commands and
tasks take the codec like any autoencoder; its `latent` is therefore derived, M*h*w, not set.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import parallel
from ..entropy import Decoder, PmfTable, encode as entropy_encode, gaussian_table
from ..errors import BadInput
from ..registry import register_model
from .base import GenerativeModel, ModelConfig, seeded_generator, weights_fingerprint
from .common import check_adam, evaluating


@dataclass
class CodecConfig(ModelConfig):
    # M: channels of the latent y. With `size` it fixes ModelConfig's `latent`, the length of
    # encode(x), M * ceil(size / 4)^2: derived here, so a value given for it is replaced
    latent_channels: int = 8
    # the scale hyperprior (codec-hyper): side information z sets each latent's scale
    hyperprior: bool = False
    hyper_channels: int = 8          # channels of z (hyperprior only)
    # lambda of R + lambda * D, R in bits per image, D the MSE per pixel on the 0..255 scale: a
    # unit of MSE is worth lambda bits. On 28x28 Fashion-MNIST, 3,000 steps of batch 32: 1 gives
    # 43 bytes per image at 22.3 dB (codec-hyper: 40 bytes, 22.7 dB), 0.5 gives 28 bytes, 20.5 dB
    lmbda: float = 1.0
    lr: float = 1e-3
    # the learnt density's rate is lr times this: it starts broad (EntropyBottleneck.INIT_SCALE),
    # and at lr alone it takes ~1,000 steps to narrow onto the latents, bits that buy nothing
    # meanwhile; at 10x it follows them within ~100 steps (28x28 Fashion-MNIST)
    prior_lr_mult: float = 10.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.latent_channels < 1:
            raise BadInput(f"latent_channels={self.latent_channels}: must be at least 1")
        if self.hyper_channels < 1:
            raise BadInput(f"hyper_channels={self.hyper_channels}: must be at least 1")
        if not (self.lmbda > 0 and math.isfinite(self.lmbda)):
            raise BadInput(f"lmbda={self.lmbda}: must be a positive number (the weight of distortion against rate)")
        if self.arch != "dcgan":
            raise BadInput(f"arch={self.arch!r}: the codec has its own GDN transforms; leave arch unset")
        if self.size < 4:
            raise BadInput(f"size={self.size}: the codec needs images of at least 4x4")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)
        if not self.prior_lr_mult > 0:
            raise BadInput(f"prior_lr_mult={self.prior_lr_mult}: must be positive")


def halved(size: int, times: int) -> int:
    """The side after `times` stride-2 convolutions of kernel 5, padding 2: ceil(size / 2) each."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


# ---------------------------------------------------------------------------------------------
# Building blocks

class LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still reaches x below the bound when the step would raise x
    (the gradient is negative), so a parameter or scale stuck at its bound can leave it
    (Ballé et al. 2018, "Efficient nonlinear transforms for lossy image compression", §2)."""

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    return LowerBound.apply(x, bound)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé, Laparra & Simoncelli 2016, "Density modeling
    of images using a generalized normalization transformation"):

        y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)      (inverse: x_i * sqrt(...))

    beta > 0 and gamma >= 0 are kept so by storing sqrt(value + eps) and squaring a lower-
    bounded copy (Ballé 2018, "Efficient nonlinear transforms", §2): gradient steps in the
    stored parameter stay well scaled near zero, where gamma's off-diagonal entries start.
    """

    PEDESTAL = 2.0 ** -36          # eps: keeps the square root differentiable at 0
    BETA_MIN = 1e-6

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta_p = nn.Parameter(torch.full((channels,), math.sqrt(1.0 + self.PEDESTAL)))
        self.gamma_p = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels) + self.PEDESTAL))

    @property
    def beta(self) -> torch.Tensor:
        return lower_bound(self.beta_p, math.sqrt(self.BETA_MIN + self.PEDESTAL)).pow(2) - self.PEDESTAL

    @property
    def gamma(self) -> torch.Tensor:
        return lower_bound(self.gamma_p, math.sqrt(self.PEDESTAL)).pow(2) - self.PEDESTAL

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        # sum_j gamma_ij x_j^2 + beta_i at every pixel: a 1x1 convolution of x^2     # (B, C, H, W)
        norm = F.conv2d(x * x, self.gamma.to(x.dtype).view(c, c, 1, 1), self.beta.to(x.dtype))
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def conv(c_in: int, c_out: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)


def deconv(c_in: int, c_out: int, out_size: int, in_size: int) -> nn.ConvTranspose2d:
    """Kernel 5, stride 2 from in_size to exactly out_size (2 in_size or 2 in_size - 1), undoing
    `conv` on any side, odd ones too (28 -> 14 -> 7 -> 14 -> 28; 7 -> 4 -> 7)."""
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=out_size - 2 * in_size + 1)


class EntropyBottleneck(nn.Module):
    """A learnt univariate density per channel, for the noisy latents y + U(-1/2, 1/2): its CDF
    c is a small monotone network (Ballé et al. 2018, "Variational image compression with a
    scale hyperprior", Appendix 6.1), filters (3, 3, 3): 1 -> 3 -> 3 -> 3 -> 1 per channel,

        f_k(x) = g_k(H_k x + b_k),  g_k(x) = x + tanh(a_k) * tanh(x),  c = sigmoid(f_K(...)),

    with H_k = softplus(.) > 0 so every layer, and c, is increasing. The pmf of a rounded value
    is c(y + 1/2) - c(y - 1/2).
    """

    FILTERS = (3, 3, 3)
    INIT_SCALE = 10.0     # the initial density is about this wide: broad, so training narrows it
    TAIL = 1e-6           # the coding support ends where each tail holds this much mass
    MAX_HALF_WIDTH = 4096  # a density wider than this (diverged) codes the rest through escapes

    def __init__(self, channels: int):
        super().__init__()
        dims = (1, *self.FILTERS, 1)
        # each layer starts as a positive matrix of entries 1 / (scale * d_out), so the composed
        # map starts near x / INIT_SCALE and c near a logistic CDF of that width
        scale = self.INIT_SCALE ** (1 / (len(self.FILTERS) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[k + 1]))        # softplus^-1
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def layers(self, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """Each layer's (H_k = softplus(.), b_k, tanh(a_k) or None for the last) in `dtype`."""
        return [(F.softplus(m.to(dtype)), b.to(dtype), torch.tanh(self.factors[k].to(dtype)) if k < len(self.factors)
                 else None) for k, (m, b) in enumerate(zip(self.matrices, self.biases))]

    def logits(self, x: torch.Tensor, layers=None) -> torch.Tensor:
        """logit c(x) for x (C, 1, N) (channel c's values in row c) -> (C, 1, N), in x's dtype;
        `layers` (from `layers(x.dtype)`) saves recomputing them in a loop."""
        for h, b, a in layers or self.layers(x.dtype):
            x = h @ x + b                                                     # (C, d_out, N)
            if a is not None:
                x = x + a * torch.tanh(x)
        return x

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(y) = c(y + 1/2) - c(y - 1/2) for y (B, C, H, W) -> (B, C, H, W), at least 1e-9."""
        b, c, h, w = y.shape
        v = y.transpose(0, 1).reshape(c, 1, -1)                              # (C, 1, B*H*W)
        lower, upper = self.logits(v - 0.5), self.logits(v + 0.5)
        # In the upper tail both sigmoids are near 1 and their difference loses its digits;
        # mirrored (1 - c(t) = sigmoid(-logit)) it is a difference of two small numbers.
        sign = torch.where(lower + upper > 0, -1.0, 1.0).to(v.dtype).detach()
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return lower_bound(p, 1e-9).reshape(c, b, h, w).transpose(0, 1)

    @torch.no_grad()
    def quantiles(self, probs: tuple[float, ...]) -> torch.Tensor:
        """(C, P) float64: each channel's CDF inverted at probs, by bisection in float64."""
        c = self.matrices[0].shape[0]
        target = torch.tensor([math.log(p / (1 - p)) for p in probs], dtype=torch.float64)
        lo = torch.full((c, 1, len(probs)), -1.0, dtype=torch.float64, device=self.matrices[0].device)
        hi = -lo
        target = target.to(lo.device)
        layers = self.layers(torch.float64)
        for _ in range(64):                                   # widen until the targets are inside
            low, high = self.logits(lo, layers) > target, self.logits(hi, layers) < target
            if not (low.any() or high.any()):
                break
            lo, hi = torch.where(low, 2 * lo, lo), torch.where(high, 2 * hi, hi)
        for _ in range(50):        # then halve: 2^-50 of the bracket, far below a rounding step
            mid = (lo + hi) / 2
            left = self.logits(mid, layers) < target
            lo, hi = torch.where(left, mid, lo), torch.where(left, hi, mid)
        return ((lo + hi) / 2).squeeze(1)

    def medians(self) -> torch.Tensor:
        """(C,) float64: where each channel's learnt CDF is 1/2, the centre of its rounding grid."""
        return self.quantiles((0.5,))[:, 0]

    @torch.no_grad()
    def coding_table(self) -> tuple[torch.Tensor, PmfTable]:
        """The medians m (C,) float64 and the pmf of the codes s = round(y - m), one row per
        channel: P(s) = c(m + s + 1/2) - c(m + s - 1/2) on the integers where the CDF is between
        TAIL and 1 - TAIL, the mass outside lumped into the two escape symbols. In float64, so
        a pmf is the same in the encoder and the decoder to the last bits that matter."""
        q = self.quantiles((self.TAIL, 0.5, 1 - self.TAIL))                  # (C, 3)
        m = q[:, 1]
        lo = torch.floor(q[:, 0] - m).clamp(-self.MAX_HALF_WIDTH, -1).long()  # (C,)
        hi = torch.ceil(q[:, 2] - m).clamp(1, self.MAX_HALF_WIDTH).long()
        width = int((hi - lo).max()) + 1
        s = lo[:, None] + torch.arange(width, device=lo.device)              # (C, W)
        y = (m[:, None] + s)[:, None].double()                                # (C, 1, W)
        p = self.likelihood(y.permute(1, 0, 2)[..., None])[0, :, :, 0]       # (C, W)
        below = torch.sigmoid(self.logits(m[:, None, None] + lo[:, None, None] - 0.5))[:, 0, 0]
        above = torch.sigmoid(-self.logits(m[:, None, None] + hi[:, None, None] + 0.5))[:, 0, 0]
        rows = tuple(np.concatenate([[below[i].item()], p[i, :int(hi[i] - lo[i]) + 1].cpu().numpy(),
                                     [above[i].item()]]) for i in range(len(m)))
        return m, PmfTable(lo=lo.cpu().numpy(), pmfs=rows)


def gaussian_likelihood(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(y | sigma) = Phi((y + 1/2) / sigma) - Phi((y - 1/2) / sigma), the zero-mean Gaussian
    convolved with U(-1/2, 1/2) (Ballé et al. 2018, eq. 11), at least 1e-9. By symmetry computed
    at -|y|, on the lower side of Phi, where the difference of two values near 1 cannot lose
    its digits."""
    v = y.abs()
    # Phi(t) = erfc(-t / sqrt 2) / 2: relative precision in the lower tail, where ndtr's float32
    # kernel (1 + erf) keeps only ~1e-2 at t = -4.5
    phi = lambda t: 0.5 * torch.special.erfc(-t / math.sqrt(2))            # noqa: E731
    p = phi((0.5 - v) / sigma) - phi((-0.5 - v) / sigma)
    return lower_bound(p, 1e-9)


# The hyperprior's scales: sigma is lower-bounded at SCALE_MIN (so a code's pmf never becomes a
# single point, whose likelihood is degenerate), and coded with the nearest of SCALES, 64
# log-spaced values (steps of 12%: coding with the nearest costs < 0.01 bit per latent).
SCALE_MIN, SCALE_MAX, N_SCALES = 0.11, 64.0, 64
SCALES = np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), N_SCALES))
# float32's error in a row position is ~1e-5 (a relative error of ~1e-6 in sigma, over log steps
# of 0.12); positions closer than this to a midpoint are decided in float64 (scale_indices)
INDEX_GUARD = 2e-4

# The file: magic, format version, flags (bit 0: hyperprior), images N, image C H W, latent M
# h w, the first 4 bytes of the model's weights fingerprint; then the ANS words.
MAGIC, FORMAT_VERSION = b"GC", 1
HEADER = struct.Struct("<2sBBIHHHHHH4s")       # 24 bytes
CHUNK = 1024                                   # images per transform call in encode / decode


@register_model("codec", presets={
    "codec-hyper": ({"hyperprior": True}, "Codec with the scale hyperprior (Ballé et al. 2018): side "
                    "information sets each latent's scale.")})
class Codec(GenerativeModel):
    """Codec: a rate-distortion trained image codec (Ballé et al. 2017, factorized prior), with
    real entropy-coded bitstreams (compress / decompress)."""

    Config = CodecConfig
    has_encoder = True
    gaussian_latent = False      # codes are integers around learnt medians, not N(0, I)
    # DDP: no net is wrapped; train_step averages the gradients over the ranks itself, and the
    # quantisation noise is drawn for the global batch (rate_distortion), so N ranks compute one
    # process's update (codec-gan's test: tests/test_codec_gan.py, 2 ranks against 1)
    ddp_ready = True
    averages_own_gradients = True

    def __init__(self, config: CodecConfig):
        # The code is y, M x h x w: its length is fixed by latent_channels and the image size.
        config.latent = config.latent_channels * halved(config.size, 2) ** 2
        config.validate()
        super().__init__(config)
        c, n, m = config.channels, config.width, config.latent_channels
        s0, s1, s2 = config.size, halved(config.size, 1), halved(config.size, 2)
        self.latent_shape = (m, s2, s2)
        # g_a: two stride-2 stages with GDN, then a stride-1 convolution to M channels
        self.g_a = nn.Sequential(conv(c, n), GDN(n), conv(n, n), GDN(n), conv(n, m, stride=1))
        # g_s mirrors it with inverse GDN; its output is the image in [-1, 1] before clamping
        self.g_s = nn.Sequential(conv(m, n, stride=1), GDN(n, inverse=True), deconv(n, n, s1, s2),
                                 GDN(n, inverse=True), deconv(n, c, s0, s1))
        if config.hyperprior:
            mz, s3, s4 = config.hyper_channels, halved(s2, 1), halved(s2, 2)
            self.z_shape = (mz, s4, s4)
            # Ballé 2018 Fig. 4 with two stride-2 stages: |y| -> z, and z_hat -> sigma >= 0
            self.h_a = nn.Sequential(conv(m, n, 3, 1), nn.ReLU(), conv(n, n), nn.ReLU(), conv(n, mz))
            self.h_s = nn.Sequential(deconv(mz, n, s3, s4), nn.ReLU(), deconv(n, n, s2, s3), nn.ReLU(),
                                     conv(n, m, 3, 1), nn.ReLU())
            self.z_prior = EntropyBottleneck(mz)
        else:
            self.y_prior = EntropyBottleneck(m)

    @property
    def prior(self) -> EntropyBottleneck:
        """The factorized density: of y (codec), of the side information z (codec-hyper)."""
        return self.z_prior if self.config.hyperprior else self.y_prior

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        prior = list(self.prior.parameters())
        ids = {id(p) for p in prior}
        transforms = [p for p in self.codec_parameters() if id(p) not in ids]
        # one Adam; the density's parameters in a group of their own, at their own rate (trained
        # by the rate term alone: there is no auxiliary loss, see the module docstring)
        groups = [{"params": transforms, "name": "transforms"},
                  {"params": prior, "name": "prior", "lr": c.lr * c.prior_lr_mult}]
        return {"codec": torch.optim.Adam(groups, lr=c.lr, betas=(c.adam_beta1, c.adam_beta2))}

    def codec_parameters(self) -> list[nn.Parameter]:
        """What the "codec" optimizer trains: every parameter (codec-gan leaves its D's out)."""
        return list(self.parameters())

    # ---- rate and distortion
    def scales(self, z_hat: torch.Tensor) -> torch.Tensor:
        """sigma = h_s(z_hat), lower-bounded at SCALE_MIN; float32 (B, M, h, w)."""
        with self.autocast():
            sigma = self.h_s(z_hat)
        return lower_bound(sigma.float(), SCALE_MIN)

    def rate_distortion(self, x: torch.Tensor, noisy: bool, ste: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (bits (B,), x_hat (B, C, H, W) unclamped, y_hat (B, M, h, w) what g_s decoded): the
        latents noisy (training) or rounded. `ste` (with noisy): the rate stays the noisy latents',
        but g_s decodes y rounded as at evaluation, with y's gradient (straight-through; codec-gan)."""
        with self.autocast():
            y = self.g_a(x)
        y = y.float()                                                         # (B, M, h, w)

        def quantize(t: torch.Tensor, prior: EntropyBottleneck | None, noisy: bool = noisy) -> torch.Tensor:
            if noisy:   # (under DDP this rank's rows of one draw for the global batch: parallel.py)
                return t + parallel.draw_rows(lambda n: torch.empty((n, *t.shape[1:]), dtype=t.dtype,
                                                                    device=t.device).uniform_(-0.5, 0.5), len(t))
            if prior is None:
                return torch.round(t)
            m = prior.medians().to(t.dtype).view(1, -1, 1, 1)
            return torch.round(t - m) + m

        if self.config.hyperprior:
            with self.autocast():
                z = self.h_a(y.abs())
            z_q = quantize(z.float(), self.z_prior)                            # (B, Mz, h', w')
            y_q = quantize(y, None)
            lik = [gaussian_likelihood(y_q, self.scales(z_q)), self.z_prior.likelihood(z_q)]
        else:
            y_q = quantize(y, self.y_prior)
            lik = [self.y_prior.likelihood(y_q)]
        bits = sum(-torch.log2(p).flatten(1).sum(1) for p in lik)             # (B,)
        if ste:
            y_q = y + (quantize(y, None if self.config.hyperprior else self.y_prior, noisy=False) - y).detach()
        with self.autocast():
            x_hat = self.g_s(y_q)
        return bits, x_hat.float(), y_q

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self.train()
        opt = self.optimizers()["codec"]
        bits, x_hat, _ = self.rate_distortion(x, noisy=True)
        mse = ((x_hat - x.float()) * 127.5).pow(2).flatten(1).mean(1)          # (B,) 8-bit units
        rate = bits.mean()
        loss = rate + self.config.lmbda * mse.mean()                          # Ballé 2017, eq. 2
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.average_gradients(list(self.parameters()))    # under DDP: the ranks' mean (no-op on one)
        self.step(opt)
        self.end_step()
        psnr = 10 * torch.log10(255.0 ** 2 / mse.detach().clamp_min(1e-10))    # per image, then the mean
        return {"loss/total": loss.detach(), "loss/rate_bits": rate.detach(), "loss/mse": mse.mean().detach(),
                "loss/psnr": psnr.mean()}

    @torch.no_grad()
    def rate_bits(self, x: torch.Tensor) -> torch.Tensor:
        """The model's estimate of the bits per image (B,) of x's rounded latents: the sum of
        -log2 of their likelihoods (and of the side information's, with the hyperprior)."""
        with evaluating(self):
            return self.rate_distortion(self.check_images(x), noisy=False)[0]

    # ---- the encoder-model contract
    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (c.channels, c.size, c.size):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise BadInput(f"expected images (N, {c.channels}, {c.size}, {c.size}) in [-1, 1], got {shape}")
        return x

    def offsets(self) -> torch.Tensor:
        """(M,) what is added to the integer codes to give y_hat: the medians of y's density,
        zeros with the hyperprior (y's Gaussian has mean 0)."""
        if self.config.hyperprior:
            return torch.zeros(self.config.latent_channels, device=self.device)
        return self.y_prior.medians().float()

    @torch.no_grad()
    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """y = g_a(x), (B, M, h, w) float32, unrounded; in chunks of CHUNK images."""
        self.check_images(x)
        with evaluating(self):
            return torch.cat([self.g_a(xb).float() for xb in x.split(CHUNK)] or [x.new_zeros(0, *self.latent_shape)])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> the integer codes s = round(y - m), as floats, flattened to
        (B, M*h*w) in (M, h, w) order."""
        return torch.round(self.analyse(x) - self.offsets().view(1, -1, 1, 1)).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, M*h*w) or (B, M, h, w), integers or not -> images (B, C, H, W) in [-1, 1];
        differentiable in z."""
        if z.ndim not in (2, 4) or math.prod(z.shape[1:]) != self.config.latent:
            raise BadInput(f"decode: expected codes (B, {self.config.latent}) or (B, {', '.join(map(str, self.latent_shape))}), "
                           f"got {tuple(z.shape)}")
        y = z.reshape(len(z), *self.latent_shape) + self.offsets().view(1, -1, 1, 1)
        with evaluating(self):
            out = torch.cat([self.g_s(yb).float() for yb in y.split(CHUNK)])
        return out.clamp(-1, 1)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """g_s(round(g_a(x))): what decompress(compress(x)) gives, bit for bit."""
        with torch.no_grad():
            return self.decode(self.encode(x))

    def latent_nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log p(z) per code (B,) in nats: the code length (times ln 2) of the codes z under the
        learnt prior; with the hyperprior that of y given the side information h_a(|y|) rounded,
        plus the side information's own. Differentiable in z."""
        y = z.float().reshape(len(z), *self.latent_shape)
        with evaluating(self):
            if not self.config.hyperprior:
                lik = [self.y_prior.likelihood(y + self.offsets().view(1, -1, 1, 1))]
            else:
                zs = self.h_a(y.abs()).float()
                mz = self.z_prior.medians().float().view(1, -1, 1, 1)
                z_hat = (torch.round(zs - mz) + mz).detach()
                lik = [gaussian_likelihood(y, self.scales(z_hat)), self.z_prior.likelihood(z_hat)]
        return sum(-torch.log(p).flatten(1).sum(1) for p in lik)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        """n images decoded from latents drawn from the learnt prior: the factorized density's
        pmf, or side information z from its pmf and then y = round(sigma * eps), eps ~ N(0, 1)
        (which is y ~ N(0, sigma^2) * U(-1/2, 1/2) rounded). A codec's prior models each latent
        alone (or given coarse side information), not the images' structure: its samples are
        textures of the right statistics, poor as images; that is expected of a codec."""
        generator = seeded_generator(seed, generator)
        with evaluating(self):
            m, table = self.prior.coding_table()
            shape = self.z_shape if self.config.hyperprior else self.latent_shape
            codes = torch.stack([
                int(table.lo[c]) + torch.multinomial(torch.from_numpy(table.pmfs[c][1:-1]), n * shape[1] * shape[2],
                                                replacement=True, generator=generator).view(n, *shape[1:])
                for c in range(shape[0])], dim=1).float().to(self.device)      # (n, *shape)
            if not self.config.hyperprior:
                return self.decode(codes)
            sigma = self.scales(codes + m.float().to(self.device).view(1, -1, 1, 1))
            eps = torch.randn(sigma.shape, generator=generator, device=generator.device if generator else self.device)
            return self.decode(torch.round(sigma * eps.to(self.device)))

    # ---- bitstreams
    def fingerprint(self) -> bytes:
        """4 bytes of the weights' sha256: a file names the model that made it."""
        return bytes.fromhex(weights_fingerprint(self)[:8])

    @torch.no_grad()
    def scale_indices(self, z_hat: torch.Tensor) -> np.ndarray:
        """The SCALES row (int64, (B, M, h, w)) of each latent's sigma = h_s(z_hat): the nearest
        in log scale. The encoder and the decoder must pick the same rows, but sigma in float32
        may differ in its last bits between them (another batch, memory layout or CPU), and a
        sigma within rounding of the midpoint of two scales would then flip its row. So rows are
        read from float32 unless the position is within INDEX_GUARD of a midpoint (far more than
        float32's error); such images are recomputed in float64, whose answer both sides share."""
        step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (N_SCALES - 1)

        def position(sigma: torch.Tensor) -> torch.Tensor:                   # fractional row
            return (sigma.double().clamp_min(SCALE_MIN).log() - math.log(SCALE_MIN)) / step

        with evaluating(self):
            pos = position(torch.cat([self.h_s(zb) for zb in z_hat.split(CHUNK)]))   # (B, M, h, w)
            near = ((pos - pos.floor() - 0.5).abs() < INDEX_GUARD).flatten(1).any(1)  # (B,)
            if near.any():
                params = {k: v.double() for k, v in self.h_s.state_dict().items()}
                pos[near] = position(torch.func.functional_call(self.h_s, params, (z_hat[near].double(),)))
        return pos.round().clamp(0, N_SCALES - 1).long().cpu().numpy()

    def channel_rows(self, shape: tuple[int, ...], n: int) -> np.ndarray:
        """The pmf row of every code of n images of `shape` (C, h, w) in a factorized prior:
        its channel."""
        return np.broadcast_to(np.arange(shape[0])[None, :, None, None], (n, *shape)).reshape(-1)

    @torch.no_grad()
    def compress(self, x: torch.Tensor) -> bytes:
        """Images (N, C, H, W) in [-1, 1] -> bytes: a 24-byte header and the ANS stream of their
        codes (and side information). len(compress(x)) * 8 / N is the real rate in bits per
        image; decompress(bytes) gives reconstruct(x) exactly."""
        x = self.check_images(x)
        if not len(x):
            raise BadInput("compress: no images")
        c = self.config
        y = self.analyse(x)                                                   # (N, M, h, w)
        codes = torch.round(y - self.offsets().view(1, -1, 1, 1)).long().cpu().numpy()
        _, prior_table = self.prior.coding_table()
        if not c.hyperprior:
            segments = [(codes, self.channel_rows(self.latent_shape, len(x)), prior_table)]
        else:
            with evaluating(self):
                z = torch.cat([self.h_a(yb.abs()).float() for yb in y.split(CHUNK)])  # (N, Mz, h', w')
            mz = self.z_prior.medians().float().view(1, -1, 1, 1)
            z_codes = torch.round(z - mz)
            rows = self.scale_indices(z_codes + mz)
            # the side information first: the decoder needs it for the rows of y's codes
            segments = [(z_codes.long().cpu().numpy(), self.channel_rows(self.z_shape, len(x)), prior_table),
                        (codes, rows, gaussian_table(SCALES))]
        header = HEADER.pack(MAGIC, FORMAT_VERSION, int(c.hyperprior), len(x), c.channels, c.size, c.size,
                             *self.latent_shape, self.fingerprint())
        return header + entropy_encode(segments)

    @torch.no_grad()
    def decompress(self, data: bytes) -> torch.Tensor:
        """Bytes from compress -> the images (N, C, H, W) in [-1, 1]; needs only the bytes and
        this model (a file from another model, or another format, is refused)."""
        return self.decode(self.decompress_codes(data))

    @torch.no_grad()
    def decompress_codes(self, data: bytes) -> torch.Tensor:
        """Bytes from compress -> the integer codes (N, M, h, w) as floats, encode(x)'s exactly."""
        if len(data) < HEADER.size or data[:2] != MAGIC:
            raise BadInput("decompress: not a codec file (no GC header)")
        magic, version, flags, n, ch, h, w, *latent, fp = HEADER.unpack(bytes(data[:HEADER.size]))
        c = self.config
        if version != FORMAT_VERSION:
            raise BadInput(f"decompress: format version {version}; this ganvae reads version {FORMAT_VERSION}")
        if (flags & 1) != int(c.hyperprior) or (ch, h, w) != (c.channels, c.size, c.size) \
                or tuple(latent) != self.latent_shape or fp != self.fingerprint():
            raise BadInput(f"decompress: the file was made by another model ({ch}x{h}x{w} images, latents "
                           f"{'x'.join(map(str, latent))}); decode it with that model")
        dec = Decoder(bytes(data[HEADER.size:]))
        _, prior_table = self.prior.coding_table()
        if not c.hyperprior:
            codes = dec.decode(self.channel_rows(self.latent_shape, n), prior_table)
        else:
            z_codes = dec.decode(self.channel_rows(self.z_shape, n), prior_table)
            mz = self.z_prior.medians().float().view(1, -1, 1, 1)
            z_codes = torch.from_numpy(z_codes).float().view(n, *self.z_shape).to(self.device)
            codes = dec.decode(self.scale_indices(z_codes + mz), gaussian_table(SCALES))
        dec.finish()
        return torch.from_numpy(codes).float().view(n, *self.latent_shape).to(self.device)
