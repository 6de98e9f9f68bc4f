"""AE: a deterministic convolutional autoencoder that generates through a fitted latent prior.

An autoencoder has no prior of its own, so after training `fit_prior` encodes the training
images and fits a density to their codes: a full-covariance Gaussian, or a Gaussian mixture
fitted by EM (Dempster, Laird & Rubin 1977; Bishop, "Pattern Recognition and Machine
Learning" 2006, §9.2). Sampling codes from that density and decoding them is the "ex-post
density estimation" recipe of Ghosh et al. 2020 ("From Variational to Deterministic
Autoencoders"), which makes a plain AE a usable baseline beside VAEs and GANs. The mixture
starts from k-means++ seeds (Arthur & Vassilvitskii 2007).

The fitted prior lives in registered buffers, allocated at construction with their final
shapes, so `save_pretrained` / `from_pretrained` carry it with the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..custom import autoencoder_nets
from ..errors import BadInput, GanvaeError
from ..nets import dcgan_init, make_decoder, make_encoder
from ..registry import register_model
from .base import GenerativeModel, ModelConfig, seeded_generator
from .common import check_adam, evaluating, normal


@dataclass
class AEConfig(ModelConfig):
    loss: Literal["mse", "bce"] = "mse"          # mse: tanh decoder vs x; bce: logits vs (x+1)/2
    prior: Literal["gaussian", "gmm"] = "gaussian"  # the density fitted to the codes after training
    gmm_components: int = 10                     # K, for prior="gmm"
    # normalization in the encoder and decoder: batch norm (DCGAN's), layer norm or none. Layer
    # norm and none treat each image alone, so N DDP processes compute what one process does
    # (to float rounding); batch norm normalises each process's B / N rows by their own statistics
    norm: Literal["batch", "layer", "none"] = "batch"
    lr: float = 1e-3
    # Adam's default momentum: reconstruction is a plain minimisation, and the 0.5 that DCGAN
    # uses is a remedy for the oscillation of adversarial games, which an AE does not have.
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999

    def validate(self) -> None:
        super().validate()
        if self.gmm_components < 1:
            raise BadInput(f"gmm_components={self.gmm_components}: must be at least 1")
        if self.norm not in ("batch", "layer", "none"):
            raise BadInput(f"norm={self.norm!r}: choose batch, layer or none")
        check_adam(self.lr, self.adam_beta1, self.adam_beta2)


# ---------------------------------------------------------------------------------------------
# Encoding a large batch

def encode_in_batches(encode, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Apply `encode` to x in batches under no_grad; returns the concatenated codes (N, latent)."""
    if x.ndim != 4 or len(x) == 0:
        raise BadInput(f"expected a non-empty image batch (N, C, H, W), got shape {tuple(x.shape)}")
    with torch.no_grad():
        return torch.cat([encode(xb) for xb in x.split(batch_size)])


# ---------------------------------------------------------------------------------------------
# Density fitting on codes: pure functions on (N, D) tensors, in float64 on the CPU
# (a few thousand codes of a few dozen dimensions: cheap, and float64 keeps the covariances and
# their Cholesky factors well-conditioned). They return float64 CPU tensors.

def _as_codes(z: torch.Tensor, min_rows: int, what: str) -> torch.Tensor:
    if z.ndim != 2:
        raise BadInput(f"{what}: expected codes of shape (N, D), got {tuple(z.shape)}")
    if len(z) < min_rows:
        raise BadInput(f"{what}: needs at least {min_rows} codes, got {len(z)}")
    z = z.detach().to("cpu", torch.float64)
    if not torch.isfinite(z).all():
        raise GanvaeError(f"{what}: the codes contain NaN or inf (did training diverge?)")
    return z


def stable_cholesky(cov: torch.Tensor, jitter: float | torch.Tensor) -> torch.Tensor:
    """Cholesky factor(s) of (..., D, D) covariances after adding `jitter` * I.

    If a matrix is still not positive definite (rounding on a nearly singular covariance),
    the jitter grows tenfold and the factorisation is retried, a few times, before failing.
    """
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    jitter = torch.as_tensor(jitter, dtype=cov.dtype, device=cov.device)
    for attempt in range(6):
        chol, info = torch.linalg.cholesky_ex(cov + jitter * 10.0**attempt * eye)
        if not bool((info > 0).any()):
            return chol
    raise GanvaeError("could not factorise a covariance of the latent codes (it is far from "
                      "positive definite); the codes are probably degenerate")


