"""Nets a user might bring (tests/test_custom_nets.py trains models with them)."""

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """z (B, latent) -> images (B, C, size, size) in [-1, 1]."""

    def __init__(self, latent: int, channels: int = 1, size: int = 28, hidden: int = 64):
        super().__init__()
        self.shape = (channels, size, size)
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, channels * size * size),
                                 nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.shape)


class MLPCritic(nn.Module):
    """images -> (B, 1) logits, with features(x) for the probes."""

    def __init__(self, channels: int = 1, size: int = 28, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, hidden), nn.LeakyReLU(0.2))
        self.head = nn.Linear(hidden, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLPEncoder(nn.Module):
    """images -> (B, out) codes."""

    def __init__(self, out: int, channels: int = 1, size: int = 28, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, hidden), nn.ReLU(),
                                 nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
