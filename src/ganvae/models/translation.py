"""What the image-to-image translation models share (issue 13): their config fields, the
translation half of the model contract, the PatchGAN losses and CycleGAN's replay buffer.

A translation model maps images of domain A (the input, C_a channels) to domain B (the
target, C channels), both (B, C, S, S) in [-1, 1]. The contract (see models/base.py) grows by:

    translation = "paired"      trains on aligned pairs (a_i, b_i) only (pix2pix), or
                  "unpaired"    trains on two independent draws, one per domain (CycleGAN,
                                UNIT); paired data is then used as two unpaired sets
    directions                  ("a2b",) or ("a2b", "b2a"): what `translate` can do
    train_step((a, b), step)    the trainer hands one batch of each domain (a: (B, C_a, S, S),
                                b: (B, C, S, S)); aligned when the model is paired
    translate(x, direction)     (B, C_in, S, S) -> (B, C_out, S, S) in [-1, 1]; differentiable,
                                callers use torch.no_grad() and eval() as for decode

They do not sample from noise: `sample` and `decode` raise a one-line error saying so; what
the pipeline calls "generating" for them is translating held-out inputs
(ganvae.evaluation.generate).

Losses, per batch, float32, on PatchGAN logit grids flattened to one logit per patch (so a
mean over the batch is a mean over every patch of every image, as in Isola et al.'s code):

    ls  (Mao et al. 2017, CycleGAN's choice):  L_D = 1/2 [E (D(real) - 1)^2 + E D(fake)^2]
                                               L_G = E (D(fake) - 1)^2
    ns  (pix2pix's cGAN):                      L_D = 1/2 [E -log s(D(real)) + E -log(1 - s(D(fake)))]
                                               L_G = E -log s(D(fake))

The 1/2 on D is both papers' ("we divide the objective by 2 while optimizing D, which slows
down the rate at which D learns relative to G", Isola et al. 2017 §3.3; Zhu et al. 2017 §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .. import parallel
from ..errors import BadInput
from ..nets import dcgan_init
from ..translation_nets import PatchDiscriminator
from .base import GenerativeModel, ModelConfig
from .regularizers import add_spectral_norm, gradient_penalty, r1_penalty

TRANSLATION_NORMS = ("batch", "instance", "layer", "none")


@dataclass
class TranslationConfig(ModelConfig):
    channels_a: int = 1        # filled from the data: the input domain's channels (B's are `channels`)
    norm: str = "batch"        # in generators and discriminators: batch, instance, layer or none
    loss: Literal["ls", "ns"] = "ls"
    # The discriminators' regularizer, as for GANs: spectral norm (Miyato et al. 2018), R1 on
    # real inputs (gamma / 2 * ||grad||^2; Mescheder et al. 2018) or WGAN-GP's penalty
    # (Gulrajani et al. 2017) on the mean patch logit.
    reg: Literal["none", "spectral", "r1", "gp"] = "none"
    r1_gamma: float = 1.0
    gp_weight: float = 10.0
    # PatchGAN depth: k4 s2 layers before the two k4 s1 ones. 1 gives 16x16 patches, 2 gives
    # 34x34 (on 28x28 images, the whole image: a global D); Isola et al.'s 70x70 on 256x256 is
    # about a quarter of the side, and 16 of 28 is the nearest here.
    d_layers: int = 1
    lr: float = 2e-4           # Adam 2e-4, betas (0.5, 0.999): both papers
    lr_d: float = 2e-4
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.arch != "dcgan":
            raise BadInput(f"arch={self.arch}: translation models use the U-Net and PatchGAN nets; drop arch")
        if self.channels_a < 1:
            raise BadInput(f"channels_a={self.channels_a}: must be at least 1")
        if self.norm not in TRANSLATION_NORMS:
            raise BadInput(f"norm={self.norm!r}: choose {', '.join(TRANSLATION_NORMS)}")
        if self.loss not in ("ls", "ns"):
            raise BadInput(f"loss={self.loss!r}: choose ls (least squares) or ns (non-saturating)")
        if self.reg not in ("none", "spectral", "r1", "gp"):
            raise BadInput(f"reg={self.reg!r}: choose none, spectral, r1 or gp")
        if not self.r1_gamma >= 0 or not self.gp_weight >= 0:
            raise BadInput("r1_gamma and gp_weight must be at least 0")
        if not 1 <= self.d_layers <= 4:
            raise BadInput(f"d_layers={self.d_layers}: choose 1 to 4")
        if self.size // 2**self.d_layers < 3:   # the two k4 s1 layers need a grid of 3 or more
            raise BadInput(f"d_layers={self.d_layers}: too deep for {self.size}x{self.size} images "
                           "(the PatchGAN needs size / 2^d_layers >= 3); lower d_layers")
        if self.reg in ("gp", "r1") and self.norm == "batch":
            # batch norm makes each image's logits depend on the rest of the batch, so the
            # per-image gradient the penalty constrains is not that of a function of the image
            raise BadInput(f"reg={self.reg} with norm=batch: the per-image gradient penalty needs per-image "
                           "normalisation; add --set norm=instance (or layer, none)")
        for name in ("lr", "lr_d"):
            if not getattr(self, name) > 0:
                raise BadInput(f"{name}={getattr(self, name)}: must be positive")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise BadInput(f"{name}={getattr(self, name)}: must be in [0, 1)")


# ---- losses (pure functions of flattened logits; the tests check them by hand)

def d_loss(kind: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """D's loss, halved as in both papers; logits of any shape (every patch counts once)."""
    r, f = logits_real.float().flatten(), logits_fake.float().flatten()
    if kind == "ls":
        return 0.5 * ((r - 1).square().mean() + f.square().mean())
    return 0.5 * (F.softplus(-r).mean() + F.softplus(f).mean())       # -log s(r), -log(1 - s(f))


