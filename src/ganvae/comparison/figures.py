"""The pictures of one compared model (runs/<model>-seed<s>/figures/*.png): samples,
reconstructions, interpolations, traversals and the latent embedding the report shows."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import ImageDataset, to_float, to_uint8
from ..evaluation import generate
from ..images import save_grid, translation_grid


def model_figures(model, run_dir: Path, ds: ImageDataset, seed: int) -> dict[str, str]:
    """The pictures of one model, as PNG files in run_dir/figures; returns {kind: file name}."""
    from ..visualize import encode_all, interpolate, plot_embedding, project_2d, traverse

    fig = run_dir / "figures"
    out = {}
    gen = torch.Generator().manual_seed(seed)
    if model.translation:  # what it makes of test inputs: input | translation | target rows
        a = ds.test.a[:32]
        made = generate(model, len(a), seed, 500, inputs=a)
        save_grid(fig / "samples.png", translation_grid(a, made, ds.test.x[:32] if ds.test.paired else None), nrow=8)
        return {"samples": "samples.png"}
    save_grid(fig / "samples.png", to_uint8(model.sample(64, generator=gen)).cpu().numpy())
    out["samples"] = "samples.png"
    x = to_float(torch.from_numpy(ds.test.x[:2000])).to(model.device)
    if getattr(model, "has_encoder", False):
        with torch.no_grad():
            x_hat = model.reconstruct(x[:32])
        pairs = [t for i in range(0, 32, 8) for t in (x[i:i + 8], x_hat[i:i + 8])]
        save_grid(fig / "reconstructions.png", to_uint8(torch.cat(pairs)).cpu().numpy(), nrow=8)
        out["reconstructions"] = "reconstructions.png"
    imgs = interpolate(model, x[:16] if getattr(model, "has_encoder", False) else None, 6, 10,
                       torch.Generator().manual_seed(seed))
    save_grid(fig / "interpolations.png", to_uint8(imgs).cpu().numpy(), nrow=10)
    out["interpolations"] = "interpolations.png"
    if getattr(model, "has_encoder", False):
        # every model with an encoder (ae, aae, bigan too): `traverse` measures units in the
        # posterior's prior where there is one, else in the codes' own spread over x
        imgs, order = traverse(model, x[:1000], min(8, model.config.latent), 11)
        if ds.test.factors is not None:   # known factors: each row labelled with the one its dim captures
            from ..visualize import factor_labels, save_labelled_grid

            labels = factor_labels(model, x[:1000], ds.test.factors[:len(x[:1000])], ds.info["factors"]["names"],
                                   order)
            save_labelled_grid(fig / "traversals.png", to_uint8(imgs).cpu().numpy(), 11, labels)
        else:
            save_grid(fig / "traversals.png", to_uint8(imgs).cpu().numpy(), nrow=11)
        out["traversals"] = "traversals.png"
    if getattr(model, "has_encoder", False):
        xy = project_2d(encode_all(model, x), "pca", seed)
        y = ds.test.y[:len(x)] if ds.test.y is not None else None
        plot_embedding(fig / "embedding.png", xy, y, ds.classes, "test latents (PCA)")
        out["embedding"] = "embedding.png"
    return out
