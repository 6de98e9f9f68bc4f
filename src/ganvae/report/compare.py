"""`ganvae compare`: every model on the same data, nets, budget and seeds; then the full suite.

Layout of the output directory (the report reads only these files):

    compare.json                 the comparison's config (a re-run must match it to resume)
    floor.json                   the real-data floor and the evaluator used
    runs/<model>-seed<s>/        a normal run directory, plus
        curve.jsonl              quick FDs on the validation split during training (FD vs compute)
        best/                    the model at the best curve point (save_pretrained)
        figures/*.png            samples, reconstructions, interpolations, traversals, embedding
        result.json              final and best-checkpoint metrics, cost; written last
    results.json, results.csv    one row per model and seed; results.json's `splits` says which
                                 split every number comes from
    report.html                  self-contained report

Two phases keep the test split out of every choice. First every model trains, its curve is
measured and its best checkpoint chosen on the validation split (held out of train by
--val-split; the models never train on it). Only then is the test split touched: the real-data
floor and the final and best models' scores. A test score that picked the checkpoint it reports
would be optimistic.

Models run one after another; a re-run of the same command skips finished runs (result.json
present), resumes an interrupted one from its last checkpoint, and scores trained ones.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import parallel
from ..data import ImageDataset, to_float, to_uint8
from ..data.base import AUTO_VAL_MAX, parse_val_split
from ..errors import BadInput, GanvaeError
from ..evaluation import (EvalConfig, directions, encoder_metrics, generate, likelihood_info, plan_likelihood,
                          real_class_hist, real_features, score, skipped_line)
from ..evaluators import Evaluator, get_evaluator
from ..files import atomic_write, dir_lock, read_jsonl, write_json
from ..images import save_grid, translation_grid
from ..metrics import fd_from_features
from ..nets import count_params
from ..registry import parse_model_spec, resolve
from . import scoring
from .curves import CurveRecorder


@dataclass
class CompareConfig:
    data: str = "shapes"
    models: tuple[str, ...] = ("ae", "vae", "dcgan", "vaegan")
    budget: str | None = None
    steps: int | None = None
    epochs: float | None = None
    seeds: int = 1
    seed: int = 0               # the first training seed: runs use seed, seed + 1, ... seed + seeds - 1
    data_seed: int = 0          # the seed of the data's random splits (validation, --limit) and procedural data
    batch_size: int = 64
    precision: str = "fp32"
    overrides: dict = field(default_factory=dict)
    # samples for the final and best-checkpoint metrics; None: sized to the training time
    # (report/scoring.py), once per comparison, in OUT/scoring.json
    eval_n: int | None = None
    curve_points: int = 5       # quick evaluations during training (the last at the end)
    # samples per quick evaluation (None: sized as eval_n is): the curve and the best-checkpoint
    # choice compare points of one model with each other, so the FD's bias at small n (the same
    # at every point) cancels
    curve_n: int | None = None
    # end a model's training once its curve's FD stands this fraction above its best for two
    # points in a row (0.1: 10%), the point where a GAN's D starts to overfit; None: never
    stop_on_rise: float | None = None
    # the likelihood models' IWAE bound: None sizes k and the image count once per comparison to
    # fit nll_seconds per scoring (up to 100 and 200), measured on the first such model and kept
    # in OUT/likelihood.json, so every model's NLL is the same bound on the same images;
    # nll_seconds None: 5% of the training time within 5..20 s (report/scoring.py)
    nll_k: int | None = None
    nll_images: int | None = None
    nll_seconds: float | None = None
    data_dir: str | None = None
    size: int | None = None
    channels: int | None = None
    val_split: int | float | str = "auto"  # held out of train for curves and best-checkpoint choice
    limit: int | None = None    # train on N images (--limit); scores stay against the full data
    # generate (always) and the registered tasks (ganvae.tasks) every model is scored on, with
    # {task: its Config as a dict}; adding a task to a finished comparison runs only that task
    tasks: tuple[str, ...] = ("generate",)
    task_configs: dict = field(default_factory=dict)

    def validate(self) -> None:
        from ..tasks import get_task, parse_tasks

        parse_val_split(self.val_split)
        parse_tasks(self.tasks)
        for name, tc in self.task_configs.items():
            task_config(get_task(name), tc).validate()
        if not self.models:
            raise BadInput("--models: name at least one model")
        for m in self.models:
            resolve(m)  # unknown model -> BadInput before any work
        if len(set(self.models)) != len(self.models):
            raise BadInput(f"--models {','.join(self.models)}: a model is named twice")
        shared = sum(x is not None for x in (self.budget, self.steps, self.epochs))
        # a model may carry its own stopping point (`vae:train.steps=1234`: the replay of a
        # wall-clock comparison); with one for every model no shared budget is needed
        if shared > 1 or (shared == 0 and not all(own_stop(m) for m in self.models)):
            raise BadInput("give exactly one budget for every model: --budget 3m, --steps N or --epochs E")
        if self.seeds < 1 or self.seeds > 100:
            raise BadInput(f"--seeds {self.seeds}: choose 1..100")
        if self.stop_on_rise is not None and not 0 < self.stop_on_rise < 10:
            raise BadInput(f"--stop-on-rise {self.stop_on_rise}: give a fraction above the best FD, e.g. 0.1 for 10%")
        if self.stop_on_rise is not None and self.curve_points < 4:
            raise BadInput(f"--stop-on-rise needs a curve to watch: give --curve-points 4 or more "
                           f"(now {self.curve_points})")
        if self.nll_seconds is not None and not self.nll_seconds > 0:
            raise BadInput(f"--nll-seconds {self.nll_seconds}: give a positive number of seconds")
        for name in ("eval_n", "curve_points", "curve_n", "nll_k", "nll_images", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")

    @property
    def budget_kind(self) -> str:
        if self.budget:
            return f"wall-clock training time of {self.budget} per model"
        if self.steps:
            return (f"{self.steps} steps per model (a step is one update of each network, and for a GAN one "
                    f"generator update after its n_critic discriminator updates, each on a batch of "
                    f"{self.batch_size})")
        if self.epochs:
            return f"{self.epochs} epochs (passes over the training split) per model"
        return "each model's own stopping point (PRESET:train.steps=N in --models)"


def _selection_split(ds: ImageDataset, ev: Evaluator, data_seed: int, log) -> tuple[dict, np.ndarray]:
    """Which real images the curves and the best-checkpoint choice are measured against, and
    their features; returns (results.json's `splits` entry, features).

    The validation split when there is one. With --val-split 0 there is no honest held-out
    set: the curves are measured against a fixed slice of the training images (labelled
    "train"), and no best checkpoint is picked at all, because a checkpoint chosen by its FD to
    the very images it was fitted to favours memorising them, and one chosen on the test split
    makes its test score optimistic. Only the final model is scored then.
    """
    splits = {"curve": "val", "best_selection": "val", "final": "test", "best": "test",
              "val_images": 0, "test_images": len(ds.test), "train_images": len(ds.train),
              "data_seed": data_seed}
    if "limit" in ds.info:  # --limit: how few images trained, of how many
        splits["limit"] = dict(ds.info["limit"])
    if ds.val is not None:
        splits["val_images"] = splits["curve_images"] = len(ds.val)
        feats, _ = real_features(ev, ds.val.x, "val", log)
        return splits, feats
    n = min(len(ds.train), AUTO_VAL_MAX)
    idx = np.sort(np.random.default_rng(data_seed).permutation(len(ds.train))[:n])
    splits.update(curve="train", best_selection=None, best=None, curve_images=n)
    feats, _ = real_features(ev, ds.train.x[idx], "train-curve", log)
    return splits, feats


def own_stop(spec: str) -> dict:
    """The stopping point a model spec carries itself: `vae:train.steps=1234` -> {"steps": "1234"}."""
    own = parse_model_spec(spec)[1]
    return {k: own[f"train.{k}"] for k in ("steps", "epochs", "budget") if f"train.{k}" in own}


def _run_name(model: str, seed: int) -> str:
    """The run directory of a model spec (`dcgan:augment=ada` -> dcgan_augment=ada-seed0)."""
    return f"{re.sub(r'[^A-Za-z0-9.=+-]+', '_', model)}-seed{seed}"


def _train_one(cfg: CompareConfig, out: Path, preset: str, seed: int, ds: ImageDataset, ev: Evaluator,
               real_curve_feats: np.ndarray, splits: dict, progress: bool, log, device="cpu") -> Path:
    from ..trainer import checkpoints, train

    run_dir = out / "runs" / _run_name(preset, seed)
    # (under DDP only rank 0 records the curve; the other ranks have no evaluator)
    size = lambda trainer, inputs: _scoring(cfg, out, trainer.model, ev, inputs, seed,  # noqa: E731
                                            scoring.projected_seconds(trainer), log)["curve_n"]
    # auto scoring: each curve point's prior on images sized to the budget too (as given: all)
    prior = None if cfg.curve_n is not None else \
        (lambda trainer: scoring.curve_prior_images(run_dir / "curve_plan.json", trainer, cfg.curve_points))
    recorder = CurveRecorder(run_dir, ds, ev, real_curve_feats, cfg.curve_points, cfg.curve_n, seed,
                             split=splits["curve"], select=splits["best_selection"] is not None,
                             stop_on_rise=cfg.stop_on_rise, size=size, prior_images=prior) \
        if parallel.world().is_main else None
    callbacks = [recorder] if recorder is not None else []
    options = dict(steps=cfg.steps, epochs=cfg.epochs, budget=cfg.budget, batch_size=cfg.batch_size, seed=seed,
                   precision=cfg.precision, sample_every=10**9, checkpoint_every=500, log_every=25,
                   device=str(device))
    name, own = parse_model_spec(preset)   # a variant's own overrides win over --set's
    stop = own_stop(preset)
    if stop:   # its own stopping point replaces the shared one
        options.update({"steps": None, "epochs": None, "budget": None, **stop})
        own = {k: v for k, v in own.items() if k.removeprefix("train.") not in stop}
    resuming = bool(checkpoints(run_dir))
    t0 = time.perf_counter()
    if resuming:
        log(f"{_run_name(preset, seed)}: resuming from its last checkpoint")
        train("", run_dir=run_dir, resume=True, progress=progress, callbacks=callbacks, dataset=ds,
              **{k: v for k, v in options.items() if k in ("steps", "epochs", "budget", "device")})
    else:
        if run_dir.exists() and parallel.world().is_main:  # killed before its first checkpoint: start again
            import shutil

            shutil.rmtree(run_dir)
        # the run's config.json records the split, so `ganvae eval RUN` rebuilds the same data
        data_opts = {f"data_{k}": getattr(cfg, k) for k in ("data_dir", "size", "channels", "val_split", "limit")}
        data_opts["data_seed"] = cfg.data_seed
        train(name, cfg.data, run_dir, overrides={**shared_overrides(cfg, name), **own}, progress=progress,
              callbacks=callbacks,
              dataset=ds, **options, **{k: v for k, v in data_opts.items() if v is not None})
    # wall-clock seconds of this phase, summed over resumes: training, curve points, and the rest
    # (start-up, checkpoints, logs) come apart in _timing
    path = run_dir / "phase1_seconds.json"
    before = json.loads(path.read_text())["seconds"] if resuming and path.exists() else 0.0
    if parallel.world().is_main:
        write_json(path, {"seconds": round(before + time.perf_counter() - t0, 3)})
    return run_dir


def _timing(run_dir: Path, summary: dict, scoring: float, best_scoring: float, figures: float) -> dict:
    """Where one model's wall-clock time went, in seconds: `train` is the budgeted training
    time itself; everything else is what the comparison spent around it."""
    curve = sum(r.get("eval_seconds", 0.0) for r in read_jsonl(run_dir / "curve.jsonl"))
    phase1 = run_dir / "phase1_seconds.json"
    wall = json.loads(phase1.read_text())["seconds"] if phase1.exists() else None
    train = summary["train_seconds"]
    other = max(0.0, wall - train - curve) if wall is not None else None
    return {"train": round(train, 2), "curve": round(curve, 2),
            "train_other": None if other is None else round(other, 2),
            "final_scoring": round(scoring, 2), "best_scoring": round(best_scoring, 2), "figures": round(figures, 2)}


def _figures(model, run_dir: Path, ds: ImageDataset, seed: int) -> dict[str, str]:
    """The pictures of one model, as PNG files in run_dir/figures; returns {kind: file name}."""
    from ..visualize import encode_all, interpolate, plot_embedding, project_2d, traverse

    fig = run_dir / "figures"
    out = {}
    gen = torch.Generator().manual_seed(seed)
    if model.translation:  # what it makes of test inputs: input | translation | target rows
        a = ds.test.a[:32]
        made = generate(model, len(a), seed, 500, inputs=a)
        save_grid(fig / "samples.png", translation_grid(a, made, ds.test.x[:32] if ds.test.paired else None), nrow=8)
        return {"samples": "samples.png"}
    save_grid(fig / "samples.png", to_uint8(model.sample(64, generator=gen)).cpu().numpy())
    out["samples"] = "samples.png"
    x = to_float(torch.from_numpy(ds.test.x[:2000])).to(model.device)
    if getattr(model, "has_encoder", False):
        with torch.no_grad():
            x_hat = model.reconstruct(x[:32])
        pairs = [t for i in range(0, 32, 8) for t in (x[i:i + 8], x_hat[i:i + 8])]
        save_grid(fig / "reconstructions.png", to_uint8(torch.cat(pairs)).cpu().numpy(), nrow=8)
        out["reconstructions"] = "reconstructions.png"
    imgs = interpolate(model, x[:16] if getattr(model, "has_encoder", False) else None, 6, 10,
                       torch.Generator().manual_seed(seed))
    save_grid(fig / "interpolations.png", to_uint8(imgs).cpu().numpy(), nrow=10)
    out["interpolations"] = "interpolations.png"
    if getattr(model, "has_encoder", False):
        # every model with an encoder (ae, aae, bigan too): `traverse` measures units in the
        # posterior's prior where there is one, else in the codes' own spread over x
        imgs, order = traverse(model, x[:1000], min(8, model.config.latent), 11)
        if ds.test.factors is not None:   # known factors: each row labelled with the one its dim captures
            from ..visualize import factor_labels, save_labelled_grid

            labels = factor_labels(model, x[:1000], ds.test.factors[:len(x[:1000])], ds.info["factors"]["names"],
                                   order)
            save_labelled_grid(fig / "traversals.png", to_uint8(imgs).cpu().numpy(), 11, labels)
        else:
            save_grid(fig / "traversals.png", to_uint8(imgs).cpu().numpy(), nrow=11)
        out["traversals"] = "traversals.png"
    if getattr(model, "has_encoder", False):
        xy = project_2d(encode_all(model, x), "pca", seed)
        y = ds.test.y[:len(x)] if ds.test.y is not None else None
        plot_embedding(fig / "embedding.png", xy, y, ds.classes, "test latents (PCA)")
        out["embedding"] = "embedding.png"
    return out


def _scoring(cfg: CompareConfig, out: Path, model, ev, inputs, seed: int, train_seconds: float, log) -> dict:
    """The comparison's sample counts and NLL seconds: as given, else sized once to the first
    model's training time and kept in OUT/scoring.json (report/scoring.py)."""
    return scoring.plan(out / "scoring.json", cfg, model, ev, inputs, seed, train_seconds, log)


def _likelihood_plan(cfg: CompareConfig, out: Path, model, ds, nll_seconds: float,
                     log) -> tuple[int | None, int | None]:
    """The comparison's one (k, images) for the IWAE bound: as given, else sized on the first
    likelihood model scored and kept in OUT/likelihood.json for the rest (and a resumed run)."""
    if not getattr(model, "has_likelihood", False) or (cfg.nll_k is not None and cfg.nll_images is not None):
        return cfg.nll_k, cfg.nll_images
    path = out / "likelihood.json"
    if not path.exists():
        ecfg = EvalConfig(nll_k=cfg.nll_k, nll_images=cfg.nll_images, nll_seconds=nll_seconds,
                          nll_k_target=100, nll_images_target=200)
        x = torch.from_numpy(ds.test.x[:min(len(ds.test), ecfg.nll_images or ecfg.nll_images_target)])
        plan = plan_likelihood(model, to_float(x.to(model.device)), ecfg)
        write_json(path, {**plan, "measured_on": model.name})
        log(f"likelihood bound: k={plan['k']} on {plan['images']} test images for every model, sized to "
            f"--nll-seconds {nll_seconds:g} at {plan['decodes_per_second']:.0f} decodes/s of {model.name}")
    plan = json.loads(path.read_text())
    return plan["k"], plan["images"]


def _score_model(model, ds, ev, cfg: CompareConfig, seed: int, log, binarize: str, out: Path,
                 train_seconds: float) -> dict:
    sizes = _scoring(cfg, out, model, ev, ds.test.a, seed, train_seconds, log)
    nll_k, nll_images = _likelihood_plan(cfg, out, model, ds, sizes["nll_seconds"], log)
    ecfg = EvalConfig(n=sizes["eval_n"], nll_k=nll_k, nll_images=nll_images, nll_seconds=sizes["nll_seconds"],
                      nll_k_target=100, nll_images_target=200, seed=seed)
    fake = generate(model, ecfg.n, seed, 500, inputs=ds.test.a)
    # a metric too few test images cannot support is left out and named (results.json: skipped),
    # the rest of the model's scores kept, as `ganvae eval` does
    skipped: dict[str, str] = {}
    res = score(fake, ds, ev, ecfg, log, with_floor=False, skipped=skipped)
    took: dict = {}
    res["metrics"].update(encoder_metrics(model, ds, ecfg, log=lambda m: None, binarize=binarize, skipped=skipped,
                                          seconds=took))
    res["likelihood"] = likelihood_info(model, res["metrics"], binarize, took.get("likelihood"))
    if skipped:
        res["skipped"] = skipped
        log(f"{model.name}: warning: {skipped_line(skipped)}")
    return res


def _best_model(best_dir: Path, point: dict, run_cfg: dict, device):
    """The best checkpoint as scored on the test split: a prior its curve point fitted on fewer
    images than the final model's (auto scoring) is refitted on the run's full set first, so
    best and final are scored alike, and saved back so runs/*/best samples as scored."""
    from ..models.base import GenerativeModel
    from ..trainer import refit_prior

    best = GenerativeModel.from_pretrained(best_dir, device=device)
    if point.get("prior_images") is not None:
        refit_prior(best, run_cfg)
        best.save_pretrained(best_dir)
        write_json(best_dir / "point.json", {**point, "prior_images": None, "prior_refitted": True})
    return best


def _finish_one(cfg: CompareConfig, out: Path, preset: str, seed: int, ds, ev, log, device="cpu") -> dict:
    from ..models.base import GenerativeModel
    from ..trainer import read_summary

    run_dir = out / "runs" / _run_name(preset, seed)
    model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
    summary = read_summary(run_dir)
    binarize = json.loads((run_dir / "config.json").read_text()).get("data", {}).get("binarize", "none")
    t0 = time.perf_counter()
    final = _score_model(model, ds, ev, cfg, seed, log, binarize, out, summary["train_seconds"])
    t1 = time.perf_counter()
    figures = _figures(model, run_dir, ds, seed)
    t2 = time.perf_counter()
    run_cfg = json.loads((run_dir / "config.json").read_text())
    row = {"model": preset, "seed": seed, "family": model.name, "params": count_params(model),
           # transfer (--init-from): where the weights came from, for the report to say
           "init_from": run_cfg.get("train", {}).get("init_from"),
           "steps": summary["steps"], "images_seen": summary["images_seen"], "train_seconds": summary["train_seconds"],
           "images_per_second": summary["images_per_second"], "final": final["metrics"],
           # optimizer updates by network: a WGAN's step is 1 G and 5 D updates on 5 batches
           "updates": summary.get("updates", {}), "dtype": summary.get("dtype"), "likelihood": final["likelihood"],
           "class_hist": final.get("class_hist"), "figures": figures, "status": "ok"}
    if final.get("skipped"):
        row["skipped"] = final["skipped"]
    if summary.get("stopped_early"):   # --stop-on-rise (or a callback) ended it before its budget
        row["stopped_early"] = summary["stopped_early"]
    best_dir = run_dir / "best"
    if (best_dir / "point.json").exists():
        point = json.loads((best_dir / "point.json").read_text())
        curve_last = read_jsonl(run_dir / "curve.jsonl")
        if curve_last and point["step"] == curve_last[-1]["step"]:
            row["best"] = dict(final["metrics"])  # the last point is the best: same model
            if point.get("prior_images") is not None:   # with the final model's full prior
                model.save_pretrained(best_dir)
                write_json(best_dir / "point.json", {**point, "prior_images": None, "prior_refitted": True})
        else:
            best = _best_model(best_dir, point, run_cfg, device)
            row["best"] = _score_model(best, ds, ev, cfg, seed, log, binarize, out,
                                       summary["train_seconds"])["metrics"]
        row["best_step"] = point["step"]
    row["timing"] = _timing(run_dir, summary, t1 - t0, time.perf_counter() - t2, t2 - t1)
    write_json(run_dir / "result.json", row)
    return row


def compare(cfg: CompareConfig, out: Path, progress: bool = True, device="cpu",
            log: Callable[[str], None] = print) -> dict:
    """Train and score every model x seed; write results.json, results.csv and report.html."""
    from ..trainer import DataConfig, _load_data
    from .html import write_report

    t_start = time.perf_counter()
    cfg.validate()
    # `compare --nproc N` (torchrun): every rank trains each model with DDP; rank 0 alone holds
    # the lock, the evaluator and the curves, and after the training phase scores everything as
    # one process while the others leave
    world = parallel.init(str(device))
    if not world.is_main:
        log = lambda message: None  # noqa: E731
    cfg = dataclasses.replace(cfg, val_split=parse_val_split(cfg.val_split))  # one spelling in compare.json
    cfg = _adopt_saved_sizes(cfg, Path(out))
    # the very loading of a run's config.json (data seed 0), so `ganvae eval RUN` agrees with us;
    # before anything is written, so that a bad --data or --val-split leaves no --out behind
    data_cfg = DataConfig(spec=cfg.data, data_dir=cfg.data_dir, size=cfg.size, channels=cfg.channels,
                          seed=cfg.data_seed,
                          val_split=cfg.val_split, limit=cfg.limit)
    data_cfg.validate()
    ds = _load_data(data_cfg)
    if ds.val is not None and len(ds.val) < 2:
        raise BadInput(f"--val-split {cfg.val_split}: holds out {len(ds.val)} image; the quick FD needs at least 2")
    _check_models(cfg, ds)   # before anything is written: a typo never leaves a locked --out behind
    out = Path(out)
    mine = dataclasses.asdict(cfg)
    # one comparison per --out at a time: a second command on it is refused while this one runs
    with contextlib.ExitStack() as lock:
        error, ev, splits, curve_feats = None, None, {"curve": None, "best_selection": None}, None
        try:
            if world.is_main:
                lock.enter_context(dir_lock(out, f"--out {out}"))
                ev, splits, curve_feats = _set_up(cfg, out, mine, ds, data_cfg, device, log)
        except GanvaeError as e:
            error = e
        parallel.agree(error)
        if not world.is_main:
            pass
        elif splits["best_selection"] is None:
            log("--val-split 0: curves on a slice of the training images; no best checkpoint is picked")
        else:
            log(f"curves and best-checkpoint selection on the validation split ({splits['val_images']} images "
                f"held out of train, seed {data_cfg.seed}); scores on the test split ({len(ds.test)} images)")
        t_setup = time.perf_counter() - t_start
        runs = [(preset, seed) for seed in range(cfg.seed, cfg.seed + cfg.seeds) for preset in cfg.models]
        # phase 1: train, record curves and pick best checkpoints; the test split is not touched
        trained_here = set()              # the runs this invocation trains (a re-run reuses the others)
        for preset, seed in runs:
            name, run_dir = _run_name(preset, seed), out / "runs" / _run_name(preset, seed)
            if (run_dir / "result.json").exists():
                log(f"{name}: finished earlier; skipping")
                continue
            if (run_dir / "summary.json").exists() and (run_dir / "model" / "config.json").exists():
                log(f"{name}: trained earlier; scoring it")
                continue
            log(f"{name}: training ({cfg.budget_kind})")
            trained_here.add(name)
            try:
                _train_one(cfg, out, preset, seed, ds, ev, curve_feats, splits, progress, log, device)
            except GanvaeError as e:
                if "diverged" not in str(e):
                    raise
                log(f"{name}: {e}")
                if world.is_main:
                    write_json(run_dir / "result.json",
                               {"model": preset, "seed": seed, "status": "diverged", "error": str(e)})
        if world.size > 1:   # the rest is rank 0's, as one process
            parallel.barrier()
            parallel.shutdown()
            if not world.is_main:
                return {}
        # phase 2: every choice is made; now the test split: the floor, then each final and best model
        sizes = _sizes_before_scoring(cfg, out, runs, ds, ev, log, device)
        floor_path = out / "floor.json"
        t_floor = time.perf_counter()
        if not floor_path.exists():
            # real training images; with --limit drawn from the whole train split the N came from:
            # the floor is what real data scores, not what N images score against thousands
            pool = ds.pool if ds.pool is not None else ds.train
            n = min(sizes["eval_n"], len(pool))
            floor = score(pool.x[np.random.default_rng(0).permutation(len(pool))[:n]], ds, ev,
                          EvalConfig(n=n), log, with_floor=False)
            # the test images' classes as the evaluator reads them (what the models' samples are
            # measured against, so its errors cancel) and as labelled
            real_hist = real_class_hist(real_features(ev, ds.test.x, "test", log)[1])
            labels_hist = (np.bincount(ds.test.y, minlength=ds.num_classes) / len(ds.test.y)).tolist() \
                if ds.test.y is not None else None
            write_json(floor_path, {"metrics": floor["metrics"], "n": n,
                                    "class_hist": None if real_hist is None else real_hist.tolist(),
                                    "class_hist_labels": labels_hist,
                                    "evaluator": {k: ev.meta[k] for k in ("id", "kind", "accuracy", "accuracy_of")},
                                    "data": ds.name, "classes": ds.classes, "shape": list(ds.shape),
                                    "train_images": len(ds.train), "test_images": len(ds.test),
                                    "val_images": splits["val_images"]})
        t_floor = time.perf_counter() - t_floor
        rows = []
        for preset, seed in runs:
            run_dir = out / "runs" / _run_name(preset, seed)
            if (run_dir / "result.json").exists():
                rows.append(json.loads((run_dir / "result.json").read_text()))
            else:
                rows.append(_finish_one(cfg, out, preset, seed, ds, ev, log, device))
        t_tasks = time.perf_counter()
        task_results = _run_tasks(cfg, out, runs, rows, ds, ev, log, progress, device)
        t_tasks = time.perf_counter() - t_tasks
        # this invocation's wall clock, and the training it did itself (a re-run reuses finished runs)
        wall = time.perf_counter() - t_start
        trained = sum(r.get("timing", {}).get("train", 0.0) for r in rows
                      if _run_name(r["model"], r["seed"]) in trained_here)
        timing = {"setup": round(t_setup, 2), "floor": round(t_floor, 2), "wall": round(wall, 2),
                  "train": round(trained, 2), "outside_training": round(wall - trained, 2),
                  "tasks": round(t_tasks, 2)}
        results = {"schema": RESULTS_SCHEMA, "config": mine, "budget_kind": cfg.budget_kind,
                   "replay": _write_replay(cfg, out, rows, sizes), "floor": json.loads(floor_path.read_text()),
                   "scoring": sizes,
                   "splits": splits, "directions": directions(), "rows": rows, "timing": timing,
                   "tasks": task_results}
        write_json(out / "results.json", results)
        write_csv(out / "results.csv", results)
        t_report = time.perf_counter()
        write_report(out)
        tasks_text = f", tasks {t_tasks:.0f}s" if cfg.tasks != ("generate",) else ""
        log(f"time: {trained:.0f}s training, {wall - trained + time.perf_counter() - t_report:.0f}s around it "
            f"(set-up {t_setup:.0f}s, real-data floor {t_floor:.0f}s{tasks_text}, report "
            f"{time.perf_counter() - t_report:.0f}s)")
        return results


def _sizes_before_scoring(cfg: CompareConfig, out: Path, runs, ds, ev, log, device) -> dict:
    """The scoring sizes every final score and the floor use: OUT/scoring.json, written at the
    first model's first curve point; where no curve point wrote it (runs trained by an earlier
    version), sized now on the first trained model and its training time."""
    from ..models.base import GenerativeModel
    from ..trainer import read_summary

    if (out / "scoring.json").exists() or None not in (cfg.eval_n, cfg.curve_n, cfg.nll_seconds):
        return _scoring(cfg, out, None, ev, None, cfg.seed, 0.0, log)   # (all given: nothing to measure)
    for preset, seed in runs:
        run_dir = out / "runs" / _run_name(preset, seed)
        if (run_dir / "summary.json").exists() and (run_dir / "model" / "config.json").exists():
            model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
            return _scoring(cfg, out, model, ev, ds.test.a, seed, read_summary(run_dir)["train_seconds"], log)
    # nothing trained (every run diverged): the largest sizes, nothing to spend them on
    return {"eval_n": cfg.eval_n or scoring.EVAL_N[1], "curve_n": cfg.curve_n or scoring.CURVE_N[1],
            "nll_seconds": cfg.nll_seconds or scoring.NLL_SECONDS[1], "auto": []}


def _adopt_saved_sizes(cfg: CompareConfig, out: Path) -> CompareConfig:
    """Resuming a comparison written when --eval-n, --curve-n and --nll-seconds had fixed
    defaults: `auto` continues with the numbers it was started with."""
    saved = out / "compare.json"
    if not saved.exists():
        return cfg
    try:
        theirs = json.loads(saved.read_text())
    except (OSError, ValueError):
        return cfg   # (_set_up says what is wrong with it)
    keep = {k: theirs[k] for k in ("eval_n", "curve_n", "nll_seconds")
            if getattr(cfg, k) is None and theirs.get(k) is not None}
    return dataclasses.replace(cfg, **keep) if keep else cfg


def _write_replay(cfg: CompareConfig, out: Path, rows: list[dict], sizes: dict) -> list[dict]:
    """A wall-clock budget is not reproducible on another machine (or a busier one): for each
    seed, the same comparison with every model stopped at the step it reached, as a config file
    for `ganvae compare --config`. -> [{"seed", "config" (file name in out), "steps" {model: N}}]."""
    if not cfg.budget:
        return []
    replays = []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        reached = {r["model"]: r["steps"] for r in rows if r["seed"] == seed and r.get("status") == "ok"}
        if not reached:
            continue
        # scored as this comparison was (the same sample counts), not re-sized
        again = dataclasses.replace(cfg, budget=None, seed=seed, seeds=1, eval_n=sizes["eval_n"],
                                    curve_n=sizes["curve_n"], nll_seconds=sizes["nll_seconds"],
                                    models=tuple(f"{m}:train.steps={n}" for m, n in reached.items()))
        name = f"replay-seed{seed}.json"
        write_json(out / name, dataclasses.asdict(again))
        replays.append({"seed": seed, "config": name, "steps": reached})
    return replays


def _check_models(cfg: CompareConfig, ds: ImageDataset) -> None:
    """Every model's config as it will train: --set and its own overrides, on this data, built
    once (small: the nets are not trained), so a bad key or value fails before any work."""
    from ..config import replace
    from ..trainer import TrainConfig, build, split_overrides

    used = set()
    for spec in cfg.models:
        name, own = parse_model_spec(spec)
        shared = shared_overrides(cfg, name)
        used |= set(shared)
        m_over, t_over, _ = split_overrides({**shared, **own})
        build(name, ds, m_over)
        replace(TrainConfig(), t_over, where=f"--set for {spec}")
    unknown = sorted(set(cfg.overrides) - used)   # a key no model has: a typo, not a family's own key
    if unknown:
        raise BadInput(f"--set {unknown[0]}: no model of this comparison has that key ({', '.join(cfg.models)}); "
                       "see ganvae config PRESET for a model's keys")


def shared_overrides(cfg: CompareConfig, preset: str) -> dict:
    """compare's --set for one model: every key the model has. A mixed comparison shares one
    --set (`norm=none` reaches the VAEs, `d_norm=layer` the GANs) while each model takes only
    its own keys; run and data keys (train.*, data.*) reach every model."""
    from ..config import fields_of
    from ..trainer import TRAIN_KEYS

    cls, _ = resolve(preset)
    own = set(fields_of(cls.Config)) | set(getattr(cls.Config, "renamed", {})) | {"lr"} | set(TRAIN_KEYS)
    return {k: v for k, v in cfg.overrides.items()
            if k.partition(".")[0] in ("train", "data") or k.removeprefix("model.").partition(".")[0] in own}


def _set_up(cfg: CompareConfig, out: Path, mine: dict, ds: ImageDataset, data_cfg, device, log):
    """compare.json checked against a finished comparison's and written, the evaluator, and the
    real images the curves are measured on: (evaluator, splits, their features)."""
    saved = out / "compare.json"
    # Models and tasks may be added to (or dropped from) a finished comparison: only the training
    # settings must match for its runs to be reused; a model not run yet trains.
    training = lambda d: {k: v for k, v in d.items() if k not in ("models", "tasks", "task_configs")}  # noqa: E731
    if saved.exists():
        theirs = json.loads(saved.read_text())
        # a comparison written before a setting existed had that setting's default
        theirs = {**{k: v for k, v in json.loads(json.dumps(dataclasses.asdict(CompareConfig()))).items()
                     if k not in theirs}, **theirs}
        ours = training(json.loads(json.dumps(mine)))
        if training(theirs) != ours:
            differ = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)
                      and k not in ("models", "tasks", "task_configs")]
            shown = "; ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in differ[:3])
            raise BadInput(f"--out {out}: holds a comparison with other settings ({shown}); use another --out "
                           "(or the same command to resume it)")
    write_json(saved, mine)
    ev = get_evaluator(ds, device=device, log=log)  # trained on train + val as loaded: see get_evaluator
    splits, curve_feats = _selection_split(ds, ev, data_cfg.seed, log)
    return ev, splits, curve_feats


