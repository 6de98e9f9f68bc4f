"""`train --keep-best fd|elbo`: the checkpoint with the best validation score, kept in run_dir/best.

Lightning's ModelCheckpoint(monitor=..., save_top_k=1), on a generative model's own validation
score (ganvae.selection, the scores compare's curves use). At every checkpoint (checkpoint_every)
and at the end, the model is scored on the validation split, best_n samples (or images) drawn
with the run's seed; when it beats the best so far it is saved where `ganvae compare` keeps its
runs' best, so `--checkpoint best` (eval, sample, ...) and ganvae.load(run, checkpoint="best")
load it:

    validation.jsonl   one row per scored checkpoint: step, images_seen, train_seconds, metric,
                       value (also under the metric's own name, as compare's curve rows have
                       `fd`), split, n, seed, eval_seconds
    best/              the best model (save_pretrained: config.json, model.safetensors) and
                       point.json, its row; point.json is written last, so a best is complete
                       exactly when it has one
    summary.json       best: {metric, value, step}

The score of a checkpoint is taken right after it is written: the model then carries the prior
fitted for that checkpoint (encoder models), so the saved best samples as it was scored.

Resume: point.json is the best so far, kept however the resumed steps score; rows past the step
the run resumes from are dropped (they are scored again). A best from such a step (the newest
checkpoint was damaged) is kept: it is a model this run trained, and the same weights score
the same, so it is replaced only by a better one. A resume that asks for another metric or n is
refused (their scores do not compare).

DDP (--nproc): only rank 0 scores, in its on_step after the checkpoint, as compare's
CurveRecorder; the other ranks wait for it at the trainer's per-step barrier (and at the end at
the barrier after the final model). The evaluator is made once at the start, on rank 0.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from ..callbacks import Callback
from ..errors import BadInput
from ..files import atomic_write, read_jsonl, write_json
from ..selection import SELECTORS
from .config import RunConfig

SPLIT = "val"   # checkpoints are chosen on the validation split, never on test


def read_point(run_dir: Path) -> dict | None:
    """The best's row (best/point.json), or None where there is no complete best."""
    path = Path(run_dir) / "best" / "point.json"
    if not path.exists():
        return None
    try:
        point = json.loads(path.read_text())
    except (OSError, ValueError):
        return None   # a damaged one: no best so far (the next checkpoint scored writes one)
    return point if isinstance(point, dict) else None


def check(cfg: RunConfig, model, data, run_dir: Path) -> None:
    """Refuse a --keep-best the run cannot honour, before training (on every rank alike)."""
    t = cfg.train
    if t.keep_best == "none":
        return
    kind = SELECTORS[t.keep_best]
    if kind.needs_likelihood and not getattr(model, "has_likelihood", False):
        raise BadInput(f"--keep-best {t.keep_best}: {cfg.preset or model.name} has no likelihood to bound (VAEs "
                       "have); use --keep-best fd")
    if data.val is None:
        raise BadInput(f"--keep-best {t.keep_best}: needs a validation split to score checkpoints on, and "
                       "--val-split 0 holds none out; give --val-split auto, a fraction or a count")
    if len(data.val) < 2:
        raise BadInput(f"--keep-best {t.keep_best}: the validation split holds {len(data.val)} image; give a "
                       "larger --val-split (at least 2 images)")
    point = read_point(run_dir)
    n = kind.count(data, t.best_n)
    if point is not None and (point.get("metric"), point.get("n")) != (kind.metric, n):
        was = f"{point['metric']} of n={point.get('n')}" if point.get("metric") else "ganvae compare's curve"
        raise BadInput(f"--keep-best {t.keep_best}: {run_dir}/best was chosen by {was}, which does not compare "
                       f"with {kind.metric} of n={n}; resume with the --keep-best and --best-n it was chosen with, "
                       f"or move {run_dir}/best away")


def _own_rng(device: torch.device):
    """A block whose draws from torch's global random streams are undone after it: scoring
    draws from its own seeded generators, but loading the evaluator builds a net (random
    initial weights), and a run with --keep-best must train exactly as one without."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


class BestKeeper(Callback):
    """Scores each checkpoint on the validation split and keeps the best (see the module).

    Args:
        cfg: the run's config: train.keep_best names the selector, train.best_n its sample
            count, train.seed its seed, train.checkpoint_every when it scores.
        data: the run's dataset (its val split).
        run_dir: the run directory.
        log: where the one-time lines go (the evaluator trained, what is kept where).
    """

    def __init__(self, cfg: RunConfig, data, run_dir: Path, log=print):
        t = cfg.train
        self.kind = SELECTORS[t.keep_best]
        self.data, self.run_dir, self.log = data, Path(run_dir), log
        self.n, self.seed, self.every, self.binarize = t.best_n, t.seed, t.checkpoint_every, cfg.data.binarize
        self.path = self.run_dir / "validation.jsonl"
        self.selector = None   # made at the first start, on rank 0: the evaluator and the real features
        self.rows: list[dict] = []
        self.best: dict | None = None

    def on_start(self, trainer) -> None:
        if self.selector is None:
            with _own_rng(trainer.device):   # (building the evaluator's net draws initial weights)
                self.selector = self.kind(self.data, trainer.device, self.log, self.binarize)
            n, images = self.kind.count(self.data, self.n), len(self.data.val)
            self.log(f"keeping the best checkpoint by {self.kind.title} (n={n}, seed {self.seed}, {images} validation "
                     f"images) at every checkpoint and the end: {self.run_dir / 'best'}")
        # (a resume or a NaN rollback restarts at trainer.step: the rows after it are redone)
        rows = read_jsonl(self.path)
        self.rows = [r for r in rows if r["step"] <= trainer.step]
        if len(self.rows) < len(rows):
            atomic_write(self.path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in self.rows)))
        self.best = read_point(self.run_dir)

    def on_step(self, trainer) -> None:
        # the trainer has just written this step's checkpoint (and fitted its prior)
        if trainer.step % self.every == 0:
            self.record(trainer)

    def on_end(self, trainer, summary: dict) -> None:
        if not self.rows or self.rows[-1]["step"] != trainer.step:
            self.record(trainer)   # the end, off the checkpoint_every grid: the final model
        if self.best is not None:
            summary["best"] = {"metric": self.best["metric"], "value": self.best["value"], "step": self.best["step"]}
            write_json(self.run_dir / "summary.json", summary)

    @torch.no_grad()
    def record(self, trainer) -> None:
        from ..progress import quiet

        t0 = time.perf_counter()
        with quiet(), _own_rng(trainer.device):
            value, n = self.selector(trainer.model, self.n, self.seed)
        metric = self.kind.metric
        row = {"step": trainer.step, "images_seen": trainer.images, "train_seconds": round(trainer.elapsed, 3),
               "metric": metric, "value": value, metric: value, "split": SPLIT, "n": n, "seed": self.seed,
               "eval_seconds": round(time.perf_counter() - t0, 2)}
        if math.isfinite(value) and (self.best is None or value < self.best["value"]):
            best_dir = self.run_dir / "best"
            (best_dir / "point.json").unlink(missing_ok=True)   # incomplete until the new one is written
            trainer.model.save_pretrained(best_dir)
            write_json(best_dir / "point.json", row)
            self.best = row
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


__all__ = ["BestKeeper", "check", "read_point"]