def fit_gaussian(z: torch.Tensor, jitter: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood full-covariance Gaussian of codes z (N, D).

    Args:
        z: the codes.
        jitter: added to the covariance's diagonal, relative to its mean variance, so a code
            dimension the encoder never uses does not make the factor singular.
    Returns:
        mean (D,), lower Cholesky factor (D, D) of the covariance; float64 on the CPU.
    """
    z = _as_codes(z, 1, "fit_gaussian")
    mean = z.mean(0)                                   # (D,)
    diff = z - mean                                    # (N, D)
    cov = diff.T @ diff / len(z)                       # (D, D), the MLE (divides by N)
    scale = cov.diagonal().mean().clamp_min(1e-12)
    return mean, stable_cholesky(cov, jitter * scale)


def _kmeans_pp(z: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each new centre is a code drawn with probability ∝ squared distance
    to the nearest centre so far. Returns (K, D)."""
    first = torch.randint(len(z), (1,), generator=generator)
    centres = [z[first[0]]]
    d2 = (z - centres[0]).pow(2).sum(1)                # (N,) squared distance to nearest centre
    for _ in range(1, k):
        if d2.sum() <= 0:   # fewer distinct codes than centres: any code will do
            idx = torch.randint(len(z), (1,), generator=generator)[0]
        else:
            idx = torch.multinomial(d2, 1, generator=generator)[0]
        centres.append(z[idx])
        d2 = torch.minimum(d2, (z - z[idx]).pow(2).sum(1))
    return torch.stack(centres)


def gmm_log_prob(z: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                 chols: torch.Tensor) -> torch.Tensor:
    """log(w_k N(z_n | mu_k, L_k L_k^T)) for every code and component.

    Args:
        z: (N, D); weights (K,); means (K, D); chols (K, D, D), lower Cholesky factors.
    Returns:
        (N, K); logsumexp over K gives log p(z_n).
    """
    d = z.shape[1]
    diff = (z[None] - means[:, None]).transpose(1, 2)                   # (K, D, N)
    # Whitening with a triangular solve, never an explicit inverse: |L^-1 (z - mu)|^2.
    white = torch.linalg.solve_triangular(chols, diff, upper=False)      # (K, D, N)
    maha = white.pow(2).sum(1)                                           # (K, N)
    half_logdet = chols.diagonal(dim1=-2, dim2=-1).log().sum(-1)        # (K,) = 0.5 log|Sigma|
    log_n = -0.5 * (maha + d * math.log(2 * math.pi)) - half_logdet[:, None]
    return (log_n + weights.log()[:, None]).T                            # (N, K)


def _m_step(z: torch.Tensor, resp: torch.Tensor, reg: torch.Tensor):
    """Weights, means and covariance factors from responsibilities resp (N, K)."""
    # A tiny floor on the soft counts keeps an emptied component's mean finite (0/0 otherwise).
    nk = resp.sum(0) + 10 * torch.finfo(z.dtype).eps                    # (K,)
    weights = nk / nk.sum()
    means = resp.T @ z / nk[:, None]                                     # (K, D)
    diff = z[None] - means[:, None]                                      # (K, N, D)
    cov = (diff * resp.T[:, :, None]).transpose(1, 2) @ diff / nk[:, None, None]  # (K, D, D)
    return weights, means, stable_cholesky(cov, reg)


def fit_gmm(z: torch.Tensor, k: int, iters: int = 100, tol: float = 1e-5, seed: int = 0,
            reg: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A K-component full-covariance Gaussian mixture fitted to codes z (N, D) by EM.

    Initialisation: k-means++ seeds refined by a few Lloyd iterations give the means and the
    weights; every component starts with the codes' overall covariance (starting from the
    clusters' own covariances lets a one-code cluster collapse at once). Then EM, with
    responsibilities by log-sum-exp, until the mean log-likelihood changes by less than `tol`.

    Args:
        z: the codes. k: the number of components (at most N).
        iters: the most EM iterations. tol: the stopping change in mean log-likelihood (nats).
        seed: seeds the initialisation, so a fit is reproducible.
        reg: added to every covariance's diagonal, relative to the codes' mean variance; it
            bounds the likelihood away from the singular solutions of mixture MLE.
    Returns:
        weights (K,), means (K, D), Cholesky factors (K, D, D); float64 on the CPU.
    """
    if k < 1:
        raise BadInput(f"fit_gmm: k={k}: must be at least 1")
    z = _as_codes(z, k, f"fit_gmm with {k} components")
    n = len(z)
    generator = torch.Generator().manual_seed(seed)
    centred = z - z.mean(0)
    global_cov = centred.T @ centred / n                                 # (D, D)
    reg_abs = reg * global_cov.diagonal().mean().clamp_min(1e-12)

    # Initialisation: k-means++ and Lloyd's algorithm on hard assignments.
    means = _kmeans_pp(z, k, generator)                                  # (K, D)
    for _ in range(10):
        assign = torch.cdist(z, means).argmin(1)                         # (N,)
        counts = torch.bincount(assign, minlength=k).to(z.dtype)         # (K,)
        sums = torch.zeros_like(means).index_add_(0, assign, z)
        keep = counts > 0                                               # an empty cluster keeps its seed
        means[keep] = sums[keep] / counts[keep, None]
    weights = (counts + 1.0) / (counts + 1.0).sum()                      # no component starts at 0
    chols = stable_cholesky(global_cov, reg_abs).expand(k, -1, -1).clone()

    prev = -math.inf
    for _ in range(iters):
        log_joint = gmm_log_prob(z, weights, means, chols)               # (N, K)
        log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)        # (N, 1) = log p(z_n)
        resp = (log_joint - log_norm).exp()                              # (N, K), rows sum to 1
        weights, means, chols = _m_step(z, resp, reg_abs)
        ll = log_norm.mean().item()
        if abs(ll - prev) < tol:
            break
        prev = ll
    return weights, means, chols


# ---------------------------------------------------------------------------------------------

class FittedPrior:
    """A latent density fitted to the codes of training images after training, for models
    whose codes are not (or not well) matched to N(0, I): sampling decodes its draws.

    Ex-post density estimation (Ghosh et al. 2020, "From Variational to Deterministic
    Autoencoders", §4): a full-covariance Gaussian ("gaussian") or a mixture of them ("gmm")
    fitted to the posterior means. "normal" keeps N(0, I) and fits nothing. The fitted
    parameters are buffers, so they are saved and loaded with the weights; only the chosen
    density's buffers exist, so a saved file holds nothing unused. The model calls
    `init_prior` in its constructor and provides `encode`, `config.latent` and `device`.
    """

    def init_prior(self, kind: str, latent: int, components: int) -> None:
        self._prior_kind = kind
        d, k = latent, components
        # identity / zero until fit_prior
        if kind == "gaussian":
            self.register_buffer("prior_mean", torch.zeros(d))                  # (D,)
            self.register_buffer("prior_chol", torch.eye(d))                    # (D, D)
        elif kind == "gmm":
            self.register_buffer("gmm_weights", torch.full((k,), 1.0 / k))       # (K,)
            self.register_buffer("gmm_means", torch.zeros(k, d))                 # (K, D)
            self.register_buffer("gmm_chols", torch.eye(d).repeat(k, 1, 1))      # (K, D, D)
        if kind != "normal":
            self.register_buffer("prior_fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_prior(self, x: torch.Tensor) -> None:
        """Encode x (N, C, H, W) in [-1, 1] and fit the configured density to the codes."""
        if self._prior_kind == "normal":
            return
        z = encode_in_batches(self.encode, x)              # (N, latent)
        if self._prior_kind == "gaussian":
            mean, chol = fit_gaussian(z)
            self.prior_mean.copy_(mean)
            self.prior_chol.copy_(chol)
        else:
            weights, means, chols = fit_gmm(z, self.config.gmm_components)
            self.gmm_weights.copy_(weights)
            self.gmm_means.copy_(means)
            self.gmm_chols.copy_(chols)
        self.prior_fitted.fill_(True)

    def latent_nll(self, z: torch.Tensor) -> torch.Tensor:
        """-log p(z) per code (B,) under the fitted density (N(0, I)'s ||z||^2 / 2 before
        fit_prior or for "normal"); differentiable, so completion can use it as its prior term."""
        z = z.float()
        if self._prior_kind == "normal" or not bool(self.prior_fitted):
            return 0.5 * z.pow(2).sum(1)
        if self._prior_kind == "gaussian":
            white = torch.linalg.solve_triangular(self.prior_chol.float(), (z - self.prior_mean).T, upper=False)
            return 0.5 * white.pow(2).sum(0)                             # (B,), constant dropped
        log_joint = gmm_log_prob(z, self.gmm_weights.float(), self.gmm_means.float(), self.gmm_chols.float())
        return -torch.logsumexp(log_joint, dim=1)                        # (B,)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes (n, latent) from the fitted prior; standard normal before fit_prior (or "normal")."""
        d = self.config.latent
        if self._prior_kind == "normal" or not bool(self.prior_fitted):
            return normal((n, d), generator, self.device)
        # Draw on the generator's device (see `normal`), then move.
        dev = generator.device if generator is not None else self.device
        if self._prior_kind == "gaussian":
            eps = normal((n, d), generator, dev)                                  # (n, D)
            z = self.prior_mean.to(dev) + eps @ self.prior_chol.to(dev).T
        else:
            comp = torch.multinomial(self.gmm_weights.to(dev), n, replacement=True, generator=generator)  # (n,)
            eps = normal((n, d, 1), generator, dev)                               # (n, D, 1)
            z = self.gmm_means.to(dev)[comp] + (self.gmm_chols.to(dev)[comp] @ eps).squeeze(-1)
        return z.to(self.device)


@register_model("ae")
class AE(FittedPrior, GenerativeModel):
    """Autoencoder: deterministic encoder and decoder; samples through a fitted latent prior."""

    Config = AEConfig
    ddp_ready = True
    custom_roles = ("encoder", "decoder")
    has_encoder = True
    # Its codes are wherever the encoder put them (the prior is fitted to them afterwards), not
    # N(0, I): the norm-preserving great circle of slerp has no meaning there, so paths are lines.
    gaussian_latent = False

    def __init__(self, config: AEConfig):
        config.validate()
        super().__init__(config)
        c = config
        self.encoder = make_encoder(c.arch, c.channels, c.size, c.width, out_dim=c.latent, norm=c.norm)
        # bce: raw logits (the loss applies the sigmoid stably); mse: tanh images in [-1, 1].
        self.decoder = make_decoder(c.arch, c.latent, c.channels, c.size, c.width,
                                    out="none" if c.loss == "bce" else "tanh", norm=c.norm)
        dcgan_init(self)   # the same initialisation as the GAN nets, so families compare fairly
        enc, dec = autoencoder_nets(c, c.latent, c.channels, "ae")   # a user's own (custom.py)
        self.encoder, self.decoder = enc or self.encoder, dec or self.decoder
        self.init_prior(c.prior, c.latent, c.gmm_components)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"ae": torch.optim.Adam(self.parameters(), lr=c.lr, betas=(c.adam_beta1, c.adam_beta2))}

    # ---- the loss
    def recon_loss(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction loss (B,), summed over pixels.

        mse: squared error between the tanh output and x in [-1, 1]; bce: binary cross-entropy
        between the logits and the intensities (x + 1) / 2 in [0, 1].
        """
        if self.config.loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none")
        else:
            per_pixel = (out - x).pow(2)
        return per_pixel.flatten(1).sum(1)

    def train_step(self, x: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        self.train()
        opt = self.optimizers()["ae"]
        with self.autocast():
            out = self.ddp("decoder")(self.ddp("encoder")(x))   # (B, C, H, W)
        # Summed over pixels, averaged over the batch: the loss of one image, whatever the batch;
        # in float32 (a bf16 sum over 784 pixels would keep only ~3 significant digits).
        loss = self.recon_loss(out.float(), x.float()).mean()
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.step(opt)
        self.end_step()
        return {"loss/recon": loss.detach()}

    # ---- inference (eval mode: batch norm on its running statistics)
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> codes (B, latent)."""
        with evaluating(self):
            return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent) -> images (B, C, H, W) in [-1, 1]."""
        with evaluating(self):
            out = self.decoder(z)
        return 2 * torch.sigmoid(out) - 1 if self.config.loss == "bce" else out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None) -> torch.Tensor:
        return self.decode(self.sample_prior(n, seeded_generator(seed, generator)))
