"""The `ganvae` command line.

Exit codes: 0 success, 2 bad usage or bad input, 1 anything else, 130 interrupted. Errors are
one line on stderr; `ganvae --debug ...` shows the traceback too.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
import warnings
from pathlib import Path

import click

from . import __version__, progress
from .errors import BadInput, GanvaeError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Option(click.Option):
    """Every option of ganvae: a default given as text (show_default="64", for an option whose
    None means "the preset's or the run's own") is shown as click shows a plain default,
    `[default: 64]`, not `[default: (64)]`: one way for all."""

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def option(*names, **kwargs):
    """click.option with ganvae's Option class (see _Option)."""
    return click.option(*names, cls=_Option, **kwargs)


def _warning_line(message, category, filename, lineno, file=None, line=None):
    # Warnings meant for the user (skipped files, ...) print as one line, not with source lines.
    print(f"ganvae: warning: {message}", file=sys.stderr)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ganvae")
@option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side.

    Threads: one per core (OMP_NUM_THREADS sets it; give each of several jobs on one machine
    cores / jobs). GOMP_SPINCOUNT=1000 is set unless given, so jobs sharing the cores do not
    starve each other.

    \b
    Examples:
      ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 90s --out cmp
      ganvae train vae --data fashion-mnist --epochs 3 --out runs/vae
      ganvae sample runs/vae -n 64 -o samples.png
    """


class DeviceType(click.ParamType):
    """--device, the same on every command: auto, cpu, cuda or cuda:N, checked against this
    machine before any work (a GPU that is not there is a usage error, not a crash)."""

    name = "device"

    def convert(self, value, param, ctx):
        import re

        text = str(value).strip().lower()
        if text not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", text):
            self.fail(f"{value!r}: choose auto, cpu, cuda or cuda:N", param, ctx)
        if text.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                self.fail(f"{value!r}: CUDA is not available on this machine; use auto or cpu", param, ctx)
            index = int(text.partition(":")[2] or 0)
            if index >= torch.cuda.device_count():
                self.fail(f"{value!r}: this machine has {torch.cuda.device_count()} GPU(s)", param, ctx)
        return text


DEVICE = DeviceType()
DEVICE_HELP = "auto (a GPU if there is one, else the CPU), cpu, cuda or cuda:N."


class AutoCount(click.ParamType):
    """A count or `auto` (None: the command chooses, e.g. the NLL bound's k to fit a time)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value is None or str(value).strip().lower() == "auto":
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r}: give a whole number or auto", param, ctx)


AUTO_COUNT = AutoCount()


class AutoSeconds(click.ParamType):
    """A positive number of seconds or `auto` (None: the command sizes it)."""

    name = "SECONDS|auto"

    def convert(self, value, param, ctx):
        if value is None or str(value).strip().lower() == "auto":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r}: give a number of seconds or auto", param, ctx)


AUTO_SECONDS = AutoSeconds()


def _renamed(old: str, new: str, param: str, **settings):
    """An option's old spelling, hidden but still accepted (scripts keep working) with a
    deprecation note: given, it sets `param`, the parameter the option spelt `new` now sets.
    Goes below the new option's decorator."""
    def remember(ctx, _, value):
        if value is not None:
            warnings.warn(f"{ctx.command_path} {old} is now {new}; {old} will be removed", FutureWarning)
            ctx.meta.setdefault("ganvae.renamed", {})[param] = value

    def decorate(f):
        @functools.wraps(f)
        def run(*args, **kwargs):
            return f(*args, **{**kwargs, **click.get_current_context().meta.get("ganvae.renamed", {})})

        return option(old, f"old_{param}", default=None, hidden=True, expose_value=False, callback=remember,
                      **settings)(run)

    return decorate


# Shell completion (docs: README, "Shell completion"): click completes commands and options;
# these complete the values that are names ganvae knows.

def _complete_presets(incomplete: str, listed: bool = False) -> list:
    """Preset names starting with `incomplete`; listed: the last item of a comma-separated list
    (compare --models ae,va<TAB> -> ae,vae, ae,vaegan)."""
    from click.shell_completion import CompletionItem

    from .registry import PRESET_HELP, preset_names

    head, comma, last = incomplete.rpartition(",") if listed else ("", "", incomplete)
    return [CompletionItem(head + comma + n, help=PRESET_HELP.get(n)) for n in preset_names() if n.startswith(last)]


def _complete_data(incomplete: str) -> list:
    """The named datasets and the spec prefixes; after `folder:` or `npz:`, paths."""
    from click.shell_completion import CompletionItem

    from .data import NAMED

    kind, colon, _ = incomplete.partition(":")
    if colon:   # a path: the shell's own file completion does it better than we could
        return [CompletionItem(incomplete, type="file")]
    names = [*NAMED, "shapes", "factors", "folder:", "npz:", "pairs:", "unpaired:", "task:"]
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


# ---------------------------------------------------------------------------- data options

VAL_SPLIT_HELP = ("Images held out of train for model selection, by the data seed: a fraction in (0, 1), "
                  "a count, auto (10%, at most 5,000) or 0 for none.")


LIMIT_HELP = ("Train on only N training images (class-stratified, drawn by the data seed), the little-data "
              "setting; validation, test and the evaluator stay the full data's.")


def data_options(f):
    """--data-dir, --size, --channels: how a dataset spec is read."""
    f = option("--channels", type=int, default=None,
               help="1 (grey) or 3 (RGB); default: the data's own.")(f)
    f = option("--size", type=int, default=None,
               help="Resize + centre-crop images to SIZE x SIZE; default: the data's own.")(f)
    f = option("--data-dir", type=click.Path(path_type=Path), default=None,
               help="Directory searched first for fashion-mnist / mnist.")(f)
    return f


@cli.group(invoke_without_command=True, context_settings=CONTEXT)
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
    from .data import NAMED
    from .data.named import summary
    from .data.shapes import DEFAULT_CLASSES

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
    from .data.factors import DEFAULT_N, DEFAULT_N_TEST, SHAPE_NAMES

    rows.append(("factors", str(DEFAULT_N), str(DEFAULT_N_TEST), "1x28x28", str(len(SHAPE_NAMES)),
                 "procedural, known generative factors (factors:n=N,...; --size, --channels)"))
    rows.append(("folder:PATH", "", "", "", "", "images below PATH; sub-folders are classes"))
    rows.append(("npz:PATH", "", "", "", "", "arrays x (N,[C,]H,W) uint8 and optional y"))
    rows.append(("pairs:DIR", "", "", "", "", "translation pairs: DIR/A/<name> (input) -> DIR/B/<name> (target)"))
    rows.append(("unpaired:A,B", "", "", "", "", "two image folders for unpaired translation (A input, B target)"))
    from .data.tasks import TRANSLATION_TASKS

    for name, (source, _, _, text) in TRANSLATION_TASKS.items():
        rows.append((f"task:{name}", "", "", "", "", f"translation pairs made from {source}: {text}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5])


@datasets.command("show", context_settings=CONTEXT)
@click.argument("data", shell_complete=lambda c, p, i: _complete_data(i))
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
@_renamed("--dir", "--out", "dest", type=click.Path(path_type=Path))
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
    from .data.download import download

    d = download(name, dest, mirror=mirror, timeout=timeout, log=lambda m: click.echo(m, err=True))
    click.echo(f"{name} is ready in {d}")


# ---------------------------------------------------------------------------- training

def _preset_help() -> str:
    from .registry import PRESET_HELP, preset_names

    return "\n".join(f"  {name:9s} {PRESET_HELP.get(name, '')}" for name in preset_names())


class _TrainCommand(click.Command):
    def format_epilog(self, ctx, formatter):
        formatter.write_paragraph()
        formatter.write_text("Models:")
        formatter.write(_preset_help() + "\n")


@cli.command("train", cls=_TrainCommand, context_settings=CONTEXT)
@click.argument("model", required=False, shell_complete=lambda c, p, i: _complete_presets(i))
@option("--data", default=None, shell_complete=lambda c, p, i: _complete_data(i),
        help="Dataset spec: fashion-mnist, mnist, shapes, folder:PATH, npz:PATH.")
@data_options
@option("--data-seed", type=int, default=None, show_default="0", help="Seed of random splits and procedural data.")
@option("--val-split", default=None, show_default="auto", help=VAL_SPLIT_HELP)
@option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help=LIMIT_HELP)
@option("--steps", type=int, default=None, help="Stop after N steps (a GAN step: one G update after n_critic D updates).")
@option("--epochs", type=float, default=None, help="Stop after E passes over the training split.")
@option("--budget", default=None, help="Stop after a wall-clock training time: 90s, 5m, 1h.")
@option("--batch-size", type=int, default=None, show_default="64", help="Images per step.")
@option("--seed", type=int, default=None, show_default="0", help="Seed of the weights, the noise and the data order.")
@option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default=None,
        show_default="fp32", help="Autocast precision; auto: bf16 where the device has it natively, else fp32. bf16 and fp16 warn on a CPU that only emulates them (many times slower).")
