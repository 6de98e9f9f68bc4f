"""Compare's curves: quick validation scores during training, the best checkpoint, early stopping.

A `CurveRecorder` is a trainer callback. At evenly spaced fractions of the budget it scores the
model on the held-out validation split (a quick FD of `n` samples), appends the row to
run_dir/curve.jsonl, and keeps the best point's model in run_dir/best. For a model with an
image discriminator (`realism(x)`) each row also carries D's mean logit on training images
and on held-out real images: their gap is the overfitting signal of Karras et al. (2020,
Fig. 1b), D growing confident on the images it has seen and not on the ones it has not.

Early stopping (`stop_on_rise`): once the FD has stood at least that fraction above its best
for two points in a row, the run ends there as a finished run. Two points, not one: a quick FD
of 1,000 samples moves a few percent between points by chance alone.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..callbacks import Callback
from ..data import ImageDataset, to_float
from ..evaluators import Evaluator
from ..files import atomic_write, read_jsonl, write_json
from ..metrics import fd_from_features
from ..models.base import has_fitted_prior
from ..selection import sample_features

RISE_PATIENCE = 2      # points in a row above (1 + stop_on_rise) x the best before stopping
D_IMAGES = 500         # at most this many real images per side of the D-realism diagnostic


def risen(fds: list[float], rise: float, patience: int = RISE_PATIENCE) -> bool:
    """Whether the last `patience` FDs all stand at least `rise` (a fraction) above the best FD
    before them: the curve has turned up, not wobbled."""
    if len(fds) <= patience:
        return False
    best = min(fds[:-patience])
    return math.isfinite(best) and all(f >= (1 + rise) * best for f in fds[-patience:])


def _takes_images_alone(model) -> bool:
    """Whether model.realism(x) scores images without a code or labels (GAN, VAE-GAN D)."""
    realism = getattr(model, "realism", None)
    if realism is None or getattr(model, "conditional", False) or getattr(model, "translation", False):
        return False
    params = list(inspect.signature(realism).parameters.values())[1:]
    return all(p.default is not inspect.Parameter.empty for p in params)


class CurveRecorder(Callback):
    """Quick scores at evenly spaced points of the budget; keeps the best; may stop early.

    Args:
        real_feats: evaluator features of the real images the quick FD is measured against:
            the validation split's (never the test split's: the best point is chosen on them).
        split: the name of those images' split, written into every curve row.
        select: keep the best point's model in run_dir/best; False: only record the curve.
        stop_on_rise: end the run once its FD stands this fraction above its best (see module).
        n: samples per quick FD; None: `size(trainer, inputs)` gives it at the first point
            (compare sizes it to the training time, `compare.scoring`).
        prior_images: `(trainer) -> int`, the training images each point fits an encoder
            model's prior to; None: the run's own prior_images, as the final model's.
    """

    def __init__(self, run_dir: Path, ds: ImageDataset, ev: Evaluator, real_feats: np.ndarray | None,
                 points: int, n: int | None, seed: int = 0, split: str = "val", select: bool = True,
                 stop_on_rise: float | None = None, size=None, prior_images=None):
        self.run_dir, self.ds, self.ev, self.real_feats = run_dir, ds, ev, real_feats
        self.points, self.n, self.seed = points, n, seed
        self.split, self.select, self.stop_on_rise = split, select, stop_on_rise
        self.size, self.prior_images = size, prior_images
        self.path = run_dir / "curve.jsonl"
        self.rows = read_jsonl(self.path)

    def truncate(self, step: int) -> None:
        """Forget points past `step` (a resumed run redoes them)."""
        self.rows = [r for r in self.rows if r["step"] <= step]
        atomic_write(self.path, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in self.rows)))

    def on_start(self, trainer) -> None:
        if self.rows and self.rows[-1]["step"] > trainer.step:
            self.truncate(trainer.step)
        self._check_rise(trainer)   # a run stopped between its stop point and its summary

    def on_step(self, trainer) -> None:
        self(trainer)

    def __call__(self, trainer) -> None:
        if len(self.rows) and self.rows[-1]["step"] > trainer.step:
            self.truncate(trainer.step)
        due = len(self.rows) + 1  # the next point: fraction due / points
        if trainer.fraction_done() + 1e-9 < due / self.points and not trainer._done():
            return
        if trainer._done() and self.rows and self.rows[-1]["step"] == trainer.step:
            return
        self.record(trainer)
        self._check_rise(trainer)

    def _check_rise(self, trainer) -> None:
        if self.stop_on_rise is None or trainer.stop_reason is not None:
            return
        fds = [r["fd"] for r in self.rows]
        if risen(fds, self.stop_on_rise):
            best = min(fds[:-RISE_PATIENCE])
            trainer.request_stop(f"validation FD {fds[-1]:.2f} stood {self.stop_on_rise * 100:g}% or more above its best "
                                 f"{best:.2f} for {RISE_PATIENCE} points (--stop-on-rise {self.stop_on_rise:g})")

    @torch.no_grad()
    def record(self, trainer) -> None:
        model = trainer.model
        t0 = time.perf_counter()
        # encoder models generate through a prior fitted to their codes: the trainer's own fit
        # (the same images as the final model's and every checkpoint's), so the best point's
        # saved model samples as the final one would at that step
        prior_n = None
        if self.prior_images is not None and has_fitted_prior(model):
            prior_n = self.prior_images(trainer)
        trainer.fit_prior(images=prior_n)
        # translation models translate the held-out inputs of the split the curve is measured on
        inputs = self.ds.val.a if self.split == "val" and self.ds.val is not None else self.ds.train.a
        if self.n is None:
            self.n = self.size(trainer, inputs)
        # the quick FD's samples as `train --keep-best` draws them (ganvae.selection)
        feats = sample_features(model, self.ev, self.n, self.seed, inputs)
        row = {"step": trainer.step, "images_seen": trainer.images, "train_seconds": round(trainer.elapsed, 3),
               "fd": fd_from_features(self.real_feats, feats), "split": self.split, "n": len(feats)}
        if prior_n is not None:   # (fewer than the final model's: the best is refitted before its test score)
            row["prior_images"] = prior_n
        row.update(self._d_realism(model))
        row["eval_seconds"] = round(time.perf_counter() - t0, 2)
        best = min((r["fd"] for r in self.rows), default=math.inf)
        if self.select and row["fd"] < best and math.isfinite(row["fd"]):
            model.save_pretrained(self.run_dir / "best")
            write_json(self.run_dir / "best" / "point.json", row)
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def _d_realism(self, model) -> dict:
        """D's mean logit on (up to) n training images and n held-out real ones, n the point's
        sample count up to D_IMAGES: the diagnostic costs what the point's FD does, not a fixed
        1,000 D passes (at 64x64 RGB, as much as a 200-sample FD)."""
        if self.ds.val is None or not _takes_images_alone(model):
            return {}
        device = next(model.parameters()).device
        n = min(D_IMAGES, self.n)
        out = {}
        for key, x in (("d_real_train", self.ds.train.x), ("d_real_val", self.ds.val.x)):
            xb = to_float(torch.from_numpy(np.ascontiguousarray(x[:n])).to(device))
            out[key] = round(float(model.realism(xb).mean()), 5)
        return out
