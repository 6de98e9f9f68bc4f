"""Jobs on a trained model beside generation, one file each, registered by name so that
`ganvae eval --tasks` and `ganvae compare --tasks` find them and the report shows them.

A task uses models only through their contract (models/base.py) and never trains them. Its
class keeps the task contract, tasks/base.py's `Task` Protocol, which documents every member
(name, title, Config, applies, prepare, run, tables, findings; optionally plot, uses_evaluator,
needs, group) and when each is called; `register_task` checks a class against it.

`generate` (sample quality, the default) is not a registered task: every comparison scores it.
The registry (TASKS, register_task) lives in ganvae.registry beside the models'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadInput, did_you_mean
from ..registry import TASKS
from .base import Task

BUILT_IN = ("generate",)


def _ensure_loaded() -> None:
    from . import augment, complete, compress, disentangle, probe, translate  # noqa: F401  (each registers itself)


def get_task(name: str) -> Task:
    """The registered task class called `name` (the class object is the Task); BadInput if none."""
    _ensure_loaded()
    if name not in TASKS:
        raise BadInput(f"--tasks {name}: unknown task{did_you_mean(name, BUILT_IN + tuple(TASKS))}; choose from "
                       f"{', '.join(BUILT_IN + tuple(TASKS))}")
    return TASKS[name]


def parse_tasks(spec: str | tuple | list) -> tuple[str, ...]:
    """'generate,complete' -> ('generate', 'complete'), every name checked, in the order given."""
    _ensure_loaded()
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    for n in names:
        if n not in BUILT_IN:
            get_task(n)
    if len(set(names)) != len(names):
        raise BadInput(f"--tasks {','.join(names)}: a task is named twice")
    if not names:
        raise BadInput(f"--tasks: name at least one task ({', '.join(BUILT_IN + tuple(TASKS))})")
    return tuple(names)


class EncoderTask:
    """What the latent-space tasks on an encoder's codes share (compress, disentangle): they
    apply to every model with an encoder, score no images in the evaluator's features, and
    stand under the report's "Latent space" heading."""

    uses_evaluator = False
    group = "Latent space"
    needs = "an encoder (ae, vae, beta-vae, vaegan, aae, bigan)"

    @staticmethod
    def applies(model) -> bool:
        return bool(model.has_encoder) and not model.translation


def evaluator_scores(x: np.ndarray, ev, real_feats: np.ndarray | None = None,
                     labels: np.ndarray | None = None) -> dict:
    """What the evaluator says of a task's uint8 output images x (N, C, H, W): their FD to the
    real images whose features are `real_feats`, and its class accuracy against `labels` (is the
    content kept?); each only where its reference is given."""
    from ..metrics import fd_from_features

    out = {}
    feats, probs = ev.features_and_probs(x)
    if real_feats is not None:
        out["fd"] = fd_from_features(real_feats, feats)
    if probs is not None and labels is not None:
        out["accuracy"] = float((probs.argmax(1) == labels).mean())
    return out


def pixels(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) -> (N, C*H*W) float32 in [0, 1]: the raw-pixel baseline's features."""
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def seed_means(vals: list[dict], keys) -> dict:
    """{key: mean over the seeds' results, key_std: their std (None for one seed)} for every key
    some result has: a model's row in a task's table."""
    row = {}
    for key in keys:
        xs = [v[key] for v in vals if v.get(key) is not None]
        if xs:
            row[key] = float(np.mean(xs))
            row[f"{key}_std"] = float(np.std(xs, ddof=1)) if len(xs) > 1 else None
    return row


def task_summary(prepared: dict) -> dict:
    """The JSON-able part of a task's prepare() (arrays left out, masks by label)."""
    return {k: v for k, v in prepared.items() if not isinstance(v, np.ndarray) and k != "masks"} | \
        {"masks": list(prepared.get("masks", {}))}


def evaluate_tasks(run: str | Path, names: tuple[str, ...], configs: dict | None = None, device="cpu",
                   log=print, progress: bool = False, data: str | None = None,
                   figures_dir: str | Path | None = None, checkpoint: str = "last") -> dict:
    """`ganvae eval RUN --tasks ...`: each registered task on a run's final model (or another
    `checkpoint`: best or a step, see load_run), test split.

    `data`: a dataset spec to run the tasks on instead of the run's own (loaded at the run's
    image size and channels), e.g. to probe features learnt on one dataset on another.
    `figures_dir`: where tasks write their figures (None: no figures).
    Returns {"model", "data", "evaluator", "tasks": {task: {"config", "result", "tables"}}}
    (generate is evaluate_run's business).
    """
    from ..evaluators import get_evaluator
    from ..trainer import load_run, run_dataset

    model, run_cfg = load_run(run, device=device, checkpoint=checkpoint)
    ds = run_dataset(run_cfg) if data is None else _other_data(data, model, run_cfg)
    name = run_cfg.get("preset", model.name)
    tasks = [get_task(t) for t in names if t not in BUILT_IN]
    for task in tasks:   # every task checked before any runs
        if not task.applies(model):
            needs = getattr(task, "needs", "")
            raise BadInput(f"--tasks {task.name}: does not apply to {name}{f'; it needs {needs}' if needs else ''}")
    # the latent-space tasks score no images in the evaluator's features: none is trained for them
    ev = get_evaluator(ds, device=device, log=log) if any(getattr(t, "uses_evaluator", True) for t in tasks) \
        else None
    out = {}
    for task in tasks:
        task_name = task.name
        cfg = (configs or {}).get(task_name) or task.Config()
        prepared = task.prepare(ds, ev, cfg, log)
        result = task.run(model, ds, ev, cfg, prepared, figures_dir, log, progress)
        summary = task_summary(prepared)
        out[task_name] = {"config": summary["config"], "result": result,
                          "tables": task.tables(summary, {name: [result]})}
    return {"model": name, "data": ds.name, "evaluator": {"id": ev.id, "kind": ev.meta["kind"]} if ev else None,
            "tasks": out}


def _other_data(spec: str, model, run_cfg: dict):
    """The dataset `spec` at the run's image size and channels (--data of eval's tasks)."""
    from ..data import load_dataset

    c = model.config
    seed = int((run_cfg.get("data") or {}).get("seed", 0) or 0)
    ds = load_dataset(spec, size=c.size, channels=c.channels, seed=seed)
    if ds.shape != (c.channels, c.size, c.size):
        raise BadInput(f"--data {spec}: its images are {ds.shape}, the model's {(c.channels, c.size, c.size)}")
    return ds
