"""`ganvae train`, `ganvae models`, `ganvae config`: training a model, and the presets."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput
from .options import (ARGS, CONTEXT, DEVICE, DEVICE_HELP, LIMIT_HELP, VAL_SPLIT_HELP, complete_data,
                      complete_presets, data_options, option, renamed)


# ---------------------------------------------------------------------------- training

def _preset_help() -> str:
    from ..registry import PRESET_HELP, preset_names

    w = max(map(len, preset_names()))
    return "\n".join(f"  {name:{w}s}  {PRESET_HELP.get(name, '')}" for name in preset_names())


class _TrainCommand(click.Command):
    def format_epilog(self, ctx, formatter):
        formatter.write_paragraph()
        formatter.write_text("Models:")
        formatter.write(_preset_help() + "\n")


@click.command("train", cls=_TrainCommand, context_settings=CONTEXT)
@click.argument("model", required=False, shell_complete=lambda c, p, i: complete_presets(i))
@option("--data", default=None, shell_complete=lambda c, p, i: complete_data(i),
        help="Dataset spec: fashion-mnist, mnist, shapes, folder:PATH, npz:PATH.")
@data_options
@option("--data-seed", type=int, default=None, show_default="0", help="Seed of random splits and procedural data.")
@option("--val-split", default=None, show_default="auto", help=VAL_SPLIT_HELP)
@option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help=LIMIT_HELP)
@option("--steps", type=int, default=None, help="Stop after N steps (a GAN step: one G update after n_critic D updates).")
@option("--epochs", type=float, default=None, help="Stop after E passes over the training split.")
@option("--budget", default=None, help="Stop after a wall-clock training time: 90s, 5m, 1h.")
@option("--batch-size", type=int, default=None, show_default="64", help="Images per step.")
@renamed("--batch", "--batch-size", "batch_size", type=int)
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
@renamed("--run-dir", "--out", "run_dir", type=click.Path(path_type=Path))
@option("--resume", type=click.Path(path_type=Path), default=None,
        help="Continue the run in this directory from its last checkpoint.")
@option("--init-from", type=click.Path(path_type=Path), default=None, metavar="RUN",
        help="Start from RUN's final weights (transfer; the same nets), with fresh optimizers; "
             "--set freeze_d=K keeps D's first K blocks fixed.")
@option("--log-every", type=int, default=None, show_default="50", help="Steps between metric lines.")
@option("--sample-every", type=int, default=None, show_default="500", help="Steps between sample grids.")
@option("--checkpoint-every", type=int, default=None, show_default="1000", help="Steps between checkpoints.")
@option("--keep-best", default=None, metavar="none|fd|elbo", show_default="none",
        help="Score every checkpoint and the end on the validation split and keep the best in RUN/best "
             "(--checkpoint best loads it): fd, a quick FD of --best-n samples; elbo, the -ELBO of --best-n "
             "validation images (VAEs).")
@option("--best-n", type=int, default=None, metavar="N", show_default="1000",
        help="Samples (fd) or validation images (elbo) per --keep-best score.")
@option("--nproc", type=int, default=None, metavar="N",
        help="Train with N processes (DDP, launched through torchrun): one per GPU, or CPU processes. "
             "The global batch stays --batch-size.", show_default="1")
@option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(model, data, data_dir, size, channels, data_seed, val_split, limit, steps, epochs, budget, batch_size, seed,
              precision, device, sets, config_file, run_dir, resume, init_from, log_every, sample_every,
              checkpoint_every, keep_best, best_n, nproc, quiet) -> None:
    """Train MODEL on --data, or continue a run with --resume RUN_DIR.

    With --nproc N (or started by torchrun --nproc-per-node N -m ganvae train ...) every process
    trains on its share of each global batch and rank 0 writes the run.

    \b
    Examples:
      ganvae train vae --data fashion-mnist --epochs 3 --out runs/vae
      ganvae train wgan-gp --data folder:photos/ --size 64 --budget 1h --set arch=resnet
      ganvae train --resume runs/vae --epochs 6
      ganvae train dcgan --data fashion-mnist --budget 10m --keep-best fd --out runs/dcgan
    """
    from .. import config as C
    from .. import parallel
    from ..data.base import parse_val_split
    from ..trainer import train

    launch_if_asked(nproc, "train")

    overrides = {}
    if config_file:
        model, data, overrides = _train_config_file(config_file, model, data, resume)
    overrides.update(C.parse_set(sets))
    options = dict(steps=steps, epochs=epochs, budget=budget, batch_size=batch_size, seed=seed,
                   precision=precision, device=device, log_every=log_every, sample_every=sample_every,
                   checkpoint_every=checkpoint_every, keep_best=keep_best, best_n=best_n,
                   init_from=str(init_from) if init_from else None)
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
    if summary.get("best"):   # --keep-best
        best = summary["best"]
        click.echo(f"best: validation {best['metric']} {best['value']:.4g} at step {best['step']}: {out / 'best'} "
                   f"(--checkpoint best)")


# model config keys taken from the data at training time: a config file does not fix them
FILLED_FROM_DATA = ("channels", "size", "num_classes", "channels_a")


def _train_config_file(path: Path, model: str | None, data: str | None, resume) -> tuple:
    """train --config FILE: a run's config.json (or `ganvae config PRESET`'s output, or YAML/TOML
    with its sections) -> (preset, data spec, dotted overrides). The file's preset and data are
    used where MODEL and --data are not given; its keys are checked here, so that an error names
    the file and the key; the sizes a model takes from its data are left to the data."""
    import re

    from .. import config as C
    from ..registry import resolve
    from ..trainer import DataConfig, TrainConfig, spread_lr, split_overrides

    over = C.load_file(path)
    preset, spec = over.pop("preset", None), over.pop("data.spec", None)
    over.pop("family", None)
    for filled in FILLED_FROM_DATA:
        over.pop(f"model.{filled}", None)
    model = model or (None if resume else preset)
    if model:
        m_over, t_over, d_over = split_overrides(over)
        _, cfg = resolve(model)
        for section, base, values in (("model", cfg, spread_lr(cfg, m_over)), ("train", TrainConfig(), t_over),
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


def launch_if_asked(nproc: int | None, command: str) -> None:
    """--nproc N > 1: run this very command as a torchrun job of N processes, and end with its
    exit code."""
    from .. import parallel

    if nproc is not None and nproc < 1:
        raise BadInput(f"--nproc {nproc}: give at least 1 process")
    if nproc and nproc > 1:
        if parallel.launched():
            raise BadInput(f"--nproc: this process is already one of a torchrun job; give --nproc only to a plain "
                           f"ganvae {command}")
        raise click.exceptions.Exit(parallel.launch(nproc, _without_option(ARGS, "--nproc")))


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


@click.command("models", context_settings=CONTEXT)
@option("--json", "as_json", is_flag=True, help="A JSON array, one object per preset: name, family, description.")
def models_cmd(as_json: bool) -> None:
    """List the model presets, one line each.

    \b
    Examples:
      ganvae models
      ganvae models --json | jq -r '.[] | select(.family == "gan") | .name'
    """
    import json

    from ..api import list_models

    rows = list_models()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    wn, wf = max(len(r["name"]) for r in rows), max(len(r["family"]) for r in rows)   # columns that line up
    for r in rows:
        click.echo(f"{r['name']:{wn}s}  {r['family']:{wf}s}  {r['description']}")


@click.command("config", context_settings=CONTEXT)
@click.argument("preset", shell_complete=lambda c, p, i: complete_presets(i))
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

    from ..registry import resolve
    from ..trainer import DataConfig, TrainConfig

    _, cfg = resolve(preset)
    model = dataclasses.asdict(cfg)
    for filled in FILLED_FROM_DATA:
        model.pop(filled, None)
    click.echo(json.dumps({"preset": preset, "model": model, "train": dataclasses.asdict(TrainConfig()),
                           "data": {k: v for k, v in dataclasses.asdict(DataConfig()).items() if k != "spec"}},
                          indent=2))
