"""UNIT: unsupervised image-to-image translation with coupled VAE-GANs and a shared latent
space (Liu, Breuel & Kautz 2017, "Unsupervised Image-to-Image Translation Networks", NeurIPS).

The shared-latent assumption (§2): an image of domain A and its counterpart in domain B have
one code z in a common space, from which each domain's generator draws its own version. Two
VAEs, {E_a, G_a} and {E_b, G_b}, share their high-level layers (the last layers of the
encoders, the first of the generators), which ties the two codes to one space; a GAN per
domain makes the translations G_b(E_a(a)) and G_a(E_b(b)) look like that domain's images; a
cycle term asks that translating there and back gives the input again.

    E_d:  k4 s2 conv C_d -> w, k4 s2 conv w -> 2w (private to domain d, 28 -> 14 -> 7),
          then SHARED: 3x3 conv 2w -> 4w, 1x1 conv 4w -> latent  = mu (B, latent, S/4, S/4)
    q(z|x) = N(mu(x), I)       the variance is fixed to 1 (§3), so z = mu + eps while
                               training and z = mu when translating
    G_d:  SHARED: 3x3 conv latent -> 4w, then private to domain d: k4 s2 transposed conv
          4w -> 2w (S/2), k4 s2 transposed conv 2w -> C_d (S), tanh

With z_a = mu_a + eps, z_b = mu_b + eps, x_ab = G_b(z_a), x_ba = G_a(z_b), and the cycle codes
mu_aba = E_b(x_ab), mu_bab = E_a(x_ba) (each with its own eps):

    L_G = λ0 [gan_G(D_b(x_ab)) + gan_G(D_a(x_ba))]                       adversarial
        + λ1 [KL(mu_a) + KL(mu_b)]                                        VAE prior
        + λ2 [|G_a(z_a) - a| + |G_b(z_b) - b|]                            reconstruction
        + λ3 [KL(mu_aba) + KL(mu_bab)]                                    cycle prior
        + λ4 [|G_a(z_aba) - a| + |G_b(z_bab) - b|]                        cycle reconstruction
    L_D = d_loss(D_a(a), D_a(x_ba)) + d_loss(D_b(b), D_b(x_ab))         (translation.d_loss)

KL(mu) = KL(N(mu, I) || N(0, I)) = mu^2 / 2 per element, and |.| is L1; the weights are the
paper's, "λ0 = 10, λ3 = λ1 = 0.1 and λ4 = λ2 = 100" (§3). Two departures from the paper's
equations, both the authors' released code's:
- the paper's cycle term (eq. 5) also repeats λ3 KL(mu_a); here, as in the code, the cycle
  prior is on the re-encoded codes only, so KL(mu_a) carries λ1 alone;
- every term is a mean over its elements (pixels, latent elements, patches), not the sum the
  paper's log-likelihoods imply. So each term is O(1) whatever the image and code sizes, and
  the weights keep the balance they have in the code; with sums, the ratio of the L1 term
  (C S^2 pixels) to the KL (latent S^2/16 elements) would move with every change of size or
  latent, and 100 : 0.1 would mean something else each time. (The code's KL is mean(mu^2),
  without the 1/2: its prior is twice as strong as this one at the same λ1, small beside the
  factor 1000 between λ2 and λ1.)

The networks are small counterparts of the paper's for 28x28 images (its encoders and
generators add residual blocks, left out at this size); the discriminators are the family's
PatchGANs (TranslationModel.make_discriminator), one per domain; instance norm and the
least-squares GAN (Mao et al. 2017) as in the authors' code; the family's Adam (2e-4, betas
(0.5, 0.999)).

One train_step: one G update (both encoders and decoders, shared layers once), then one D
update on the translations of that same forward, detached (CycleGAN's reference code does the
same: the fakes D sees are G's before its step, which saves a second forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import parallel
from ..errors import BadInput
from ..nets import norm_layer, dcgan_init
from ..registry import register_model
from .translation import TranslationConfig, TranslationModel, adam, g_loss, l1

DOMAINS = ("a", "b")


@dataclass
class UNITConfig(TranslationConfig):
    norm: str = "instance"         # the authors' code; batch norm would also share statistics across domains
    # Channels of the spatial code z (B, latent, S/4, S/4), not the length of a vector code.
    # 64 at 7x7 is 3136 numbers per 28x28 image: like the paper's code (256 channels at a
    # quarter of the side) it is no bottleneck; the shared layers, not a narrow z, tie the
    # domains together.
    latent: int = 64
    gan_weight: float = 10.0       # λ0
    kl_weight: float = 0.1         # λ1
    recon_weight: float = 100.0    # λ2
    cycle_kl_weight: float = 0.1   # λ3
    cycle_weight: float = 100.0    # λ4

    def validate(self) -> None:
        super().validate()
        for name in ("gan_weight", "kl_weight", "recon_weight", "cycle_kl_weight", "cycle_weight"):
            if not getattr(self, name) >= 0:      # also refuses NaN
                raise BadInput(f"{name}={getattr(self, name)}: must be at least 0")
        if self.size % 4 or self.size < 8:
            raise BadInput(f"image size {self.size}: UNIT halves the side twice (28 -> 14 -> 7), so it "
                           "needs a side divisible by 4 and at least 8; pass --size")
        # PatchGAN: each k4 s2 layer floors the side by half, the two k4 s1 layers take 1 each


# ---- losses (pure functions; the tests check them by hand)

def kl(mu: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, I) || N(0, I)) per latent element, averaged: mean(mu^2) / 2, float32."""
    return 0.5 * mu.float().square().mean()


