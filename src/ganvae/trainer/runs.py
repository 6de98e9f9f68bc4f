"""Run directories and their files: naming a new one, its checkpoints, its summary in today's
field names, and loading what a run left (its model, a checkpoint's model, its data, its prior).

    config.json  metrics.jsonl  tb/  samples/  checkpoints/step_NNNNNNNN.{safetensors,json}  model/
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_state
from ..config import replace
from ..data import ImageDataset, load_dataset, to_float
from ..data.base import hold_out_val, limit_train
from ..data.binarize import binarize_static
from ..errors import BadInput
from ..files import LEGACY_FIELDS, legacy_row, within  # noqa: F401  (LEGACY_FIELDS: re-exported)
from ..models.base import has_fitted_prior
from .config import DataConfig, TrainConfig


def slug(spec: str) -> str:
    """A data spec as a directory-name part: `folder:/a/b/cats` -> `folder-cats`."""
    kind, _, arg = spec.partition(":")
    if kind in ("folder", "npz") and arg:
        spec = f"{kind}-{Path(arg.rstrip('/')).stem}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") or "data"


def new_run_dir(root: Path, preset: str, data_spec: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{4})-", p.name))]
    return root / f"{max(numbers, default=-1) + 1:04d}-{preset}-{slug(data_spec)}"


def read_summary(run_dir: Path) -> dict:
    """A run's summary.json in today's field names (older runs wrote step, images, precision)."""
    return legacy_row(json.loads((Path(run_dir) / "summary.json").read_text()), total=True)


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint stems (without suffix), oldest first."""
    d = run_dir / "checkpoints"
    if not d.is_dir():
        return []
    stems = sorted(p.with_suffix("") for p in d.glob("step_*.json"))
    return [s for s in stems if s.with_suffix(".safetensors").exists()
            and within(d, s.with_suffix(".json")) and within(d, s.with_suffix(".safetensors"))]


def init_from(model, run: str | Path) -> None:
    """Load the final weights of `run` into `model` (transfer learning, --init-from RUN).

    The nets must be the same: the same family and every tensor of the same shape (a run on
    RGB images cannot start a grey one, nor a width-64 run a width-32 one). Only the weights
    move: optimizer states, the step count and the data order start afresh.
    """
    from ..models.base import GenerativeModel

    run = Path(run)
    model_dir = run / "model" if (run / "model").is_dir() else run
    if not (model_dir / "config.json").exists():
        hint = " (still training? it has no final model yet)" if checkpoints(run) else ""
        raise BadInput(f"--init-from {run}: no trained model there{hint}; give a finished run directory")
    source = GenerativeModel.from_pretrained(model_dir)
    if source.name != model.name:
        raise BadInput(f"--init-from {run}: a {source.name} run cannot start a {model.name}; give a {model.name} run")
    # The nets' tensors only: an augmentation's state (ADA's p) belongs to the new run's setting.
    nets = lambda state: {k: v for k, v in state.items() if not k.startswith("augment.")}  # noqa: E731
    theirs, mine = nets(source.state_dict()), nets(model.state_dict())
    if (missing := sorted(set(mine) - set(theirs))) or (extra := sorted(set(theirs) - set(mine))):
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]} that this model does not"
        raise BadInput(f"--init-from {run}: its nets differ from this {model.name}'s (the run {what}); "
                       "use the same config (e.g. ema, reg)")
    for k, v in mine.items():
        if theirs[k].shape != v.shape:
            got, want = "x".join(map(str, theirs[k].shape)), "x".join(map(str, v.shape))
            raise BadInput(f"--init-from {run}: its nets differ from this {model.name}'s ({k} is {got}, here {want}); "
                           "the image size and channels, width and latent must match the run's (see --size, --channels, --set)")
    model.load_state_dict(theirs, strict=False)


def load_data(d: DataConfig) -> ImageDataset:
    """The dataset of a run: loaded, then its validation split held out (by d.seed), so that
    training, `ganvae eval RUN`, resume and compare all see the same train / val / test; with
    --limit, train is cut to its N images after that."""
    ds = load_dataset(d.spec, data_dir=d.data_dir, size=d.size, channels=d.channels, seed=d.seed)
    return limit_train(hold_out_val(ds, d.val_split, d.seed), d.limit, d.seed)