@option("--device", type=DEVICE, default=None, show_default="auto", help=DEVICE_HELP)
@option("--set", "sets", multiple=True, metavar="KEY=VALUE",
        help="Override a config value: beta=4, model.lr_d=1e-4, train.log_every=10 (repeatable).")
@option("--config", "config_file", type=click.Path(path_type=Path), default=None,
        help="YAML/TOML/JSON file of config values (sections model, train, data).")
@option("--out", "run_dir", type=click.Path(path_type=Path), default=None, show_default="runs/NNNN-MODEL-DATA",
        help="The run directory to write.")
@_renamed("--run-dir", "--out", "run_dir", type=click.Path(path_type=Path))
@option("--resume", type=click.Path(path_type=Path), default=None,
        help="Continue the run in this directory from its last checkpoint.")
@option("--init-from", type=click.Path(path_type=Path), default=None, metavar="RUN",
        help="Start from RUN's final weights (transfer; the same nets), with fresh optimizers; "
             "--set freeze_d=K keeps D's first K blocks fixed.")
@option("--log-every", type=int, default=None, show_default="50", help="Steps between metric lines.")
@option("--sample-every", type=int, default=None, show_default="500", help="Steps between sample grids.")
@option("--checkpoint-every", type=int, default=None, show_default="1000", help="Steps between checkpoints.")
@option("--nproc", type=int, default=None, metavar="N",
        help="Train with N processes (DDP, launched through torchrun): one per GPU, or CPU processes. "
             "The global batch stays --batch-size.", show_default="1")
@option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(model, data, data_dir, size, channels, data_seed, val_split, limit, steps, epochs, budget, batch_size, seed,
              precision, device, sets, config_file, run_dir, resume, init_from, log_every, sample_every,
              checkpoint_every, nproc, quiet) -> None:
    """Train MODEL on --data, or continue a run with --resume RUN_DIR.

    With --nproc N (or started by torchrun --nproc-per-node N -m ganvae train ...) every process
    trains on its share of each global batch and rank 0 writes the run.

    \b
    Examples:
      ganvae train vae --data fashion-mnist --epochs 3 --out runs/vae
      ganvae train wgan-gp --data folder:photos/ --size 64 --budget 1h --set arch=resnet
      ganvae train --resume runs/vae --epochs 6
    """
    from . import config as C
    from . import parallel
    from .data.base import parse_val_split
    from .trainer import train

    _launch_if_asked(nproc, "train")

    overrides = {}
    if config_file:
        model, data, overrides = _train_config_file(config_file, model, data, resume)
    overrides.update(C.parse_set(sets))
    options = dict(steps=steps, epochs=epochs, budget=budget, batch_size=batch_size, seed=seed,
                   precision=precision, device=device, log_every=log_every, sample_every=sample_every,
                   checkpoint_every=checkpoint_every, init_from=str(init_from) if init_from else None)
    if resume:
        if init_from:
            raise BadInput("--init-from starts a new run; a resumed run continues from its own checkpoint")
        if model or data:
            raise BadInput("--resume RUN_DIR continues a run as configured; give no MODEL or --data with it")
        for name, value in (("--val-split", val_split), ("--limit", limit)):
            if value is not None:  # a resumed run must train on the very images it started on
                raise BadInput(f"{name}: a resumed run keeps its data settings in its config.json; give no "
                               f"{name} with --resume")
        out, summary = train("", run_dir=resume, resume=True, overrides=overrides, progress=not quiet, **options)
    else:
        if not model:
            raise BadInput("give a MODEL (see ganvae train --help) or --resume RUN_DIR")
        if not data:
            raise BadInput("give --data (fashion-mnist, mnist, shapes, folder:PATH or npz:PATH)")
        options.update(data_dir=str(data_dir) if data_dir else None, data_size=size, data_channels=channels,
                       data_seed=data_seed, data_val_split=None if val_split is None else parse_val_split(val_split),
                       data_limit=limit)
        out, summary = train(model, data, run_dir, overrides=overrides, progress=not quiet, **options)
    parallel.shutdown()
    if parallel.launched_rank() != 0:
        return
    click.echo(f"trained {summary['steps']} steps ({summary['images_seen']} images, {summary['train_seconds']:.1f}s, "
               f"{summary['images_per_second']:.0f} img/s)")
    click.echo(f"run: {out}   samples: {out / 'samples' / 'final.png'}   model: {out / 'model'}")


# model config keys taken from the data at training time: a config file does not fix them
FILLED_FROM_DATA = ("channels", "size", "num_classes", "channels_a")


def _train_config_file(path: Path, model: str | None, data: str | None, resume) -> tuple:
    """train --config FILE: a run's config.json (or `ganvae config PRESET`'s output, or YAML/TOML
    with its sections) -> (preset, data spec, dotted overrides). The file's preset and data are
    used where MODEL and --data are not given; its keys are checked here, so that an error names
    the file and the key; the sizes a model takes from its data are left to the data."""
    import re

    from . import config as C
    from .registry import resolve
    from .trainer import DataConfig, TrainConfig, _spread_lr, split_overrides

    over = C.load_file(path)
    preset, spec = over.pop("preset", None), over.pop("data.spec", None)
    over.pop("family", None)
    for filled in FILLED_FROM_DATA:
        over.pop(f"model.{filled}", None)
    model = model or (None if resume else preset)
    if model:
        m_over, t_over, d_over = split_overrides(over)
        _, cfg = resolve(model)
        for section, base, values in (("model", cfg, _spread_lr(cfg, m_over)), ("train", TrainConfig(), t_over),
                                      ("data", DataConfig(), d_over)):
            try:
                C.replace(base, values, where=f"--config {path}: {section}")
            except BadInput as e:   # a value's check names its option (`--steps -1: ...`): here, the file's key
                text = str(e)
                if not text.startswith("--config"):
                    text = re.sub(r"^--([a-z-]+)", lambda m: f"{section}.{m.group(1).replace('-', '_')}", text)
                    text = f"--config {path}: {text}"
                raise BadInput(text) from None
    return model, data or (None if resume else spec), over


def _launch_if_asked(nproc: int | None, command: str) -> None:
    """--nproc N > 1: run this very command as a torchrun job of N processes, and end with its
    exit code."""
    from . import parallel

    if nproc is not None and nproc < 1:
        raise BadInput(f"--nproc {nproc}: give at least 1 process")
    if nproc and nproc > 1:
        if parallel.launched():
            raise BadInput(f"--nproc: this process is already one of a torchrun job; give --nproc only to a plain "
                           f"ganvae {command}")
        raise click.exceptions.Exit(parallel.launch(nproc, _without_option(_ARGS, "--nproc")))


