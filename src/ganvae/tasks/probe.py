"""What a latent space is worth as features: linear and k-NN probes (issue 15).

The model is frozen. Its features of an image are the encoder's code (the posterior mean for
VAEs) when it has an encoder, else its discriminator's penultimate activations (`d_features`;
Radford et al. 2016, sec. 5.1, classify with a DCGAN's discriminator features). On them:

    linear   a multinomial logistic regression on standardised features (the linear probe of
             self-supervised learning: how much class information is linearly readable)
    k-NN     a 10-nearest-neighbour vote in the standardised feature space (is the geometry of
             the space class-aware?)

each fitted with 10, 100 and 1,000 labelled training images per class (the label-efficiency
curve: a good representation needs few labels), scored on the test split. Beside every model,
the same probes on raw pixels and on PCA of the pixels with as many dimensions as the model's
code: a latent space that is no better than PCA says so in the findings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BadInput
from ..progress import bar as progress_bar
from ..metrics.probe import label_subset, pca_fit, probe_curve
from ..registry import register_task
from ..evaluation import model_features
from . import pixels

if TYPE_CHECKING:
    from .base import Task

DEFAULT_PER_CLASS = "10,100,1000"


def parse_per_class(value: str) -> tuple[int, ...]:
    """'10,100,1000' -> (10, 100, 1000): labelled training images per class, each at least 1."""
    try:
        counts = tuple(sorted({int(v) for v in str(value).split(",") if v.strip()}))
    except ValueError:
        raise BadInput(f"--per-class {value!r}: give whole numbers separated by commas, e.g. 10,100,1000") from None
    if not counts or counts[0] < 1:
        raise BadInput(f"--per-class {value!r}: give counts of at least 1, e.g. 10,100,1000")
    return counts


@dataclass
class ProbeConfig:
    per_class: str = DEFAULT_PER_CLASS   # labelled training images per class, one curve point each
    seeds: int = 1                       # draws of the labelled subsets (mean ± std)
    k: int = 10                          # neighbours of the k-NN probe
    n_test: int = 10_000                 # test images scored (the first ones of the split)
    seed: int = 0                        # of the labelled subsets

    def validate(self) -> None:
        parse_per_class(self.per_class)
        if not 1 <= self.seeds <= 20:
            raise BadInput(f"--seeds {self.seeds}: choose 1..20")
        if self.k < 1:
            raise BadInput(f"--k {self.k}: must be at least 1")
        if self.n_test < 10:
            raise BadInput(f"--n-test {self.n_test}: score at least 10 test images")


def _columns(per_class: tuple[int, ...]) -> list[tuple[str, str, bool]]:
    return [(f"{probe}_{n}", f"{label} @{n:,}", True) for probe, label in (("linear", "linear"), ("knn", "k-NN"))
            for n in per_class]


def _row(name: str, kind: str, curve: list[dict], dims: int) -> dict:
    """A table row from probe_curve rows of one feature set: linear_N / knn_N (+ _std)."""
    row = {"name": name, "kind": kind, "dims": dims}
    for r in curve:
        for probe in ("linear", "knn"):
            row[f"{probe}_{r['per_class']}"] = r[probe]
            row[f"{probe}_{r['per_class']}_std"] = r.get(f"{probe}_std")
    return row


def _curve(ds, cfg: ProbeConfig, n_test: int, features, test_features: np.ndarray | None) -> list[dict]:
    """probe_curve rows with mean ± std over `cfg.seeds` draws of the labelled images: each
    seed draws its own pool of the largest count per class from the training split (the smaller
    counts are nested inside it), so every curve point varies over the seeds. `features(x)`
    gives {name: (train, test)} for a pool's uint8 images x, or {name: train} whose test
    features are `test_features`."""
    per_class = parse_per_class(cfg.per_class)
    runs = []
    with progress_bar(cfg.seeds, "probe: draws of the labelled images", unit="draw") as bar:
        for s in range(cfg.seed, cfg.seed + cfg.seeds):
            pool = label_subset(ds.train.y, per_class[-1], s)
            feats = {k: v if isinstance(v, tuple) else (v, test_features)
                     for k, v in features(ds.train.x[pool]).items()}
            runs.append(probe_curve(feats, ds.train.y[pool], ds.test.y[:n_test], per_class=per_class, seeds=(s,),
                                    k=cfg.k))
            bar.update(1)
    out = []
    for i, row in enumerate(runs[0]):
        vals = {k: [r[i][k] for r in runs] for k in ("linear", "knn")}
        out.append({"features": row["features"], "per_class": row["per_class"], "n_train": row["n_train"],
                    **{k: float(np.mean(v)) for k, v in vals.items()},
                    **{f"{k}_std": float(np.std(v, ddof=1)) if len(v) > 1 else None for k, v in vals.items()}})
    return out


@register_task
class ProbeTask:
    """Linear and k-NN probes on the frozen features, against pixels and PCA."""

    name = "probe"
    title = "Latent space: features (linear and k-NN probes)"
    Config = ProbeConfig
    uses_evaluator = False
    group = "Latent space"
    needs = "an encoder (ae, vae, vaegan, aae, bigan) or an image discriminator (GANs)"

    @staticmethod
    def applies(model) -> bool:
        return bool(model.has_encoder or hasattr(model, "d_features")) and not model.translation

    @staticmethod
    def prepare(ds, ev, cfg: ProbeConfig, log=print) -> dict:
        cfg.validate()
        if ds.train.y is None or ds.test.y is None:
            raise BadInput(f"--tasks probe: {ds.name} has no class labels to probe with (fashion-mnist, shapes, "
                           "factors, or folder:PATH with one subfolder per class)")
        per_class = parse_per_class(cfg.per_class)
        n_test = min(cfg.n_test, len(ds.test))
        log(f"probe: pixel baselines, {per_class[-1]:,} labelled images per class at most, {n_test:,} test images")
        curve = _curve(ds, cfg, n_test, lambda x: {"pixels": pixels(x)}, pixels(ds.test.x[:n_test]))
        return {"n_test": n_test, "per_class": list(per_class), "pixel_dims": int(np.prod(ds.shape)),
                "pixels": curve, "config": dataclasses.asdict(cfg)}

    @staticmethod
    def run(model, ds, ev, cfg: ProbeConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        n_test = prepared["n_test"]
        kind, test_f = model_features(model, ds.test.x[:n_test])
        dims = int(test_f.shape[1])
        test_px = pixels(ds.test.x[:n_test])
        # PCA with the code's size, where there is one (a GAN's D features are wider than the image)
        pca_too = dims < test_px.shape[1]

        def features(x: np.ndarray) -> dict:
            """{name: (train features, test features)} of one seed's labelled images x."""
            out = {"model": (model_features(model, x)[1], test_f)}
            if pca_too and dims < len(x):   # fitted on the labelled images' pixels
                pca = pca_fit(pixels(x), dims, seed=cfg.seed)
                out["pca"] = (pca.transform(pixels(x)), pca.transform(test_px))
            return out

        log(f"probe: {kind} ({dims}-d)")
        curve = _curve(ds, cfg, n_test, features, None)
        out = {"features": kind, "dims": dims, "curve": [r for r in curve if r["features"] == "model"],
               "pca": [r for r in curve if r["features"] == "pca"]}
        top = out["curve"][-1]
        log(f"probe: linear {top['linear']:.3f}, k-NN {top['knn']:.3f} at {top['per_class']:,} labels per class")
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        per_class = tuple(prepared["per_class"])
        rows, pca_rows = [], {}
        for model, runs in results.items():
            res = runs[0]   # the probe of seed 0's run; its own seeds are the subsets' draws
            rows.append(_row(f"{model} ({res['features']}, {res['dims']}-d)", "model", res["curve"], res["dims"]))
            if res.get("pca"):
                pca_rows.setdefault(res["dims"], _row(f"PCA of the pixels, {res['dims']}-d", "baseline",
                                                      res["pca"], res["dims"]))
        rows += [pca_rows[d] for d in sorted(pca_rows)]
        rows.append(_row(f"pixels ({prepared['pixel_dims']}-d)", "baseline", prepared["pixels"], prepared["pixel_dims"]))
        cfg = prepared["config"]
        return [{"title": f"test accuracy of probes on frozen features, by labelled training images per class "
                          f"({cfg['seeds']} draw{'s' if cfg['seeds'] > 1 else ''} of the labelled images)",
                 "columns": _columns(per_class), "rows": rows, "n": prepared["n_test"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """One line per model: its linear probe at the most labels against PCA of the same size
        (or the pixels, for a GAN's wide D features)."""
        n = prepared["per_class"][-1]
        px = prepared["pixels"][-1]["linear"]
        lines = []
        for model, runs in results.items():
            res = runs[0]
            own = res["curve"][-1]["linear"]
            if res.get("pca"):
                ref, what = res["pca"][-1]["linear"], f"PCA with as many dimensions ({res['dims']})"
            else:
                ref, what = px, "the raw pixels"
            margin = 0.01
            verdict = ("better than" if own > ref + margin else "worse than" if own < ref - margin
                       else "no better than")
            lines.append(f"{model}'s {res['features']} are {verdict} {what} for a linear classifier with {n:,} "
                         f"labels per class: {own:.3f} against {ref:.3f} (pixels {px:.3f}).")
        return lines


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: Task = ProbeTask
