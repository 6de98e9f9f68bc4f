"""pix2pix: paired image-to-image translation with a conditional GAN (Isola, Zhu, Zhou & Efros
2017, "Image-to-Image Translation with Conditional Adversarial Networks").

G is a U-Net from domain A to domain B (translation_nets.UNet: skips at every level, dropout 0.5 in the
three innermost decoder levels as its only noise, §3.1); D is a PatchGAN that sees the input
and an output side by side, (B, C_a + C, S, S), and judges each patch real or fake (§3.2.2).

    L_D = 1/2 [ gan_D(D(a, b), D(a, G(a))) ]                     (translation.d_loss)
    L_G = adv_weight * gan_G(D(a, G(a))) + l1_weight * E |b - G(a)|

with l1_weight = 100 and Adam 2e-4 (0.5, 0.999), the paper's (§4). The L1 term carries the
low frequencies (where the output should be), D the high ones (that it looks real); with
adv_weight = 0 what is left is a U-Net regressing b from a: the preset `unet-l1`, the
baseline that shows what the adversary adds (sharpness, FD) and what it costs (PSNR).

One train_step: one D update on the batch (skipped when adv_weight = 0), then one G update
against the updated D. Evaluation runs G in eval mode: dropout off and batch norm on its
running statistics (the paper keeps dropout and batch statistics at test time, for batch size
1; here outputs are deterministic and independent of the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BadInput
from ..nets import dcgan_init
from ..translation_nets import UNet
from ..registry import register_model
from .translation import TranslationConfig, TranslationModel, adam, g_loss, l1


@dataclass
class Pix2PixConfig(TranslationConfig):
    loss: str = "ns"               # the paper's cGAN objective; ls also works (CycleGAN's)
    l1_weight: float = 100.0       # lambda of eq. 4
    adv_weight: float = 1.0        # 0: no GAN at all (the unet-l1 baseline)
    dropout_layers: int = 3        # innermost U-Net decoder levels with dropout 0.5
    # The U-Net's innermost grid side: 2 (down to 2x2, the pix2pix layout at this size) or 4,
    # one level fewer: on a CPU the 2x2 level's wide, tiny convolutions cost far more than their
    # FLOPs (1.3x the step time at width 32 on 28 px; BENCHMARKS.md, Reproductions)
    unet_bottom: int = 2

    def validate(self) -> None:
        super().validate()
        if not self.l1_weight >= 0 or not self.adv_weight >= 0:
            raise BadInput("l1_weight and adv_weight must be at least 0")
        if self.l1_weight == 0 and self.adv_weight == 0:
            raise BadInput("l1_weight=0 and adv_weight=0: nothing would be trained; keep one of them")
        if self.dropout_layers < 0:
            raise BadInput(f"dropout_layers={self.dropout_layers}: must be at least 0")


PRESETS = {
    "unet-l1": (dict(adv_weight=0.0, dropout_layers=0),
                "U-Net trained with L1 only (pix2pix without its GAN): the translation baseline"),
}


@register_model("pix2pix", presets=PRESETS)
class Pix2Pix(TranslationModel):
    """pix2pix: U-Net generator + PatchGAN on (input, output) pairs, cGAN + 100 * L1 (Isola et al. 2017)."""

    Config = Pix2PixConfig
    translation = "paired"
    directions = ("a2b",)

    def __init__(self, config: Pix2PixConfig):
        config.validate()
        super().__init__(config)
        c = config
        self.g = UNet(c.channels_a, c.channels, c.size, c.width, norm=c.norm, dropout_layers=c.dropout_layers,
                      bottom=c.unet_bottom)
        dcgan_init(self.g)
        # D exists only when it is trained, so unet-l1's weights hold the U-Net alone
        self.d = self.make_discriminator(c.channels_a + c.channels) if c.adv_weight > 0 else None

    def _generators(self) -> dict[str, nn.Module]:
        return {"a2b": self.g}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        opts = {"g": adam(self.g.parameters(), c.lr, c)}
        if self.d is not None:
            opts["d"] = adam(self.d.parameters(), c.lr_d, c)
        return opts

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One D update, then one G update.

        Args:
            batch: (a, b), aligned: a (B, C_a, S, S) inputs, b (B, C, S, S) their targets.
        Returns detached 0-d float32 tensors: loss/g, loss/l1 and, with a GAN, loss/d,
        loss/adv, d/real and d/fake (mean patch logits) and reg/r1 or reg/gp.
        """
        a, b = batch
        c = self.config
        opt = self.optimizers()
        with self.autocast():
            fake = self.g(a)                                              # (B, C, S, S)
        out: dict[str, torch.Tensor] = {}
        loss_g = c.l1_weight * l1(fake, b)
        out["loss/l1"] = l1(fake, b).detach()
        if self.d is not None:
            real_pair = torch.cat([a, b], 1)                              # (B, C_a + C, S, S)
            fake_pair = torch.cat([a, fake.to(a.dtype)], 1)
            loss_d, logs = self.d_objective(self.d, real_pair, fake_pair)
            self.update(opt["d"], loss_d, list(self.d.parameters()))
            out["loss/d"] = loss_d.detach()
            out.update({(f"reg/{k}" if k in ("r1", "gp") else f"d/{k}"): v for k, v in logs.items()})
            with self.autocast():
                logits = self.d(fake_pair)
            adv = g_loss(c.loss, logits)
            loss_g = loss_g + c.adv_weight * adv
            out["loss/adv"] = adv.detach()
        self.update(opt["g"], loss_g, list(self.g.parameters()))
        self.end_step()
        out["loss/g"] = loss_g.detach()
        return out
