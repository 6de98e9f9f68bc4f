"""The image-to-image translation nets (issue 13): the U-Net generator of pix2pix and CycleGAN
(Isola et al. 2017, Ronneberger et al. 2015) and the PatchGAN discriminator (Isola et al. 2017,
Sec. 3.2.2), with the shared nets' norms (nets.norm_layer). Split from nets.py (issue 33), whose
conv bodies serve the generative families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import BadInput
from .nets import GlobalBatchDropout, norm_layer


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


class UNet(nn.Module):
    """The pix2pix generator (Isola et al. 2017, after Ronneberger et al. 2015): an encoder of
    k4 s2 convolutions down to a `bottom` x `bottom` grid (2x2 by default), a decoder of k4 s2 transposed convolutions back up,
    and a skip connection from every encoder level to the decoder level of the same size, so
    detail that is already in the input need not pass the bottleneck.

    (B, C_in, S, S) -> (B, C_out, S, S) in [-1, 1]. A side that is not a power of two is padded
    (reflected) up to one (28 -> 32) and the output cropped back. Channels: width * 2^j, at most
    8 * width; dropout 0.5 in the `dropout_layers` innermost decoder levels (pix2pix's noise; its masks
    drawn for the global batch under DDP).
    """

    def __init__(self, in_channels: int, out_channels: int, size: int, width: int = 64, norm: str = "batch",
                 dropout_layers: int = 3, bottom: int = 2):
        super().__init__()
        if size < 8:
            raise BadInput(f"image size {size}: the U-Net needs a side of at least 8")
        if bottom < 1 or bottom & (bottom - 1) or bottom > _pow2_at_least(size) // 4:
            raise BadInput(f"unet_bottom={bottom}: the innermost grid side must be a power of two, at most "
                           f"{_pow2_at_least(size) // 4} for {size}-pixel images")
        self.size, self.padded = size, _pow2_at_least(size)
        # halvings down to a bottom x bottom grid: 32 -> 4 at bottom 2, 3 at bottom 4
        depth = self.padded.bit_length() - bottom.bit_length()
        chans = [width * min(8, 2**j) for j in range(depth)]        # after each halving
        self.down = nn.ModuleList()
        cin = in_channels
        for j, cout in enumerate(chans):
            self.down.append(nn.Sequential(
                nn.Conv2d(cin, cout, 4, 2, 1, bias=(j == 0 or norm == "none")),
                norm_layer(norm, cout) if j > 0 else nn.Identity(), nn.LeakyReLU(0.2)))
            cin = cout
        self.up = nn.ModuleList()
        for j in reversed(range(1, depth)):                         # to the size of encoder level j-1
            skip_in = cin if j == depth - 1 else 2 * cin            # innermost: no skip to join yet
            cout = chans[j - 1]
            drop = depth - 1 - j < dropout_layers
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(skip_in, cout, 4, 2, 1, bias=norm == "none"), norm_layer(norm, cout),
                GlobalBatchDropout(0.5) if drop else nn.Identity(), nn.ReLU()))
            cin = cout
        self.out = nn.ConvTranspose2d(2 * cin, out_channels, 4, 2, 1)
        self.skips = depth - 1                                      # concatenations in forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.padded - self.size
        if pad:
            x = F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2), mode="reflect")
        feats = []
        for block in self.down:
            x = block(x)
            feats.append(x)                                         # (B, c_j, P/2^(j+1), ...)
        h = feats[-1]
        for block, skip in zip(self.up, reversed(feats[:-1])):
            h = torch.cat([block(h), skip], 1)                      # (B, 2 c, side, side)
        y = torch.tanh(self.out(h))
        if pad:
            y = y[:, :, pad // 2:pad // 2 + self.size, pad // 2:pad // 2 + self.size]
        return y


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): a grid of logits, one per overlapping patch of the input,
    so D judges local texture and leaves global structure to the L1 or cycle term.

    (B, C, S, S) -> (B, 1, h, w). `n_layers` k4 s2 convolutions, then two k4 s1 ones (the 70x70
    PatchGAN at n_layers 3); `receptive_field` is the side of the input patch each logit sees.
    """

    def __init__(self, channels: int, width: int = 64, n_layers: int = 2, norm: str = "batch"):
        super().__init__()
        layers: list[nn.Module] = []
        cin = channels
        for j in range(n_layers):
            cout = width * min(8, 2**j)
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=(j == 0 or norm == "none"))]
            layers += [norm_layer(norm, cout)] if j > 0 else []
            layers += [nn.LeakyReLU(0.2)]
            cin = cout
        cout = width * min(8, 2**n_layers)
        layers += [nn.Conv2d(cin, cout, 4, 1, 1, bias=norm == "none"), norm_layer(norm, cout), nn.LeakyReLU(0.2),
                   nn.Conv2d(cout, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)
        # receptive field, from the output back: r <- (r - 1) * stride + kernel for each conv
        r = 1
        for m in reversed([m for m in self.net if isinstance(m, nn.Conv2d)]):
            r = (r - 1) * m.stride[0] + m.kernel_size[0]
        self.receptive_field = r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