def g_loss(kind: str, logits_fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss on D's logits for its outputs (not halved)."""
    f = logits_fake.float().flatten()
    if kind == "ls":
        return (f - 1).square().mean()
    return F.softplus(-f).mean()                                      # non-saturating


class ReplayBuffer(nn.Module):
    """The image pool of Shrivastava et al. 2017, as CycleGAN uses it (Zhu et al. 2017 §4, size
    50): D is shown a mix of this step's fakes and older ones, so it does not chase only G's
    latest mistakes (which makes the game oscillate).

    query(x) goes image by image: while the pool holds fewer than `size`, the image is stored
    and returned; after that, with probability 1/2 a random stored image is returned and the new
    one takes its place, else the new one is returned. The pool is a buffer of fixed shape
    (size, C, S, S) plus its fill count, so checkpoints carry it and a resumed run draws the
    same. Draws use the global torch RNG (restored on resume).
    """

    def __init__(self, size: int, channels: int, side: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, side, side))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) fakes -> (B, C, S, S) images for D, detached, float32."""
        x = x.detach().float()
        if self.size == 0:
            return x
        # Under DDP every rank queries with the global batch (all ranks' fakes, in rank order)
        # and the same draws, so the pools stay equal and match one process's; each rank then
        # keeps its own rows.
        b = len(x)
        x = parallel.all_gather_rows(x)                       # (B * world, C, S, S)
        out = x.clone()
        n = int(self.count)
        coins = torch.rand(len(x))                            # on the CPU RNG, whatever the device
        slots = torch.randint(0, self.size, (len(x),))
        for i in range(len(x)):
            if n < self.size:
                self.images[n] = x[i]
                n += 1
            elif coins[i] < 0.5:
                j = int(slots[i])
                out[i] = self.images[j]
                self.images[j] = x[i]
        self.count.fill_(n)
        return out[parallel.rows(len(out))] if len(out) != b else out


class TranslationModel(GenerativeModel):
    """Base of the translation families: the contract's translation half (see the module
    docstring), the PatchGAN discriminators and their regularized update."""

    translation: ClassVar[str] = "paired"
    # DDP: every update goes through update(), which averages the gradients over the ranks
    # itself; random draws are the global batch's (GlobalBatchDropout, the pool's all_gather)
    ddp_ready = True
    averages_own_gradients = True
    directions: ClassVar[tuple[str, ...]] = ("a2b",)
    gaussian_latent: ClassVar[bool] = False

    def _generators(self) -> dict[str, nn.Module]:
        """{direction: network}; the families fill it."""
        raise NotImplementedError

    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        nets = self._generators()
        if direction not in nets:
            raise BadInput(f"--direction {direction}: {self.name} translates {' and '.join(nets)} only")
        c = self.config
        want = c.channels_a if direction == "a2b" else c.channels
        if x.dim() != 4 or x.shape[1] != want or x.shape[2:] != (c.size, c.size):
            raise BadInput(f"{self.name} translates {direction} from ({want}, {c.size}, {c.size}) images, "
                           f"not {tuple(x.shape[1:])}")
        with self.autocast():
            y = nets[direction](x)
        return y.float()

    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        raise BadInput(f"{self.name} translates images; it does not sample from noise: "
                       "use ganvae translate RUN INPUT")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise BadInput(f"{self.name} has no latent space to decode from; use ganvae translate RUN INPUT")

    # ---- discriminators
    def make_discriminator(self, channels: int) -> PatchDiscriminator:
        c = self.config
        d = PatchDiscriminator(channels, c.width, n_layers=c.d_layers, norm=c.norm)
        dcgan_init(d)
        if c.reg == "spectral":
            add_spectral_norm(d)            # after init: the power iteration starts from these weights
        return d

    def d_objective(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """D's loss on a real and a (detached) fake batch, with the config's penalty; returns
        (loss, {name: detached scalar}) for the log."""
        c = self.config
        with self.autocast():
            lr, lf = d(real), d(fake.detach())
        loss = d_loss(c.loss, lr, lf)
        logs = {"real": lr.detach().float().mean(), "fake": lf.detach().float().mean()}

        def critic(x):  # (B,) one score per image: the mean patch logit
            with self.autocast():
                return d(x).float().flatten(1).mean(1)

        if c.reg == "r1" and c.r1_gamma > 0:
            pen = r1_penalty(critic, real)
            loss = loss + 0.5 * c.r1_gamma * pen
            logs["r1"] = pen.detach()
        elif c.reg == "gp" and c.gp_weight > 0:
            pen = gradient_penalty(critic, real, fake)
            loss = loss + c.gp_weight * pen
            logs["gp"] = pen.detach()
        return loss, logs

    def update(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        """One optimizer step on `loss`, gradients only into `params` (the others' stay None)."""
        opt.zero_grad(set_to_none=True)
        self.backward(loss, inputs=params)
        self.average_gradients(params)   # under DDP: the ranks' mean, as one process's batch gives
        self.step(opt)


def adam(params, lr: float, c: TranslationConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(c.adam_beta1, c.adam_beta2))


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every pixel of the batch (the papers' L1 terms), float32."""
    return (x.float() - y.float()).abs().mean()
