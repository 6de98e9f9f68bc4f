"""Discriminator regularizers as pure functions; the models decide when and how much.

- Weight clipping: Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (Algorithm 1, c = 0.01).
- Gradient penalty: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (eq. 3,
  Algorithm 1): one interpolation weight per sample, penalty (||grad||_2 - 1)^2.
- R1: Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
  Converge?" (eq. 9): ||grad_x D(x)||^2 on real data only.
- Spectral normalization: Miyato et al. 2018, "Spectral Normalization for Generative
  Adversarial Networks": every weight divided by its largest singular value, estimated by
  one power iteration per training forward.

Every penalty here is returned unweighted: the caller multiplies by lambda (GP) or gamma/2
(R1) and applies any lazy-regularization scaling, so these functions stay checkable against
closed forms.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.nn.utils.parametrize import is_parametrized

from ..parallel import draw_rows

Critic = Callable[[torch.Tensor], torch.Tensor]  # (B, C, H, W) -> (B,) logits


def gradient_penalty(d: Critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad_x_hat d(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017).

    Args:
        d: the critic, (B, C, H, W) -> (B,).
        real, fake: (B, C, H, W) batches of the same shape; they are detached here.
        generator: draws the interpolation weights (for reproducible tests).
    Returns:
        A 0-d tensor, differentiable w.r.t. d's parameters (create_graph=True).
    """
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    b = real.shape[0]
    # One eps per sample, broadcast over C, H, W: the penalty is taken on points of the
    # straight line between a real and a fake sample, not on a per-pixel mix of the two.
    # (under DDP, this rank's rows of one draw for the global batch: see parallel.py)
    eps = draw_rows(lambda m: torch.rand(m, *([1] * (real.dim() - 1)), generator=generator,
                                         device=generator.device if generator is not None else real.device,
                                         dtype=real.dtype), b).to(real.device)          # (B, 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
    # When the critic treats samples independently (layer norm or none, not batch norm), the
    # gradient of the sum is each output's gradient w.r.t. its own input.
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)        # (B, C, H, W)
    grad = grad.float()
    # The Lipschitz constraint is on the whole input vector: norm over C, H and W together.
    norm = grad.flatten(1).norm(dim=1)                                   # (B,)
    return (norm - 1).square().mean()


def r1_penalty(d: Critic, real: torch.Tensor) -> torch.Tensor:
    """R1 penalty E_real[||grad_x d(x)||_2^2] (Mescheder et al. 2018, eq. 9).

    Args:
        d: the discriminator, (B, C, H, W) -> (B,) logits.
        real: (B, C, H, W) real images; detached here.
    Returns:
        A 0-d tensor, differentiable w.r.t. d's parameters; the caller multiplies by gamma / 2.
    """
    x = real.detach().requires_grad_(True)                               # (B, C, H, W)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)      # (B, C, H, W)
    grad = grad.float()
    return grad.square().flatten(1).sum(dim=1).mean()


@torch.no_grad()
def clip_weights_(module: nn.Module, c: float) -> None:
    """Clamp every parameter of `module` to [-c, c] in place (WGAN, Arjovsky et al. 2017).

    All parameters are clamped, norm scales and biases included, as in the paper's code:
    the clipping is a crude way to keep the critic inside a compact (Lipschitz) set.
    """
    if c <= 0:
        raise ValueError(f"clip_weights_: c={c} must be positive")
    for p in module.parameters():
        p.clamp_(-c, c)


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalize every Conv2d, ConvTranspose2d and Linear in `module` (Miyato et al. 2018).

    Uses torch's parametrization, so the state dict stores the raw weight and the power
    iteration vectors u, v; the normalized weight is recomputed on access. Call it after the
    weights are initialised: the parametrization reads the weight once to start u and v.

    Returns:
        `module` itself (modified in place), for chaining.
    """
    # Collect first: registering a parametrization adds submodules while we iterate. Skipping
    # layers already normalized makes a second call harmless instead of dividing twice.
    targets = [m for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not is_parametrized(m, "weight")]
    for m in targets:
        spectral_norm(m)  # torch picks dim=1 (output channels) for transposed convolutions
    return module
