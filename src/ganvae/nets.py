"""Shared convolutional networks, sized from the image shape (C, H, W), a width and a latent size.

For 28x28 images and width 64 the generator and discriminator are exactly the classic
DCGAN-28 (Radford et al. 2016, adapted to MNIST-size images):

    G: ConvT(z->256, k7) BN ReLU, ConvT(256->128, k4 s2 p1) BN ReLU, ConvT(128->C, k4 s2 p1) Tanh
    D: Conv(C->64, k4 s2 p1) LReLU(0.2), Conv(64->128, k4 s2 p1) BN LReLU(0.2), Conv(128->1, k7)

Other sizes follow the same plan: the image is halved `k` times down to a base side b
(28 -> 7, 32 -> 4, 64 -> 4, 48 -> 6), one k4 s2 p1 (transposed) convolution per halving and a
kernel-b convolution between the base grid and the vector. Autoencoders use the same bodies
(encoder = discriminator body, decoder = generator), so families are compared on equal nets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import parallel
from .errors import BadInput


@dataclass(frozen=True)
class Plan:
    """How an image of side `size` is built: `k` halvings down to a `base` x `base` grid."""

    size: int
    base: int
    k: int

    def g_channels(self, width: int) -> list[int]:
        """Generator channels from the base grid upwards (len k): 4w, 2w for 28x28."""
        return [width * min(8, 2 ** (self.k - i)) for i in range(self.k)]

    def d_channels(self, width: int) -> list[int]:
        """Discriminator channels after each halving (len k): w, 2w for 28x28."""
        return [width * min(8, 2**j) for j in range(self.k)]


def plan_for(size: int) -> Plan:
    base, k = size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        k += 1
    if k < 2:
        raise BadInput(f"image size {size}: the networks need a side divisible by 4 and at least 16 "
                       "(e.g. 28, 32, 64); pass --size")
    return Plan(size, base, k)


def norm_layer(kind: str, channels: int) -> nn.Module:
    # BatchNorm keeps PyTorch's eps=1e-5 (Keras/TF use 1e-3; ports that copy one into the
    # other change the model's behaviour at small batch variance).
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # per-sample normalisation: safe with per-sample gradient penalties
        return nn.GroupNorm(1, channels)
    if kind == "instance":  # per image and channel, no affine (CycleGAN's choice; Ulyanov et al. 2016)
        return nn.InstanceNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise BadInput(f"norm {kind!r}: choose batch, instance, layer or none")


class ClassConditionalNorm(nn.Module):
    """Conditional batch norm (de Vries et al. 2017, "Modulating early visual processing by
    language"; the cGAN generator of Miyato & Koyama 2018): normalise without an affine of its
    own, then scale and shift by the class's gain and bias,

        h_hat * (1 + w @ E_gain) + w @ E_bias,      w (B, K) class weights, E (K, C),

    one-hot w for a class, a soft w for a mixture of classes (interpolations). E starts at
    zero, so a new network is the unconditional one and learns what each class changes.

    E is stored divided by `lr_mul` and multiplied back at run time (the equalized learning
    rate of Karras et al. 2018, turned the other way): Adam and RMSprop move every parameter by
    about lr per step whatever its gradient's scale, so a zero-started gain moves at most
    lr * steps (0.12 after 600 DCGAN steps) and the class is learnt thousands of steps late.
    At lr_mul ~30 a gain of size 1 changes by ~0.6% a step, about the pace of DCGAN-initialised
    convolution weights (std 0.02, steps of 2e-4). Measured on Fashion-MNIST (width 16, batch
    32, 600 steps): the evaluator agrees with the asked class 11% of the time at 1, 31% at 30.
    """

    def __init__(self, kind: str, channels: int, num_classes: int, lr_mul: float = 1.0):
        super().__init__()
        plain = {"batch": lambda: nn.BatchNorm2d(channels, affine=False),
                 "layer": lambda: nn.GroupNorm(1, channels, affine=False),
                 "none": nn.Identity}
        if kind not in plain:
            raise BadInput(f"norm {kind!r} with classes: choose batch, layer or none")
        self.norm = plain[kind]()
        self.gain = nn.Linear(num_classes, channels, bias=False)
        self.bias = nn.Linear(num_classes, channels, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        self.lr_mul = lr_mul

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        w = w.to(h.dtype) * self.lr_mul                 # = w @ (lr_mul * E): see the class docstring
        return self.norm(h) * (1 + self.gain(w))[:, :, None, None] + self.bias(w)[:, :, None, None]


def class_weights(labels: torch.Tensor | None, n: int, num_classes: int, device) -> torch.Tensor:
    """(n, K) float class weights: one-hot rows for integer labels (n,), the uniform mixture
    1/K when labels is None (a class-agnostic decode), or labels itself when already (n, K)."""
    if labels is None:
        return torch.full((n, num_classes), 1.0 / num_classes, device=device)
    labels = torch.as_tensor(labels)
    # a wrong count or class would surface as a broadcasting error deep inside a net: say it here
    if labels.dim() not in (1, 2) or len(labels) != n or (labels.dim() == 2 and labels.shape[1] != num_classes):
        want = f"({n},) class indices or ({n}, {num_classes}) class weights"
        raise BadInput(f"labels of shape {tuple(labels.shape)} for {n} images: give {want}")
    if labels.dim() == 2:
        return labels.float().to(device)
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise BadInput(f"labels {int(labels.min())}..{int(labels.max())}: the classes are 0..{num_classes - 1}")
    return F.one_hot(labels.long().to(device), num_classes).float()


class ConvBody(nn.Module):
    """The downsampling body shared by discriminators and encoders.

    (B, C, S, S) -> (B, ch[-1], base, base); no norm on the first layer (DCGAN).
    """

    def __init__(self, channels: int, size: int, width: int, norm: str = "batch", slope: float = 0.2):
        super().__init__()
        plan = plan_for(size)
        chans = plan.d_channels(width)
        layers: list[nn.Module] = []
        cin = channels
        for j, cout in enumerate(chans):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=(j == 0 or norm == "none")))
            if j > 0:
                layers.append(norm_layer(norm, cout))
            layers.append(nn.LeakyReLU(slope))
            cin = cout
        self.net = nn.Sequential(*layers)
        self.out_channels, self.base = cin, plan.base
        self.n_blocks = len(chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def freeze(self, k: int) -> None:
        """Stop training the first k blocks (a stride-2 convolution with its norm), the ones
        nearest the image: Freeze-D (Mo, Cho & Shin 2020) keeps a transferred discriminator's
        low-level features and fine-tunes the rest. Batch norm in them keeps its statistics
        updating (eval mode would change the forward); only the weights stop."""
        if not 0 <= k <= self.n_blocks:
            raise BadInput(f"freeze_d={k}: this discriminator has {self.n_blocks} blocks; choose 0..{self.n_blocks}")
        convs = [i for i, layer in enumerate(self.net) if isinstance(layer, nn.Conv2d)]
        end = convs[k] if k < len(convs) else len(self.net)
        self.net[:end].requires_grad_(False)


class Discriminator(nn.Module):
    """(B, C, S, S) -> logits (B,). `features(x)` returns the last body activation (B, F).

    With num_classes K > 0 it is a projection discriminator (Miyato & Koyama 2018, "cGANs with
    Projection Discriminator", eq. 3): logit(x, y) = psi(phi(x)) + <V w_y, phi_pool(x)>, the
    unconditional logit plus the inner product of a class embedding V (K -> F') with the
    body's features summed over the base grid (their global sum pooling), (B, F').
    `forward(x, w)` takes class weights w (B, K) (see class_weights); w None: no class term.
    """

    def __init__(self, channels: int, size: int, width: int = 64, norm: str = "batch", num_classes: int = 0):
        super().__init__()
        self.body = ConvBody(channels, size, width, norm)
        self.head = nn.Conv2d(self.body.out_channels, 1, self.body.base)
        self.num_classes = num_classes
        if num_classes:
            self.embed = nn.Linear(num_classes, self.body.out_channels, bias=False)   # V

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)                                                 # (B, F', b, b)
        logits = self.head(h).flatten()                                  # (B,)
        if self.num_classes and w is not None:
            logits = logits + (self.embed(w.to(h.dtype)) * h.sum((2, 3))).sum(1)
        return logits


class Encoder(nn.Module):
    """(B, C, S, S) -> (B, out_dim): the discriminator body with a vector head.

    A VAE asks for out_dim = 2 * latent (mean and log-variance).
    """

    def __init__(self, channels: int, size: int, width: int, out_dim: int, norm: str = "batch"):
        super().__init__()
        self.body = ConvBody(channels, size, width, norm)
        self.head = nn.Conv2d(self.body.out_channels, out_dim, self.body.base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten(1)


class Decoder(nn.Module):
    """z (B, latent) -> images (B, C, S, S); the DCGAN generator.

    `out` = "tanh" gives images in [-1, 1]; "none" gives raw pre-activations (logits for a
    Bernoulli likelihood, means for a Gaussian one).
    """

    def __init__(self, latent: int, channels: int, size: int, width: int = 64, norm: str = "batch",
                 out: str = "tanh", num_classes: int = 0, class_lr_mul: float = 1.0):
        super().__init__()
        plan = plan_for(size)
        chans = plan.g_channels(width)
        # with classes, every norm is a class-conditional one (conditional batch norm)
        make_norm = (lambda c: ClassConditionalNorm(norm, c, num_classes, class_lr_mul)) if num_classes else \
            (lambda c: norm_layer(norm, c))
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent, chans[0], plan.base, bias=(norm == "none")),
            make_norm(chans[0]), nn.ReLU(True)]
        for cin, cout in zip(chans, chans[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=(norm == "none")), make_norm(cout), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1))
        if out == "tanh":
            layers.append(nn.Tanh())
        elif out != "none":
            raise BadInput(f"decoder output {out!r}: choose tanh or none")
        self.net = nn.Sequential(*layers)
        self.latent = latent
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent) -> images; with classes, w (B, K) class weights (None: uniform)."""
        h = z[:, :, None, None]
        if not self.num_classes:
            return self.net(h)
        w = class_weights(None, len(z), self.num_classes, z.device) if w is None else w
        for layer in self.net:
            h = layer(h, w) if isinstance(layer, ClassConditionalNorm) else layer(h)
        return h


# ---------------------------------------------------------------------------------------------
# The ResNet family (`arch=resnet`): the CIFAR generator and discriminator of WGAN-GP
# (Gulrajani et al. 2017, appendix F) and SNGAN (Miyato et al. 2018, appendix B.4), sized from
# the image by the same Plan as the DCGAN nets, with the DCGAN nets' interfaces.

class _ResBlockUp(nn.Module):
    """Generator block, pre-activation (He et al. 2016): norm-ReLU-upsample-conv3x3-norm-ReLU-
    conv3x3, plus upsample-conv1x1 on the shortcut. (B, cin, s, s) -> (B, cout, 2s, 2s).
    With classes each norm is a ClassConditionalNorm taking w (B, K), as in SNGAN's cGAN."""

    def __init__(self, cin: int, cout: int, norm: str, num_classes: int, lr_mul: float):
        super().__init__()
        make = (lambda c: ClassConditionalNorm(norm, c, num_classes, lr_mul)) if num_classes else \
            (lambda c: norm_layer(norm, c))
        self.n1, self.n2 = make(cin), make(cout)
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def _norm(self, m: nn.Module, h: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        return m(h, w) if isinstance(m, ClassConditionalNorm) else m(h)

    def forward(self, h: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        y = F.interpolate(F.relu(self._norm(self.n1, h, w)), scale_factor=2)
        y = self.c2(F.relu(self._norm(self.n2, self.c1(y), w)))
        return y + self.skip(F.interpolate(h, scale_factor=2))


class _ResBlockDown(nn.Module):
    """Discriminator block: ReLU-conv3x3-ReLU-conv3x3-avgpool, plus conv1x1-avgpool on the
    shortcut; the first block of the net takes the image itself, so it starts with the
    convolution (SNGAN's "optimized" block). (B, cin, s, s) -> (B, cout, s/2, s/2)."""

    def __init__(self, cin: int, cout: int, norm: str, first: bool):
        super().__init__()
        self.first = first
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.n1, self.n2 = norm_layer(norm, cout), norm_layer(norm, cout)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x if self.first else F.relu(x))
        y = self.c2(F.relu(self.n1(y)))
        y = F.avg_pool2d(self.n2(y), 2)
        shortcut = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return y + shortcut


class ResNetBody(nn.Module):
    """(B, C, S, S) -> (B, ch[-1], base, base): k down-blocks with the DCGAN body's channels.
    `freeze(k)` keeps the first k blocks fixed (Freeze-D), as ConvBody's."""

    def __init__(self, channels: int, size: int, width: int, norm: str = "none"):
        super().__init__()
        plan = plan_for(size)
        chans = plan.d_channels(width)
        self.blocks = nn.ModuleList(_ResBlockDown(cin, cout, norm, first=(j == 0))
                                    for j, (cin, cout) in enumerate(zip([channels] + chans[:-1], chans)))
        self.out_channels, self.base, self.n_blocks = chans[-1], plan.base, len(chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return F.relu(x)

    def freeze(self, k: int) -> None:
        if not 0 <= k <= self.n_blocks:
            raise BadInput(f"freeze_d={k}: this discriminator has {self.n_blocks} blocks; choose 0..{self.n_blocks}")
        self.blocks[:k].requires_grad_(False)


class ResNetDiscriminator(nn.Module):
    """(B, C, S, S) -> logits (B,): ResNetBody, global sum pooling, a linear head (SNGAN); with
    classes the projection term <V w, features> of Discriminator. `features(x)` (B, F) is the
    pooled activation the head reads."""

    def __init__(self, channels: int, size: int, width: int = 64, norm: str = "none", num_classes: int = 0):
        super().__init__()
        self.body = ResNetBody(channels, size, width, norm)
        self.head = nn.Linear(self.body.out_channels, 1)
        self.num_classes = num_classes
        if num_classes:
            self.embed = nn.Linear(num_classes, self.body.out_channels, bias=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).sum((2, 3))                                  # (B, F)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logits = self.head(h).flatten()
        if self.num_classes and w is not None:
            logits = logits + (self.embed(w.to(h.dtype)) * h).sum(1)
        return logits


class ResNetDecoder(nn.Module):
    """z (B, latent) -> images (B, C, S, S): a linear map to the base grid, k up-blocks, then
    norm-ReLU-conv3x3 to the image (WGAN-GP's / SNGAN's generator). Decoder's interface."""

    def __init__(self, latent: int, channels: int, size: int, width: int = 64, norm: str = "batch",
                 out: str = "tanh", num_classes: int = 0, class_lr_mul: float = 1.0):
        super().__init__()
        if out not in ("tanh", "none"):
            raise BadInput(f"decoder output {out!r}: choose tanh or none")
        plan = plan_for(size)
        chans = plan.g_channels(width) + [width]                         # base grid ... image side
        self.fc = nn.Linear(latent, chans[0] * plan.base * plan.base)
        self.blocks = nn.ModuleList(_ResBlockUp(cin, cout, norm, num_classes, class_lr_mul)
                                    for cin, cout in zip(chans[:-1], chans[1:]))
        self.out_norm = ClassConditionalNorm(norm, width, num_classes, class_lr_mul) if num_classes else \
            norm_layer(norm, width)
        self.to_image = nn.Conv2d(width, channels, 3, 1, 1)
        self.latent, self.num_classes, self.out, self.base = latent, num_classes, out, plan.base
        self.first_channels = chans[0]

    def forward(self, z: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and w is None:
            w = class_weights(None, len(z), self.num_classes, z.device)
        h = self.fc(z).view(len(z), self.first_channels, self.base, self.base)
        for block in self.blocks:
            h = block(h, w)
        h = self.out_norm(h, w) if isinstance(self.out_norm, ClassConditionalNorm) else self.out_norm(h)
        x = self.to_image(F.relu(h))
        return torch.tanh(x) if self.out == "tanh" else x


class ResNetEncoder(nn.Module):
    """(B, C, S, S) -> (B, out_dim): ResNetBody and a linear head on its flattened base grid
    (not sum-pooled as in the discriminator: a code must keep where things are)."""

    def __init__(self, channels: int, size: int, width: int, out_dim: int, norm: str = "batch"):
        super().__init__()
        self.body = ResNetBody(channels, size, width, norm)
        self.head = nn.Linear(self.body.out_channels * self.body.base ** 2, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1))


ARCHS = ("dcgan", "resnet")


def make_encoder(arch: str, channels: int, size: int, width: int, out_dim: int, norm: str = "batch") -> nn.Module:
    """The encoder of `arch` (ModelConfig.arch): Encoder or ResNetEncoder."""
    return (ResNetEncoder if arch == "resnet" else Encoder)(channels, size, width, out_dim, norm)


def make_decoder(arch: str, latent: int, channels: int, size: int, width: int = 64, **kw) -> nn.Module:
    """The decoder / generator of `arch`: Decoder or ResNetDecoder (same keyword options)."""
    return (ResNetDecoder if arch == "resnet" else Decoder)(latent, channels, size, width, **kw)


class _BaseProjection(nn.Module):
    """The decoder's first layer for inference: a transposed convolution of a 1x1 input with a
    b x b kernel is a matrix product, z (B, L) @ W (L, b*b*C) -> (B, C, b, b). Its columns are
    ordered (b, b, C) so the result is channels-last in memory without a copy."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        latent, c, b, _ = weight.shape                                   # (L, C, b, b)
        self.shape = (b, b, c)
        self.register_buffer("weight", weight.permute(0, 2, 3, 1).reshape(latent, -1).contiguous())
        self.register_buffer("bias", bias.expand(b, b, c).reshape(-1).contiguous())

    def forward(self, z: torch.Tensor) -> torch.Tensor:                  # z: (B, L, 1, 1)
        h = torch.addmm(self.bias.to(z.dtype), z.flatten(1), self.weight.to(z.dtype))
        return h.view(len(z), *self.shape).permute(0, 3, 1, 2)          # (B, C, b, b), NHWC memory


class _SubPixelConv(nn.Module):
    """A k4 s2 p1 transposed convolution with few output channels, as a 3x3 convolution to 4x
    the channels followed by a pixel shuffle (Shi et al. 2016, "sub-pixel convolution"): output
    pixel (2m + a, 2n + b) reads input rows m-1..m+1 through kernel taps that depend only on
    the phase (a, b), so each phase is one block of output channels. oneDNN runs a transposed
    convolution with a handful of output channels (an image's C or 2C) ~1.8x slower than this.
    """

    # phase -> {3x3 tap (input offset + 1): transposed-kernel index}, from o = 2i - 1 + k
    TAPS = {0: {0: 3, 1: 1}, 1: {1: 2, 2: 0}}

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        cin, cout = weight.shape[:2]                                     # (Cin, Cout, 4, 4)
        k = weight.new_zeros(cout, 2, 2, cin, 3, 3)
        for a, rows in self.TAPS.items():
            for b, cols in self.TAPS.items():
                for ki, wi in rows.items():
                    for kj, wj in cols.items():
                        k[:, a, b, :, ki, kj] = weight[:, :, wi, wj].t()
        # channel c * 4 + a * 2 + b is what pixel_shuffle puts at phase (a, b) of channel c
        self.register_buffer("weight", k.reshape(4 * cout, cin, 3, 3).contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias.repeat_interleave(4))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(h, self.weight.to(h.dtype), self.bias.to(h.dtype), padding=1), 2)


@torch.no_grad()
def inference_decoder(decoder: Decoder) -> nn.Module:
    """A frozen copy of `decoder` that computes its eval-mode output, faster on CPU.

    Four changes, none to the function (outputs agree to float rounding, tested): batch norm
    folded into the transposed convolution before it (one pass over each activation fewer);
    the first layer as a matrix product (oneDNN runs a 1x1-input, 7x7-kernel transposed
    convolution at a few GFLOP/s); the image layer as a sub-pixel convolution; channels-last
    activations, which oneDNN's transposed convolutions run ~1.5x faster than NCHW here. Worth
    it where the decoder runs on many thousands of latents with fixed weights: the IWAE bound
    (k decoder passes per image). The copy is of the eval-mode function whatever mode
    `decoder` is in (batch norm on its running statistics), and `decoder` is left as it was.
    """
    if not isinstance(decoder, Decoder):   # ResNet or a user's: no fast path, an eval-mode frozen copy
        import copy

        return copy.deepcopy(decoder).eval().requires_grad_(False)
    was_training = decoder.training
    decoder.eval()          # torch's fusion folds only eval-mode batch norm
    try:
        return _inference_copy(decoder)
    finally:
        decoder.train(was_training)


def _inference_copy(decoder: Decoder) -> nn.Module:
    layers = list(decoder.net)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.ConvTranspose2d):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            norm = nxt if isinstance(nxt, nn.BatchNorm2d) else None
            # batch norm folded into the transposed convolution (torch's own fusion)
            fused = fuse_conv_bn_eval(layer, norm, transpose=True) if norm is not None else layer
            w = fused.weight.detach().float()                            # (Cin, Cout, k, k)
            b = fused.bias.detach().float() if fused.bias is not None else w.new_zeros(w.shape[1])
            if not out:   # the first layer maps the (B, L, 1, 1) latent to the base grid
                out.append(_BaseProjection(w, b))
            elif layer.out_channels <= 8 and layer.kernel_size == (4, 4) and layer.stride == (2, 2) \
                    and layer.padding == (1, 1):
                out.append(_SubPixelConv(w, b))
            else:
                conv = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                          layer.stride, layer.padding, bias=True)
                conv.weight.copy_(w)
                conv.bias.copy_(b)
                out.append(conv.to(memory_format=torch.channels_last))
            i += 2 if norm is not None else 1
        elif isinstance(layer, nn.GroupNorm):   # per-sample statistics: nothing to fold
            out.append(layer)
            i += 1
        else:
            out.append(layer)
            i += 1
    net = nn.Sequential(*out).to(decoder.net[0].weight.device).eval()
    net.requires_grad_(False)
    return _Lifted(net)


class _Lifted(nn.Module):
    """(B, L) -> the net's input (B, L, 1, 1), as Decoder.forward does."""

    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) norm scales, zero biases (Radford et al. 2016, §4).
    ResNet nets inside `module` keep PyTorch's initialisation (He-uniform, as their papers'
    code): N(0, 0.02) would shrink each residual branch towards nothing."""
    resnet = {id(m) for r in module.modules() if isinstance(r, (ResNetBody, ResNetDecoder, ResNetEncoder))
              for m in r.modules()}
    for m in module.modules():
        if id(m) in resnet:
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_params(module: nn.Module) -> int:
    """The number of trained parameters: frozen copies (a GAN's EMA generator `g_ema`) are
    left out, so switching the EMA on does not make a model look twice as big in the report."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class GlobalBatchDropout(nn.Module):
    """Dropout whose masks are drawn for the global batch (parallel.draw_rows), each DDP rank
    keeping its rows. nn.Dropout would draw from each rank's generator alone, and the ranks'
    generators are equal by design (parallel.py), so row i of every rank would get the same
    mask: the noise repeated N times in a global batch. With this, N ranks drop exactly what
    one process drops. (B, ...) features (bigan's D) or maps (the pix2pix U-Net); the
    identity in eval mode or at p = 0. `groups`: the B rows are that many equal parts stacked,
    each its own global batch's rows (D's real pairs, then its fake ones), so each part's mask
    is drawn for its own global batch."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, h: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if not self.training or self.p == 0:
            return h
        n = h.shape[0] // groups                                       # this rank's rows of a part
        keep = parallel.draw_rows(lambda m: torch.rand((groups, m, *h.shape[1:]), device=h.device), n, dim=1)
        return h * (keep >= self.p).reshape(h.shape).to(h.dtype) / (1 - self.p)