def _without_option(args: list[str], name: str) -> list[str]:
    """args without `name VALUE` / `name=VALUE` (to pass the rest on to torchrun's processes)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


@cli.command("models", context_settings=CONTEXT)
@option("--json", "as_json", is_flag=True, help="One JSON object per preset: name, family, description.")
def models_cmd(as_json: bool) -> None:
    """List the model presets, one line each.

    \b
    Examples:
      ganvae models
      ganvae models --json | jq -r '.[] | select(.family == "gan") | .name'
    """
    import json

    from .api import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        click.echo(f"{r['name']:10s} {r['family']:8s} {r['description']}")


@cli.command("config", context_settings=CONTEXT)
@click.argument("preset", shell_complete=lambda c, p, i: _complete_presets(i))
def config_cmd(preset: str) -> None:
    """Print PRESET's full default config (model, train and data sections) as JSON.

    Save it, edit it and pass it back with `ganvae train --config FILE --data DATA`; a run's
    own RUN/config.json (data included) reproduces the run with `ganvae train --config`.

    \b
    Examples:
      ganvae config wgan-gp
      ganvae config vae > vae.json && ganvae train --config vae.json --data fashion-mnist --steps 500
      ganvae train --config runs/vae/config.json --out runs/vae-again
    """
    import dataclasses
    import json

    from .registry import resolve
    from .trainer import DataConfig, TrainConfig

    _, cfg = resolve(preset)
    model = dataclasses.asdict(cfg)
    for filled in FILLED_FROM_DATA:
        model.pop(filled, None)
    click.echo(json.dumps({"preset": preset, "model": model, "train": dataclasses.asdict(TrainConfig()),
                           "data": {k: v for k, v in dataclasses.asdict(DataConfig()).items() if k != "spec"}},
                          indent=2))


# ---------------------------------------------------------------------------- using a run

def _run_options(f):
    f = _checkpoint_option(f)
    f = option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)(f)
    f = option("--seed", type=int, default=0, show_default=True, help="Seed of the latent draws.")(f)
    f = option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .png to write.")(f)
    return f


def _checkpoint_option(f):
    """--checkpoint last|best|STEP on a command that loads a run (read by _load)."""
    def remember(ctx, param, value):
        ctx.meta["ganvae.checkpoint"] = value

    return option("--checkpoint", default="last", show_default=True, expose_value=False, callback=remember,
                  metavar="last|best|STEP",
                  help="Which weights: the final model, the checkpoint compare picked on the validation "
                       "split, or a step whose checkpoint is kept.")(f)


def _checkpoint() -> str:
    """The command's --checkpoint (last where the command has none)."""
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get("ganvae.checkpoint", "last")).strip().lower() if ctx is not None else "last"


def _quiet_option(f):
    """--quiet on a task command: no progress bars (read by _quiet)."""
    def remember(ctx, param, value):
        ctx.meta["ganvae.quiet"] = value

    return option("--quiet", is_flag=True, expose_value=False, callback=remember, help="No progress bars.")(f)


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get("ganvae.quiet", False)) if ctx is not None else False


def _eval_json(run, checkpoint: str) -> Path:
    """Where a run's scores are kept: RUN/eval.json for the final model, RUN/eval-best.json,
    RUN/eval-step500.json for the others (never mixed into the final model's)."""
    name = "eval" if checkpoint == "last" else f"eval-{'step' if checkpoint.isdigit() else ''}{checkpoint}"
    return Path(run) / f"{name}.json"


def _load(run, device):
    from .trainer import load_run, resolve_device

    return load_run(run, device=resolve_device(device), checkpoint=_checkpoint())


def _test_images(cfg, n, device, seed=0):
    """The first n test images of the run's data, float in [-1, 1], and their labels."""
    import torch

    from .data import to_float
    from .trainer import run_dataset

    ds = run_dataset(cfg)
    n = min(n, len(ds.test))
    x = to_float(torch.from_numpy(ds.test.x[:n])).to(device)
    y = ds.test.y[:n] if ds.test.y is not None else None
    return x, y, ds


def _png(output: Path) -> None:
    if output.suffix.lower() != ".png":
        raise BadInput(f"-o {output}: the output must be a .png file")


@cli.command("sample", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(1, 1_000_000), default=64, show_default=True, help="Samples drawn.")
@option("--batch-size", "batch", type=click.IntRange(1), default=500, show_default=True,
        help="Images generated at once.")
@_renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@option("--class", "klass", default=None, metavar="K|NAME|all",
        help="Class-conditional models (cgan): samples of class K (its index or name), or 'all': "
             "N per class, one column per class.")
