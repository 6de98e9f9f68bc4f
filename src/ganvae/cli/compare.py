"""`ganvae compare` (models trained and scored side by side) and `ganvae report`."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput
from .options import (AUTO_COUNT, AUTO_SECONDS, CONTEXT, DEVICE, DEVICE_HELP, LIMIT_HELP, VAL_SPLIT_HELP,
                      complete_data, complete_presets, data_options, option, parse_task_options, renamed,
                      task_options)
from .train import launch_if_asked


# ---------------------------------------------------------------------------- compare / report

@click.command("compare", context_settings=CONTEXT)
@option("--data", default=None, shell_complete=lambda c, p, i: complete_data(i),
        help="Dataset spec: fashion-mnist, mnist, shapes, folder:PATH, npz:PATH.")
@data_options
@option("--models", default="ae,vae,dcgan,vaegan", show_default=True, help="Comma-separated presets.",
        shell_complete=lambda c, p, i: complete_presets(i, listed=True))
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
@renamed("--batch", "--batch-size", "batch_size", type=int)
@option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default="fp32", show_default=True,
        help="Autocast precision; auto: bf16 where the device has it natively, else fp32. bf16 and fp16 warn on a CPU that only emulates them (many times slower).")
@option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Config override for every model.")
@option("--eval-n", type=AUTO_COUNT, default="auto", show_default=True,
        help="Samples scored per model (and for the real-data floor); auto: 5% of the training time, "
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
@task_options
@option("--sweep", default=None, metavar="KEY=V1,V2,...",
        help="Compare every model that has this setting at each of these values (the others once, unswept; "
             "a key no model has is an error): --sweep beta=0.25,0.5,1,2,4,8.")
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
    from .. import config as C
    from .. import parallel
    from ..data.base import parse_val_split
    from ..registry import expand_sweep
    from ..comparison import compare, config_from

    launch_if_asked(nproc, "compare")
    from ..trainer import resolve_device, resolve_precision

    import dataclasses

    overrides = C.parse_set(sets)
    task_names, task_configs = parse_task_options(tasks, masks, complete_n, complete_method, 0, task_sets)
    if "complete" in task_configs and resolve_precision(resolve_device(device), precision) == "bf16":
        # complete as the models trained
        task_configs["complete"].precision = "bf16"
    # the options as CompareConfig's fields; config_from (the API's path too) types them
    options = dict(tasks=task_names, task_configs={k: dataclasses.asdict(v) for k, v in task_configs.items()},
                   data=data, models=tuple(expand_sweep([m.strip() for m in models.split(",") if m.strip()], sweep)),
                   budget=budget,
                   steps=steps, epochs=epochs, seeds=seeds, seed=seed, data_seed=data_seed,
                   batch_size=batch_size, precision=precision,
                   overrides=overrides, eval_n=eval_n, curve_points=curve_points, curve_n=curve_n,
                   stop_on_rise=stop_on_rise, nll_k=nll_k, nll_images=nll_images, nll_seconds=nll_seconds,
                   data_dir=str(data_dir) if data_dir else None, size=size, channels=channels,
                   val_split=parse_val_split(val_split), limit=limit)
    if config_file:
        cfg = _compare_config_file(config_file, options)
    elif not data:
        raise BadInput("give --data (fashion-mnist, mnist, shapes, folder:PATH or npz:PATH) or --config FILE")
    else:
        cfg = config_from(options, where="ganvae compare")
    results = compare(cfg, out, progress=not quiet, device=resolve_device(device),
                      log=lambda m: click.echo(m, err=True))
    if parallel.launched_rank() == 0:   # (the other ranks of a --nproc job leave after the training)
        from ..report.text import ranking_text

        click.echo(ranking_text(results))     # the answer, where the user is looking
        click.echo(f"report: {out / 'report.html'}")


# compare's settings (CompareConfig fields) and the options that set them, where the two differ
_COMPARE_FIELD_OPTIONS = {"models": ("models", "sweep"), "overrides": ("sets",),
                          "task_configs": ("tasks", "task_sets", "masks", "complete_n", "complete_method"),
                          "budget": ("budget", "steps", "epochs"), "steps": ("budget", "steps", "epochs"),
                          "epochs": ("budget", "steps", "epochs")}


def _compare_config_file(path: Path, options: dict):
    """compare --config FILE: the file's settings, with each option given on the command line
    (not left at its default) in place of the file's value; one budget replaces another whole."""
    import dataclasses

    from .. import config as C
    from ..comparison import CompareConfig, config_from

    ctx = click.get_current_context()
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)}
    values = C.load_file(path, flat=False)
    for f in dataclasses.fields(CompareConfig):
        if given & set(_COMPARE_FIELD_OPTIONS.get(f.name, (f.name,))):
            values[f.name] = options[f.name]
    return config_from(values, where=f"--config {path}")


@click.command("report", context_settings=CONTEXT)
@click.argument("out", type=click.Path(path_type=Path))
def report_cmd(out) -> None:
    """Rebuild OUT/report.html from a compare directory's files.

    \b
    Examples:
      ganvae report cmp
      ganvae report runs/demo
    """
    from ..report.html import write_report

    click.echo(f"report: {write_report(out)}")
