"""`compare()`: the comparison's phases in order (see the package's docstring): load and check
everything before writing anything, set up OUT, train every run (phase 1), score them on the
test split (phase 2), write results.json, results.csv and report.html."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .. import parallel
from ..data import ImageDataset
from ..data.base import AUTO_VAL_MAX, parse_val_split
from ..errors import BadInput, GanvaeError, Stopped, did_you_mean
from ..evaluation import EvalConfig, directions, real_class_hist, real_features, score
from ..evaluators import Evaluator, get_evaluator
from ..files import dir_lock, write_json
from ..registry import parse_model_spec
from . import scoring
from .config import CompareConfig, own_stop, shared_overrides, task_config
from .curves import CurveRecorder
from .results import RESULTS_SCHEMA, write_replay, run_name, write_csv
from .score import finish_one, scoring_sizes, sizes_before_scoring


def compare(cfg: CompareConfig, out: Path, progress: bool = True, device="cpu",
            log: Callable[[str], None] = print) -> dict:
    """Train and score every model x seed; write results.json, results.csv and report.html."""
    from ..report.html import write_report

    t_start = time.perf_counter()
    cfg.validate()
    # `compare --nproc N` (torchrun): every rank trains each model with DDP; rank 0 alone holds
    # the lock, the evaluator and the curves, and after the training phase scores everything as
    # one process while the others leave
    world = parallel.init(str(device))
    if not world.is_main:
        log = lambda message: None  # noqa: E731
    try:
        cfg, data_cfg, ds = _load(cfg, out)
    except GanvaeError as e:   # every rank checks the same settings alike: rank 0 says it
        e.quiet = not world.is_main
        raise
    out = Path(out)
    mine = dataclasses.asdict(cfg)
    # one comparison per --out at a time: a second command on it is refused while this one runs
    with contextlib.ExitStack() as lock:
        ev, splits, curve_feats = _start(cfg, out, mine, ds, data_cfg, world, lock, device, log)
        times = {"start": t_start, "setup": time.perf_counter() - t_start}
        runs = [(preset, seed) for seed in range(cfg.seed, cfg.seed + cfg.seeds) for preset in cfg.models]
        # phase 1: train, record curves and pick best checkpoints; the test split is not touched
        trained_here = _train_phase(cfg, out, runs, ds, ev, curve_feats, splits, world, progress, log, device)
        if world.size > 1:   # the rest is rank 0's, as one process
            parallel.barrier()
            parallel.shutdown()
            if not world.is_main:
                return {}
        # phase 2: every choice is made; now the test split: the floor, then each final and best model
        sizes, rows, task_results = _score_phase(cfg, out, runs, ds, ev, splits, times, progress, log, device)
        return _write_results(cfg, out, mine, splits, sizes, rows, task_results, trained_here, times, log,
                              write_report)


def _load(cfg: CompareConfig, out) -> tuple:
    """The settings as compare.json records them, the data and every model checked, before
    anything is written: (cfg, its DataConfig, the dataset)."""
    from ..trainer import DataConfig, load_data

    cfg = dataclasses.replace(cfg, val_split=parse_val_split(cfg.val_split))  # one spelling in compare.json
    cfg = _adopt_saved_sizes(cfg, Path(out))
    # the very loading of a run's config.json (data seed 0), so `ganvae eval RUN` agrees with us;
    # before anything is written, so that a bad --data or --val-split leaves no --out behind
    data_cfg = DataConfig(spec=cfg.data, data_dir=cfg.data_dir, size=cfg.size, channels=cfg.channels,
                          seed=cfg.data_seed,
                          val_split=cfg.val_split, limit=cfg.limit)
    data_cfg.validate()
    ds = load_data(data_cfg)
    if ds.val is not None and len(ds.val) < 2:
        raise BadInput(f"--val-split {cfg.val_split}: holds out {len(ds.val)} image; the quick FD needs at least 2")
    _check_models(cfg, ds)   # before anything is written: a typo never leaves a locked --out behind
    return cfg, data_cfg, ds


def _start(cfg: CompareConfig, out: Path, mine: dict, ds: ImageDataset, data_cfg, world, lock: contextlib.ExitStack,
           device, log) -> tuple[Evaluator | None, dict, np.ndarray | None]:
    """Rank 0 takes --out's lock and sets it up (_set_up); every rank learns whether that
    failed. -> (evaluator, splits, the curves' real features): None and no splits on other ranks."""
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
    return ev, splits, curve_feats


def _train_phase(cfg: CompareConfig, out: Path, runs: list[tuple[str, int]], ds: ImageDataset, ev, curve_feats,
                 splits: dict, world, progress: bool, log, device) -> set[str]:
    """Phase 1: every run not trained yet trains, on every rank; one that diverged is recorded
    as such. -> the names of the runs this invocation trains."""
    trained_here = set()              # the runs this invocation trains (a re-run reuses the others)
    said_budget = False
    for preset, seed in runs:
        name, run_dir = run_name(preset, seed), out / "runs" / run_name(preset, seed)
        if (run_dir / "result.json").exists():
            log(f"{name}: finished earlier; skipping")
            continue
        if (run_dir / "summary.json").exists() and (run_dir / "model" / "config.json").exists():
            log(f"{name}: trained earlier; scoring it")
            continue
        if not said_budget:           # the budget is every model's: said once, before the first trains
            log(f"budget: {cfg.budget_kind}")
            said_budget = True
        log(f"{name}: training")
        trained_here.add(name)
        try:
            _train_one(cfg, out, preset, seed, ds, ev, curve_feats, splits, progress, log, device)
        except Stopped as e:
            # the trainer says how to resume one run; a comparison resumes by running it again
            said = str(e).split(". Continue with:")[0]
            raise Stopped(f"{name}: {said}. Continue with the same ganvae compare command (--out {out}): it "
                          "resumes this model from the checkpoint and skips the finished ones",
                          e.exit_code - 128) from None
        except GanvaeError as e:
            if "diverged" not in str(e):
                raise
            log(f"{name}: {e}")
            if world.is_main:
                write_json(run_dir / "result.json",
                           {"model": preset, "seed": seed, "status": "diverged", "error": str(e)})
    return trained_here


def _score_phase(cfg: CompareConfig, out: Path, runs: list[tuple[str, int]], ds: ImageDataset, ev: Evaluator,
                 splits: dict, times: dict, progress: bool, log, device) -> tuple[dict, list[dict], dict]:
    """Phase 2, rank 0 alone: the scoring sizes, the real-data floor, each run's result (scored
    now unless finished earlier), then the tasks; their seconds go into `times`.
    -> (sizes, one row per run, the tasks' results)."""
    sizes = sizes_before_scoring(cfg, out, runs, ds, ev, log, device)
    t_floor = time.perf_counter()
    _floor(out / "floor.json", sizes, ds, ev, splits, log)
    times["floor"] = time.perf_counter() - t_floor
    rows = []
    for preset, seed in runs:
        run_dir = out / "runs" / run_name(preset, seed)
        if (run_dir / "result.json").exists():
            rows.append(json.loads((run_dir / "result.json").read_text()))
        else:
            rows.append(finish_one(cfg, out, preset, seed, ds, ev, log, device))
    t_tasks = time.perf_counter()
    task_results = _run_tasks(cfg, out, runs, rows, ds, ev, log, progress, device)
    times["tasks"] = time.perf_counter() - t_tasks
    return sizes, rows, task_results


def _floor(floor_path: Path, sizes: dict, ds: ImageDataset, ev: Evaluator, splits: dict, log) -> None:
    """OUT/floor.json, unless written earlier: what real images score, and the test split's classes."""
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


def _write_results(cfg: CompareConfig, out: Path, mine: dict, splits: dict, sizes: dict, rows: list[dict],
                   task_results: dict, trained_here: set[str], times: dict, log, write_report) -> dict:
    """results.json, results.csv and report.html, and the time line of this invocation."""
    t_start, t_setup, t_floor, t_tasks = times["start"], times["setup"], times["floor"], times["tasks"]
    floor_path = out / "floor.json"
    # this invocation's wall clock, and the training it did itself (a re-run reuses finished runs)
    wall = time.perf_counter() - t_start
    trained = sum(r.get("timing", {}).get("train", 0.0) for r in rows
                  if run_name(r["model"], r["seed"]) in trained_here)
    timing = {"setup": round(t_setup, 2), "floor": round(t_floor, 2), "wall": round(wall, 2),
              "train": round(trained, 2), "outside_training": round(wall - trained, 2),
              "tasks": round(t_tasks, 2)}
    results = {"schema": RESULTS_SCHEMA, "config": mine, "budget_kind": cfg.budget_kind,
               "replay": write_replay(cfg, out, rows, sizes), "floor": json.loads(floor_path.read_text()),
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


def _train_one(cfg: CompareConfig, out: Path, preset: str, seed: int, ds: ImageDataset, ev: Evaluator,
               real_curve_feats: np.ndarray, splits: dict, progress: bool, log, device="cpu") -> Path:
    from ..trainer import checkpoints, train

    run_dir = out / "runs" / run_name(preset, seed)
    # (under DDP only rank 0 records the curve; the other ranks have no evaluator)
    size = lambda trainer, inputs: scoring_sizes(cfg, out, trainer.model, ev, inputs, seed,  # noqa: E731
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
        log(f"{run_name(preset, seed)}: resuming from its last checkpoint")
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
    # (start-up, checkpoints, logs) come apart in timing_of
    path = run_dir / "phase1_seconds.json"
    before = json.loads(path.read_text())["seconds"] if resuming and path.exists() else 0.0
    if parallel.world().is_main:
        write_json(path, {"seconds": round(before + time.perf_counter() - t0, 3)})
    return run_dir


def _check_models(cfg: CompareConfig, ds: ImageDataset) -> None:
    """Every model's config as it will train: --set and its own overrides, on this data, built
    once (small: the nets are not trained), so a bad key or value fails before any work."""
    from ..config import fields_of, replace
    from ..registry import model_keys
    from ..trainer import TrainConfig, build, split_overrides

    used = set()
    processes = parallel.world().size
    if processes > 1 and cfg.batch_size % processes:
        raise BadInput(f"--batch-size {cfg.batch_size}: the global batch is split evenly over the {processes} "
                       f"processes; give a multiple of {processes}")
    for spec in cfg.models:
        name, own = parse_model_spec(spec)
        shared = shared_overrides(cfg, name)
        used |= set(shared)
        m_over, t_over, _ = split_overrides({**shared, **own})
        model, _ = build(name, ds, m_over)
        tcfg = replace(TrainConfig(), t_over, where=f"--set for {spec}")
        if tcfg.keep_best != "none":   # compare keeps every run's best itself, in the same runs/*/best
            raise BadInput(f"--set keep_best={tcfg.keep_best} ({spec}): compare already keeps each run's best "
                           "checkpoint on the validation split (its curve); leave keep_best out")
        # under --nproc, what the trainer would refuse at this model's turn, refused before the
        # first model trains (a model of one's own may not be DDP-ready: ddp_ready)
        if processes > 1 and not model.ddp_ready:
            raise BadInput(f"{spec}: not trainable with several processes (its class does not declare ddp_ready); "
                           f"compare it without --nproc")
    unknown = sorted(set(cfg.overrides) - used)   # a key no model has: a typo, not a family's own key
    if unknown:
        # a model's keys, the unprefixed training keys, and the rest of training's under train.
        keys = {k for spec in cfg.models for k in model_keys(spec)} | {f"train.{k}" for k in fields_of(TrainConfig)}
        raise BadInput(f"--set {unknown[0]}: no model of this comparison has that key ({', '.join(cfg.models)})"
                       f"{did_you_mean(unknown[0], keys)}; see ganvae config PRESET for a model's keys")


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
            run_dir = out / "runs" / run_name(preset, seed)
            path = run_dir / "tasks" / f"{name}.json"
            res = json.loads(path.read_text()) if path.exists() else None
            if res is None or res.get("config") != key:
                if prepared is None:
                    prepared = task.prepare(ds, ev, tcfg, log)
                log(f"{run_name(preset, seed)}: {name}")
                model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
                if not task.applies(model):
                    log(f"{run_name(preset, seed)}: {name} does not apply; skipped")
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