@_run_options
def sample_cmd(run, n, batch, klass, output, seed, device) -> None:
    """Draw N samples from RUN's model into a .png grid, an .npz (x: uint8 (N, C, H, W)) or a
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

    from .files import atomic_write
    from .data import to_uint8
    from .images import save_grid

    as_dir = output.is_dir() or not output.suffix
    if not as_dir and output.suffix.lower() not in (".png", ".npz"):
        raise BadInput(f"-o {output}: write a .png grid, an .npz array file or a directory of PNGs")
    if as_dir and output.is_dir() and any(output.iterdir()):
        raise BadInput(f"-o {output}: the directory is not empty; give a new or empty one (nothing is overwritten)")
    model, cfg = _load(run, device)
    labels = None if klass is None else _class_labels(model, cfg, klass, n, run)
    total = n if labels is None else len(labels)
    gen = torch.Generator().manual_seed(seed)
    parts = [to_uint8(model.sample(min(batch, total - i), generator=gen,
                                   **({} if labels is None else {"labels": labels[i:i + batch]}))).cpu().numpy()
             for i in range(0, total, batch)]
    x = np.concatenate(parts)
    if as_dir:
        names = None
        if labels is not None and cfg:   # class sub-folders by the run's data's class names
            from .trainer import run_dataset

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

    from .images import save_png

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
        from .trainer import run_dataset

        names = run_dataset(cfg).classes or []
        matches = [i for i, name in enumerate(names) if name.lower() == klass.lower()]
        if not matches:
            raise BadInput(f"--class {klass!r}: not a class of the run's data; choose one of {', '.join(names)} "
                           f"(or an index 0..{k - 1}, or all)")
        index = matches[0]
    if not 0 <= index < k:
        raise BadInput(f"--class {klass}: the model has classes 0..{k - 1}")
    return torch.full((n,), index, dtype=torch.long)


@cli.command("reconstruct", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(1, 512), default=32, show_default=True, help="Test images.")
@_run_options
def reconstruct_cmd(run, n, output, seed, device) -> None:
    """Test images (odd rows) above their reconstructions (even rows).

    \b
    Examples:
      ganvae reconstruct runs/vae -o recon.png
      ganvae reconstruct runs/vae -n 64 --checkpoint best -o recon.png
    """
    import torch

    from .data import to_uint8
    from .images import save_grid
    from .visualize import needs_encoder

    _png(output)
    model, cfg = _load(run, device)
    needs_encoder(model, "reconstruct")
    x, _, _ = _test_images(cfg, n, model.device)
    with torch.no_grad():
        x_hat = model.reconstruct(x)
    row = 8
    pairs = [t for i in range(0, len(x), row) for t in (x[i:i + row], x_hat[i:i + row])]
    save_grid(output, to_uint8(torch.cat(pairs)).cpu().numpy(), nrow=row)
    mse = float((x - x_hat).pow(2).mean())
    click.echo(f"wrote {output} ({len(x)} test images and reconstructions; MSE {mse:.4f} on [-1, 1])")


@cli.command("interpolate", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("--pairs", type=click.IntRange(1, 64), default=8, show_default=True, help="Paths (rows).")
@option("--points", "steps", type=click.IntRange(2, 64), default=10, show_default=True,
        help="Images along each path, its two ends included.")
@_renamed("--steps", "--points", "steps", type=click.IntRange(2, 64))
@_run_options
def interpolate_cmd(run, pairs, steps, output, seed, device) -> None:
    """Latent paths between pairs: test images for encoder models, prior draws otherwise.

    \b
    Examples:
      ganvae interpolate runs/0001-vae-fashion-mnist -o paths.png
      ganvae interpolate runs/0002-dcgan-fashion-mnist --pairs 4 --points 16 -o paths.png
    """
    import torch

    from .data import to_uint8
    from .images import save_grid
    from .visualize import interpolate

    _png(output)
    model, cfg = _load(run, device)
    x = None
    if getattr(model, "has_encoder", False):
        x, _, _ = _test_images(cfg, 2 * pairs, model.device)
        pairs = min(pairs, len(x) // 2)
    imgs = interpolate(model, x, pairs, steps, torch.Generator().manual_seed(seed))
    save_grid(output, to_uint8(imgs).cpu().numpy(), nrow=steps)
    kind = "spherical" if getattr(model, "gaussian_latent", True) else "linear"
    click.echo(f"wrote {output} ({pairs} {kind} paths of {steps} steps)")


@cli.command("traverse", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("--dims", type=click.IntRange(1, 256), default=10, show_default=True, help="Rows (most used dims).")
@option("--points", "steps", type=click.IntRange(2, 64), default=11, show_default=True,
        help="Images along each row, evenly from -span to +span.")
@_renamed("--steps", "--points", "steps", type=click.IntRange(2, 64))
@option("--span", type=click.FloatRange(0.1, 10), default=3.0, show_default=True, help="Range in std units.")
@_run_options
def traverse_cmd(run, dims, steps, span, output, seed, device) -> None:
    """One row per latent dimension, varied over [-span, span] (most used dimensions first).

    \b
    Examples:
      ganvae traverse runs/0001-vae-fashion-mnist -o traversals.png
      ganvae traverse runs/0003-beta-vae-factors --dims 6 --points 9 --span 2 -o traversals.png
    """
    from .data import to_uint8
    from .images import save_grid
    from .visualize import needs_encoder, traverse

    _png(output)
    model, cfg = _load(run, device)
    needs_encoder(model, "traverse")
    x, _, ds = _test_images(cfg, 1000, model.device)
    imgs, order = traverse(model, x, min(dims, model.config.latent), steps, span)
    if ds.test.factors is not None:   # data with known factors: each row says which one its dim captures
        from .visualize import factor_labels, save_labelled_grid

        labels = factor_labels(model, x, ds.test.factors[:len(x)], ds.info["factors"]["names"], order)
        save_labelled_grid(output, to_uint8(imgs).cpu().numpy(), steps, labels)
        click.echo(f"wrote {output} (rows: {', '.join(labels)})")
        return
    save_grid(output, to_uint8(imgs).cpu().numpy(), nrow=steps)
    click.echo(f"wrote {output} (rows = latent dims {order})")


@cli.command("embed", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path))
@option("-n", "--n", "n", type=click.IntRange(10, 100_000), default=2000, show_default=True, help="Test images.")
@option("--method", type=click.Choice(["pca", "tsne"]), default="pca", show_default=True,
        help="The 2-d projection of the codes.")
@_run_options
def embed_cmd(run, n, method, output, seed, device) -> None:
    """Test-set latents in 2-D (PCA or t-SNE), coloured by label.

    \b
    Examples:
      ganvae embed runs/vae -o embed.png
      ganvae embed runs/aae --method tsne -o embed.png
    """
    from .visualize import encode_all, needs_encoder, plot_embedding, project_2d

    _png(output)
    model, cfg = _load(run, device)
    needs_encoder(model, "embed")
    x, y, ds = _test_images(cfg, n, model.device)
    xy = project_2d(encode_all(model, x), method, seed)
    plot_embedding(output, xy, y, ds.classes, f"{cfg.get('preset', model.name)} latents of {len(x)} "
                                              f"{ds.name} test images ({method.upper()})")
    click.echo(f"wrote {output} ({len(x)} test latents, {method})")


@cli.command("complete", context_settings=CONTEXT)
@_checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--mask", "mask_spec", default="center", show_default=True,
        help="center, half[:left|right|top|bottom], random-blocks[:COUNT], random-pixels[:FRACTION] "
             "(the share missing, 0.6 by default) or PATH.png (white = known).")
@option("--method", type=click.Choice(["auto", "latent-opt", "encoder", "gibbs"]), default="auto",
        show_default=True, help="latent-opt: search z (every model); encoder: one encode-decode; gibbs: "
                                "repeated encode-decode (encoder models).")
@option("-n", "--n", "n", type=click.IntRange(1, 100_000), default=64, show_default=True,
        help="Test images (the first N of the test split).")
@option("--opt-steps", "steps", type=click.IntRange(1), default=None, show_default="100",
        help="latent-opt: Adam steps on z.")
@option("--restarts", type=click.IntRange(1), default=None, show_default="4",
        help="latent-opt: codes searched per image.")
@option("--batch-size", "batch", type=click.IntRange(1), default=256, show_default=True,
        help="Images completed at once.")
@_renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@_renamed("--steps", "--opt-steps", "steps", type=click.IntRange(1))
@option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
        help="Network forwards in bfloat16 (faster on CPUs with AVX-512 bf16 and on GPUs).")
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A .png grid (masked | completion | original rows) or an .npz (x, mask, original).")
@option("--seed", type=int, default=0, show_default=True, help="Seed of random masks and starting codes.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@option("--quiet", is_flag=True, help="No progress bar.")
def complete_cmd(run, mask_spec, method, n, steps, restarts, batch, precision, output, seed, device, quiet) -> None:
    """Fill in the masked part of test images with RUN's model; the masks are saved beside the output.

    \b
    Examples:
      ganvae complete runs/vae --mask center -o done.png
      ganvae complete runs/dcgan --mask random-pixels:0.5 -o done.png
    """
    import time

    import numpy as np
    import torch

    from .data import to_float, to_uint8
    from .files import atomic_write
    from .images import save_grid
    from .metrics.inpainting import hole_mse, hole_psnr
    from .tasks.complete import (CompleteConfig, complete, make_masks, mean_fill, mean_image, parse_mask,
                                 resolve_method, triplet_grid)

    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz"):
        raise BadInput(f"-o {output}: write a .png grid or an .npz array file")
    spec = parse_mask(mask_spec)
    changes = {k: v for k, v in (("steps", steps), ("restarts", restarts)) if v is not None}
    cfg = CompleteConfig(method=method, batch=batch, seed=seed, precision=precision, **changes)
    cfg.validate()
    model, run_cfg = _load(run, device)
    name = resolve_method(model, method)
    x, _, ds = _test_images(run_cfg, n, model.device)
    original = ds.test.x[:len(x)]
    mask = make_masks(spec, len(x), ds.shape[1:], seed)                             # (N, 1, H, W), 1 = known
    mean = mean_image(ds)
    fill = to_float(torch.from_numpy(mean)).to(model.device)
    t0 = time.perf_counter()
    done = complete(model, x, torch.from_numpy(mask).to(model.device), name, cfg, fill,
                    torch.Generator().manual_seed(seed), progress=not quiet)
    seconds = time.perf_counter() - t0
    done8 = to_uint8(done).cpu().numpy()
    mask_png = output.with_name(output.stem + "-masks.png")
    if suffix == ".npz":
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=done8, mask=mask.astype(np.uint8),
                                                           original=original))
    else:
        save_grid(output, triplet_grid(done8, original, mask), nrow=8)
    save_grid(mask_png, (mask * 255).astype(np.uint8))
    base = mean_fill(original, mask, mean)
    click.echo(f"wrote {output} ({len(x)} test images, mask {spec.label}, {name}: "
               f"{1000 * seconds / len(x):.1f} ms per image) and its masks {mask_png}")
    click.echo(f"hole MSE {hole_mse(done8, original, mask):.4f} (PSNR {hole_psnr(done8, original, mask):.1f} dB) "
               f"against the originals; mean-image fill: {hole_mse(base, original, mask):.4f} "
               f"({hole_psnr(base, original, mask):.1f} dB)")


@cli.command("translate", context_settings=CONTEXT)
@_checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", type=click.Path(path_type=Path), required=False)
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A folder (one PNG per input, under the input's name), an .npz (x: uint8 (N, C, H, W)) or "
             "a .png grid (input | translation rows, and the true targets where the run's data has them).")
@option("--direction", type=click.Choice(["a2b", "b2a"]), default="a2b", show_default=True,
        help="a2b: input domain to target domain; b2a: back (cyclegan, unit).")
@option("-n", "--n", "n", type=click.IntRange(1), default=None,
        show_default="all of INPUTS; 64 of the run's test split without INPUTS", help="At most N inputs.")
@option("--batch-size", "batch", type=click.IntRange(1), default=256, show_default=True,
        help="Images translated at once.")
@_renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def translate_cmd(run, inputs, output, direction, n, batch, device) -> None:
    """Translate images with RUN's translation model (pix2pix, unet-l1, cyclegan, unit).

    INPUTS is a folder of images or an .npz with an array x; they are scaled to the model's size
    and channels. Without INPUTS, the run's own test inputs are translated and, where the data is
    paired, scored against their true targets.

    \b
    Examples:
      ganvae translate runs/pix2pix -o translated.png
      ganvae translate runs/cyclegan sketches/ -o out.png --direction b2a
    """
    import numpy as np
    import torch

    from .data import to_float, to_uint8
    from .files import atomic_write
    from .images import save_grid, save_png, translation_grid

    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz") and output.exists() and not output.is_dir():
        raise BadInput(f"-o {output}: exists and is not a folder; give a folder, an .npz or a .png")
    model, run_cfg = _load(run, device)
    if not model.translation:
        raise BadInput(f"{run}: its model ({run_cfg.get('preset', model.name)}) does not translate; "
                       "translation models: pix2pix, unet-l1, cyclegan, unit")
    if direction not in model.directions:
        raise BadInput(f"--direction {direction}: {model.name} translates {' and '.join(model.directions)} only")
    c = model.config
    c_in, c_out = (c.channels_a, c.channels) if direction == "a2b" else (c.channels, c.channels_a)
    targets = None
    if inputs is None:
        _, _, ds = _test_images(run_cfg, 1, model.device)
        src, dst = (ds.test.a, ds.test.x) if direction == "a2b" else (ds.test.x, ds.test.a)
        x = src[:n or 64]
        names = [f"{i:05d}" for i in range(len(x))]
        targets = dst[:len(x)] if ds.test.paired else None
    else:
        from .data.folder import read_images

        x, names = read_images(inputs, c.size, c_in)
        x, names = x[:n] if n else x, names[:n] if n else names
    if suffix not in (".png", ".npz") and output.is_dir():
        clash = [m for m in names if (output / f"{m}.png").exists()]
        if clash:
            raise BadInput(f"-o {output}: already holds {clash[0]}.png; choose another folder (nothing was written)")
    parts = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = to_float(torch.from_numpy(x[i:i + batch])).to(model.device)
            parts.append(to_uint8(model.translate(xb, direction)).cpu().numpy())
    y = np.concatenate(parts)                                                   # (N, c_out, S, S)
    if suffix == ".npz":
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=y))
    elif suffix == ".png":
        save_grid(output, translation_grid(x, y, targets), nrow=8)
    else:
        output.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, y):
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            save_png(output / f"{name}.png", img.transpose(1, 2, 0))
    click.echo(f"wrote {output} ({len(y)} images translated {direction}, {c_in} -> {c_out} channels)")
    if targets is not None:
        l1 = np.abs(y.astype(np.float64) - targets).mean() / 127.5
        ident = np.abs(x.astype(np.float64) - targets).mean() / 127.5 if c_in == c_out else None
        click.echo(f"L1 {l1:.4f} on [-1, 1] against the true targets"
                   + (f"; the identity map: {ident:.4f}" if ident is not None else ""))


# ---------------------------------------------------------------------------- evaluation

def _task_options(f):
    """--tasks and the completion task's options, shared by eval and compare."""
    f = option("--complete-method", type=click.Choice(["auto", "latent-opt", "encoder", "gibbs"]),
               default="auto", show_default=True, help="Completion method (--tasks complete).")(f)
    f = option("--complete-n", type=click.IntRange(1), default=500, show_default=True,
               help="Test images completed per mask kind (--tasks complete).")(f)
    f = option("--masks", default="center,half,random-blocks,random-pixels", show_default=True,
               help="Mask kinds scored by --tasks complete (see ganvae complete --help).")(f)
    f = option("--task-set", "task_sets", multiple=True, metavar="TASK.KEY=VALUE",
               help="A task's setting: augment.seeds=1, augment.ratio=2, translate.n=500, probe.per_class=10,100, "
                    "compress.bits=2,4,8 (repeatable).")(f)
    f = option("--tasks", default="generate", show_default=True,
               help="What to score: generate (samples; a translator's outputs), complete (inpainting), "
                    "translate (translation against ground truth), augment (a classifier on real and "
                    "synthetic images; class-conditional models), probe, compress, disentangle (the latent "
                    "space: see ganvae probe/compress/disentangle --help), comma-separated.")(f)
    return f


