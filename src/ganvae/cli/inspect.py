"""Looking at a run's model: `ganvae sample`, `reconstruct`, `interpolate`, `traverse`, `embed`."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput
from .options import CONTEXT, check_png, load_model, option, renamed, run_options, held_out_images


@click.command("sample", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(1, 1_000_000), default=64, show_default=True, help="Samples drawn.")
@option("--batch-size", "batch", type=click.IntRange(1), default=500, show_default=True,
        help="Images generated at once.")
@renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@option("--class", "klass", default=None, metavar="K|NAME|all",
        help="Class-conditional models (cgan): samples of class K (its index or name), or 'all': "
             "N per class, one column per class.")
@run_options
def sample_cmd(run, n, batch, klass, output, seed, device) -> None:
    """Draw N samples from RUN's model into a .png grid, an .npz (x: uint8 (N, C, H, W), and for a
    class-conditional model always y: int64 (N,), the class of each sample) or a
    directory of PNGs (-o DIR, a new or empty one; one sub-folder per class with --class), which
    `ganvae eval --samples DIR` and `--data folder:DIR` read back.

    \b
    Examples:
      ganvae sample runs/0002-dcgan-fashion-mnist -n 64 -o grid.png
      ganvae sample runs/0002-dcgan-fashion-mnist -n 10000 -o samples.npz
      ganvae sample runs/0004-cgan-fashion-mnist -n 100 --class all -o samples/
    """
    import numpy as np
    import torch

    from ..files import atomic_write
    from ..data import to_uint8
    from ..images import save_grid

    as_dir = output.is_dir() or not output.suffix
    if not as_dir and output.suffix.lower() not in (".png", ".npz"):
        raise BadInput(f"-o {output}: write a .png grid, an .npz array file or a directory of PNGs")
    if as_dir and output.is_dir() and any(output.iterdir()):
        raise BadInput(f"-o {output}: the directory is not empty; give a new or empty one (nothing is overwritten)")
    model, cfg = load_model(run, device)
    labels = None if klass is None else _class_labels(model, cfg, klass, n, run)
    total = n if labels is None else len(labels)
    gen = torch.Generator().manual_seed(seed)
    if labels is None and model.conditional:
        # classes drawn uniformly here rather than inside sample(), so that the .npz can carry
        # them: a conditional model's samples are worth little without their labels
        labels = torch.randint(model.config.num_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))
    parts = [to_uint8(model.sample(min(batch, total - i), generator=gen,
                                   **({} if labels is None else {"labels": labels[i:i + batch]}))).cpu().numpy()
             for i in range(0, total, batch)]
    x = np.concatenate(parts)
    if as_dir:
        names = None
        labels = labels if klass is not None else None   # class sub-folders only when asked for
        if labels is not None and cfg:   # class sub-folders by the run's data's class names
            from ..trainer import run_dataset

            names = run_dataset(cfg).classes
        _write_png_folder(output, x, None if labels is None else labels.numpy(), model, names)
    elif output.suffix.lower() == ".npz":
        arrays = {"x": x} if labels is None else {"x": x, "y": labels.numpy()}
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), **arrays))
    else:
        save_grid(output, x, **({"nrow": model.config.num_classes} if klass == "all" else {}))
    n = total
    click.echo(f"wrote {output} ({n} samples of {'x'.join(map(str, x.shape[1:]))})")


def _write_png_folder(out: Path, x, labels, model, names=None) -> None:
    """x (N, C, H, W) uint8 as out/000000.png ... (or out/<class>/... with labels), written into a
    temporary sibling and moved into place at the end, so a failure leaves no half folder."""
    import os
    import shutil
    import tempfile

    from ..images import save_png

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for i, img in enumerate(x):
            d = tmp
            if labels is not None:
                k = int(labels[i])
                d = tmp / (names[k] if names and k < len(names) else f"class_{k:03d}")
                d.mkdir(exist_ok=True)
            save_png(d / f"{i:06d}.png", img.transpose(1, 2, 0))
        if out.is_dir():
            out.rmdir()   # empty: checked before any work
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _class_labels(model, cfg: dict, klass: str, n: int, run: Path):
    """--class K|NAME|all -> the labels (N,) to sample: all of class K, or for 'all' N rows of
    one image per class (column k is class k)."""
    import torch

    if not model.conditional:
        raise BadInput(f"--class: {run}'s model ({model.name}) is unconditional and cannot sample a chosen class; "
                       "train a class-conditional model (cgan) for that")
    k = model.config.num_classes
    if klass == "all":
        return torch.arange(n * k) % k
    if klass.isdigit():
        index = int(klass)
    else:   # a class name: the run's data knows them
        from ..trainer import run_dataset

        names = run_dataset(cfg).classes or []
        matches = [i for i, name in enumerate(names) if name.lower() == klass.lower()]
        if not matches:
            raise BadInput(f"--class {klass!r}: not a class of the run's data; choose one of {', '.join(names)} "
                           f"(or an index 0..{k - 1}, or all)")
        index = matches[0]
    if not 0 <= index < k:
        raise BadInput(f"--class {klass}: the model has classes 0..{k - 1}")
    return torch.full((n,), index, dtype=torch.long)


@click.command("reconstruct", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(1, 512), default=32, show_default=True, help="Test images.")
@run_options
def reconstruct_cmd(run, n, output, seed, device) -> None:
    """Test images (odd rows) above their reconstructions (even rows).

    \b
    Examples:
      ganvae reconstruct runs/vae -o recon.png
      ganvae reconstruct runs/vae -n 64 --checkpoint best -o recon.png
    """
    import torch

    from ..data import to_uint8
    from ..images import save_grid
    from ..visualize import needs_encoder

    check_png(output)
    model, cfg = load_model(run, device)
    needs_encoder(model, "reconstruct")
    x, _, _ = held_out_images(cfg, n, model.device)
    with torch.no_grad():
        x_hat = model.reconstruct(x)
    row = 8
    pairs = [t for i in range(0, len(x), row) for t in (x[i:i + row], x_hat[i:i + row])]
    save_grid(output, to_uint8(torch.cat(pairs)).cpu().numpy(), nrow=row)
    mse = float((x - x_hat).pow(2).mean())
    click.echo(f"wrote {output} ({len(x)} test images and reconstructions; MSE {mse:.4f} on [-1, 1])")


@click.command("interpolate", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("--pairs", type=click.IntRange(1, 64), default=8, show_default=True, help="Paths (rows).")
@option("--points", "steps", type=click.IntRange(2, 64), default=10, show_default=True,
        help="Images along each path, its two ends included.")
@renamed("--steps", "--points", "steps", type=click.IntRange(2, 64))
@run_options
def interpolate_cmd(run, pairs, steps, output, seed, device) -> None:
    """Latent paths between pairs: test images for encoder models, prior draws otherwise.

    \b
    Examples:
      ganvae interpolate runs/0001-vae-fashion-mnist -o paths.png
      ganvae interpolate runs/0002-dcgan-fashion-mnist --pairs 4 --points 16 -o paths.png
    """
    import torch

    from ..data import to_uint8
    from ..images import save_grid
    from ..visualize import interpolate

    check_png(output)
    model, cfg = load_model(run, device)
    x = None
    if getattr(model, "has_encoder", False):
        x, _, _ = held_out_images(cfg, 2 * pairs, model.device)
        pairs = min(pairs, len(x) // 2)
    imgs = interpolate(model, x, pairs, steps, torch.Generator().manual_seed(seed))
    save_grid(output, to_uint8(imgs).cpu().numpy(), nrow=steps)
    kind = "spherical" if getattr(model, "gaussian_latent", True) else "linear"
    click.echo(f"wrote {output} ({pairs} {kind} paths of {steps} steps)")


@click.command("traverse", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("--dims", type=click.IntRange(1, 256), default=10, show_default=True, help="Rows (most used dims).")
@option("--points", "steps", type=click.IntRange(2, 64), default=11, show_default=True,
        help="Images along each row, evenly from -span to +span.")
@renamed("--steps", "--points", "steps", type=click.IntRange(2, 64))
@option("--span", type=click.FloatRange(0.1, 10), default=3.0, show_default=True, help="Range in std units.")
@run_options
def traverse_cmd(run, dims, steps, span, output, seed, device) -> None:
    """One row per latent dimension, varied over [-span, span] (most used dimensions first).

    \b
    Examples:
      ganvae traverse runs/0001-vae-fashion-mnist -o traversals.png
      ganvae traverse runs/0003-beta-vae-factors --dims 6 --points 9 --span 2 -o traversals.png
    """
    from ..data import to_uint8
    from ..images import save_grid
    from ..visualize import needs_encoder, traverse

    check_png(output)
    model, cfg = load_model(run, device)
    needs_encoder(model, "traverse")
    x, _, ds = held_out_images(cfg, 1000, model.device)
    imgs, order = traverse(model, x, min(dims, model.config.latent), steps, span)
    if ds.test.factors is not None:   # data with known factors: each row says which one its dim captures
        from ..visualize import factor_labels, save_labelled_grid

        labels = factor_labels(model, x, ds.test.factors[:len(x)], ds.info["factors"]["names"], order)
        save_labelled_grid(output, to_uint8(imgs).cpu().numpy(), steps, labels)
        click.echo(f"wrote {output} (rows: {', '.join(labels)})")
        return
    save_grid(output, to_uint8(imgs).cpu().numpy(), nrow=steps)
    click.echo(f"wrote {output} (rows = latent dims {order})")


@click.command("embed", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(10, 100_000), default=2000, show_default=True, help="Test images.")
@option("--method", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True,
        help="The 2-d projection of the codes.")
@run_options
def embed_cmd(run, n, method, output, seed, device) -> None:
    """Test-set latents in 2-D (PCA or t-SNE), coloured by label.

    \b
    Examples:
      ganvae embed runs/vae -o embed.png
      ganvae embed runs/aae --method tsne -o embed.png
    """
    from ..visualize import encode_all, needs_encoder, plot_embedding, project_2d

    check_png(output)
    model, cfg = load_model(run, device)
    needs_encoder(model, "embed")
    x, y, ds = held_out_images(cfg, n, model.device)
    xy = project_2d(encode_all(model, x), method, seed)
    plot_embedding(output, xy, y, ds.classes, f"{cfg.get('preset', model.name)} latents of {len(x)} "
                                              f"{ds.name} test images ({method.upper()})")
    click.echo(f"wrote {output} ({len(x)} test latents, {method})")
