"""Synthetic data for a classifier (issue 14): does a class-conditional model's output help a
classifier that has only the run's N real images?

The evaluator's classifier architecture (evaluators.net.EvalNet) is trained from scratch, with
the evaluator's recipe, on each of

    real            the N real training images (a baseline: the same for every model)
    synthetic       N images sampled from the model, classes balanced: the Classification
                    Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for
                    Conditional Generative Models"), how much of each class the model learned
    real+synthetic  the N real images and ratio x N samples: generative data augmentation

and scored on the test split; mean ± std over `seeds` classifier seeds. The three are trained
equally: the same batch size (min(128, N)), the same number of optimizer steps
(ceil(budget_images / batch)) and so the same images seen, whatever the size of their set; batches
run through back-to-back permutations of it, so no remainder is dropped. (Before, a pass
dropped n mod batch images and the pass count was ceil(budget / n): at budget 3,000 the
100-image set took 30 steps and the 200-image set 15.) Both counts are in the result. The full-data
evaluator's own test accuracy is the ceiling row. Only class-conditional models (cgan, cvae)
take part: an unconditional model's samples have no labels to train on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import to_uint8
from ..data.base import ImageDataset, Split
from ..errors import BadInput, GanvaeError
from ..progress import enabled as progress_enabled
from ..registry import register_task
from . import seed_means

if TYPE_CHECKING:
    from .base import Task

METRICS = [("real", "real only", True), ("synthetic", "synthetic only (CAS)", True),
           ("mixed", "real + synthetic", True), ("gain", "gain over real", True)]


@dataclass
class AugmentEvalConfig:
    ratio: float = 1.0           # synthetic images per real one in real+synthetic
    seeds: int = 3               # classifier seeds (mean ± std)
    # images each classifier sees in training, rounded up to whole batches: the same optimizer
    # steps and images for real, synthetic and real+synthetic
    budget_images: int = 30_000
    seed: int = 0                # of the samples

    def validate(self) -> None:
        if not self.ratio > 0:
            raise BadInput(f"--ratio {self.ratio}: must be positive")
        if not 1 <= self.seeds <= 20:
            raise BadInput(f"--seeds {self.seeds}: choose 1..20")
        if self.budget_images < 1:
            raise BadInput(f"--budget-images {self.budget_images}: must be at least 1")


def classifier_batch(n_real: int) -> int:
    """The batch size every classifier of a comparison on n_real real images trains with."""
    return max(1, min(128, n_real))


def classifier_run(x: np.ndarray, y: np.ndarray, ds: ImageDataset, cfg: AugmentEvalConfig, seed: int,
                   batch_size: int, device="cpu") -> dict:
    """The evaluator's classifier trained on uint8 images x (N, C, H, W) with labels y (N,), from
    `seed`, for ceil(budget_images / batch_size) optimizer steps of `batch_size` images whatever
    N is. Returns {"accuracy": test accuracy, "steps": optimizer steps, "images_seen": images}."""
    from ..evaluators import recipe_for, train_evaluator

    # (train_evaluator autocasts to bf16 only where the device has it natively)
    steps = math.ceil(cfg.budget_images / batch_size)
    recipe = dataclasses.replace(recipe_for(ds.as_loaded()), seed=seed, epochs=10**6, batch_size=batch_size,
                                 steps=steps, budget_images=0, holdout=0.0, patience=0, max_train=len(x))
    train = ImageDataset(name=f"{ds.name} (augment-eval)", train=Split(x, y.astype(np.int64)), test=ds.test,
                         classes=ds.classes)
    # a bar per classifier where bars are on (a terminal, no --quiet): each is tens of seconds
    ev = train_evaluator(train, recipe, device=device, log=lambda m: None, progress=progress_enabled(),
                         desc=f"classifier ({len(x)} images, seed {seed})")
    return {"accuracy": float(ev.meta["accuracy"]), "steps": ev.meta["steps"], "images_seen": ev.meta["images_seen"]}


def classifier_accuracy(x: np.ndarray, y: np.ndarray, ds: ImageDataset, cfg: AugmentEvalConfig, seed: int,
                        device="cpu") -> float:
    """Test accuracy of `classifier_run` with the batch size of a set of len(x) real images."""
    return classifier_run(x, y, ds, cfg, seed, classifier_batch(len(x)), device)["accuracy"]


def balanced_labels(n: int, k: int) -> np.ndarray:
    """n labels cycling through the k classes: as equal a share of each as n allows."""
    return np.arange(n) % k


@register_task
class AugmentTask:
    """Classifiers trained on real, synthetic and real+synthetic images, scored on the test split."""

    name = "augment"
    title = "Synthetic data for a classifier"
    Config = AugmentEvalConfig
    needs = "a class-conditional model (cgan, cvae): an unconditional model's samples have no labels"

    @staticmethod
    def applies(model) -> bool:
        return bool(model.conditional)

    @staticmethod
    def prepare(ds, ev, cfg: AugmentEvalConfig, log=print) -> dict:
        cfg.validate()
        if ds.train.y is None or ds.test.y is None:
            raise BadInput(f"--tasks augment: {ds.name} has no class labels to train a classifier on")
        bs = classifier_batch(len(ds.train))
        log(f"augment-eval: classifiers on the {len(ds.train)} real training images, {cfg.seeds} seeds, "
            f"{math.ceil(cfg.budget_images / bs)} steps of {bs} images each")
        runs = [classifier_run(ds.train.x, ds.train.y, ds, cfg, s, bs) for s in range(cfg.seeds)]
        return {"n_real": len(ds.train), "n_test": len(ds.test), "real": [r["accuracy"] for r in runs],
                "ceiling": ev.meta.get("accuracy"), "config": dataclasses.asdict(cfg), "batch_size": bs,
                "steps": runs[0]["steps"], "images_seen": runs[0]["images_seen"]}

    @staticmethod
    def run(model, ds, ev, cfg: AugmentEvalConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        if not model.conditional:
            raise BadInput(f"augment-eval: {model.name} is unconditional; its samples have no labels to train a "
                           "classifier on (train cgan or cvae)")
        n = prepared["n_real"]
        k = model.config.num_classes
        n_syn = max(n, int(round(cfg.ratio * n)))
        labels = balanced_labels(n_syn, k)
        gen = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            made = np.concatenate([to_uint8(model.sample(len(part), gen, labels=torch.from_numpy(part))).cpu().numpy()
                                   for part in np.array_split(labels, max(1, n_syn // 500))])
        mixed_n = int(round(cfg.ratio * n))
        bs = prepared.get("batch_size", classifier_batch(n))
        runs = []
        for s in range(cfg.seeds):
            runs.append(("synthetic", classifier_run(made[:n], labels[:n], ds, cfg, s, bs)))
            x = np.concatenate([ds.train.x, made[:mixed_n]])
            y = np.concatenate([ds.train.y, labels[:mixed_n]])
            runs.append(("mixed", classifier_run(x, y, ds, cfg, s, bs)))
        synthetic = [r["accuracy"] for kind, r in runs if kind == "synthetic"]
        mixed = [r["accuracy"] for kind, r in runs if kind == "mixed"]
        counts = {(r["steps"], r["images_seen"]) for _, r in runs}
        if "steps" in prepared:
            counts.add((prepared["steps"], prepared["images_seen"]))
        if len(counts) != 1:   # the comparison's premise: never report unequal training as equal
            raise GanvaeError(f"augment-eval: the classifiers trained unequally (steps, images seen: {sorted(counts)})")
        (steps, seen), = counts
        real = prepared["real"]
        out = {"real": float(np.mean(real)), "synthetic": float(np.mean(synthetic)), "mixed": float(np.mean(mixed)),
               "synthetic_seeds": synthetic, "mixed_seeds": mixed, "classifier_batch_size": bs,
               "classifier_steps": steps, "classifier_images_seen": seen}
        out["gain"] = out["mixed"] - out["real"]
        if cfg.seeds > 1:
            out.update(synthetic_std=float(np.std(synthetic, ddof=1)), mixed_std=float(np.std(mixed, ddof=1)))
        log(f"augment-eval: real {out['real']:.4f}, synthetic {out['synthetic']:.4f}, real+synthetic {out['mixed']:.4f}")
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        real = prepared["real"]
        rows = [{"name": "real images only", "kind": "baseline", "real": float(np.mean(real)),
                 "real_std": float(np.std(real, ddof=1)) if len(real) > 1 else None}]
        for model, runs in results.items():
            rows.append({"name": model, "kind": "model", "seeds": len(runs),
                         **seed_means(runs, ["synthetic", "mixed", "gain"])})
        if prepared.get("ceiling") is not None:
            # the accuracy of a classifier on all the real data: the best to hope for, a ceiling
            rows.append({"name": "all real images (the evaluator)", "kind": "ceiling", "real": prepared["ceiling"]})
        columns = [c for c in METRICS if any(c[0] in r for r in rows)]
        cfg = prepared["config"]
        budget = (f"; each {prepared['steps']:,} steps of {prepared['batch_size']} images"
                  if "steps" in prepared else "")
        return [{"title": f"test accuracy of a classifier trained on {prepared['n_real']:,} real images and / or "
                          f"samples (real+synthetic: ratio {cfg['ratio']:g}; {cfg['seeds']} classifier seeds{budget})",
                 "columns": columns, "rows": rows, "n": prepared["n_test"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        (table,) = AugmentTask.tables(prepared, results)
        real = prepared["real"]
        lines = []
        for r, runs in zip([r for r in table["rows"] if r["kind"] == "model"], results.values()):
            if r.get("mixed") is None:
                continue
            mixed = [x for run in runs for x in run.get("mixed_seeds", [run["mixed"]])]
            lines.append(f"{r['name']}'s samples {augment_verdict(mixed, real)} a classifier with "
                         f"{prepared['n_real']:,} real images: {r['mixed']:.3f} with them, {np.mean(real):.3f} "
                         f"without; trained on samples alone {r['synthetic']:.3f}.")
        return lines


def augment_verdict(mixed: list[float], real: list[float]) -> str:
    """Whether adding samples changed the test accuracy by more than the classifier seeds'
    noise: the difference of the means against twice its standard error; with one seed each
    there is no error bar, and the verdict says so."""
    gain = float(np.mean(mixed) - np.mean(real))
    if len(mixed) < 2 or len(real) < 2:
        return f"{'raised' if gain > 0 else 'did not raise'} (one classifier seed, no error bar) the accuracy of"
    se = float(np.sqrt(np.var(mixed, ddof=1) / len(mixed) + np.var(real, ddof=1) / len(real)))
    if gain > 2 * se:
        return f"helped (+{gain:.3f}, twice the seeds' standard error is {2 * se:.3f})"
    if gain < -2 * se:
        return f"hurt ({gain:.3f}, twice the seeds' standard error is {2 * se:.3f})"
    return f"made no difference beyond the seeds' noise ({gain:+.3f} ± {2 * se:.3f}) to"


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: Task = AugmentTask