def _merge_eval(path: Path, new: dict) -> dict:
    """RUN/eval.json after this evaluation: what was scored now replaces its earlier values, and
    what was not (the samples' scores when only a task ran, other tasks) is kept."""
    import json

    try:
        old = json.loads(path.read_text()) if path.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        old = {}                                             # a damaged file is replaced
    if not isinstance(old, dict):
        old = {}
    merged = {**old, **new} if "metrics" in new else {**new, **{k: v for k, v in old.items() if k != "tasks"}}
    tasks = {**(old.get("tasks") or {}), **(new.get("tasks") or {})}
    if tasks:
        merged["tasks"] = tasks
    return merged


def _parse_task_options(tasks, masks, complete_n, complete_method, seed, task_sets=()):
    """(task names, {task: config}) from the shared options, every value checked."""
    from . import config as C
    from .tasks import get_task, parse_tasks
    from .tasks.complete import CompleteConfig

    names = parse_tasks(tasks)
    configs = {}
    if "complete" in names:
        cfg = CompleteConfig(method=complete_method, n=complete_n, seed=seed,
                             masks=tuple(m.strip() for m in masks.split(",") if m.strip()))
        cfg.validate()
        configs["complete"] = cfg
    by_task: dict[str, dict] = {}
    for key, value in C.parse_set(task_sets).items():
        task, dot, field = key.partition(".")
        if not dot or task not in names or task == "generate":
            raise BadInput(f"--task-set {key}={value}: write TASK.KEY=VALUE for a task in --tasks "
                           f"({', '.join(n for n in names if n != 'generate') or 'none given'})")
        by_task.setdefault(task, {})[field] = value
    for task, values in by_task.items():
        cfg = C.replace(configs.get(task) or get_task(task).Config(), values, where="--task-set")
        cfg.validate()
        configs[task] = cfg
    return names, configs


@cli.command("eval", context_settings=CONTEXT)
@click.argument("run", type=click.Path(path_type=Path), required=False)
@option("--samples", type=click.Path(path_type=Path), default=None,
        help="Score these images instead of a run: an .npz (x uint8 (N, C, H, W)) or a folder.")
@option("--data", default=None, help="The dataset --samples are compared with.")
@data_options
@option("--data-seed", type=int, default=0, show_default=True, help="Seed of random splits / procedural data.")
@option("-n", "--n", "n", type=int, default=10_000, show_default=True, help="Samples generated from the run.")
@option("--k", type=int, default=5, show_default=True, help="Neighbours for precision/recall/density/coverage.")
@option("--nll-k", type=AUTO_COUNT, default="auto", show_default=True,
        help="Importance samples of the VAE NLL bound; auto: the most that fit --nll-seconds, up to 1000.")
@option("--nll-images", type=AUTO_COUNT, default="auto", show_default=True,
        help="Test images the NLL bound averages, each costing --nll-k decodes; auto: what fits --nll-seconds, "
             "up to 100.")
@option("--nll-seconds", type=float, default=60.0, show_default=True,
        help="Time the NLL bound may take where --nll-k or --nll-images is not given (measured first).")
@option("--seed", type=int, default=0, show_default=True, help="Seed of the samples drawn from the run.")
@option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the result here.")
@_task_options
@_checkpoint_option
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@option("--quiet", is_flag=True, help="No progress bars.")
def eval_cmd(run, samples, data, data_dir, size, channels, data_seed, n, k, nll_k, nll_images, nll_seconds, seed,
             json_out,
             tasks, task_sets, masks, complete_n, complete_method, device, quiet) -> None:
    """Score RUN's final model (writes RUN/eval.json; another --checkpoint: RUN/eval-best.json,
    RUN/eval-step500.json), or --samples from anywhere against --data.

    \b
    Examples:
      ganvae eval runs/dcgan
      ganvae eval runs/vae --tasks generate,probe,compress
      ganvae eval cmp/runs/vae-seed0 --checkpoint best
      ganvae eval --samples samples.npz --data fashion-mnist
    """
    with progress.quiet(quiet):   # --quiet: no bar anywhere inside
        _eval(run, samples, data, data_dir, size, channels, data_seed, n, k, nll_k, nll_images, nll_seconds, seed,
              json_out, tasks, task_sets, masks, complete_n, complete_method, device, quiet)


