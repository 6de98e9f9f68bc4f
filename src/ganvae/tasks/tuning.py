"""Choosing the tasks' own settings on the validation split, never on the test split (issue 30).

The tasks score models on the test split, so nothing they report may have been chosen by a
test score. Two of their defaults are choices of that kind:

    the probe's C        the inverse L2 strength of the linear probe (metrics.probe.LOGREG_C),
                         one value for every feature set and label count
    completion's knobs   latent-opt's latent weight, step size and realism weight
                         (tasks.complete.CompleteConfig)

Both are tuned here on a run's validation split (`--val-split`, held out of train by every
comparison): the probe fits on labelled *training* images and is scored on validation images;
completion completes masked *validation* images. Every function first seals the dataset's test
split, so that any read of it is an error rather than a silent leak; `benchmarks/tune_tasks.py`
runs them and BENCHMARKS.md ("Tuning the tasks on the validation split") records the grids.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

import numpy as np
import torch

from ..data import to_float, to_uint8
from ..data.base import ImageDataset
from ..errors import BadInput, GanvaeError


class TestSplitRead(GanvaeError):
    """Raised when code that tunes a setting touches the test split."""


class _SealedSplit:
    """Stands in for a test split while tuning: reading any of it raises TestSplitRead."""

    def __getattr__(self, name):
        raise TestSplitRead(f"tuning read the test split ({name}); settings must be chosen on the validation split")

    def __len__(self):
        raise TestSplitRead("tuning read the test split (len); settings must be chosen on the validation split")


def sealed(ds: ImageDataset) -> ImageDataset:
    """`ds` with its test split sealed and a validation split required."""
    if ds.val is None or len(ds.val.x) == 0:
        raise BadInput(f"{ds.name}: tuning needs a validation split (train or compare with --val-split auto)")
    return dataclasses.replace(ds, test=_SealedSplit())


def least_regret(scores: Mapping[object, list[float]]) -> tuple[object, dict[object, float]]:
    """The candidate whose worst shortfall against the best candidate of each cell is smallest.

    scores: {candidate: [score of cell 0, cell 1, ...]}, higher better, the same cells for all.
    Returns (the chosen candidate, {candidate: its largest shortfall}); ties go to the larger
    mean score, then to the first candidate given.
    """
    names = list(scores)
    table = np.array([scores[c] for c in names], dtype=np.float64)     # (candidates, cells)
    regret = (table.max(0, keepdims=True) - table).max(1)               # (candidates,)
    order = sorted(range(len(names)), key=lambda i: (round(float(regret[i]), 12), -table[i].mean()))
    return names[order[0]], {c: float(r) for c, r in zip(names, regret)}


def tune_probe_c(ds: ImageDataset, cs: Iterable[float] = (1.0, 0.1, 0.01, 0.001),
                 per_class: Iterable[int] = (10, 100, 1000), pca_dims: Iterable[int] = (32,), seed: int = 0,
                 log=print) -> dict:
    """The linear probe's C chosen on the validation split, as the probe task uses it: one C
    for pixel features and PCA features of the pixels, at every label count.

    Each feature set is fitted on labelled training images (the task's nested subsets of one
    pool, `seed`) and scored on the validation images. Returns {"rows": [{features, per_class,
    c, val_accuracy}], "chosen": C with the least regret over the cells, "regret": {C: worst
    shortfall}, "val_images": count}.
    """
    from ..metrics.probe import label_subset, pca_fit, probe_curve

    ds = sealed(ds)
    if ds.train.y is None or ds.val.y is None:
        raise BadInput(f"{ds.name}: the probe needs class labels")
    counts = sorted({int(n) for n in per_class})
    pool = label_subset(ds.train.y, counts[-1], seed)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0   # noqa: E731
    train_px, val_px = flat(ds.train.x[pool]), flat(ds.val.x)
    features = {"pixels": (train_px, val_px)}
    for d in pca_dims:
        basis = pca_fit(train_px, int(d), seed=seed)
        features[f"pca-{d}"] = (basis.transform(train_px), basis.transform(val_px))
    rows, cells = [], {}
    for c in cs:
        log(f"tune probe: C = {c:g}")
        for r in probe_curve(features, ds.train.y[pool], ds.val.y, per_class=counts, seeds=(seed,), c=float(c)):
            rows.append({"features": r["features"], "per_class": r["per_class"], "c": float(c),
                         "val_accuracy": r["linear"]})
            cells.setdefault(float(c), []).append(r["linear"])
    chosen, regret = least_regret(cells)
    return {"rows": rows, "chosen": chosen, "regret": regret, "val_images": int(len(ds.val.x)),
            "labelled_pool": int(len(pool))}


def tune_completion(models: Mapping[str, object], ds: ImageDataset, grid: Mapping[str, Iterable],
                    base=None, n: int = 100, mask: str = "center", seed: int = 0, tolerance: float = 0.01,
                    log=print) -> dict:
    """latent-opt's settings chosen on masked validation images.

    One setting at a time is moved through its values from `base` (a CompleteConfig; its
    defaults when None), the others held; every model completes the first `n` validation
    images under the `mask` kind's masks of `seed`, and the hole MSE is recorded. The choice
    per setting is `choose_completion`'s.

    Returns {"rows": [{model, key, value, hole_mse}], "chosen": {key: value}, "regret":
    {key: {value: worst relative excess}}, "val_images": n, "mask": mask, "base": base's fields,
    "tolerance": tolerance}.
    """
    from ..metrics.inpainting import hole_mse
    from .complete import CompleteConfig, complete, make_masks, mean_image, parse_mask

    ds = sealed(ds)
    base = base or CompleteConfig()
    n = min(n, len(ds.val.x))
    original = ds.val.x[:n]
    masks = make_masks(parse_mask(mask), n, ds.shape[1:], seed)                    # (n, 1, H, W)
    fill = to_float(torch.from_numpy(mean_image(ds)))
    rows = []
    for key, values in grid.items():
        if key not in {f.name for f in dataclasses.fields(CompleteConfig)}:
            raise BadInput(f"tune completion: {key!r} is not a CompleteConfig field")
        for name, model in models.items():
            dev = model.device
            x = to_float(torch.from_numpy(original)).to(dev)
            for v in values:
                cfg = dataclasses.replace(base, **{key: v})
                done = complete(model, x, torch.from_numpy(masks).to(dev), "latent-opt", cfg, fill.to(dev),
                                torch.Generator().manual_seed(seed))
                mse = hole_mse(to_uint8(done).cpu().numpy(), original, masks)
                rows.append({"model": name, "key": key, "value": v, "hole_mse": mse})
                log(f"tune completion: {name} {key}={v}: hole MSE {mse:.4f}")
    chosen, regrets = choose_completion(rows, dataclasses.asdict(base), tolerance)
    return {"rows": rows, "chosen": chosen, "regret": regrets, "val_images": int(n), "mask": mask,
            "base": dataclasses.asdict(base), "tolerance": tolerance}


def choose_completion(rows: list[dict], base: Mapping[str, object], tolerance: float = 0.01
                      ) -> tuple[dict, dict]:
    """Per setting, from tune_completion's rows: the value whose worst relative excess of hole
    MSE over each model's best value is smallest (least_regret on -MSE / best MSE), so no model
    is sacrificed for another; but the base (current default) value stays unless the chosen one
    lowers that worst excess by more than `tolerance` (1%: the seed-to-seed wobble of 100
    images' hole MSE), so noise never moves a default.

    Returns ({key: value}, {key: {value: worst relative excess}}).
    """
    chosen, regrets = {}, {}
    for key in dict.fromkeys(r["key"] for r in rows):
        mine = [r for r in rows if r["key"] == key]
        values = list(dict.fromkeys(r["value"] for r in mine))
        per_value: dict[object, list[float]] = {v: [] for v in values}
        for name in dict.fromkeys(r["model"] for r in mine):
            mses = {r["value"]: r["hole_mse"] for r in mine if r["model"] == name}
            best = min(mses.values())
            for v in values:
                per_value[v].append(-mses[v] / max(best, 1e-12))
        pick, regret = least_regret(per_value)
        if base.get(key) in regret and regret[base[key]] - regret[pick] <= tolerance:
            pick = base[key]
        chosen[key], regrets[key] = pick, regret
    return chosen, regrets
