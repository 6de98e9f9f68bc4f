"""The Python API of training: `build` a model for a preset and its data, and `train` one
(the twin of `ganvae train`): configs from the options, a new or resumed run directory, the
Trainer run under that directory's lock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import torch

from .. import parallel
from ..config import replace
from ..data import ImageDataset
from ..errors import BadInput, GanvaeError
from ..files import dir_lock, write_json
from .config import RunConfig, data_option_field, split_overrides
from .loop import Trainer
from .runs import legacy_val_split, checkpoints, init_from, load_data, new_run_dir


def build(preset: str, data: ImageDataset, overrides: dict | None = None):
    """The model for `preset`, sized for `data`, with `overrides` applied to its config."""
    from ..registry import resolve

    cls, cfg = resolve(preset)
    c, h, w = data.shape
    if h != w:
        raise BadInput(f"{data.name}: images are {h}x{w}; the networks need square images (pass --size)")
    fill = {"channels": c, "size": h}
    if cls.translation:
        check_translation_data(cls, data)
        fill["channels_a"] = data.train.a.shape[1]
    if any(f.name == "num_classes" for f in dataclasses.fields(cfg)):
        # p(x | y): K from the data's labels (used only when the config says conditional)
        wants = getattr(cfg, "conditional", False) or \
            str((overrides or {}).get("conditional", "")).strip().lower() in ("true", "1", "yes")
        if wants and (data.train.y is None or data.num_classes < 2):
            raise BadInput(f"{preset} is class-conditional and {data.name} has no class labels: give labelled data "
                           "(fashion-mnist, mnist, shapes, or folder:PATH with one subfolder per class)")
        fill["num_classes"] = data.num_classes if wants else 0
    over = spread_lr(cfg, overrides or {})
    cfg = replace(cfg, {**fill, **over}, where=f"--set for {preset}")   # names the preset typed
    return cls(cfg), cfg


def spread_lr(cfg, overrides: dict) -> dict:
    """`lr` is every network's learning rate, in every family: it sets each of the config's
    lr / lr_g / lr_d / lr_e that is not given itself (those refine it). So one --set lr=...
    works in a comparison of GANs (lr_g, lr_d) and autoencoders (lr) alike."""
    if "lr" not in overrides:
        return overrides
    names = {f.name for f in dataclasses.fields(cfg)}
    out = dict(overrides)
    lr = out["lr"] if "lr" in names else out.pop("lr")
    for key in ("lr_g", "lr_d", "lr_e"):
        if key in names and key not in overrides:
            out[key] = lr
    return out


def check_translation_data(cls, data: ImageDataset) -> None:
    """A translation model needs input-domain images beside the targets, aligned if it is paired."""
    forms = "--data task:NAME (edges2fashion, lowres2fashion, inverted, colorized), pairs:DIR or unpaired:DIR_A,DIR_B"
    if data.train.a is None:
        raise BadInput(f"{cls.name} translates images from one domain to another; {data.name} has only one "
                       f"domain: give {forms}")
    if cls.translation == "paired" and not data.train.paired:
        raise BadInput(f"{cls.name} trains on aligned pairs; {data.name} is unpaired: give pairs:DIR or "
                       "task:NAME, or train cyclegan or unit on it")



def train(preset: str, data: str = "shapes", run_dir: str | Path | None = None, *,
          overrides: dict | None = None, resume: bool = False, progress: bool = True,
          runs_root: str | Path = "runs", callbacks: list | None = None, dataset: ImageDataset | None = None,
          nets: dict | None = None, **train_options) -> tuple[Path, dict]:
    """Train a model; the Python twin of `ganvae train`.

    Args:
        preset: a registry name (`vae`, `dcgan`, ...).
        data: a --data spec.
        run_dir: the run directory (default runs/NNNN-<preset>-<data>).
        overrides: dotted config overrides (`{"beta": 4, "train.lr": ...}`).
        resume: continue the run in `run_dir` from its last checkpoint.
        callbacks: ganvae.callbacks.Callback objects (hooks on_start, on_step, on_log, on_end;
            docs/callbacks.md) or plain callables run with the trainer after every step.
        dataset: the already loaded dataset of `data` (saves loading it again).
        nets: a user's own nets in place of the built-in ones, {role: ganvae.net(Class, **kwargs)}
            (roles g and d for GANs, encoder and decoder for AEs and VAEs; see ganvae.custom).
        **train_options: TrainConfig fields (steps=..., budget="2m", batch_size=...) and
            DataConfig fields prefixed `data_` (data_dir, data_size, ...).

    Returns:
        (run directory, summary dict).
    """
    m_over, t_over, d_over = split_overrides(overrides or {})
    if nets:   # a user's own nets (ganvae.net): part of the model's config, saved in config.json
        m_over["nets"] = nets
    for k in list(train_options):
        name = data_option_field(k)
        if name is not None:
            v = train_options.pop(k)
            if v is not None:
                d_over[name] = v
    t_over.update({k: v for k, v in train_options.items() if v is not None})
    # one writer per run directory: a second command on it is refused while this one runs
    with contextlib.ExitStack() as lock:
        if resume:
            run_dir = Path(run_dir)
            cfg_path = run_dir / "config.json"
            if not run_dir.is_dir():
                raise BadInput(f"--resume {run_dir}: no such directory")
            if not cfg_path.exists():
                raise BadInput(f"--resume {run_dir}: no config.json there; is it a run directory?")
            saved = json.loads(cfg_path.read_text())
            preset = saved["preset"]
            legacy_val_split(saved)
            base = replace(RunConfig(preset=preset), {"data": saved["data"], "train": saved["train"]},
                           where=str(cfg_path))
            if {"steps", "epochs", "budget"} & set(t_over):  # a new stopping point replaces the old one
                base = replace(base, {"train": {"steps": None, "epochs": None, "budget": None}})
            cfg = replace(base, {"train": t_over}, where="--resume option")
        else:
            base = RunConfig(preset=preset)
            cfg = replace(base, {"data": {"spec": data, **d_over}, "train": t_over}, where="option")
        # Under torchrun: join the job. From here on a rank that fails tells the others (agree),
        # so none waits for a partner that has left.
        world = parallel.init(cfg.train.device)
        error = None
        try:
            ds = dataset or load_data(cfg.data)
            if resume:
                torch.manual_seed(cfg.train.seed)  # the weights are replaced by the checkpoint's anyway
                model, mcfg = build(preset, ds, saved["model"])
            else:
                torch.manual_seed(cfg.train.seed)  # the initial weights, then the noise of every step
                model, mcfg = build(preset, ds, m_over)
                if getattr(mcfg, "freeze_d", 0) and not cfg.train.init_from:
                    # Freeze-D (Mo et al. 2020) keeps a trained D's first blocks while fine-tuning;
                    # without weights to start from it would fix random layers for the whole run
                    raise BadInput(f"--set freeze_d={mcfg.freeze_d}: freezes D's first blocks, which are random "
                                   "without --init-from RUN (transfer from a trained run); give one, or leave "
                                   "freeze_d at 0")
                if cfg.train.init_from:
                    init_from(model, cfg.train.init_from)
            cfg = dataclasses.replace(cfg, model=mcfg)
        except GanvaeError as e:
            error = e
        parallel.agree(error)
        if not resume:   # rank 0 numbers a new run directory; every rank uses its choice
            run_dir = parallel.broadcast(Path(run_dir) if run_dir else new_run_dir(Path(runs_root), preset, data)
                                         if world.is_main else None)
        try:
            trainer = Trainer(model, ds, cfg, run_dir, progress=progress, callbacks=callbacks)   # checks the settings
            if world.is_main:   # (locking creates the directory: only once every setting has passed)
                what = f"--resume {run_dir}" if resume else f"--out {run_dir}"
                lock.enter_context(dir_lock(run_dir, what))
                if not resume and (checkpoints(run_dir) or (run_dir / "model").exists()):
                    raise BadInput(f"--out {run_dir}: already holds a run; use --resume {run_dir} or another "
                                   "directory")
                run_dir.mkdir(parents=True, exist_ok=True)
                write_json(run_dir / "config.json", {"preset": cfg.preset, "family": model.name,
                                                     "model": dataclasses.asdict(cfg.model),
                                                     "data": dataclasses.asdict(cfg.data),
                                                     "train": dataclasses.asdict(cfg.train)})
        except GanvaeError as e:
            error = e
        parallel.agree(error)
        summary = trainer.fit()
    return run_dir, summary
