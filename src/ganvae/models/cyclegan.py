"""CycleGAN: unpaired image-to-image translation with two GANs tied by cycle consistency (Zhu,
Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks").

Two generators, G: A -> B (`g_ab`) and F: B -> A (`g_ba`), and two PatchGAN discriminators,
D_A on domain A and D_B on domain B. Nothing pairs an a with a b: the adversarial terms only
ask that G(a) look like some b and F(b) like some a, and the cycle terms ask that each
translation keep enough of its input to be translated back (§3.2), which rules out the
mappings that send every input to the same plausible output.

    L_G = gan_G(D_B(G(a))) + gan_G(D_A(F(b)))                                 (eq. 1, G's side)
        + lambda * (E |F(G(a)) - a| + E |G(F(b)) - b|)                        (eq. 2, cycle)
        + identity_weight * lambda * (E |G(b) - b| + E |F(a) - a|)            (§5.2, identity)
    L_D_A = 1/2 gan_D(D_A(a), D_A(pool_A(F(b))))                             (translation.d_loss)
    L_D_B = 1/2 gan_D(D_B(b), D_B(pool_B(G(a))))

with the least-squares GAN loss (Mao et al. 2017; §4: "we replace the negative log likelihood
objective by a least-squares loss"), lambda = 10, identity_weight = 0.5 (the identity term's
weight is 0.5 lambda, as in §5.2 and the authors' code, where it keeps the colours of a
painting -> photo mapping), Adam 2e-4 (0.5, 0.999) and D shown fakes through a pool of 50
earlier ones (translation.ReplayBuffer, after Shrivastava et al. 2017). The identity term only
exists when both domains have the same channels: G maps C_a-channel images, so G(b) is
undefined otherwise, and the term is left out.

Networks: the paper's generator is a ResNet (two stride-2 convolutions, 6 or 9 residual
blocks, two transposed convolutions); it is not built here. The generators are translation_nets.UNet
without dropout, the `unet_128 / unet_256` generator the authors' code also offers, so
CycleGAN and pix2pix are compared on the same generator. Instance normalization everywhere
(§4, after Ulyanov et al. 2016), no dropout: the model is the same function in train and eval
mode. The paper trains with batch size 1 and decays the learning rate linearly to zero over
its second 100 epochs; both are the trainer's business here (batch size, schedule), not the
model's.

One train_step, in the order of the authors' code: one G update (both generators, one
optimizer) against the current discriminators, then one D update (both discriminators, one
optimizer; their parameters are disjoint, so this equals the code's two backward passes) on
the fakes made before that G update, drawn through the pools.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import BadInput
from ..nets import dcgan_init
from ..translation_nets import UNet
from ..registry import register_model
from .translation import ReplayBuffer, TranslationConfig, TranslationModel, adam, g_loss, l1


@dataclass
class CycleGANConfig(TranslationConfig):
    norm: str = "instance"                 # §4: instance normalization (Ulyanov et al. 2016)
    loss: Literal["ls", "ns"] = "ls"       # §4: least-squares GAN loss
    cycle_weight: float = 10.0             # lambda of eq. 3
    identity_weight: float = 0.5           # times cycle_weight (§5.2); 0 switches the term off
    pool_size: int = 50                    # fakes kept for D (§4); 0: D sees this step's only
    unet_bottom: int = 2                   # the U-Nets' innermost grid side (see Pix2PixConfig)

    def validate(self) -> None:
        super().validate()
        if not self.cycle_weight >= 0 or not self.identity_weight >= 0:
            raise BadInput("cycle_weight and identity_weight must be at least 0")
        if self.pool_size < 0:
            raise BadInput(f"pool_size={self.pool_size}: must be at least 0 (0: no pool)")


def generator_loss(kind: str, logits_fake_b: torch.Tensor, logits_fake_a: torch.Tensor,
                   a: torch.Tensor, b: torch.Tensor, rec_a: torch.Tensor, rec_b: torch.Tensor,
                   idt_a: torch.Tensor | None = None, idt_b: torch.Tensor | None = None,
                   cycle_weight: float = 10.0, identity_weight: float = 0.5
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Both generators' loss (the module docstring's L_G), float32.

    Args:
        kind: the GAN loss, "ls" or "ns" (translation.g_loss).
        logits_fake_b: D_B's logits on G(a); logits_fake_a: D_A's on F(b) (any shape).
        a, b: the real batches; rec_a = F(G(a)), rec_b = G(F(b)), shaped like them.
        idt_a = F(a), idt_b = G(b): the identity outputs, or None to leave the term out
            (different channel counts, or identity_weight 0).
    Returns:
        (total, parts): parts has "adv" (the sum of the two adversarial terms), "cycle" (the
        sum of the two L1 cycle errors, unweighted) and, when the identity outputs are given,
        "identity" (the sum of the two identity L1 errors, unweighted).
    """
    adv = g_loss(kind, logits_fake_b) + g_loss(kind, logits_fake_a)
    cycle = l1(rec_a, a) + l1(rec_b, b)
    total = adv + cycle_weight * cycle
    parts = {"adv": adv, "cycle": cycle}
    if idt_a is not None and idt_b is not None:
        identity = l1(idt_b, b) + l1(idt_a, a)
        total = total + identity_weight * cycle_weight * identity
        parts["identity"] = identity
    return total, parts