def unit_loss(c: UNITConfig, *, a: torch.Tensor, b: torch.Tensor,
              mu_a: torch.Tensor, mu_b: torch.Tensor, x_aa: torch.Tensor, x_bb: torch.Tensor,
              logits_ab: torch.Tensor, logits_ba: torch.Tensor,
              mu_aba: torch.Tensor, mu_bab: torch.Tensor, x_aba: torch.Tensor, x_bab: torch.Tensor,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G of the module docstring from its pieces, float32.

    Args:
        c: the weights (gan_weight ... cycle_weight) and the GAN loss kind (c.loss).
        a, b: the real batches; x_aa, x_bb their reconstructions; x_aba, x_bab their cycles.
        mu_a, mu_b: the codes' means; mu_aba, mu_bab those of the translations re-encoded.
        logits_ab: D_b's logits for x_ab = G_b(z_a); logits_ba: D_a's for x_ba.
    Returns:
        (total, parts): parts holds each term before its weight, summed over the two
        domains: adv, kl, recon, cycle_kl, cycle.
    """
    parts = {
        "adv": g_loss(c.loss, logits_ab) + g_loss(c.loss, logits_ba),
        "kl": kl(mu_a) + kl(mu_b),
        "recon": l1(x_aa, a) + l1(x_bb, b),
        "cycle_kl": kl(mu_aba) + kl(mu_bab),
        "cycle": l1(x_aba, a) + l1(x_bab, b),
    }
    total = (c.gan_weight * parts["adv"] + c.kl_weight * parts["kl"] + c.recon_weight * parts["recon"]
             + c.cycle_kl_weight * parts["cycle_kl"] + c.cycle_weight * parts["cycle"])
    return total, parts


# ---- networks

def _front(channels: int, width: int, norm: str) -> nn.Sequential:
    """A domain's private encoder layers: (B, C, S, S) -> (B, 2w, S/4, S/4); no norm on the
    first layer (DCGAN), LeakyReLU 0.2."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=norm == "none"), norm_layer(norm, 2 * width), nn.LeakyReLU(0.2))


def _back(channels: int, width: int, norm: str) -> nn.Sequential:
    """A domain's private generator layers: (B, 4w, S/4, S/4) -> (B, C, S, S) in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=norm == "none"), norm_layer(norm, 2 * width), nn.ReLU(),
        nn.ConvTranspose2d(2 * width, channels, 4, 2, 1), nn.Tanh())


class _Translator(nn.Module):
    """x -> G_out(mu(x)) through one domain's encoder and the other's generator, z = mu (the
    translation's deterministic part; no noise). Built on demand from the model's own modules,
    never stored on the model, so the shared layers appear once in its state_dict."""

    def __init__(self, front: nn.Module, enc_shared: nn.Module, dec_shared: nn.Module, back: nn.Module):
        super().__init__()
        self.front, self.enc_shared, self.dec_shared, self.back = front, enc_shared, dec_shared, back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.dec_shared(self.enc_shared(self.front(x))))


@register_model("unit")
class UNIT(TranslationModel):
    """UNIT: two VAE-GANs with shared high-level layers and a shared latent space (Liu et al. 2017)."""

    Config = UNITConfig
    translation = "unpaired"
    directions = ("a2b", "b2a")

    def __init__(self, config: UNITConfig):
        config.validate()
        super().__init__(config)
        c, w = config, config.width
        self.enc_a = _front(c.channels_a, w, c.norm)
        self.enc_b = _front(c.channels, w, c.norm)
        # One instance each, used by both domains: the weight sharing that makes the latent
        # space common (§3: the last, high-level layers of E1 and E2 and the first of G1 and
        # G2 share their weights).
        self.enc_shared = nn.Sequential(
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1, bias=c.norm == "none"), norm_layer(c.norm, 4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, c.latent, 1))                                  # mu, no norm: a free mean
        self.dec_shared = nn.Sequential(
            nn.Conv2d(c.latent, 4 * w, 3, 1, 1, bias=c.norm == "none"), norm_layer(c.norm, 4 * w), nn.ReLU())
        self.dec_a = _back(c.channels_a, w, c.norm)
        self.dec_b = _back(c.channels, w, c.norm)
        for m in self._g_modules():
            dcgan_init(m)
        self.d_a = self.make_discriminator(c.channels_a)
        self.d_b = self.make_discriminator(c.channels)

    def _g_modules(self) -> list[nn.Module]:
        return [self.enc_a, self.enc_b, self.enc_shared, self.dec_shared, self.dec_a, self.dec_b]

    def _g_params(self) -> list[nn.Parameter]:
        return [p for m in self._g_modules() for p in m.parameters()]

    def _d_params(self) -> list[nn.Parameter]:
        return list(self.d_a.parameters()) + list(self.d_b.parameters())

    # ---- the two VAEs (raw network forwards: callers hold autocast)
    def _encode(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        """(B, C_d, S, S) -> mu (B, latent, S/4, S/4)."""
        front = {"a": self.enc_a, "b": self.enc_b}[domain]
        return self.enc_shared(front(x))

    def _decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """(B, latent, S/4, S/4) -> (B, C_d, S, S) in [-1, 1]."""
        back = {"a": self.dec_a, "b": self.dec_b}[domain]
        return back(self.dec_shared(z))

    @staticmethod
    def _check_domain(domain: str) -> None:
        if domain not in DOMAINS:
            raise BadInput(f"domain {domain!r}: choose a (the input domain) or b (the target domain)")

    def encode(self, x: torch.Tensor, domain: str = "a") -> torch.Tensor:
        """The mean of q(z|x): (B, C_d, S, S) -> (B, latent, S/4, S/4), float32, differentiable."""
        self._check_domain(domain)
        with self.autocast():
            mu = self._encode(x, domain)
        return mu.float()

    def reconstruct(self, x: torch.Tensor, domain: str = "a") -> torch.Tensor:
        """G_d(mu(x)) within one domain, float32, differentiable (uses only d's layers and the shared ones)."""
        self._check_domain(domain)
        with self.autocast():
            y = self._decode(self._encode(x, domain), domain)
        return y.float()

    def _generators(self) -> dict[str, nn.Module]:
        return {"a2b": _Translator(self.enc_a, self.enc_shared, self.dec_shared, self.dec_b),
                "b2a": _Translator(self.enc_b, self.enc_shared, self.dec_shared, self.dec_a)}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        # the shared layers are listed once, so Adam keeps one set of moments for them
        return {"g": adam(self._g_params(), c.lr, c), "d": adam(self._d_params(), c.lr_d, c)}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One G update (encoders and generators on L_G), then one D update (both D on L_D).

        Args:
            batch: (a, b), unpaired: a (B, C_a, S, S) from domain A, b (B, C, S, S) from B.
        Returns detached 0-d float32 tensors: loss/g (the weighted total), its terms before
        their weights, each summed over the two domains (loss/adv, loss/kl, loss/recon,
        loss/cycle_kl, loss/cycle), loss/d, d/real and d/fake (mean patch logits, averaged over
        D_a and D_b) and, with a penalty, reg/r1 or reg/gp (averaged likewise).
        """
        a, b = batch
        c = self.config
        opt = self.optimizers()

        def sample(mu):  # z = mu + eps, eps ~ N(0, I): q(z|x) has unit variance; float32 noise
            return mu.float() + parallel.randn_rows(mu.float())            # (global-batch draws under DDP)

        with self.autocast():
            mu_a, mu_b = self._encode(a, "a"), self._encode(b, "b")          # (B, latent, S/4, S/4)
            z_a, z_b = sample(mu_a), sample(mu_b)
            x_aa, x_ab = self._decode(z_a, "a"), self._decode(z_a, "b")      # (B, C_a, S, S), (B, C, S, S)
            x_bb, x_ba = self._decode(z_b, "b"), self._decode(z_b, "a")
            # cycle: the translation re-encoded by the other domain's encoder, decoded back
            mu_aba, mu_bab = self._encode(x_ab, "b"), self._encode(x_ba, "a")
            x_aba, x_bab = self._decode(sample(mu_aba), "a"), self._decode(sample(mu_bab), "b")
            logits_ab, logits_ba = self.d_b(x_ab), self.d_a(x_ba)            # (B, 1, h, w) patch logits
        loss_g, parts = unit_loss(c, a=a, b=b, mu_a=mu_a, mu_b=mu_b, x_aa=x_aa, x_bb=x_bb,
                                  logits_ab=logits_ab, logits_ba=logits_ba, mu_aba=mu_aba, mu_bab=mu_bab,
                                  x_aba=x_aba, x_bab=x_bab)
        # gradients only into E and G: D's parameters are on the graph (through the adversarial
        # term) but get none, so the D step below starts from its own loss alone
        self.update(opt["g"], loss_g, self._g_params())

        loss_da, logs_a = self.d_objective(self.d_a, a, x_ba.detach().float())
        loss_db, logs_b = self.d_objective(self.d_b, b, x_ab.detach().float())
        loss_d = loss_da + loss_db
        self.update(opt["d"], loss_d, self._d_params())
        self.end_step()

        out = {"loss/g": loss_g.detach()}
        out.update({f"loss/{k}": v.detach() for k, v in parts.items()})
        out["loss/d"] = loss_d.detach()
        for k in logs_a:
            out[f"reg/{k}" if k in ("r1", "gp") else f"d/{k}"] = 0.5 * (logs_a[k] + logs_b[k])
        return out
