"""`ganvae datasets`: the named datasets, a grid of a dataset's images, downloads."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput
from .options import CONTEXT, complete_data, data_options, option, renamed


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@option("--data-dir", type=click.Path(path_type=Path), default=None,
        help="Directory searched first for fashion-mnist / mnist.")
@click.pass_context
def datasets(ctx: click.Context, data_dir: Path | None) -> None:
    """List the named datasets: where each is found (or how to get it) and its shape.

    Other forms of --data: shapes[:classes=K,n=N,n_test=M,seed=S], factors[:n=N,n_test=M,seed=S],
    folder:PATH, npz:PATH, pairs:DIR, unpaired:DIR_A,DIR_B, task:NAME.

    \b
    Examples:
      ganvae datasets
      ganvae datasets show fashion-mnist -o real.png
      ganvae datasets download mnist
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..data import NAMED
    from ..data.named import summary
    from ..data.shapes import DEFAULT_CLASSES

    rows = [("name", "train", "test", "image", "classes", "where")]
    for name in NAMED:
        s = summary(name, data_dir)
        if s["found"]:
            c, h, w = s["shape"]
            rows.append((name, str(s["train"]), str(s["test"]), f"{c}x{h}x{w}", str(s["classes"]), s["found"]))
        else:
            rows.append((name, "-", "-", "1x28x28", str(s["classes"]), f"not found; get it: {s['how']}"))
    rows.append(("shapes", "10000", "2000", "1x28x28", str(DEFAULT_CLASSES),
                 "procedural, made in memory (shapes:classes=K,n=N,...; --size, --channels)"))
    from ..data.factors import DEFAULT_N, DEFAULT_N_TEST, SHAPE_NAMES

    rows.append(("factors", str(DEFAULT_N), str(DEFAULT_N_TEST), "1x28x28", str(len(SHAPE_NAMES)),
                 "procedural, known generative factors (factors:n=N,...; --size, --channels)"))
    rows.append(("folder:PATH", "", "", "", "", "images below PATH; sub-folders are classes"))
    rows.append(("npz:PATH", "", "", "", "", "arrays x (N,[C,]H,W) uint8 and optional y"))
    rows.append(("pairs:DIR", "", "", "", "", "translation pairs: DIR/A/<name> (input) -> DIR/B/<name> (target)"))
    rows.append(("unpaired:A,B", "", "", "", "", "two image folders for unpaired translation (A input, B target)"))
    from ..data.tasks import TRANSLATION_TASKS

    for name, (source, _, _, text) in TRANSLATION_TASKS.items():
        rows.append((f"task:{name}", "", "", "", "", f"translation pairs made from {source}: {text}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])


@datasets.command("show", context_settings=CONTEXT)
@click.argument("data", shell_complete=lambda c, p, i: complete_data(i))
@option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .png to write.")
@option("-n", "--n", "n", type=click.IntRange(1, 4096), default=64, show_default=True,
        help="How many images.")
@option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
        help="The split the images come from.")
@option("--seed", type=int, default=0, show_default=True,
        help="Seed of random splits, procedural data and the images picked.")
@data_options
def datasets_show(data, output, n, split, data_dir, size, channels, seed) -> None:
    """Write a grid of real images from DATA (a --data spec) to a PNG.

    \b
    Examples:
      ganvae datasets show fashion-mnist -o real.png --n 64
      ganvae datasets show folder:photos/ --size 64 -o photos.png
    """
    import numpy as np

    from ..data import load_dataset
    from ..images import save_grid

    if output.suffix.lower() != ".png":
        raise BadInput(f"-o {output}: the output must be a .png file")
    ds = load_dataset(data, data_dir=data_dir, size=size, channels=channels, seed=seed)
    part = ds.split(split)
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(part), size=min(n, len(part)), replace=False))
    save_grid(output, part.x[idx])
    c, h, w = ds.shape
    click.echo(f"wrote {output} ({len(idx)} {split} images of {c}x{h}x{w} from {ds.name})")


@datasets.command("download", context_settings=CONTEXT)
@click.argument("name")
@renamed("--dir", "--out", "dest", type=click.Path(path_type=Path))
@option("--out", "dest", type=click.Path(path_type=Path), default=None,
        help="Where to put the files (default: $GANVAE_CACHE/NAME, ~/.cache/ganvae/NAME without it; searched).")
@option("--mirror", default=None, help="Base URL serving the same file names.")
@option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per connection.")
def datasets_download(name, dest, mirror, timeout) -> None:
    """Download NAME's official files over HTTPS and verify their SHA-256.

    \b
    Examples:
      ganvae datasets download mnist
      ganvae datasets download fashion-mnist --out data/fashion-mnist
    """
    from ..data.download import download

    d = download(name, dest, mirror=mirror, timeout=timeout, log=lambda m: click.echo(m, err=True))
    click.echo(f"{name} is ready in {d}")