def _eval(run, samples, data, data_dir, size, channels, data_seed, n, k, nll_k, nll_images, nll_seconds, seed,
          json_out, tasks, task_sets, masks, complete_n, complete_method, device, quiet) -> None:
    from .files import write_json
    from .config import replace
    from .data import load_dataset
    from .evaluation import EvalConfig, evaluate_run, evaluate_samples, format_table
    from .trainer import resolve_device

    cfg = replace(EvalConfig(), {"n": n, "k": k, "nll_k": nll_k, "nll_images": nll_images,
                                 "nll_seconds": nll_seconds, "seed": seed}, where="ganvae eval")
    task_names, task_configs = _parse_task_options(tasks, masks, complete_n, complete_method, seed, task_sets)
    dev = resolve_device(device)
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if samples is not None:
        if run is not None:
            raise BadInput("give either RUN or --samples, not both")
        if not data:
            raise BadInput("--samples needs --data: the dataset the samples are compared with")
        if task_names != ("generate",):
            raise BadInput(f"--tasks {','.join(task_names)}: --samples are scored as generated images only; "
                           "give a RUN for other tasks")
        ds = load_dataset(data, data_dir=data_dir, size=size, channels=channels, seed=data_seed)
        result = evaluate_samples(samples, ds, cfg, dev, log)
    else:
        if run is None:
            raise BadInput("give a RUN directory, or --samples FILE --data DATA")
        from .tasks import evaluate_tasks

        checkpoint = _checkpoint()
        result = evaluate_run(run, cfg, dev, log, checkpoint) if "generate" in task_names else {"source": str(run)}
        if set(task_names) - {"generate"}:
            done = evaluate_tasks(run, task_names, task_configs, dev, log, progress=not quiet, checkpoint=checkpoint)
            result = {**done, **result, "tasks": done["tasks"]}
        path = _eval_json(run, checkpoint)
        write_json(path, _merge_eval(path, result))
    if json_out:
        write_json(json_out, result)
    click.echo(format_table(result))


@cli.command("augment-eval", context_settings=CONTEXT)
@_quiet_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--ratio", type=float, default=1.0, show_default=True,
        help="Synthetic images per real one in the real+synthetic training set.")
@option("--seeds", type=click.IntRange(1, 20), default=3, show_default=True,
        help="Classifier seeds: accuracies are their mean ± std.")
@option("--budget-images", type=click.IntRange(1), default=30_000, show_default=True,
        help="Images each classifier sees in training, the same for all three training sets.")
@option("--seed", type=int, default=0, show_default=True, help="Seed of the samples.")
@option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the result here.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@_checkpoint_option
def augment_eval_cmd(run, ratio, seeds, budget_images, seed, json_out, device) -> None:
    """Does RUN's class-conditional model help a classifier? The evaluator's classifier trained
    on the run's real training images, on the model's samples alone (Classification Accuracy
    Score) and on both, each scored on the test split (also written to RUN/eval.json).

    \b
    Examples:
      ganvae augment-eval runs/cgan
      ganvae augment-eval runs/cvae --ratio 0.5 --seeds 3
    """
    from .tasks.augment import AugmentEvalConfig

    cfg = AugmentEvalConfig(ratio=ratio, seeds=seeds, budget_images=budget_images, seed=seed)
    cfg.validate()
    _run_one_task(run, "augment", cfg, device, json_out)


def _run_one_task(run: Path, name: str, cfg, device: str, json_out: Path | None, data: str | None = None,
                  figures_dir: Path | None = None) -> dict:
    """A task's command (probe, compress, disentangle, augment-eval): run it on RUN, merge it
    into RUN/eval.json, print its tables."""
    from .evaluation import format_task_table
    from .files import write_json
    from .tasks import evaluate_tasks
    from .trainer import resolve_device

    checkpoint = _checkpoint()
    with progress.quiet(_quiet()):
        done = evaluate_tasks(run, (name,), {name: cfg}, resolve_device(device), lambda m: click.echo(m, err=True),
                              data=data, figures_dir=figures_dir, checkpoint=checkpoint, progress=progress.enabled())
    if data is None:   # RUN/eval.json holds scores on the run's own data
        path = _eval_json(run, checkpoint)
        write_json(path, _merge_eval(path, {**done, "source": str(run), "checkpoint": checkpoint}))
    if json_out:
        write_json(json_out, done)
    for table in done["tasks"][name]["tables"]:
        click.echo(format_task_table(table))
    return done


@cli.command("probe", context_settings=CONTEXT)
@_quiet_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--data", default=None,
        help="Probe on this dataset instead of the run's own (at the run's size and channels).")
@option("--per-class", default="10,100,1000", show_default=True,
        help="Labelled training images per class, one point of the label-efficiency curve each.")
@option("--seeds", type=click.IntRange(1, 20), default=1, show_default=True,
        help="Draws of the labelled images: accuracies are their mean ± std.")
@option("--k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours of the k-NN probe.")
@option("--n-test", type=click.IntRange(10), default=10_000, show_default=True, help="Test images scored.")
@option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the result here.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@_checkpoint_option
def probe_cmd(run, data, per_class, seeds, k, n_test, json_out, device) -> None:
    """How good are RUN's frozen features for classification? A linear (logistic regression)
    and a k-NN probe on the encoder's codes (the posterior mean for VAEs), or on a GAN's
    discriminator features, with few to many labels per class; beside them the same probes on
    raw pixels and on PCA with as many dimensions. Written to RUN/eval.json (not with --data).

    \b
    Examples:
      ganvae probe runs/vae
      ganvae probe runs/dcgan --per-class 10,100 --seeds 3
      ganvae probe runs/vae-mnist --data fashion-mnist
    """
    from .tasks.probe import ProbeConfig

    cfg = ProbeConfig(per_class=per_class, seeds=seeds, k=k, n_test=n_test)
    cfg.validate()
    _run_one_task(run, "probe", cfg, device, json_out, data)


