"""Scoring a run: `ganvae eval`, and the task commands that write RUN/eval.json, `augment-eval`,
`probe` and `disentangle`."""

from __future__ import annotations

from pathlib import Path

import click

from .. import progress
from ..errors import BadInput
from .options import (AUTO_COUNT, CONTEXT, DEVICE, DEVICE_HELP, check_png, checkpoint_option, chosen_checkpoint,
                      chosen_quiet, data_options, option, parse_task_options, quiet_option, task_options)


# ---------------------------------------------------------------------------- evaluation

def _eval_json(run, checkpoint: str) -> Path:
    """Where a run's scores are kept: RUN/eval.json for the final model, RUN/eval-best.json,
    RUN/eval-step500.json for the others (never mixed into the final model's)."""
    name = "eval" if checkpoint == "last" else f"eval-{'step' if checkpoint.isdigit() else ''}{checkpoint}"
    return Path(run) / f"{name}.json"


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


@click.command("eval", context_settings=CONTEXT)
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
@task_options
@checkpoint_option
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
    from ..files import write_json
    from ..config import replace
    from ..data import load_dataset
    from ..evaluation import EvalConfig, evaluate_run, evaluate_samples, format_table
    from ..trainer import resolve_device

    cfg = replace(EvalConfig(), {"n": n, "k": k, "nll_k": nll_k, "nll_images": nll_images,
                                 "nll_seconds": nll_seconds, "seed": seed}, where="ganvae eval")
    task_names, task_configs = parse_task_options(tasks, masks, complete_n, complete_method, seed, task_sets)
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
        from ..tasks import evaluate_tasks

        checkpoint = chosen_checkpoint()
        result = evaluate_run(run, cfg, dev, log, checkpoint) if "generate" in task_names else {"source": str(run)}
        if set(task_names) - {"generate"}:
            done = evaluate_tasks(run, task_names, task_configs, dev, log, progress=not quiet, checkpoint=checkpoint)
            result = {**done, **result, "tasks": done["tasks"]}
        path = _eval_json(run, checkpoint)
        write_json(path, _merge_eval(path, result))
    if json_out:
        write_json(json_out, result)
    click.echo(format_table(result))


@click.command("augment-eval", context_settings=CONTEXT)
@quiet_option
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
@checkpoint_option
def augment_eval_cmd(run, ratio, seeds, budget_images, seed, json_out, device) -> None:
    """Does RUN's class-conditional model help a classifier? The evaluator's classifier trained
    on the run's real training images, on the model's samples alone (Classification Accuracy
    Score) and on both, each scored on the test split (also written to RUN/eval.json).

    \b
    Examples:
      ganvae augment-eval runs/cgan
      ganvae augment-eval runs/cvae --ratio 0.5 --seeds 3
    """
    from ..tasks.augment import AugmentEvalConfig

    cfg = AugmentEvalConfig(ratio=ratio, seeds=seeds, budget_images=budget_images, seed=seed)
    cfg.validate()
    _run_one_task(run, "augment", cfg, device, json_out)


def _run_one_task(run: Path, name: str, cfg, device: str, json_out: Path | None, data: str | None = None,
                  figures_dir: Path | None = None) -> dict:
    """A task's command (probe, compress, disentangle, augment-eval): run it on RUN, merge it
    into RUN/eval.json, print its tables."""
    from ..evaluation import format_task_table
    from ..files import write_json
    from ..tasks import evaluate_tasks
    from ..trainer import resolve_device

    checkpoint = chosen_checkpoint()
    with progress.quiet(chosen_quiet()):
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


@click.command("probe", context_settings=CONTEXT)
@quiet_option
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
@checkpoint_option
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
    from ..tasks.probe import ProbeConfig

    cfg = ProbeConfig(per_class=per_class, seeds=seeds, k=k, n_test=n_test)
    cfg.validate()
    _run_one_task(run, "probe", cfg, device, json_out, data)


@click.command("disentangle", context_settings=CONTEXT)
@quiet_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--data", default=None, help="Score on this dataset instead of the run's own (e.g. factors).")
@option("-n", "--n", "n", type=click.IntRange(100), default=5000, show_default=True, help="Test images encoded.")
@option("--bins", type=click.IntRange(2), default=20, show_default=True, help="MIG's bins per code dimension.")
@option("--seed", type=int, default=0, show_default=True, help="Seed of the FactorVAE votes and DCI's trees.")
@option("--figure", type=click.Path(path_type=Path), default=None,
        help="Also write the latent traversal labelled with the factor each dimension captures (.png).")
@option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the result here.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@checkpoint_option
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

    from ..tasks.disentangle import DisentangleConfig

    if figure is not None:
        check_png(figure)
    cfg = DisentangleConfig(n=n, bins=bins, seed=seed)
    cfg.validate()
    with tempfile.TemporaryDirectory() as tmp:
        done = _run_one_task(run, "disentangle", cfg, device, json_out, data, Path(tmp) if figure else None)
        res = done["tasks"]["disentangle"]["result"]
        if figure is not None:
            from ..files import atomic_write

            atomic_write(figure, lambda p: shutil.copyfile(Path(tmp) / res.pop("figure"), p))
            click.echo(f"wrote {figure} (rows: {', '.join(res.pop('dim_labels'))})")
