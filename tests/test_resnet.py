"""The ResNet nets (issue 16, `--set arch=resnet`): shapes at 28, 32 and 64 pixels, class
conditioning, Freeze-D, and every GAN preset training with them."""

import pytest
import torch

from ganvae.errors import BadInput
from ganvae.nets import ResNetDecoder, ResNetDiscriminator, class_weights
from ganvae.trainer import DataConfig, _load_data, build
from tests.conftest import DATA


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_resnet_nets_follow_the_image_size(size, channels):
    torch.manual_seed(0)
    g = ResNetDecoder(16, channels, size, width=8)
    d = ResNetDiscriminator(channels, size, width=8)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size) and x.abs().max() <= 1
    logits = d(x)
    assert logits.shape == (5,) and d.features(x).shape == (5, d.body.out_channels)
    logits.sum().backward()                  # gradients reach G's first layer through D
    assert g.fc.weight.grad is not None and g.fc.weight.grad.abs().sum() > 0


def test_resnet_projection_and_conditional_norms_use_the_class():
    torch.manual_seed(0)
    g = ResNetDecoder(8, 1, 28, width=8, num_classes=3, class_lr_mul=30.0)
    for m in g.modules():   # give each class a different gain and bias (they start at zero)
        if hasattr(m, "gain"):
            torch.nn.init.normal_(m.gain.weight, std=0.1)
            torch.nn.init.normal_(m.bias.weight, std=0.1)
    g.eval()
    z = torch.randn(1, 8).repeat(3, 1)
    x = g(z, class_weights(torch.arange(3), 3, 3, "cpu"))
    assert not torch.allclose(x[0], x[1])                # the same z, another class: another image
    d = ResNetDiscriminator(1, 28, width=8, num_classes=3)
    w = class_weights(torch.tensor([0, 1]), 2, 3, "cpu")
    img = torch.rand(1, 1, 28, 28).repeat(2, 1, 1, 1)
    assert d(img, w)[0] != d(img, w)[1] and torch.equal(d(img)[0], d(img)[1])


def test_freeze_d_keeps_the_first_blocks_of_a_resnet_d():
    d = ResNetDiscriminator(1, 28, width=8)
    d.body.freeze(1)
    assert not any(p.requires_grad for p in d.body.blocks[0].parameters())
    assert all(p.requires_grad for p in d.body.blocks[1].parameters())
    with pytest.raises(BadInput, match="choose 0..2"):
        d.body.freeze(3)


@pytest.mark.parametrize("preset", ["dcgan", "wgan-gp", "sngan", "cgan"])
def test_gan_presets_train_with_resnet_nets(preset):
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    torch.manual_seed(0)
    model, cfg = build(preset, ds, {"width": 8, "latent": 8, "arch": "resnet"})
    assert isinstance(model.g, ResNetDecoder) and isinstance(model.d, ResNetDiscriminator)
    n = cfg.n_critic * 8
    x = torch.rand(n, *ds.shape) * 2 - 1
    batch = (x, torch.arange(n) % 10) if model.conditional else x
    for step in range(2):
        out = model.train_step(batch, step)
    assert all(torch.isfinite(v) for v in out.values())
    assert model.sample(4, torch.Generator().manual_seed(0)).shape == (4, *ds.shape)
    assert model.d_features(x[:3]).shape == (3, model.d.body.out_channels)


def test_unknown_arch_is_one_line():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    with pytest.raises(BadInput, match="arch"):
        build("dcgan", ds, {"arch": "vgg"})


@pytest.mark.parametrize("preset", ["ae", "vae", "cvae", "aae", "bigan"])
def test_encoder_families_train_with_resnet_nets(preset):
    from ganvae.nets import ResNetEncoder

    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    torch.manual_seed(0)
    model, _ = build(preset, ds, {"width": 8, "latent": 8, "arch": "resnet"})
    assert isinstance(model.encoder, ResNetEncoder)
    x = torch.rand(8, *ds.shape) * 2 - 1
    batch = (x, torch.arange(8) % 10) if model.conditional else x
    for step in range(2):
        out = model.train_step(batch, step)
    assert all(torch.isfinite(v) for v in out.values())
    assert model.encode(x).shape == (8, 8) and model.reconstruct(x).shape == x.shape
    if model.has_likelihood:   # the IWAE bound runs the ResNet decoder through inference_decoder
        ll = model.log_likelihood(x[:2], k=3, generator=torch.Generator().manual_seed(0), labels=None) \
            if model.conditional else model.log_likelihood(x[:2], k=3, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(ll).all()


@pytest.mark.parametrize("preset", ["vaegan", "pix2pix"])
def test_families_without_resnet_nets_say_so(preset):
    from tests.conftest import data_for

    ds = _load_data(DataConfig(spec=data_for(preset), val_split=0))
    with pytest.raises(BadInput, match="arch=resnet"):
        build(preset, ds, {"arch": "resnet"})
