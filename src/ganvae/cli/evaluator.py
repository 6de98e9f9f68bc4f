"""`ganvae evaluator`: the networks samples are scored in."""

from __future__ import annotations

from pathlib import Path

import click

from .options import ARGS, CONTEXT, DEVICE, DEVICE_HELP, complete_data, data_options, option


# ---------------------------------------------------------------------------- evaluators

@click.group("evaluator", context_settings=CONTEXT)
def evaluator_group() -> None:
    """The networks samples are scored in (trained on the dataset itself).

    \b
    Examples:
      ganvae evaluator train --data folder:photos/ --size 64
      ganvae evaluator train --data mnist --epochs 10
    """


@evaluator_group.command("train", context_settings=CONTEXT)
@option("--data", required=True, help="Dataset spec.", shell_complete=lambda c, p, i: complete_data(i))
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

    from ..data import load_dataset
    from ..evaluators import cache_root, recipe_for, train_evaluator
    from ..trainer import resolve_device

    ds = load_dataset(data, data_dir=data_dir, size=size, channels=channels, seed=data_seed)
    recipe = recipe_for(ds)
    changes = {k: v for k, v in (("seed", seed), ("epochs", epochs)) if v is not None}
    recipe = dataclasses.replace(recipe, **changes)
    ev = train_evaluator(ds, recipe, resolve_device(device), log=lambda m: click.echo(m, err=True))
    ev.meta["command"] = "ganvae " + " ".join(shlex.quote(a) for a in ARGS)
    target = (out or cache_root() / "evaluators") / ev.id
    ev.save(target)
    click.echo(f"evaluator {ev.id}: {ev.meta['kind']}, accuracy {ev.meta['accuracy']:.4f} "
               f"({ev.meta['accuracy_of']}); written to {target}")
