"""Differentiable augmentation of the discriminator's inputs, for training GANs on little data.

- DiffAugment: Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient
  GAN Training" (NeurIPS). The same random colour / translation / cutout is applied to real and
  fake images before D, every op to every image, each image with its own parameters (§3).
- ADA: Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
  Networks with Limited Data" (NeurIPS). Each op is applied to each image with probability p,
  and p is steered by the overfitting heuristic r_t = E[sign(D(real))] towards a target (§3),
  here E[sign(D(real) - m)] with m the output of a D that cannot tell real from fake under the
  model's loss (0 for the logistic and hinge losses the paper's heuristic assumes).
  Here a reduced 'bgc' pipeline of their Appendix B.1: blit, geometric and colour groups,
  without luma flip and hue rotation.

Images are (B, C, H, W) in [-1, 1] with H = W. Every op is differentiable w.r.t. the images
(the generator learns through D's view of its augmented samples), keeps shape and dtype, and
runs in float32 when given bf16 / fp16. Random numbers are drawn on the generator's device
(x's device without one) and moved to x's device, so a CPU generator seeds a GPU run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import BadInput
from .parallel import all_sum_, draw_rows

Tensor = torch.Tensor
Op = Callable[[Tensor, "torch.Generator | None"], Tensor]


# ---- shared helpers
def _draw(shape: tuple[int, ...], x: Tensor, generator: torch.Generator | None,
          normal: bool = False) -> Tensor:
    """U[0, 1) (or N(0, 1)) float32 numbers of `shape`, drawn on the generator's device. The
    last axis is the batch: under DDP this rank's part of one draw for the global batch."""
    fn = torch.randn if normal else torch.rand
    dev = generator.device if generator is not None else x.device
    return draw_rows(lambda m: fn((*shape[:-1], m), generator=generator, device=dev, dtype=torch.float32),
                     shape[-1], dim=len(shape) - 1).to(x.device)