@cli.command("compress", context_settings=CONTEXT)
@_checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", type=click.Path(path_type=Path))
@option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The codes file (.npz) to write.")
@option("--bits", type=click.IntRange(1, 16), default=8, show_default=True, help="Bits per latent dimension.")
@option("--n-fit", type=click.IntRange(100), default=5000, show_default=True,
        help="Training images of the run whose codes fit the quantiser's range.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def compress_cmd(run, inputs, output, bits, n_fit, device) -> None:
    """Compress the images INPUTS (a folder or an .npz with x) into RUN's latent codes, each
    dimension quantised to --bits (a uniform quantiser fitted on the run's training codes), packed
    into OUTPUT. `ganvae decompress RUN OUTPUT -o DIR` decodes them.

    \b
    Examples:
      ganvae compress runs/ae photos/ -o codes.npz --bits 6
      ganvae decompress runs/ae codes.npz -o decoded/
    """
    import numpy as np

    from .data.folder import read_images
    from .metrics.codec import Quantizer, packed_bytes, write_codes
    from .evaluation import model_features
    from .trainer import run_dataset
    from .visualize import needs_encoder

    if output.suffix.lower() != ".npz":
        raise BadInput(f"-o {output}: the codes file must end in .npz")
    model, cfg = _load(run, device)
    needs_encoder(model, "compress")
    c = model.config
    x, names = read_images(inputs, c.size, c.channels)
    ds = run_dataset(cfg)
    fit = np.random.default_rng(0).choice(len(ds.train), size=min(n_fit, len(ds.train)), replace=False)
    q = Quantizer.fit(model_features(model, ds.train.x[np.sort(fit)])[1], bits)
    codes = model_features(model, x)[1]
    write_codes(output, q.encode(codes), q, {"run": str(run), "model": cfg.get("preset", model.name),
                                             "latent": int(codes.shape[1]), "image_shape": list(x.shape[1:]),
                                             "names": names})
    per = packed_bytes(codes.shape[1], bits)
    click.echo(f"wrote {output}: {len(x)} images, {codes.shape[1]} dims x {bits} bits = {per} bytes per image "
               f"({output.stat().st_size:,} bytes with the file's header; the raw pixels: {x[0].size:,} bytes each)")


@cli.command("decompress", context_settings=CONTEXT)
@_checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("codes", type=click.Path(path_type=Path))
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A folder for one PNG per image, or an .npz (x uint8 (N, C, H, W)).")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def decompress_cmd(run, codes, output, device) -> None:
    """Decode a codes file written by `ganvae compress` with RUN's decoder.

    \b
    Examples:
      ganvae decompress runs/ae codes.npz -o decoded/
      ganvae decompress runs/ae codes.npz -o decoded.npz
    """
    import numpy as np

    from .files import atomic_write
    from .images import save_png
    from .metrics.codec import read_codes
    from .tasks.compress import decode_uint8
    from .visualize import needs_encoder

    model, _ = _load(run, device)
    needs_encoder(model, "decompress")
    f = read_codes(codes)
    latent = f.levels.shape[1]
    if latent != model.config.latent:
        raise BadInput(f"{codes}: holds {latent}-dimensional codes; {run}'s model has {model.config.latent} "
                       f"(compressed with {f.meta.get('run', 'another run')})")
    names = f.meta.get("names") or [f"{i:05d}" for i in range(len(f.levels))]
    as_npz = output.suffix.lower() == ".npz"
    if not as_npz:
        if output.exists() and not output.is_dir():
            raise BadInput(f"-o {output}: exists and is not a folder; give a folder or an .npz")
        clash = [m for m in names if (output / f"{m}.png").exists()]
        if clash:
            raise BadInput(f"-o {output}: already holds {clash[0]}.png; choose another folder (nothing was written)")
    y = decode_uint8(model, f.quantizer.decode(f.levels))
    if as_npz:
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=y))
    else:
        for name, img in zip(names, y):
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            save_png(output / f"{name}.png", img.transpose(1, 2, 0))
    click.echo(f"wrote {output} ({len(y)} images decoded from {latent} dims x {f.quantizer.bits} bits)")


@cli.command("disentangle", context_settings=CONTEXT)
@_quiet_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--data", default=None, help="Score on this dataset instead of the run's own (e.g. factors).")
@option("-n", "--n", "n", type=click.IntRange(100), default=5000, show_default=True, help="Test images encoded.")
@option("--bins", type=click.IntRange(2), default=20, show_default=True, help="MIG's bins per code dimension.")
@option("--seed", type=int, default=0, show_default=True, help="Seed of the FactorVAE votes and DCI's trees.")
@option("--figure", type=click.Path(path_type=Path), default=None,
        help="Also write the latent traversal labelled with the factor each dimension captures (.png).")
@option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the result here.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@_checkpoint_option
def disentangle_cmd(run, data, n, bins, seed, figure, json_out, device) -> None:
    """How disentangled are RUN's codes? On data with known factors (--data factors) MIG, the
    FactorVAE score and DCI against the true factors; on any data the total correlation of the
    codes' Gaussian fit. Written to RUN/eval.json (not with --data).

    \b
    Examples:
      ganvae train beta-vae --data factors --steps 3000 --out runs/bvae
      ganvae disentangle runs/bvae --figure traversals.png
    """
    import shutil
    import tempfile

    from .tasks.disentangle import DisentangleConfig

    if figure is not None:
        _png(figure)
    cfg = DisentangleConfig(n=n, bins=bins, seed=seed)
    cfg.validate()
    with tempfile.TemporaryDirectory() as tmp:
        done = _run_one_task(run, "disentangle", cfg, device, json_out, data, Path(tmp) if figure else None)
        res = done["tasks"]["disentangle"]["result"]
        if figure is not None:
            from .files import atomic_write

            atomic_write(figure, lambda p: shutil.copyfile(Path(tmp) / res.pop("figure"), p))
            click.echo(f"wrote {figure} (rows: {', '.join(res.pop('dim_labels'))})")


# ---------------------------------------------------------------------------- compare / report

@cli.command("compare", context_settings=CONTEXT)
@option("--data", default=None, shell_complete=lambda c, p, i: _complete_data(i),
        help="Dataset spec: fashion-mnist, mnist, shapes, folder:PATH, npz:PATH.")
@data_options
@option("--models", default="ae,vae,dcgan,vaegan", show_default=True, help="Comma-separated presets.",
        shell_complete=lambda c, p, i: _complete_presets(i, listed=True))
@option("--budget", default=None, help="Wall-clock training time per model: 90s, 3m.")
@option("--steps", type=int, default=None,
        help="Steps per model; a GAN's step is one G update after its n_critic D updates.")
@option("--epochs", type=float, default=None, help="Epochs per model.")
@option("--seeds", type=int, default=1, show_default=True, help="Seeds per model (mean ± std in the report).")
@option("--seed", type=int, default=0, show_default=True,
        help="The first training seed (runs use SEED .. SEED + SEEDS - 1).")
@option("--data-seed", type=int, default=0, show_default=True,
        help="Seed of the data's random splits (validation, --limit) and procedural data.")
@option("--batch-size", type=int, default=64, show_default=True, help="Images per training step.")
@option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default="fp32", show_default=True,
        help="Autocast precision; auto: bf16 where the device has it natively, else fp32. bf16 and fp16 warn on a CPU that only emulates them (many times slower).")
@option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Config override for every model.")
@option("--eval-n", type=AUTO_COUNT, default="auto", show_default=True,
        help="Samples scored per model (and for the real-data floor); auto: 6% of the training time, "
             "1,000..10,000, chosen once for every model (OUT/scoring.json).")
@option("--curve-points", type=int, default=5, show_default=True, help="Quick FDs during training.")
@option("--curve-n", type=AUTO_COUNT, default="auto", show_default=True,
        help="Samples per quick FD; auto: all curve points 5% of the training time, 200..1,000 each.")
@option("--stop-on-rise", type=float, default=None, metavar="FRAC",
        help="End a model's training once its validation FD has stood FRAC above its best for two curve "
             "points in a row (0.1: 10%; D overfitting little data); summary.json says where.")
@option("--nll-k", type=AUTO_COUNT, default="auto", show_default=True,
        help="Importance samples of the likelihood models' NLL bound; auto: the most that fit --nll-seconds, "
             "up to 100, chosen once for every model (OUT/likelihood.json).")
@option("--nll-images", type=AUTO_COUNT, default="auto", show_default=True,
        help="Test images the ELBO and the NLL bound are averaged over; auto: what fits --nll-seconds, up to 200.")
@option("--nll-seconds", type=AUTO_SECONDS, default="auto", show_default=True,
        help="Time each scoring's NLL bound may take where --nll-k or --nll-images is not given; "
             "auto: 5% of the training time, 5..20 s.")
@option("--val-split", default="auto", show_default=True,
        help=VAL_SPLIT_HELP + " Curves and the best checkpoint are judged on it; with 0 no best checkpoint "
             "is picked.")
@option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help=LIMIT_HELP)
@_task_options
@option("--sweep", default=None, metavar="KEY=V1,V2,...",
        help="Compare every model at each of these values of one setting: --sweep beta=0.25,0.5,1,2,4,8.")
@option("--config", "config_file", type=click.Path(path_type=Path), default=None,
        help="A comparison's settings (its compare.json, a replay-seedN.json, or YAML/TOML/JSON with "
             "the same keys); options given on the command line win.")
@option("--out", type=click.Path(path_type=Path), required=True, help="Output directory.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@option("--nproc", type=int, default=None, metavar="N",
        help="Train each model with N processes (DDP through torchrun, one model after another); "
             "scoring runs in one.", show_default="1")
