"""The Python API: train, evaluate and compare models, list them, and look at their images.

    import ganvae
    run, summary = ganvae.train("vae", "shapes", steps=500)
    scores = ganvae.evaluate(run, n=2000)                    # the dict `ganvae eval --json` writes
    model = ganvae.load(run)
    ganvae.save_grid(model.sample(64, seed=0), "samples.png")
    results = ganvae.compare(["vae", "dcgan"], "shapes", steps=500, out="cmp")
    run, summary = ganvae.train("cvae", images, labels=classes, steps=500)   # numpy / torch data

Each function is the twin of a command (train, eval, compare, models) and calls what that
command calls, so a number got here is the number the command prints. This module imports
only the standard library at the top: `import ganvae` stays fast, and torch, numpy and the
data loaders are imported by the first call that needs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .errors import BadInput

if TYPE_CHECKING:   # for the signatures only; imported inside the functions that use them
    import numpy as np
    import torch
    from PIL import Image

    from .data import ImageDataset
    from .evaluation import EvalConfig
    from .models.base import GenerativeModel

    Images = torch.Tensor | np.ndarray
    # what `data` may be besides a --data spec: images, (images, labels), a torch Dataset
    InMemoryData = Images | tuple[Images, Any] | torch.utils.data.Dataset


def _log(progress: bool) -> Callable[[str], None]:
    """Where messages go: stderr when the caller asked for progress, nowhere otherwise."""
    if progress:
        return lambda message: print(message, file=sys.stderr)
    return lambda message: None


# ------------------------------------------------------------------------------------ train

def train(preset: str, data: str | InMemoryData = "shapes", run_dir: str | Path | None = None, *,
          labels: Any = None, steps: int | None = None, epochs: float | None = None, budget: str | float | None = None,
          batch_size: int | None = None, seed: int | None = None, precision: str | None = None,
          device: str | None = None, overrides: dict | None = None, callbacks: list | None = None,
          nets: dict | None = None, resume: bool = False, runs_root: str | Path = "runs",
          dataset: ImageDataset | None = None, progress: bool = False, **options: Any) -> tuple[Path, dict]:
    """Train a model; the Python twin of `ganvae train`.

    Args:
        preset: a model name from list_models() (`vae`, `dcgan`, `wgan-gp`, ...).
        data: a --data spec (`shapes`, `fashion-mnist`, `folder:PATH`, `npz:PATH`, ...), or
            images in memory:
            - a numpy array or torch tensor, uint8 in [0, 255] or floats in [0, 1] (not [-1, 1]:
              give (x + 1) / 2), of shape (N, H, W), (N, C, H, W) or (N, H, W, C) with C 1 or 3,
              square unless data_size= resizes them;
            - a tuple (images, labels);
            - a torch.utils.data.Dataset whose items are an image or (image, label): iterated
              once and held in memory as one array.
            A tenth of the images, drawn by the data seed, is held out as the test split (the
            rule of npz:PATH), then the validation split (data_val_split) from the rest. The
            run keeps them as run_dir/data.npz and records `npz:<that file>` as its data, so
            ganvae.load, `ganvae eval RUN` and resume work as for any run; data.json beside it
            holds their sha256 fingerprint. Over 200 MB (data.memory.MAX_KEPT_BYTES) no copy is
            kept: the run reloads its data only when given the same images again (resume=True
            with them, ganvae.evaluate(run, data=images)).
        run_dir: the run directory (default runs_root/NNNN-<preset>-<data>; in-memory images:
            runs_root/NNNN-<preset>-memory).
        labels: integer class ids 0..K-1, one per in-memory image (cgan, cvae, ...).
        steps, epochs, budget: when to stop (one of them, or several: the first reached ends
            the run); budget is wall-clock time, "90s", "5m", "1h" or a number of seconds.
        batch_size, seed, precision ("fp32", "bf16", "fp16", "auto"), device ("auto", "cpu",
            "cuda", ...): the training settings; None keeps the default.
        overrides: dotted config overrides, as --set: {"beta": 4, "latent": 16}.
        callbacks: ganvae.callbacks.Callback objects or plain callables (docs/callbacks.md).
        nets: your own nets in place of the built-in ones, {role: ganvae.net(Class, **kwargs)}.
        resume: continue the run in run_dir from its last checkpoint.
        dataset: the already loaded dataset of `data` (saves loading it again).
        progress: show a progress bar on stderr.
        **options: any other TrainConfig field (log_every=..., checkpoint_every=...) and the
            data settings prefixed data_ (data_size=32, data_limit=1000, data_dir=...).
            keep_best="fd" or "elbo" (VAEs) scores every checkpoint on the validation split
            and keeps the best in run_dir/best (best_n samples or images; `--keep-best`).

    Returns:
        (run directory, summary dict: steps, images seen, time, final losses, ...; with
        keep_best, best: {metric, value, step}).

    Example:
        >>> run, summary = ganvae.train("vae", "shapes", steps=200, overrides={"latent": 16})
        >>> model = ganvae.load(run)
        >>> run, summary = ganvae.train("cvae", x_uint8, labels=y, steps=200)   # (N, 28, 28), (N,)
    """
    from .trainer import DataConfig, TrainConfig, data_option_field
    from .trainer import train as _train

    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    data_fields = {k for k in ("data_dir", *(f"data_{f.name}" for f in dataclasses.fields(DataConfig)))
                   if data_option_field(k)}
    unknown = sorted(k for k in options if k not in train_fields and data_option_field(k) is None)
    if unknown:
        raise BadInput(f"ganvae.train: unknown option {', '.join(map(repr, unknown))}; training options: "
                       f"{', '.join(sorted(train_fields))}; data options: {', '.join(sorted(data_fields))}")
    # None means "the default": the trainer leaves every None option at its config's default
    settings = dict(steps=steps, epochs=epochs, budget=budget, batch_size=batch_size, seed=seed,
                    precision=precision, device=device, **options)

    def run(spec: str, directory: str | Path | None) -> tuple[Path, dict]:
        return _train(preset, spec, directory, overrides=overrides, resume=resume, progress=progress,
                      runs_root=runs_root, callbacks=callbacks, dataset=dataset, nets=nets, **settings)

    if isinstance(data, str):
        if labels is not None:
            raise BadInput(f"ganvae.train: labels= go with images in memory; --data {data!r} brings its own labels "
                           "(or none)")
        return run(data, run_dir)
    if dataset is not None:
        raise BadInput("ganvae.train: dataset= is the loaded dataset of a --data spec; with images in memory as "
                       "data, leave it out")
    size = options.get("data_size") or (overrides or {}).get("data.size")
    return _train_in_memory(preset, data, labels, run_dir, runs_root, resume, size, run)


def _train_in_memory(preset: str, data: InMemoryData, labels: Any, run_dir: str | Path | None,
                     runs_root: str | Path, resume: bool, size: int | None,
                     run: Callable[[str, Path], tuple[Path, dict]]) -> tuple[Path, dict]:
    """train() on images in memory: they are kept in the run directory (data.memory.keep), or
    registered for the run to load while it trains when too large to keep."""
    from . import parallel
    from .data import memory
    from .trainer import checkpoints, new_run_dir

    mem = memory.as_in_memory(data, labels)
    if resume:
        if run_dir is None:
            raise BadInput("ganvae.train: resume=True continues the run in run_dir; give run_dir")
        info = memory.kept_info(Path(run_dir))
        if info is None:
            raise BadInput(f"ganvae.train: {run_dir} was not trained on images in memory; resume it without data "
                           "(its config.json names its data)")
        if info.get("fingerprint") != mem.fingerprint:
            raise BadInput(f"ganvae.train: these images (fingerprint {mem.fingerprint[:12]}) are not the ones "
                           f"{run_dir} was trained on ({str(info.get('fingerprint'))[:12]}); pass those"
                           f"{', or none: the run keeps them' if info.get('file') else ''}")
        with memory.registered(mem):   # (a run that keeps its images reads them from data.npz)
            return run("", Path(run_dir))
    memory.check_square(mem, size)
    if run_dir is None:
        if parallel.launched():   # every rank would number a directory of its own
            raise BadInput("ganvae.train: under torchrun, images in memory need run_dir= (the same on every rank)")
        run_dir = new_run_dir(Path(runs_root), preset, "memory")
    run_dir = Path(run_dir)
    if checkpoints(run_dir) or (run_dir / "model").exists():   # before data.npz is written over its own
        raise BadInput(f"ganvae.train: run_dir {run_dir} already holds a run; pass resume=True to continue it, or "
                       "another run_dir")
    spec, written = memory.keep(mem, run_dir, f"run_dir {run_dir}")
    try:
        with memory.registered(mem):
            return run(spec, run_dir)
    except BaseException:
        # a run that never started (a bad setting) leaves no directory behind, as with a spec
        if not (run_dir / "config.json").exists() and not parallel.launched():
            memory.discard(written)
        raise


# --------------------------------------------------------------------------------- evaluate

@dataclasses.dataclass
class _EvalRequest:
    """What every kind of input is scored with (evaluate's arguments, checked once)."""

    data: str | None
    cfg: EvalConfig
    device: Any                      # torch.device of the evaluator
    log: Callable[[str], None]
    data_dir: str | None = None
    size: int | None = None
    channels: int | None = None
    data_seed: int = 0
    checkpoint: str = "last"

    def dataset(self, size: int | None = None, channels: int | None = None) -> ImageDataset:
        """The `data` the samples are compared with; size and channels: the caller's, else these."""
        from .data import load_dataset

        if not self.data:
            raise BadInput("ganvae.evaluate: give data, the dataset the images are compared with "
                           "(e.g. data=\"shapes\"); only a run directory knows its own")
        return load_dataset(self.data, data_dir=self.data_dir, size=self.size or size,
                            channels=self.channels or channels, seed=self.data_seed)


def evaluate(model_or_samples: GenerativeModel | str | Path | Images, data: str | InMemoryData | None = None, *,
             n: int = 10_000, seed: int = 0, k: int = 5, nll_k: int | None = None,
             nll_images: int | None = None, nll_seconds: float = 60.0, batch: int = 500, device: str = "auto", data_dir: str | Path | None = None,
             size: int | None = None, channels: int | None = None, data_seed: int = 0,
             checkpoint: str | int = "last", json_out: str | Path | None = None, progress: bool = False) -> dict:
    """Score a model, a run or images against a dataset's test split; the twin of `ganvae eval`.

    Args:
        model_or_samples: what to score, one of
            - a run directory (str or Path): its final model, on the run's own data unless
              `data` names another;
            - a GenerativeModel (ganvae.load(run), a model you built): `n` samples of it;
            - images: a torch tensor or numpy array (N, C, H, W) or (N, H, W), either uint8 in
              [0, 255] or float in [-1, 1] (model output); C is 1 or 3;
            - a path to samples: an .npz file with an array `x` as above (uint8) or a folder
              of image files.
        data: the dataset to compare with (a --data spec, or images in memory as train takes
            them: scored against their held-out tenth); needed for all but a run. A run trained
            on images in memory, given those same images, is scored as on its own data.
        n: samples generated from a model or run (images given are scored all).
        seed: the seed of those samples and of the metrics' subsets.
        k: neighbours of precision / recall / density / coverage.
        nll_k, nll_images: importance samples and test images of a VAE's NLL bound; None
            sizes each to fit `nll_seconds` (up to 1000 and 100), a number is used as given.
        batch: images per forward pass.
        device: where the evaluator (and a run's model) runs: "auto", "cpu", "cuda", ...
        data_dir, size, channels, data_seed: how `data` is loaded (as --data-dir, --size,
            --channels, --data-seed); a model's own size and channels by default.
        checkpoint: a run's weights to score: "last" (the final model), "best" (compare's or
            train(keep_best=...)'s pick on the validation split) or a step whose checkpoint is kept.
        json_out: also write the result to this JSON file. Unlike `ganvae eval RUN`, nothing
            is written into a run directory.
        progress: print what it is doing (loading, training an evaluator) on stderr.

    Returns:
        The dict `ganvae eval --json` writes: source, model, data, n, evaluator, metrics (fd,
        kid, precision, recall, ...), floor (the same metrics for real training images),
        higher_is_better, seconds; encoder and likelihood metrics for models that have them.

    Example:
        >>> model = ganvae.load(run)
        >>> ganvae.evaluate(model, "shapes", n=2000)["metrics"]["fd"]
        >>> ganvae.evaluate(model.sample(500, seed=0), "shapes")["metrics"]["fd"]
    """
    from .config import replace
    from .evaluation import EvalConfig
    from .files import write_json
    from .trainer import resolve_device

    cfg = replace(EvalConfig(), {"n": n, "k": k, "nll_k": nll_k, "nll_images": nll_images,
                                 "nll_seconds": nll_seconds, "seed": seed, "batch": batch}, where="ganvae.evaluate")
    cfg.validate()
    with contextlib.ExitStack() as held:
        if data is not None and not isinstance(data, str):   # images in memory: `memory:<fingerprint>`
            from .data import memory

            mem = memory.as_in_memory(data)
            data = held.enter_context(memory.registered(mem))
            if isinstance(model_or_samples, (str, os.PathLike)) and \
                    (memory.kept_info(Path(model_or_samples)) or {}).get("fingerprint") == mem.fingerprint:
                data = None   # the run's own images: its own split and settings (from config.json)
        request = _EvalRequest(data=data, cfg=cfg, device=resolve_device(device), log=_log(progress),
                               data_dir=str(data_dir) if data_dir is not None else None, size=size,
                               channels=channels, data_seed=data_seed, checkpoint=str(checkpoint).strip().lower())
        for _, accepts, scorer in _evaluate_inputs():
            if accepts(model_or_samples):
                result = scorer(model_or_samples, request)
                break
        else:
            raise BadInput(f"ganvae.evaluate: model_or_samples is a {type(model_or_samples).__name__}; give a model, "
                           "a run directory, a torch tensor or numpy array of images, or an .npz file or folder of "
                           "images")
    if json_out is not None:
        write_json(Path(json_out), result)
    return result


def _evaluate_inputs() -> tuple[tuple[str, Callable[[Any], bool], Callable[[Any, _EvalRequest], dict]], ...]:
    """What evaluate accepts: (kind, test, scorer), tried in order. A table rather than a chain
    of ifs, so that another kind of input is one more row."""
    import numpy as np
    import torch

    from .models.base import GenerativeModel

    return (("model", lambda x: isinstance(x, GenerativeModel), _evaluate_model),
            ("path", lambda x: isinstance(x, (str, os.PathLike)), _evaluate_path),
            ("images", lambda x: isinstance(x, (torch.Tensor, np.ndarray)), _evaluate_images))


def _evaluate_model(model: GenerativeModel, req: _EvalRequest, source: str | None = None) -> dict:
    """A model's n samples scored against `data` (a bare model records no data of its own)."""
    from .evaluation import evaluate_model

    # a translation model's data are pairs whose two sides need not share the model's size and
    # channels; a generative model is scored at its own
    own = {} if model.translation else {"size": model.config.size, "channels": model.config.channels}
    return evaluate_model(model, req.dataset(**own), req.cfg, req.device, req.log, source=source or "")


def _evaluate_path(path: str | os.PathLike, req: _EvalRequest) -> dict:
    """A run directory (config.json there), a model directory, or samples in a file or folder."""
    import json

    from .evaluation import evaluate_run, evaluate_samples
    from .trainer import load_run

    p = Path(path)
    if not p.exists():
        raise BadInput(f"ganvae.evaluate: {p}: no such run directory, .npz file or folder")
    if (p / "config.json").is_file():
        if req.data:   # the run's model against other data
            return _evaluate_model(load_run(p, device=str(req.device), checkpoint=req.checkpoint)[0], req,
                                   source=str(p))
        try:
            saved = json.loads((p / "config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadInput(f"{p / 'config.json'}: not valid JSON ({e})") from None
        if not isinstance(saved, dict) or "data" not in saved:
            raise BadInput(f"ganvae.evaluate: {p} is a model directory, which does not record the data it was "
                           "trained on: give data=...")
        return evaluate_run(p, req.cfg, req.device, req.log, checkpoint=req.checkpoint)
    if p.is_dir() or p.suffix == ".npz":
        return evaluate_samples(p, req.dataset(), req.cfg, req.device, req.log)
    raise BadInput(f"ganvae.evaluate: {p}: give a run directory, an .npz file (array x) or a folder of images")


def _evaluate_images(x: Images, req: _EvalRequest) -> dict:
    """Images in memory, scored all against `data` as `ganvae eval --samples` scores a file."""
    from .evaluation import note_skipped, eval_result, get_evaluator, score

    images = as_uint8(x, "model_or_samples")
    ds = req.dataset()
    ev = get_evaluator(ds, device=req.device, log=req.log)
    skipped: dict[str, str] = {}   # as `ganvae eval`: a metric too little data cannot support is noted
    res = score(images, ds, ev, req.cfg, req.log, skipped=skipped)
    note_skipped(skipped, req.log)
    return eval_result(res, ev, ds, req.cfg, source=f"{type(x).__module__}.{type(x).__name__}", model=None,
                   skipped=skipped)


# ---------------------------------------------------------------------------------- images

def as_uint8(x: Images, name: str = "x") -> np.ndarray:
    """Images as uint8 (N, C, H, W), from a torch tensor or numpy array (N, C, H, W) or (N, H, W)
    of uint8 in [0, 255] or floats in [-1, 1] (what models output). Anything else is a BadInput
    that names the argument `name`; nothing is rescaled or transposed on a guess."""
    import numpy as np
    import torch

    from .data import to_uint8

    if isinstance(x, np.ndarray):
        # one conversion path for both: an array and the tensor of it give the same bytes
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise BadInput(f"{name}: a numpy array of {x.dtype}; give uint8 in [0, 255] or floats in [-1, 1]")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise BadInput(f"{name}: a {type(x).__name__}; give a torch tensor or numpy array of images "
                       "(N, C, H, W) or (N, H, W)")
    shape = tuple(x.shape)
    if x.ndim == 3:     # (N, H, W): grey images
        x = x[:, None]
    if x.ndim != 4 or len(x) == 0:
        raise BadInput(f"{name}: shape {shape}; give a non-empty batch (N, C, H, W) or (N, H, W) "
                       "(one image: x[None])")
    if x.shape[1] not in (1, 3):
        hint = (" (channels last? x.permute(0, 3, 1, 2) for a tensor, x.transpose(0, 3, 1, 2) for an array)"
                if x.shape[-1] in (1, 3) else "")
        raise BadInput(f"{name}: shape {shape}: {x.shape[1]} channels; images have 1 (grey) or 3 (RGB){hint}")
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        return x.numpy()
    if not x.is_floating_point():
        raise BadInput(f"{name}: a tensor of {x.dtype}; give uint8 in [0, 255] or floats in [-1, 1]")
    if not bool(torch.isfinite(x).all()):
        raise BadInput(f"{name}: holds NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    # a rounding error's worth past the ends is model output (to_uint8 clamps it); more is
    # another scale ([0, 1] or [0, 255] floats), which would be scored wrong, not refused
    if lo < -1 - 1e-3 or hi > 1 + 1e-3:
        raise BadInput(f"{name}: float values in [{lo:.3g}, {hi:.3g}]; floats must be in [-1, 1] (model output); "
                       "give [0, 1] images as x * 2 - 1, or uint8 [0, 255] as uint8")
    return to_uint8(x).numpy()


def to_pil(x: Images) -> list[Image.Image]:
    """Model output or images as one PIL image each: mode "L" for grey, "RGB" for colour.

    Args:
        x: a torch tensor or numpy array (N, C, H, W) or (N, H, W), uint8 in [0, 255] or
            float in [-1, 1] (what model.sample returns); C is 1 or 3.

    Returns:
        N images of H x W pixels.

    Example:
        >>> images = ganvae.to_pil(model.sample(4, seed=0))
        >>> images[0].save("first.png")
    """
    from PIL import Image

    u8 = as_uint8(x, "x")
    # PIL wants (H, W) for grey and (H, W, 3) for colour
    return [Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)) for im in u8]


def save_grid(x: Images, path: str | Path, nrow: int | None = None) -> Path:
    """Tile images into one grid and write it as a PNG (the grids runs write, 2-pixel gaps).

    Args:
        x: a torch tensor or numpy array (N, C, H, W) or (N, H, W), uint8 in [0, 255] or
            float in [-1, 1] (what model.sample returns); C is 1 or 3.
        path: the .png file to write (written atomically).
        nrow: images per row (default: ceil(sqrt(N))).

    Returns:
        The path written.

    Example:
        >>> ganvae.save_grid(model.sample(64, seed=0), "samples.png", nrow=8)
    """
    from .images import save_grid as _save_grid

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise BadInput(f"save_grid: path {str(path)!r}: the grid is written as PNG; give a name ending in .png")
    if nrow is not None and (isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1):
        raise BadInput(f"save_grid: nrow={nrow!r}: give a positive number of images per row")
    return _save_grid(path, as_uint8(x, "x"), nrow)


# ---------------------------------------------------------------------------------- compare

def compare(models: str | Sequence[str], data: str | InMemoryData = "shapes", *, out: str | Path,
            labels: Any = None, steps: int | None = None, budget: str | float | None = None,
            epochs: float | None = None,
            seeds: int = 1, tasks: Sequence[str] = ("generate",), sweep: str | None = None,
            overrides: dict | None = None, device: str = "auto", progress: bool = False,
            **settings: Any) -> dict:
    """Train several models under one budget, score them all and write a report; the twin of
    `ganvae compare`. Re-running with the same `out` resumes: finished models are skipped.

    Args:
        models: model names from list_models(), as a list or "vae,dcgan"; a variant of one is
            "PRESET:KEY=VALUE" ("dcgan:augment=ada").
        data: the --data spec every model trains on and is scored against, or images in
            memory as train takes them (kept as out/data.npz, or registered while it runs
            when over 200 MB).
        out: the output directory: runs/, results.json, results.csv, report.html.
        labels: integer class ids, one per in-memory image.
        steps, budget, epochs: the budget every model gets (exactly one): steps, wall-clock
            time ("90s", "5m" or seconds) or epochs.
        seeds: training seeds per model (scores are their mean and spread).
        tasks: what each model is scored on: "generate" (always) and registered tasks
            ("probe", "compress", "complete", ...).
        sweep: "KEY=V1,V2,...": every model once per value ("beta=0.5,1,4").
        overrides: config overrides for every model, as --set.
        device: "auto", "cpu", "cuda", ...
        progress: progress bars and messages on stderr.
        **settings: any other CompareConfig field: eval_n, curve_points, curve_n, batch_size,
            seed, data_seed, precision, nll_k, nll_images, nll_seconds, val_split, limit, size, channels,
            data_dir, task_configs. eval_n, curve_n and nll_seconds left None are sized to
            the training time (results["scoring"] says to what and why).

    Returns:
        results.json's content: config, floor (the real-data scores), rows (one per model and
        seed: status, steps, final and best metrics, timings), timing, tasks, scoring.

    Example:
        >>> res = ganvae.compare(["ae", "vae"], "shapes", steps=300, out="cmp", eval_n=2000)
        >>> [(r["model"], r["final"]["fd"]) for r in res["rows"]]
    """
    from .registry import expand_sweep
    from .comparison import CompareConfig, config_from
    from .comparison import compare as _compare
    from .trainer import resolve_device

    names = models.split(",") if isinstance(models, str) else list(models)
    if not all(isinstance(m, str) for m in names):
        raise BadInput(f"ganvae.compare: models={models!r}; give model names, e.g. ['vae', 'dcgan']")
    explicit = {"data", "models", "steps", "budget", "epochs", "seeds", "tasks", "overrides"}
    known = {f.name for f in dataclasses.fields(CompareConfig)} - explicit
    unknown = sorted(set(settings) - known)
    if unknown:
        raise BadInput(f"ganvae.compare: unknown setting {', '.join(map(repr, unknown))}; "
                       f"settings: {', '.join(sorted(known))}")
    values = {**settings, "data": data, "models": expand_sweep([m.strip() for m in names if m.strip()], sweep),
              "steps": steps, "budget": budget, "epochs": epochs, "seeds": seeds, "tasks": tasks,
              "overrides": dict(overrides or {})}

    def run(spec: str) -> dict:
        cfg = config_from({**values, "data": spec}, where="ganvae.compare")     # the command's path too
        return _compare(cfg, Path(out), progress=progress, device=resolve_device(device), log=_log(progress))

    if isinstance(data, str):
        if labels is not None:
            raise BadInput(f"ganvae.compare: labels= go with images in memory; --data {data!r} brings its own labels "
                           "(or none)")
        return run(data)
    from .data import memory

    mem = memory.as_in_memory(data, labels)
    memory.check_square(mem, settings.get("size"))
    spec, written = memory.keep(mem, Path(out), f"out {out}")
    try:
        with memory.registered(mem):
            return run(spec)
    except BaseException:
        if not (Path(out) / "compare.json").exists():   # it never started: leave no --out behind
            memory.discard(written)
        raise


# ------------------------------------------------------------------------------------ models

def list_models() -> list[dict]:
    """Every model name train and compare accept, with its family and a one-line description;
    the rows of `ganvae models --json`.

    Returns:
        [{"name": "vae", "family": "vae", "description": "..."}, ...] in the registry's order.

    Example:
        >>> [m["name"] for m in ganvae.list_models() if m["family"] == "gan"]
        ['gan', 'dcgan', 'wgan', 'wgan-gp', 'cgan', 'sngan']
    """
    from .registry import PRESET_HELP, preset_names, resolve

    return [{"name": n, "family": resolve(n)[0].name, "description": PRESET_HELP.get(n, "")} for n in preset_names()]


__all__ = ["train", "evaluate", "compare", "list_models", "to_pil", "save_grid", "as_uint8"]
