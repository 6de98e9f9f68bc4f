"""The evaluator network: a small CNN whose penultimate features the metrics are computed in.

Inception features are the field's default for FID, but no Inception weights can be fetched
here and they fit 28x28 grey images poorly; measuring in the features of a classifier trained
on the dataset itself is the usual answer for such data. The net is size-agnostic (global
average pooling), so one design serves every image size the data layer gives.

    (B, C, H, W) -> conv3x3 32 -> pool -> conv3x3 64, 64 -> pool -> conv3x3 128, 128
                 -> global average -> features (B, 128) -> dropout -> linear -> logits (B, K)

(every conv followed by batch norm and ReLU). One conv at full resolution instead of two
costs little accuracy and halves the training time on a CPU. Images larger than 32 pixels are
first averaged down by an integer factor (`input_pool`, 2 for 64x64): features of layout and
shape at a quarter of the cost (Inception scores resize too, to 299).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class EvalNet(nn.Module):
    """Classifier (or rotation predictor) with a `features` method for the metrics."""

    feature_dim = 128

    def __init__(self, channels: int, num_outputs: int, dropout: float = 0.3, input_pool: int = 1):
        super().__init__()
        # no parameters: the state dict (and the shipped weights) stays the same either way
        self.pool = nn.AvgPool2d(input_pool) if input_pool > 1 else nn.Identity()
        self.body = nn.Sequential(
            *_block(channels, 32), nn.MaxPool2d(2),
            *_block(32, 64), *_block(64, 64), nn.MaxPool2d(2),
            *_block(64, 128), *_block(128, self.feature_dim),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, 128): the penultimate layer, the metrics' space."""
        return self.body(self.pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))