def legacy_val_split(saved: dict) -> None:
    """A config.json written before validation splits trained on the whole train split: rebuild
    it that way (val_split 0), not with today's default, or a resume would change its data."""
    if isinstance(saved.get("data"), dict):
        saved["data"].setdefault("val_split", 0)


def load_run(run: str | Path, device: str = "cpu", checkpoint: str = "last"):
    """(model, run config dict) of a run; `run` is a run dir or a model dir.

    checkpoint: "last" (the final model), "best" (the checkpoint `ganvae compare` or
    `train --keep-best` picked on the validation split, run/best), or a step number whose
    checkpoint is still in checkpoints/ (also of a run that is still training).
    """
    from ..models.base import GenerativeModel

    run = Path(run)
    if not run.exists():
        raise BadInput(f"{run}: no such run directory")
    checkpoint = str(checkpoint).strip().lower()
    if checkpoint.isdigit():
        return load_step(run, int(checkpoint), device)
    if checkpoint not in ("last", "best"):
        raise BadInput(f"--checkpoint {checkpoint}: give last, best or a step number")
    if checkpoint == "best":
        if not (run / "best" / "config.json").exists():
            raise BadInput(f"--checkpoint best: {run} has no best checkpoint (train --keep-best fd|elbo keeps one, as "
                           "ganvae compare does for its runs, on the validation split); use last or a step number")
        model = GenerativeModel.from_pretrained(run / "best", device=device)
        cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        return model, cfg
    model_dir = run / "model" if (run / "model").is_dir() else run
    if not within(run, model_dir / "model.safetensors") or not within(run, model_dir / "config.json"):
        raise BadInput(f"{run}: its model files point outside the run directory; refusing to load them")
    if not (model_dir / "config.json").exists():
        hint = " (still training? it has checkpoints but no final model)" if checkpoints(run) else ""
        raise BadInput(f"{run}: no trained model found{hint}")
    model = GenerativeModel.from_pretrained(model_dir, device=device)
    cfg = {}
    if (run / "config.json").exists() and model_dir != run:
        cfg = json.loads((run / "config.json").read_text())
    return model, cfg


def load_step(run: Path, step: int, device: str):
    """The model as checkpoint step_<step> of `run` holds it (its own config.json rebuilds it)."""
    from ..models.base import GenerativeModel, for_inference

    stems = {int(s.name[5:]): s for s in checkpoints(run)}
    if step not in stems:
        kept = ", ".join(map(str, sorted(stems))) or "none"
        raise BadInput(f"--checkpoint {step}: {run} has no checkpoint of step {step} (kept: {kept})")
    cfg = json.loads((run / "config.json").read_text())
    model = GenerativeModel.from_config(cfg["family"], cfg["model"], where=str(run / "config.json"))
    state = load_state(stems[step])
    model.load_state_dict(state["model"])
    model = for_inference(model, device)
    if has_fitted_prior(model) and not state["trainer"].get("prior_fitted"):
        # a checkpoint written before checkpoints carried their prior: refit it now
        refit_prior(model, cfg)
    return model, cfg


def refit_prior(model, cfg: dict) -> None:
    """Fit a loaded model's prior as its run's trainer would have at the end: the run's training
    images (rebuilt from its config.json `cfg`), its seed and its prior_images."""
    t = cfg.get("train", {})
    d = cfg.get("data", {})
    x = torch.from_numpy(training_images(run_dataset(cfg).train.x, d.get("binarize", "none"), d.get("seed", 0)))
    x = x.to(model.device)
    model.fit_prior(to_float(prior_images(x, t.get("prior_images", TrainConfig.prior_images), t.get("seed", 0))))


def prior_images(x_train: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The min(n, N) training images (uint8, (n, C, H, W)) a run fits its prior to: the first of a
    permutation drawn from `seed`, the same at every checkpoint and at the end."""
    idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:min(n, len(x_train))]
    return x_train[idx.to(x_train.device)]


def training_images(x: np.ndarray, binarize: str, seed: int) -> np.ndarray:
    """The uint8 training images (N, C, H, W) a run trains on: x itself, or with
    binarize="static" one fixed draw of it, reproduced from the data seed."""
    return binarize_static(x, seed) if binarize == "static" else x


def run_dataset(cfg: dict) -> ImageDataset:
    if not cfg:
        raise BadInput("this command needs the run's data; give a run directory, not a bare model directory")
    legacy_val_split(cfg)
    d = replace(DataConfig(), cfg["data"], where="config.json")
    return load_data(d)
