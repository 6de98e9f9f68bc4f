"""The `ganvae` command line.

Exit codes: 0 success, 2 bad usage or bad input, 1 anything else, 130 interrupted. Errors are
one line on stderr; `ganvae --debug ...` shows the traceback too.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path

import click

from . import __version__
from .errors import BadInput, GanvaeError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _warning_line(message, category, filename, lineno, file=None, line=None):
    # Warnings meant for the user (skipped files, ...) print as one line, not with source lines.
    print(f"ganvae: warning: {message}", file=sys.stderr)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ganvae")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side."""


# ---------------------------------------------------------------------------- data options

def data_options(f):
    """--data-dir, --size, --channels, --seed: how a dataset spec is read."""
    f = click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of random splits and procedural data.")(f)
    f = click.option("--channels", type=int, default=None,
                     help="1 (grey) or 3 (RGB); default: the data's own.")(f)
    f = click.option("--size", type=int, default=None,
                     help="Resize + centre-crop images to SIZE x SIZE; default: the data's own.")(f)
    f = click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Directory searched first for fashion-mnist / mnist.")(f)
    return f


@cli.group(invoke_without_command=True, context_settings=CONTEXT)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Directory searched first for fashion-mnist / mnist.")
@click.pass_context
def datasets(ctx: click.Context, data_dir: Path | None) -> None:
    """List the named datasets: where each is found (or how to get it) and its shape.

    Other forms of --data: shapes[:classes=K,n=N,n_test=M,seed=S], folder:PATH, npz:PATH.
    """
    if ctx.invoked_subcommand is not None:
        return
    from .data import NAMED
    from .data.named import summary
    from .data.shapes import load_shapes

    rows = [("name", "train", "test", "image", "classes", "where")]
    for name in NAMED:
        s = summary(name, data_dir)
        if s["found"]:
            c, h, w = s["shape"]
            rows.append((name, str(s["train"]), str(s["test"]), f"{c}x{h}x{w}", str(s["classes"]), s["found"]))
        else:
            rows.append((name, "-", "-", "1x28x28", str(s["classes"]), f"not found; get it: {s['how']}"))
    shapes = load_shapes("n=1,n_test=1")
    rows.append(("shapes", "10000", "2000", "1x28x28", str(shapes.num_classes),
                 "procedural, made in memory (shapes:classes=K,n=N,...; --size, --channels)"))
    rows.append(("folder:PATH", "", "", "", "", "images below PATH; sub-folders are classes"))
    rows.append(("npz:PATH", "", "", "", "", "arrays x (N,[C,]H,W) uint8 and optional y"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])


@datasets.command("show", context_settings=CONTEXT)
@click.argument("data")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .png to write.")
@click.option("-n", "--n", "n", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="How many images.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@data_options
def datasets_show(data, output, n, split, data_dir, size, channels, seed) -> None:
    """Write a grid of real images from DATA (a --data spec) to a PNG."""
    import numpy as np

    from .data import load_dataset
    from .images import save_grid

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
@click.option("--dir", "dest", type=click.Path(path_type=Path), default=None,
              help="Where to put the files (default: ~/.cache/ganvae/NAME, which is searched).")
@click.option("--mirror", default=None, help="Base URL serving the same file names.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds per connection.")
def datasets_download(name, dest, mirror, timeout) -> None:
    """Download NAME's official files over HTTPS and verify their SHA-256."""
    from .data.download import download

    d = download(name, dest, mirror=mirror, timeout=timeout, log=lambda m: click.echo(m, err=True))
    click.echo(f"{name} is ready in {d}")


# ---------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    warnings.showwarning = _warning_line
    try:
        cli.main(args=args, prog_name="ganvae", standalone_mode=False)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # usage errors: click's own message, exit 2
        e.show()
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("ganvae: interrupted", file=sys.stderr)
        return 130
    except GanvaeError as e:
        if debug:
            traceback.print_exc()
        print(f"ganvae: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # a bug or an unexpected environment problem: still one line
        if debug:
            traceback.print_exc()
        print(f"ganvae: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
