"""Pictures of a trained model's latent space: interpolations, traversals, 2-D embeddings.

Each function returns images (N, C, H, W) in [-1, 1] or writes a figure; the CLI tiles and
saves them. Models without an encoder get interpolations between prior samples; traversals and
embeddings of test images need an encoder and say so.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import BadInput


def needs_encoder(model, what: str) -> None:
    if not getattr(model, "has_encoder", False):
        raise BadInput(f"{what} needs a model with an encoder; '{model.name}' has none "
                       "(try ae, vae, beta-vae, vaegan, aae or bigan)")


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for Gaussian latents).

    z0, z1: (B, D); t: (T,) -> (B, T, D). Falls back to a straight line for parallel vectors.
    """
    a, b = z0[:, None], z1[:, None]
    t = t[None, :, None]
    cos = (torch.nn.functional.normalize(z0, dim=1) * torch.nn.functional.normalize(z1, dim=1)).sum(1)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    so = torch.sin(omega)
    out = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    line = (1 - t) * a + t * b
    return torch.where(so.abs() < 1e-6, line, out)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight line; z0, z1: (B, D); t: (T,) -> (B, T, D)."""
    return (1 - t[None, :, None]) * z0[:, None] + t[None, :, None] * z1[:, None]


def latent_path(model, z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The codes between z0 and z1 (B, D) at times t (T,) -> (B, T, D).

    Spherical when the model's latents are N(0, I) (`gaussian_latent`: a straight line would cut
    through the low-norm centre, where a Gaussian puts almost no mass), straight otherwise.
    """
    return slerp(z0, z1, t) if getattr(model, "gaussian_latent", True) else lerp(z0, z1, t)


@torch.no_grad()
def interpolate(model, x: torch.Tensor | None, pairs: int, steps: int, generator: torch.Generator) -> torch.Tensor:
    """`pairs` rows of `steps` images each, along latent paths.

    Encoder models go from the code of x[2i] to that of x[2i+1]; others between prior draws.
    The path is spherical for Gaussian latents and straight for an autoencoder's.
    """
    model.eval()
    latent = model.config.latent
    if getattr(model, "has_encoder", False) and x is not None:
        z = model.encode(x[: 2 * pairs])
        z0, z1 = z[0::2], z[1::2]
    else:
        z0 = torch.randn(pairs, latent, generator=generator).to(model.device)
        z1 = torch.randn(pairs, latent, generator=generator).to(model.device)
    t = torch.linspace(0, 1, steps, device=model.device)
    path = latent_path(model, z0, z1, t)                 # (pairs, steps, latent)
    return model.decode(path.reshape(-1, latent))


@torch.no_grad()
def traverse(model, x: torch.Tensor, dims: int, steps: int, span: float = 3.0) -> tuple[torch.Tensor, list[int]]:
    """One row per latent dimension: vary it, the others held at a centre, over span units.

    For models with a Gaussian posterior (VAE, VAE-GAN: `encode_dist`) the centre is the prior's,
    0, and a unit is 1 (the prior's standard deviation); for the others (AE, AAE, BiGAN) the
    centre is the mean code of x and a unit is that dimension's standard deviation over x. Row
    values run from centre - span * unit to centre + span * unit.

    The dimensions shown are the most used ones: for a VAE those with the largest average KL
    over x (the active units, Burda et al. 2016), otherwise those with the largest code variance.

    Returns:
        images (rows*steps, C, H, W) and the dimension index of each row.
    """
    needs_encoder(model, "traverse")
    model.eval()
    if hasattr(model, "encode_dist"):
        mu, logvar = model.encode_dist(x)
        usage = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)  # (D,) mean KL per dim
        centre = torch.zeros_like(mu[0])
        scale = torch.ones_like(mu[0])
    else:
        mu = model.encode(x)
        usage = mu.var(0)
        centre, scale = mu.mean(0), mu.std(0)
    order = torch.argsort(usage, descending=True)[:dims].tolist()
    base = centre.clone()
    values = torch.linspace(-span, span, steps, device=x.device)
    rows = []
    for d in order:
        z = base.repeat(steps, 1)
        z[:, d] = centre[d] + values * scale[d]
        rows.append(model.decode(z))
    return torch.cat(rows), order


@torch.no_grad()
def encode_all(model, x: torch.Tensor, batch: int = 500) -> np.ndarray:
    model.eval()
    return torch.cat([model.encode(x[i:i + batch]) for i in range(0, len(x), batch)]).float().cpu().numpy()


def project_2d(z: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) by PCA (SVD of the centred codes) or t-SNE (scikit-learn)."""
    if z.shape[1] == 1:
        return np.concatenate([z, np.zeros_like(z)], 1)
    if method == "pca":
        zc = z - z.mean(0)
        _, _, vt = np.linalg.svd(zc, full_matrices=False)
        return zc @ vt[:2].T
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(2, init="pca", random_state=seed, perplexity=min(30, max(5, len(z) // 4))).fit_transform(z)
    raise BadInput(f"--method {method}: choose pca or tsne")


def plot_embedding(path, xy: np.ndarray, labels: np.ndarray | None, classes: list[str] | None, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.6)
    else:
        cmap = plt.get_cmap("tab10" if (labels.max() < 10) else "tab20")
        for k in np.unique(labels):
            m = labels == k
            name = classes[k] if classes and k < len(classes) else str(k)
            ax.scatter(xy[m, 0], xy[m, 1], s=4, alpha=0.7, color=cmap(int(k) % cmap.N), label=name)
        ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    from .files import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)


def factor_labels(model, x: torch.Tensor, factors: np.ndarray, names: list[str], order: list[int]) -> list[str]:
    """A label for each traversed dim in `order`: 'z3: x position (MI 0.62)', the ground-truth
    factor the dim shares most (normalised) mutual information with over the images x and their
    factor levels (N, K), or 'z3: no factor' (metrics.disentangle.dims_to_factors)."""
    from .metrics.disentangle import dims_to_factors

    best = dims_to_factors(encode_all(model, x), factors, names)
    return [f"z{d}: {best[d][0]} (MI {best[d][1]:.2f})" if best[d] else f"z{d}: no factor" for d in order]


def save_labelled_grid(path, imgs: np.ndarray, nrow: int, labels: list[str]) -> None:
    """A grid of uint8 images (rows*nrow, C, H, W), one row per label, each row labelled on the
    left (latent traversals with the factor each dimension captures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .files import atomic_write
    from .images import make_grid

    rows = len(labels)
    label_w, cell = 2.0, 0.5                                  # inches: the labels' column, one image
    width = label_w + cell * nrow
    fig, axes = plt.subplots(rows, 1, figsize=(width, cell * rows + 0.1), dpi=110, squeeze=False)
    fig.subplots_adjust(left=label_w / width, right=0.995, top=0.995, bottom=0.005, hspace=0.06)
    for r, (ax, label) in enumerate(zip(axes[:, 0], labels)):
        strip = make_grid(imgs[r * nrow:(r + 1) * nrow], nrow=nrow)          # (H', W', C) or (H', W')
        ax.imshow(strip.squeeze(), cmap="gray" if strip.ndim == 2 or strip.shape[-1] == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)