def task_config(task, values: dict):
    """A task's Config from a dict (compare.json's task_configs), type-checked."""
    from ..config import from_dict

    return from_dict(task.Config, values, where=f"task {task.name}")


def _run_tasks(cfg: CompareConfig, out: Path, runs: list[tuple[str, int]], rows: list[dict], ds: ImageDataset,
               ev: Evaluator, log, progress: bool, device) -> dict:
    """Every task of cfg.tasks on every finished run, after all training and generation scoring.

    A run's result is kept in runs/<run>/tasks/<task>.json with the task's config, and reused
    while the config is the same; what is common to all models (masks, baselines, reference
    scores) in tasks/<task>.json. Returns {task: {"title", "summary", "results": {model: [per
    seed]}, "tables", "findings", "figures": {model: file of seed 0}}}.
    """
    from ..models.base import GenerativeModel
    from ..tasks import BUILT_IN, get_task, task_summary

    done = {}
    for name in cfg.tasks:
        if name in BUILT_IN:
            continue
        task = get_task(name)
        tcfg = task_config(task, cfg.task_configs.get(name, {}))
        tcfg.validate()
        key = json.loads(json.dumps(dataclasses.asdict(tcfg)))
        prepared = None
        summary_path = out / "tasks" / f"{name}.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
        if summary is None or summary.get("config") != key:
            prepared = task.prepare(ds, ev, tcfg, log)
            summary = task_summary(prepared)
            write_json(summary_path, summary)
        per_model: dict[str, list[dict]] = {}
        figures: dict[str, str] = {}
        for (preset, seed), row in zip(runs, rows):
            if row.get("status") != "ok":
                continue
            run_dir = out / "runs" / _run_name(preset, seed)
            path = run_dir / "tasks" / f"{name}.json"
            res = json.loads(path.read_text()) if path.exists() else None
            if res is None or res.get("config") != key:
                if prepared is None:
                    prepared = task.prepare(ds, ev, tcfg, log)
                log(f"{_run_name(preset, seed)}: {name}")
                model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
                if not task.applies(model):
                    log(f"{_run_name(preset, seed)}: {name} does not apply; skipped")
                    continue
                t0 = time.perf_counter()
                res = task.run(model, ds, ev, tcfg, prepared, run_dir / "figures", log, progress)
                res = {"config": key, **res, "seconds": round(time.perf_counter() - t0, 2)}
                write_json(path, res)
            per_model.setdefault(preset, []).append(res)
            if seed == 0 and res.get("figure"):
                figures[preset] = res["figure"]
        done[name] = {"title": task.title, "summary": summary, "results": per_model,
                      "tables": task.tables(summary, per_model), "findings": task.findings(summary, per_model),
                      "figures": figures}
    return done


