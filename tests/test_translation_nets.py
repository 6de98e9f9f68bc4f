"""The translation networks (nets.py): U-Net and PatchGAN shapes, skips and receptive field."""

import pytest
import torch

from ganvae.errors import BadInput
from ganvae.translation_nets import PatchDiscriminator, UNet


@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_unet_maps_images_to_images_of_the_same_size(size):
    torch.manual_seed(0)
    net = UNet(1, 3, size, width=8).eval()
    x = torch.rand(2, 1, size, size) * 2 - 1
    y = net(x)
    assert y.shape == (2, 3, size, size) and y.abs().max() <= 1
    assert net.padded == {16: 16, 28: 32, 32: 32, 64: 64}[size]
    assert net.skips == net.padded.bit_length() - 3          # one per encoder level but the innermost


def test_unet_skips_carry_detail_past_the_bottleneck():
    """With the skips, an output pixel depends on the input pixel at the same place far more
    than on a distant one: the outermost skip joins the input's first features to the output."""
    torch.manual_seed(0)
    net = UNet(1, 1, 32, width=8, dropout_layers=0).eval()
    x = (torch.rand(1, 1, 32, 32) * 2 - 1).requires_grad_(True)
    net(x)[0, 0, 16, 16].backward()
    g = x.grad[0, 0].abs()
    assert g[14:19, 14:19].sum() > 5 * g[0:5, 0:5].sum()


@pytest.mark.parametrize("bottom, sides", [(2, [16, 8, 4, 2]), (4, [16, 8, 4]), (8, [16, 8])])
def test_unet_bottom_sets_its_innermost_grid(bottom, sides):
    net = UNet(1, 1, 28, width=8, bottom=bottom).eval()
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    seen = []
    hooks = [block.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1])) for block in net.down]
    assert net(x).shape == (2, 1, 28, 28)
    for h in hooks:
        h.remove()
    assert seen == sides and net.skips == len(sides) - 1


@pytest.mark.parametrize("bottom", [0, 3, 16])
def test_unet_bottom_is_checked(bottom):
    with pytest.raises(BadInput, match=f"unet_bottom={bottom}: the innermost grid side must be a power of two, "
                                       "at most 8 for 28-pixel images"):
        UNet(1, 1, 28, bottom=bottom)


def test_unet_refuses_tiny_images():
    with pytest.raises(BadInput, match="at least 8"):
        UNet(1, 1, 4)


@pytest.mark.parametrize("n_layers,size", [(2, 28), (3, 64), (1, 16)])
def test_patchgan_receptive_field_is_what_a_logit_sees(n_layers, size):
    """The input region with a non-zero gradient for one central logit is at most the computed
    receptive field (n_layers 3: the 70x70 PatchGAN of pix2pix)."""
    torch.manual_seed(0)
    d = PatchDiscriminator(2, width=8, n_layers=n_layers, norm="none")
    assert d.receptive_field == {1: 16, 2: 34, 3: 70}[n_layers]
    x = torch.randn(1, 2, size, size, requires_grad=True)
    out = d(x)
    assert out.shape[:2] == (1, 1) and out.shape[2] == out.shape[3] > 1
    i = out.shape[2] // 2
    out[0, 0, i, i].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
    cols = torch.nonzero(x.grad[0].abs().sum(0).sum(0)).flatten()
    assert rows.max() - rows.min() + 1 <= d.receptive_field
    assert cols.max() - cols.min() + 1 <= d.receptive_field