@register_model("cyclegan")
class CycleGAN(TranslationModel):
    """CycleGAN: two U-Net generators and two PatchGANs, LSGAN + 10 * cycle L1, unpaired (Zhu et al. 2017)."""

    Config = CycleGANConfig
    translation = "unpaired"
    directions = ("a2b", "b2a")

    def __init__(self, config: CycleGANConfig):
        config.validate()
        super().__init__(config)
        c = config
        # G: A -> B and F: B -> A; no dropout (CycleGAN's only noise is the unpaired draw)
        self.g_ab = UNet(c.channels_a, c.channels, c.size, c.width, norm=c.norm, dropout_layers=0,
                         bottom=c.unet_bottom)
        self.g_ba = UNet(c.channels, c.channels_a, c.size, c.width, norm=c.norm, dropout_layers=0,
                         bottom=c.unet_bottom)
        dcgan_init(self.g_ab)
        dcgan_init(self.g_ba)
        self.d_a = self.make_discriminator(c.channels_a)     # real a vs F(b)
        self.d_b = self.make_discriminator(c.channels)       # real b vs G(a)
        # submodules, so their images and fill counts are in the state dict (checkpoints,
        # save_pretrained): a resumed run shows D the same history
        self.pool_a = ReplayBuffer(c.pool_size, c.channels_a, c.size)
        self.pool_b = ReplayBuffer(c.pool_size, c.channels, c.size)

    @property
    def uses_identity(self) -> bool:
        """Whether L_G has the identity term: weight above 0 and G(b), F(a) defined."""
        c = self.config
        return c.identity_weight > 0 and c.channels_a == c.channels

    def _generators(self) -> dict[str, nn.Module]:
        return {"a2b": self.g_ab, "b2a": self.g_ba}

    def generator_params(self) -> list[torch.Tensor]:
        return list(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()))

    def discriminator_params(self) -> list[torch.Tensor]:
        return list(itertools.chain(self.d_a.parameters(), self.d_b.parameters()))

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"g": adam(self.generator_params(), c.lr, c),
                "d": adam(self.discriminator_params(), c.lr_d, c)}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One G update (both generators), then one D update (both discriminators).

        Args:
            batch: (a, b), two independent draws: a (B, C_a, S, S) and b (B, C, S, S) in [-1, 1].
        Returns detached 0-d float32 tensors: loss/g, loss/adv, loss/cycle, loss/identity (when
        the term is used; see `generator_loss` for what each sums), loss/d = loss/d_a +
        loss/d_b, d/real and d/fake (mean patch logits, averaged over D_A and D_B) and reg/r1
        or reg/gp (the penalty averaged over the two).
        """
        a, b = batch
        fake_a, fake_b, out = self.update_generators(a, b)
        out.update(self.update_discriminators(a, b, fake_a, fake_b))
        self.end_step()
        return out

    def update_generators(self, a: torch.Tensor, b: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The G half of train_step: one optimizer step on L_G, gradients into G and F only.

        Returns the fakes F(b) (B, C_a, S, S) and G(a) (B, C, S, S), detached, made before
        the step (the authors' code shows D these), and the generator scalars.
        """
        c = self.config
        with self.autocast():
            fake_b = self.g_ab(a)                                  # (B, C, S, S)
            fake_a = self.g_ba(b)                                  # (B, C_a, S, S)
            rec_a = self.g_ba(fake_b)                              # (B, C_a, S, S), back to a
            rec_b = self.g_ab(fake_a)                              # (B, C, S, S), back to b
            idt_a = idt_b = None
            if self.uses_identity:                                 # else no forward at all
                idt_b = self.g_ab(b)                               # G should leave a b alone
                idt_a = self.g_ba(a)
            # D's logits on the fakes, not detached: the adversarial gradient reaches G and F
            # through D; `update` below keeps it out of D's own parameters
            logits_fake_b = self.d_b(fake_b)                       # (B, 1, h, w)
            logits_fake_a = self.d_a(fake_a)
        loss_g, parts = generator_loss(c.loss, logits_fake_b, logits_fake_a, a, b, rec_a, rec_b,
                                       idt_a, idt_b, c.cycle_weight, c.identity_weight)
        self.update(self.optimizers()["g"], loss_g, self.generator_params())
        out = {"loss/g": loss_g.detach()}
        out.update({f"loss/{k}": v.detach() for k, v in parts.items()})
        return fake_a.detach(), fake_b.detach(), out

    def update_discriminators(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor,
                              fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The D half of train_step: D_A on a vs pooled F(b), D_B on b vs pooled G(a), one
        optimizer step on their sum, gradients into D_A and D_B only."""
        loss_a, logs_a = self.d_objective(self.d_a, a, self.pool_a.query(fake_a))
        loss_b, logs_b = self.d_objective(self.d_b, b, self.pool_b.query(fake_b))
        loss_d = loss_a + loss_b
        self.update(self.optimizers()["d"], loss_d, self.discriminator_params())
        out = {"loss/d": loss_d.detach(), "loss/d_a": loss_a.detach(), "loss/d_b": loss_b.detach()}
        for k in logs_a:                                           # same keys for both Ds
            out[f"reg/{k}" if k in ("r1", "gp") else f"d/{k}"] = 0.5 * (logs_a[k] + logs_b[k])
        return out