def _randint(low: int, high: int, n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """n integers in [low, high] (inclusive), int64 on x's device."""
    dev = generator.device if generator is not None else x.device
    return draw_rows(lambda m: torch.randint(low, high + 1, (m,), generator=generator, device=dev), n).to(x.device)


def _in_float32(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run fn on a float32 copy of a half-precision x and cast the result back: the means and
    products of a colour op lose visible precision in bf16's 8-bit mantissa."""
    @functools.wraps(fn)
    def wrapper(x: Tensor, *args, **kwargs) -> Tensor:
        if x.dtype in (torch.bfloat16, torch.float16):
            return fn(x.float(), *args, **kwargs).to(x.dtype)
        return fn(x, *args, **kwargs)
    return wrapper


def _per_sample(v: Tensor, x: Tensor) -> Tensor:
    """(B,) parameters -> (B, 1, 1, 1), in x's dtype, to broadcast over an image each."""
    return v.to(x.dtype).view(-1, 1, 1, 1)


def _per_map(v: Tensor, x: Tensor) -> Tensor:
    """(B,) integers -> (B, 1, 1) int64 on x's device, to broadcast over an (H, W) index map."""
    return torch.as_tensor(v, device=x.device).long().view(-1, 1, 1)


def _gather(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """out[b, c, i, j] = x[b, c, rows[b, i, j], cols[b, i, j]]; rows and cols are in-range integer
    indices broadcastable to (B, H, W). One gather over the flattened pixels: differentiable in
    x (the gradient scatters back to the source pixels), with no loop over the batch."""
    B, C, H, W = x.shape
    index = (rows * W + cols).expand(B, H, W).reshape(B, 1, H * W).expand(B, C, H * W)
    return x.flatten(2).gather(2, index).view(B, C, H, W)


# ---- deterministic ops with explicit per-sample parameters (the random ops below call these)
@_in_float32
def adjust_brightness(x: Tensor, shift: Tensor) -> Tensor:
    """x + shift, shift (B,) one per image."""
    return x + _per_sample(shift, x)


@_in_float32
def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Scale each pixel's distance from its grey value (the mean over channels) by factor (B,).
    A grey image (C = 1) is its own grey value: unchanged."""
    if x.shape[1] == 1:
        return x
    grey = x.mean(dim=1, keepdim=True)                                  # (B, 1, H, W)
    return grey + (x - grey) * _per_sample(factor, x)


@_in_float32
def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Scale each image's distance from its own mean over C, H, W by factor (B,): DiffAugment's
    contrast (its reference rand_contrast keeps each image's mean)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)                          # (B, 1, 1, 1)
    return mean + (x - mean) * _per_sample(factor, x)


@_in_float32
def scale_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """x * factor (B,): contrast scaled about 0, the centre of [-1, 1] data, as ADA's reference
    colour matrix does (Karras et al. 2020, after brightness), unlike adjust_contrast."""
    return x * _per_sample(factor, x)


@_in_float32
def translate(x: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Move each image's content by dx columns (right if positive) and dy rows (down), integer
    tensors (B,); pixels moved in from outside are 0, as DiffAugment's zero padding."""
    B, C, H, W = x.shape
    rows = torch.arange(H, device=x.device).view(1, H, 1) - _per_map(dy, x)   # (B, H, 1) sources
    cols = torch.arange(W, device=x.device).view(1, 1, W) - _per_map(dx, x)   # (B, 1, W)
    # Sources outside the image read a clamped pixel, then are zeroed by the mask: the same as
    # padding with zeros, without padding by a data-dependent (host-synced) amount.
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)        # (B, H, W)
    out = _gather(x, rows.clamp(0, H - 1), cols.clamp(0, W - 1))
    return out * inside.unsqueeze(1).to(x.dtype)


@_in_float32
def cut_square(x: Tensor, cx: Tensor, cy: Tensor, side: int) -> Tensor:
    """Zero a side x side square centred at column cx, row cy (B,) integers, clipped at the
    border; a mask product, so the kept pixels pass their gradient unchanged."""
    H, W = x.shape[-2:]
    top, left = _per_map(cy, x) - side // 2, _per_map(cx, x) - side // 2      # (B, 1, 1) each
    rows = torch.arange(H, device=x.device).view(1, H, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W)
    hole = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)  # (B, H, W)
    return x * (~hole).unsqueeze(1).to(x.dtype)


# ---- DiffAugment (Zhao et al. 2020): op(x, generator), every op on every image
@_in_float32
def rand_color(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5), as the paper's
    reference code (its ranges are for images in [-1, 1], as ours)."""
    B = x.shape[0]
    x = adjust_brightness(x, _draw((B,), x, generator) - 0.5)
    x = adjust_saturation(x, _draw((B,), x, generator) * 2)
    return adjust_contrast(x, _draw((B,), x, generator) + 0.5)


@_in_float32
def rand_translation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Integer shifts dx, dy each uniform in [-s, s], s = S/8 rounded to nearest as the paper's
    reference code (int(S * 0.125 + 0.5): 4 at S = 28, where S // 8 would give 3), zero-filled."""
    B, _, H, W = x.shape
    sx, sy = int(W * 0.125 + 0.5), int(H * 0.125 + 0.5)
    dx = _randint(-sx, sx, B, x, generator)
    dy = _randint(-sy, sy, B, x, generator)
    return translate(x, dx, dy)


@_in_float32
def rand_cutout(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Zero a square of side S/2 (rounded) at a uniformly drawn pixel as its centre."""
    B, _, H, W = x.shape
    side = int(H * 0.5 + 0.5)
    cx = _randint(0, W - 1, B, x, generator)
    cy = _randint(0, H - 1, B, x, generator)
    return cut_square(x, cx, cy, side)


DIFFAUG_OPS: dict[str, Op] = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def _check_ops(names: tuple[str, ...], text: str) -> None:
    for name in names:
        if name not in DIFFAUG_OPS:
            raise BadInput(f"augment_policy={text!r}: unknown op {name!r}; "
                           f"choose from {', '.join(DIFFAUG_OPS)}")


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' (or 'translation+cutout') -> ('translation', 'cutout'); '' or 'none' -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    # "+" as well as ",": a policy inside a comma-separated model list (compare's --models)
    names = tuple(name.strip() for name in re.split(r"[,+]", text) if name.strip())
    _check_ops(names, text)
    return names


@_in_float32                                                            # one cast for all ops
def diff_augment(x: Tensor, policy: tuple[str, ...], generator: torch.Generator | None = None) -> Tensor:
    """Apply the policy's ops in its order; D must see real and fake images through it alike."""
    _check_ops(tuple(policy), ",".join(policy))
    for name in policy:
        x = DIFFAUG_OPS[name](x, generator)
    return x


# ---- ADA (Karras et al. 2020)
def _reflect(i: Tensor, n: int) -> Tensor:
    """Integer indices folded into [0, n) by mirroring about the edge pixels (F.pad's 'reflect':
    -1 -> 1, n -> n - 2), for any distance outside."""
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


@_in_float32
def blit(x: Tensor, flip: Tensor, rot: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """x-flip where flip (B,) bool, then torch.rot90 by rot (B,) quarter turns, then move the
    content by dx columns and dy rows (B,) integers with reflection padding. Composed into one
    integer source index per output pixel: every output value is one of the input's pixels."""
    n = x.shape[-1]                                                      # square images
    # Undo the translation (the last op applied), reflecting what falls outside.
    i = _reflect(torch.arange(n, device=x.device).view(1, n, 1) - _per_map(dy, x), n)  # (B, n, 1)
    j = _reflect(torch.arange(n, device=x.device).view(1, 1, n) - _per_map(dx, x), n)  # (B, 1, n)
    # Undo the rotation in doubled centred coordinates v = 2i - (n-1), u = 2j - (n-1): integers
    # whose quarter turns are exact (for even n the centre lies between pixels).
    v, u = 2 * i - (n - 1), 2 * j - (n - 1)
    k = _per_map(rot, x) % 4
    cos = torch.tensor([1, 0, -1, 0], device=x.device)[k]
    sin = torch.tensor([0, 1, 0, -1], device=x.device)[k]
    v, u = cos * v + sin * u, cos * u - sin * v                          # (B, n, n) each
    u = torch.where(_per_map(flip, x).bool(), -u, u)                             # undo the x-flip
    return _gather(x, (v + n - 1) // 2, (u + n - 1) // 2)


def geometric_matrix(scale: Tensor, angle: Tensor, aniso: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """(B, 2, 3) affine_grid matrix of the transform: scale by `scale`, rotate by `angle` radians,
    stretch x by `aniso` and y by 1 / aniso, then move by (tx, ty) fractions of the side; all (B,).
    affine_grid maps output coordinates to source ones, so this is the inverse transform,
    composed from the inverses in reverse order: (T A R S)^-1 = S^-1 R^-1 A^-1 T^-1."""
    one, zero = torch.ones_like(scale), torch.zeros_like(scale)

    def mat(*row_major: Tensor) -> Tensor:                              # 6 x (B,) -> (B, 3, 3)
        return torch.stack([*row_major, zero, zero, one], dim=-1).view(-1, 3, 3)

    cos, sin = torch.cos(angle), torch.sin(angle)
    # Normalised coordinates span [-1, 1] across the side: a fraction t of it is 2t.
    inv_t = mat(one, zero, -2 * tx, zero, one, -2 * ty)
    inv_a = mat(1 / aniso, zero, zero, zero, aniso, zero)
    inv_r = mat(cos, sin, zero, -sin, cos, zero)
    inv_s = mat(1 / scale, zero, zero, zero, 1 / scale, zero)
    return (inv_s @ inv_r @ inv_a @ inv_t)[:, :2, :]


@_in_float32
def resample(x: Tensor, theta: Tensor) -> Tensor:
    """Sample x at theta's (B, 2, 3) source coordinates, reflecting beyond the border. Bilinear
    is our simplification: the paper's code supersamples 2x with a 12-tap wavelet (sym6) filter."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)   # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class AdaptiveAugment(nn.Module):
    """ADA: augment D's inputs with probability p per op per image; `update` steers p.

    p and the sign accumulators are buffers: checkpoints carry them, so a resumed run adjusts
    p at the same calls and by the same amounts as one that never stopped.

    `midpoint` is what D outputs for an image it cannot place, halfway between its targets for
    real and fake ones: the paper's r_t = E[sign D(real)] assumes logits centred at 0; with
    least squares (targets 0 and 1) an undecided D outputs 0.5, whose sign is +1 without any
    overfitting. A number from the model, which knows its loss.
    """

    GROUPS = "bgc"

    def __init__(self, target: float = 0.6, interval: int = 4, speed_images: int = 100_000,
                 p_max: float = 0.8, ops: str = "bgc", midpoint: float = 0.0):
        super().__init__()
        checks = [
            (0 < target < 1, f"ada_target={target}: must be in (0, 1)"),
            (interval >= 1, f"ada_interval={interval}: must be at least 1"),
            (speed_images > 0, f"ada_speed_images={speed_images}: must be positive"),
            (0 <= p_max <= 1, f"ada_p_max={p_max}: must be in [0, 1]"),
            (set(ops) <= set(self.GROUPS), f"ada_ops={ops!r}: use the letters b (blit), g (geometric), c (colour)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInput(message)
        self.target, self.interval, self.ops, self.midpoint = target, interval, ops, float(midpoint)
        # The paper lets p move 0 -> 1 in 500k images; our runs last minutes, so p must be able
        # to react within them: 100k by default, configurable.
        self.speed_images = speed_images
        # The paper finds the composed pipeline non-leaking (D's augmented view still determines
        # the clean distribution) for p below about 0.8 (their Fig. 3): cap p there.
        self.p_max = p_max
        self.register_buffer("p", torch.zeros((), dtype=torch.float32))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float32))   # since last adjustment
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float32))
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update(self, logits_real: Tensor) -> None:
        """Accumulate sign(D(real) - midpoint); every `interval`-th call move p by sign(r_t - target)
        times the images seen since / speed_images. Tensor arithmetic only: no host sync."""
        signs = torch.sign(logits_real.detach().float() - self.midpoint)
        # under DDP the heuristic is the global batch's: every rank adds every rank's signs, so
        # all ranks keep one p (one small all-reduce per D step; nothing on one process)
        stats = all_sum_(torch.stack([signs.sum(), torch.tensor(float(signs.numel()), device=signs.device)]))
        self.sign_sum += stats[0]
        self.sign_count += stats[1]
        self.calls += 1
        due = self.calls >= self.interval                                # 0-d bool, on device
        r_t = self.sign_sum / self.sign_count.clamp(min=1)
        step = torch.sign(r_t - self.target) * self.sign_count / self.speed_images
        self.p.copy_(torch.where(due, (self.p + step).clamp(0, self.p_max), self.p))
        for acc in (self.sign_sum, self.sign_count, self.calls):
            acc.masked_fill_(due, 0)

    def _gate(self, x: Tensor, generator: torch.Generator | None, value: Tensor,
               identity: float) -> Tensor:
        """value (..., B) where this image gets the op (Bernoulli(p) each; U < 1 always holds
        at p = 1), else the op's identity parameter, so one vectorised pass serves all images."""
        return torch.where(_draw((x.shape[0],), x, generator) < self.p.to(x.device), value, identity)

    def _blit(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        B, n = x.shape[0], x.shape[-1]
        # As the paper's code: an applied x-flip flips half the time, an applied rotation turns
        # by 0-3 quarters, so "applied" draws a random member of the op's group.
        flip = self._gate(x, generator, _draw((B,), x, generator) < 0.5, False)
        rot = self._gate(x, generator, _randint(0, 3, B, x, generator), 0)
        shift = torch.round((_draw((2, B), x, generator) * 2 - 1) * 0.125 * n).long()  # (2, B) pixels
        dx, dy = self._gate(x, generator, shift, 0)                     # both axes together
        return blit(x, flip, rot, dx, dy)

    def _geometric(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        B = x.shape[0]
        normal = lambda *shape: _draw(shape or (B,), x, generator, normal=True)   # noqa: E731
        std = 0.2 * math.log(2)                                          # of log(scale)
        # A non-applied op keeps its identity parameter, so one matrix per image and a single
        # resampling cover every combination. One rotation with probability p (the paper
        # splits it into two, each with probability 1 - sqrt(1 - p), around the stretch).
        scale = self._gate(x, generator, torch.exp(std * normal()), 1.0)
        angle = self._gate(x, generator, (_draw((B,), x, generator) * 2 - 1) * math.pi, 0.0)
        aniso = self._gate(x, generator, torch.exp(std * normal()), 1.0)
        tx, ty = self._gate(x, generator, 0.125 * normal(2, B), 0.0)   # fractions of the side
        return resample(x, geometric_matrix(scale, angle, aniso, tx, ty))

    def _color(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        normal = lambda: _draw((x.shape[0],), x, generator, normal=True)  # noqa: E731
        x = adjust_brightness(x, self._gate(x, generator, 0.2 * normal(), 0.0))
        # about 0, scaling the brightness shift too: the reference's colour matrix C = S_c T_b
        x = scale_contrast(x, self._gate(x, generator, torch.exp(0.5 * math.log(2) * normal()), 1.0))
        if x.shape[1] == 3:                                              # grey has no saturation
            x = adjust_saturation(x, self._gate(x, generator, torch.exp(math.log(2) * normal()), 1.0))
        return x

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        # One host sync per call: p = 0 (the start of every run) then costs nothing.
        if not self.ops or not bool(self.p > 0):
            return x
        out = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
        groups = {"b": self._blit, "g": self._geometric, "c": self._color}
        for letter in self.GROUPS:                                       # the paper's order
            if letter in self.ops:
                out = groups[letter](out, generator)
        return out.to(x.dtype)


# ---- what the models use: config fields, and one module for D's view of every image
@dataclasses.dataclass
class AugmentConfig:
    """The discriminator-augmentation fields of a model config (GAN, VAE-GAN): a mixin, so
    every model with an image discriminator spells them the same way."""

    # What D sees: "none"; "diffaug" (every image through `augment_policy`'s ops, Zhao et al.
    # 2020); "ada" (each op with an adaptive probability p, Karras et al. 2020). Real and fake
    # images alike, in D's and G's updates, so G still learns the clean distribution.
    augment: Literal["none", "diffaug", "ada"] = "none"
    # DiffAugment's ops, in order; its paper's choice for little data is all three
    augment_policy: str = "color,translation,cutout"
    # the r_t = E[sign(D(real) - m)] that p steers to (the paper's 0.6; m: see AdaptiveAugment)
    ada_target: float = 0.6
    ada_interval: int = 4          # D updates between adjustments of p (the paper's 4)
    ada_speed_images: int = 100_000  # images for p to move by 1 (the paper's 500k; see AdaptiveAugment)
    ada_p_max: float = 0.8         # p's ceiling, below which the pipeline does not leak
    ada_ops: str = "bgc"           # groups: b(lit), g(eometric), c(olour)

    def validate_augment(self) -> None:
        if self.augment not in ("none", "diffaug", "ada"):
            raise BadInput(f"augment={self.augment!r}: choose none, diffaug or ada")
        if self.augment == "diffaug" and not parse_policy(self.augment_policy):
            raise BadInput("augment=diffaug with an empty augment_policy: name ops, e.g. augment_policy=translation,cutout")
        parse_policy(self.augment_policy)
        if self.augment == "ada":
            DiscriminatorAugment(self)   # AdaptiveAugment checks its own arguments


class DiscriminatorAugment(nn.Module):
    """D's view of images: `forward(x, generator)` augments them (or returns them unchanged for
    augment=none), `observe(logits_real)` feeds ADA's heuristic, `p` is ADA's probability (1
    for DiffAugment, which augments every image; 0 for none). The same generator state gives
    the same transforms to a batch of the same size: VAE-GAN compares x and its
    reconstruction under one transform that way. `midpoint`: the model's undecided D output
    (see AdaptiveAugment), for ADA's heuristic."""

    def __init__(self, cfg: AugmentConfig, midpoint: float = 0.0):
        super().__init__()
        self.kind = cfg.augment
        self.policy = parse_policy(cfg.augment_policy)
        if self.kind == "ada":     # a submodule: its p is in the model's state_dict and checkpoints
            self.ada = AdaptiveAugment(cfg.ada_target, cfg.ada_interval, cfg.ada_speed_images, cfg.ada_p_max,
                                       cfg.ada_ops, midpoint)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.kind == "diffaug":
            return diff_augment(x, self.policy, generator)
        if self.kind == "ada":
            return self.ada(x, generator)
        return x

    def observe(self, logits_real: Tensor) -> None:
        if self.kind == "ada":
            self.ada.update(logits_real)

    @property
    def p(self) -> Tensor:
        if self.kind == "ada":
            return self.ada.p.detach().clone()
        return torch.tensor(1.0 if self.kind == "diffaug" else 0.0)



def paired_generators(n: int = 1) -> list[torch.Generator]:
    """n CPU generators with one seed drawn from the global RNG (so a seeded or resumed run
    draws the same): each gives the same augmentation parameters to a batch of equal size."""
    seed = int(torch.randint(0, 2**62, ()))
    return [torch.Generator().manual_seed(seed) for _ in range(n)]


# ---- ordinary augmentation of the training data (not of D's view): the opt-in for AEs / VAEs
DATA_OPS = ("flip", "translation")


def parse_data_augment(text: str) -> tuple[str, ...]:
    """'flip,translation' -> ('flip', 'translation'); '' / 'none' -> ()."""
    if text.strip().lower() in ("", "none"):
        return ()
    names = tuple(n.strip() for n in re.split(r"[,+]", text) if n.strip())
    for n in names:
        if n not in DATA_OPS:
            raise BadInput(f"augment_data={text!r}: unknown op {n!r}; choose from {', '.join(DATA_OPS)}")
    return names


def augment_data(x: Tensor, ops: tuple[str, ...], generator: torch.Generator | None = None) -> Tensor:
    """Training images flipped left-right (half of them) and / or shifted by up to 1/8 of the
    side (reflected): the classic data augmentation. It changes the distribution the model
    learns: its samples will be flipped and shifted too (the trainer warns)."""
    if not ops:
        return x
    B, n = x.shape[0], x.shape[-1]
    flip = (_draw((B,), x, generator) < 0.5) if "flip" in ops else torch.zeros(B, dtype=torch.bool, device=x.device)
    if "translation" in ops:
        dx, dy = torch.round((_draw((2, B), x, generator) * 2 - 1) * 0.125 * n).long()
    else:
        dx = dy = torch.zeros(B, dtype=torch.long, device=x.device)
    return blit(x, flip, torch.zeros(B, dtype=torch.long, device=x.device), dx, dy)