@option("--quiet", is_flag=True, help="No progress bars.")
def compare_cmd(data, data_dir, size, channels, models, budget, steps, epochs, seeds, seed, data_seed, batch_size,
                precision, sets,
                eval_n, curve_points, curve_n, stop_on_rise, nll_k, nll_images, nll_seconds, val_split, limit, tasks, task_sets,
                masks, complete_n, complete_method, sweep, config_file, out, device, nproc, quiet) -> None:
    """Train MODELS on --data under one budget, score them all, and write report.html.

    Re-running the same command resumes: finished models are skipped. A wall-clock --budget
    also writes OUT/replay-seedN.json: the same comparison with each model stopped at the step
    it reached, to replay exactly with --config.

    \b
    Examples:
      ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 90s --out cmp
      ganvae compare --data fashion-mnist --models vae --sweep beta=0.25,0.5,1,2,4,8 --tasks generate,compress --out beta
      ganvae compare --data fashion-mnist --models dcgan,dcgan:augment=ada --limit 1000 --budget 3m --out little
      ganvae compare --config cmp/replay-seed0.json --out cmp-replay
    """
    from . import config as C
    from . import parallel
    from .data.base import parse_val_split
    from .registry import expand_sweep
    from .report.compare import CompareConfig, compare

    _launch_if_asked(nproc, "compare")
    from .trainer import resolve_device, resolve_precision

    import dataclasses

    overrides = C.parse_set(sets)
    task_names, task_configs = _parse_task_options(tasks, masks, complete_n, complete_method, 0, task_sets)
    if "complete" in task_configs and resolve_precision(resolve_device(device), precision) == "bf16":
        # complete as the models trained
        task_configs["complete"].precision = "bf16"
    task_names = tuple(dict.fromkeys(("generate", *task_names)))   # a comparison always scores samples
    cfg = CompareConfig(tasks=task_names, task_configs={k: dataclasses.asdict(v) for k, v in task_configs.items()},
                        data=data, models=tuple(expand_sweep([m.strip() for m in models.split(",") if m.strip()], sweep)),
                        budget=budget,
                        steps=steps, epochs=epochs, seeds=seeds, seed=seed, data_seed=data_seed,
                        batch_size=batch_size, precision=precision,
                        overrides=overrides, eval_n=eval_n, curve_points=curve_points, curve_n=curve_n,
                        stop_on_rise=stop_on_rise, nll_k=nll_k, nll_images=nll_images, nll_seconds=nll_seconds,
                        data_dir=str(data_dir) if data_dir else None, size=size, channels=channels,
                        val_split=parse_val_split(val_split), limit=limit)
    if config_file:
        cfg = _compare_config_file(config_file, cfg)
    elif not data:
        raise BadInput("give --data (fashion-mnist, mnist, shapes, folder:PATH or npz:PATH) or --config FILE")
    if cfg.budget:
        from .trainer import parse_budget

        parse_budget(cfg.budget)
    compare(cfg, out, progress=not quiet, device=resolve_device(device), log=lambda m: click.echo(m, err=True))
    if parallel.launched_rank() == 0:   # (the other ranks of a --nproc job leave after the training)
        click.echo(f"report: {out / 'report.html'}")


# compare's settings (CompareConfig fields) and the options that set them, where the two differ
_COMPARE_FIELD_OPTIONS = {"models": ("models", "sweep"), "overrides": ("sets",),
                          "task_configs": ("tasks", "task_sets", "masks", "complete_n", "complete_method"),
                          "budget": ("budget", "steps", "epochs"), "steps": ("budget", "steps", "epochs"),
                          "epochs": ("budget", "steps", "epochs")}


def _compare_config_file(path: Path, from_options):
    """compare --config FILE: the file's settings, with each option given on the command line
    (not left at its default) in place of the file's value; one budget replaces another whole."""
    import dataclasses

    from . import config as C
    from .report.compare import CompareConfig

    ctx = click.get_current_context()
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)}
    values = C.load_file(path, flat=False)
    for f in dataclasses.fields(CompareConfig):
        if given & set(_COMPARE_FIELD_OPTIONS.get(f.name, (f.name,))):
            values[f.name] = getattr(from_options, f.name)
    return C.from_dict(CompareConfig, values, where=f"--config {path}")


@cli.command("report", context_settings=CONTEXT)
@click.argument("out", type=click.Path(path_type=Path))
def report_cmd(out) -> None:
    """Rebuild OUT/report.html from a compare directory's files.

    \b
    Examples:
      ganvae report cmp
      ganvae report runs/demo
    """
    from .report.html import write_report

    click.echo(f"report: {write_report(out)}")


# ---------------------------------------------------------------------------- evaluators

@cli.group("evaluator", context_settings=CONTEXT)
def evaluator_group() -> None:
    """The networks samples are scored in (trained on the dataset itself).

    \b
    Examples:
      ganvae evaluator train --data folder:photos/ --size 64
      ganvae evaluator train --data mnist --epochs 10
    """


@evaluator_group.command("train", context_settings=CONTEXT)
@option("--data", required=True, help="Dataset spec.", shell_complete=lambda c, p, i: _complete_data(i))
@data_options
@option("--data-seed", type=int, default=0, show_default=True, help="Seed of random splits / procedural data.")
@option("--seed", type=int, default=None, show_default="0", help="Training seed.")
@option("--epochs", type=click.IntRange(1, 1000), default=None, help="Passes over the training split.")
@option("--out", type=click.Path(path_type=Path), default=None,
        help="Write it to OUT/<id>/ instead of the cache (the package's weights/ folder ships it).")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def evaluator_train(data, data_dir, size, channels, data_seed, seed, epochs, out, device) -> None:
    """Train the evaluator for --data deterministically and record its test accuracy.

    \b
    Examples:
      ganvae evaluator train --data folder:photos/ --size 64
      ganvae evaluator train --data mnist --epochs 10 --out ev/
    """
    import dataclasses
    import shlex

    from .data import load_dataset
    from .evaluators import cache_root, recipe_for, train_evaluator
    from .trainer import resolve_device

    ds = load_dataset(data, data_dir=data_dir, size=size, channels=channels, seed=data_seed)
    recipe = recipe_for(ds)
    changes = {k: v for k, v in (("seed", seed), ("epochs", epochs)) if v is not None}
    recipe = dataclasses.replace(recipe, **changes)
    ev = train_evaluator(ds, recipe, resolve_device(device), log=lambda m: click.echo(m, err=True))
    ev.meta["command"] = "ganvae " + " ".join(shlex.quote(a) for a in _ARGS)
    target = (out or cache_root() / "evaluators") / ev.id
    ev.save(target)
    click.echo(f"evaluator {ev.id}: {ev.meta['kind']}, accuracy {ev.meta['accuracy']:.4f} "
               f"({ev.meta['accuracy_of']}); written to {target}")


# ---------------------------------------------------------------------------- entry point

_ARGS: list[str] = []  # the arguments of this invocation, recorded in what it writes


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    global _ARGS
    args = list(sys.argv[1:] if argv is None else argv)
    _ARGS = args
    # --debug works wherever it is placed (and GANVAE_DEBUG=1 without it): taken out here, so
    # no subcommand has to declare it
    debug = "--debug" in args or os.environ.get("GANVAE_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    warnings.showwarning = _warning_line
    try:
        code = cli.main(args=args, prog_name="ganvae", standalone_mode=False)
        # (a command that ends with click's Exit(n), as train --nproc with its job's code, returns n)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:   # a bad option or argument: one line, and where the help is
        where = e.ctx.command_path if e.ctx is not None else "ganvae"
        print(f"ganvae: error: {e.format_message()} (see {where} --help)", file=sys.stderr)
        return e.exit_code
    except click.ClickException as e:  # click's other errors (a file it could not open): its message
        print(f"ganvae: error: {e.format_message()}", file=sys.stderr)
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("ganvae: interrupted", file=sys.stderr)
        return 130
    except GanvaeError as e:
        if debug:
            traceback.print_exc()
        if not e.quiet:   # an error every rank of a DDP job shares: rank 0 says it
            print(f"ganvae: {e.label}: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # a bug or an unexpected environment problem: still one line
        if debug:
            traceback.print_exc()
        print(f"ganvae: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