# results.json's layout (docs/results.md); a change of its fields bumps the number
RESULTS_SCHEMA = "ganvae.results/1"

# results.csv's columns before the metrics (docs/results.md): what was compared, on what, under
# which budget and scored by which evaluator, so that one CSV row stands on its own
CSV_HEAD = ["model", "seed", "status", "dataset", "budget", "evaluator", "dtype", "params", "steps", "images_seen",
            "train_seconds", "images_per_second", "updates"]


def write_csv(path: Path, results: dict) -> None:
    """One line per model and seed, then the real-data floor's line (model `real-data-floor`,
    status `floor`): the cost columns, every final metric, then best_*."""
    rows, floor, cfg = results["rows"], results["floor"], results["config"]
    metric_names = sorted({k for r in rows for k in r.get("final", {})} | set(floor["metrics"]))
    cols = CSV_HEAD + metric_names + [f"best_{m}" for m in metric_names] + ["best_step"]
    common = {"dataset": floor.get("data", cfg["data"]), "budget": budget_text(cfg),
              "evaluator": floor.get("evaluator", {}).get("id", "")}

    def line(r):
        d = {c: r.get(c, "") for c in CSV_HEAD}
        d.update(common, dtype=r.get("dtype", cfg.get("precision", "")))
        stop = own_stop(r["model"])   # a model with its own stopping point (a replay)
        if stop:
            d["budget"] = " ".join(f"{v} {k}" if k != "budget" else str(v) for k, v in stop.items())
        d["updates"] = " ".join(f"{k}={v}" for k, v in r.get("updates", {}).items())
        d.update({m: r.get("final", {}).get(m, "") for m in metric_names})
        d.update({f"best_{m}": r.get("best", {}).get(m, "") for m in metric_names})
        d["best_step"] = r.get("best_step", "")
        return d

    floor_line = {c: "" for c in cols}
    floor_line.update(common, model="real-data-floor", status="floor")
    floor_line.update({m: v for m, v in floor["metrics"].items() if m in metric_names})

    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow(line(r))
            w.writerow(floor_line)

    atomic_write(path, write)


def budget_text(cfg: dict) -> str:
    """A comparison's budget per model in a few words: `90s`, `1000 steps`, `3 epochs`."""
    if cfg.get("budget"):
        return str(cfg["budget"])
    if cfg.get("steps"):
        return f"{cfg['steps']} steps"
    if cfg.get("epochs"):
        return f"{cfg['epochs']} epochs"
    return "per model"
