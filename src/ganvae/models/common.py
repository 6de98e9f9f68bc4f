"""Helpers several model families share: Adam's settings checked, eval mode for a block, seeded
normal noise, the Gaussian posterior's sample and KL, and the exponential moving average of a
network. They live here, not in one family's file, so that no model file imports another's
(the layout test enforces it); the old homes (autoencoder, vae, gan) still import them."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from ..errors import BadInput
from ..parallel import randn_rows


def check_adam(lr: float, beta1: float, beta2: float) -> None:
    """Loud failure for Adam settings that cannot work (shared by the encoder families)."""
    if not lr > 0:
        raise BadInput(f"lr={lr}: must be positive")
    for name, b in (("adam_beta1", beta1), ("adam_beta2", beta2)):
        if not 0.0 <= b < 1.0:
            raise BadInput(f"{name}={b}: must be in [0, 1)")


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (batch norm on running statistics) for the block, then the previous mode back."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal noise on `device`.

    With a generator the numbers are drawn on the generator's own device and then moved, so a
    seeded CPU generator gives the same samples whether the model runs on CPU or GPU.
    """
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): a sample of q(z|x) that gradients pass through."""
    # (under DDP, this rank's rows of one draw for the global batch: see parallel.py)
    return mu + torch.exp(0.5 * logvar) * randn_rows(mu)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row (B,), in closed form, summed over latent dims."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


@torch.no_grad()
def update_ema_(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * net, parameters and floating-point buffers alike
    (beta = 0 copies). Used for G's EMA here and for the VAE-GAN decoder's."""
    for p_ema, p in zip(ema.parameters(), net.parameters()):
        if beta == 0:
            p_ema.copy_(p)
        else:
            p_ema.lerp_(p, 1 - beta)                                     # beta * p_ema + (1 - beta) * p
    # BatchNorm's running_mean / running_var are themselves a short EMA (momentum 0.1) of
    # the batch statistics of the *current* network's activations. Copying them (as StyleGAN2-ADA
    # does with its buffers; its G has no batch norm) pairs the averaged weights with the
    # statistics of another network, the latest one, a mismatch largest exactly when
    # averaging helps, while G oscillates. Averaging them with the weights' decay gives the
    # averaged network the same average of the statistics, over the same span of training.
    # (Exact statistics would need a recalibration pass through the average, as SWA's
    # bn_update does: a forward pass per update, too costly here.) Integer buffers
    # (num_batches_tracked) are counters, not statistics: copied.
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        if b.is_floating_point() and beta != 0:
            b_ema.lerp_(b, 1 - beta)
        else:
            b_ema.copy_(b)
