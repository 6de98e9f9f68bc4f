"""Translation, measured (issue 13): every translation model on the test split's inputs, scored
against the true targets where the data is paired, with the identity map beside them and the
targets themselves as the floor.

    l1, psnr, ssim   against the true target (paired data only): L1 on [-1, 1], PSNR in dB on
                     [0, 1], SSIM with Wang et al.'s settings (metrics.inpainting.ssim)
    fd               Fréchet distance of the translations to the real test targets, in the
                     evaluator's features: do they look like the target domain?
    accuracy         the evaluator's class accuracy on the translations against the labels:
                     is the content kept? (paired data with labels)
    sharpness        Laplacian energy relative to the targets' (evaluate.sharpness): what the
                     adversary buys over an L1 regression, which averages to blur
    cycle            L1 of a -> b -> a against a, for models that translate both ways
    ms_per_image     the cost, shown, never ranked

The L1-only U-Net (`unet-l1`) is a trained model and takes part as one; the findings set every
GAN model beside it: what the GAN adds (FD, sharpness) and what it costs (PSNR).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import to_float, to_uint8
from ..errors import BadInput
from ..images import translation_grid
from ..metrics.inpainting import hole_psnr, ssim
from ..progress import bar as progress_bar
from ..registry import register_task
from . import evaluator_scores, seed_means

if TYPE_CHECKING:
    from .base import Task

METRICS = [("l1", "L1", False), ("psnr", "PSNR dB", True), ("ssim", "SSIM", True), ("fd", "FD", False),
           ("accuracy", "class kept", True), ("sharpness", "sharpness", None), ("cycle", "cycle L1", False),
           ("ms_per_image", "ms / image", None)]
BASELINE_PRESET = "unet-l1"


@dataclass
class TranslateConfig:
    n: int = 2000          # test inputs translated (the first n)
    batch: int = 256
    seed: int = 0

    def validate(self) -> None:
        if self.n < 1 or self.batch < 1:
            raise BadInput(f"--task-set translate.n={self.n}, translate.batch={self.batch}: both must be at least 1")


def image_metrics(made: np.ndarray, target: np.ndarray | None, ev=None, real_feats=None,
                  labels: np.ndarray | None = None) -> dict:
    """Scores of uint8 (N, C, H, W) translations (see METRICS); target None: no ground truth."""
    from ..evaluation import sharpness

    out = {}
    if target is not None:
        out["l1"] = float(np.abs(made.astype(np.float64) - target).mean() / 127.5)
        whole = np.zeros((len(made), 1, *made.shape[2:]), np.float32)       # every pixel counts
        out["psnr"] = hole_psnr(made, target, whole)
        out["ssim"] = ssim(made, target)
        out["sharpness"] = sharpness(made) / max(sharpness(target), 1e-12)
    if ev is not None:
        out.update(evaluator_scores(made, ev, real_feats, labels))
    return out


@torch.no_grad()
def translate_all(model, x: np.ndarray, direction: str, batch: int) -> np.ndarray:
    """uint8 (N, C_in, S, S) -> uint8 (N, C_out, S, S), in eval mode."""
    was = model.training
    model.eval()
    out = []
    with progress_bar(len(x), f"translate: {direction}") as bar:
        for i in range(0, len(x), batch):
            xb = to_float(torch.from_numpy(x[i:i + batch])).to(model.device)
            out.append(to_uint8(model.translate(xb, direction)).cpu().numpy())
            bar.update(len(xb))
    model.train(was)
    return np.concatenate(out)


@register_task
class TranslationTask:
    """The test inputs translated a -> b, scored against the true targets, the identity map and the floor."""

    name = "translate"
    title = "Translation"
    Config = TranslateConfig

    @staticmethod
    def applies(model) -> bool:
        return bool(model.translation)

    @staticmethod
    def prepare(ds, ev, cfg: TranslateConfig, log=print) -> dict:
        from ..evaluation import real_features

        cfg.validate()
        if ds.test.a is None:
            raise BadInput(f"--tasks translate: {ds.name} has no input domain; use translation data (task:NAME, "
                           "pairs:DIR, unpaired:DIR_A,DIR_B)")
        n = min(cfg.n, len(ds.test.a))
        paired = ds.test.paired
        target = ds.test.x[:n] if paired else None
        labels = ds.test.y[:n] if paired and ds.test.y is not None else None
        real_f, _ = real_features(ev, ds.test.x, "test", log)
        baselines = {}
        a = ds.test.a[:n]
        if a.shape[1:] == ds.test.x.shape[1:]:
            baselines["identity"] = image_metrics(a, target, ev, real_f, labels)
        floor = image_metrics(target, target, ev, real_f, labels) if paired else {}
        floor = {k: v for k, v in floor.items() if k in ("ssim", "fd", "accuracy", "sharpness")}
        return {"n": n, "paired": paired, "baselines": baselines, "floor": floor, "real_feats": real_f,
                "labels": labels, "config": dataclasses.asdict(cfg)}

    @staticmethod
    def run(model, ds, ev, cfg: TranslateConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        from ..images import save_grid

        n = prepared["n"]
        a = ds.test.a[:n]
        target = ds.test.x[:n] if prepared["paired"] else None
        t = time.perf_counter()
        made = translate_all(model, a, "a2b", cfg.batch)
        seconds = time.perf_counter() - t
        out = {**image_metrics(made, target, ev, prepared["real_feats"], prepared["labels"]),
               "ms_per_image": 1000 * seconds / n}
        if "b2a" in model.directions:
            back = translate_all(model, made, "b2a", cfg.batch)
            out["cycle"] = float(np.abs(back.astype(np.float64) - a).mean() / 127.5)
        if figures_dir is not None:
            save_grid(Path(figures_dir) / "translation.png",
                      translation_grid(a[:16], made[:16], target[:16] if target is not None else None), nrow=8)
            out["figure"] = "translation.png"
        log("translation: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items() if isinstance(v, float)))
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        rows = []
        for model, runs in results.items():
            rows.append({"name": model, "kind": "model", "seeds": len(runs),
                         **seed_means(runs, [k for k, _, _ in METRICS])})
        for name, vals in prepared["baselines"].items():
            rows.append({"name": name, "kind": "baseline", **vals})
        if prepared["floor"]:
            rows.append({"name": "targets", "kind": "floor", **prepared["floor"]})
        columns = [c for c in METRICS if any(c[0] in r for r in rows)]
        return [{"title": "a -> b on the test inputs", "columns": columns, "rows": rows, "n": prepared["n"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """The best translator on L1 and on FD, each model against the identity map, and every
        GAN model against the L1-only U-Net: what the adversary adds and what it costs."""
        (table,) = TranslationTask.tables(prepared, results)
        models = [r for r in table["rows"] if r["kind"] == "model"]
        ident = next((r for r in table["rows"] if r["name"] == "identity"), None)
        lines = []
        for key, label, low in (("l1", "L1 to the true targets", True), ("fd", "FD", True)):
            have = [r for r in models if r.get(key) is not None]
            if have:
                best = min(have, key=lambda r: r[key])
                lines.append(f"{best['name']} translates best on {label} ({best[key]:.4g}).")
        if ident is not None and ident.get("l1") is not None:
            worse = [r["name"] for r in models if r.get("l1") is not None and r["l1"] >= ident["l1"]]
            if worse:
                lines.append(f"{', '.join(worse)} do{'es' if len(worse) == 1 else ''} not beat the identity map on "
                             f"L1 ({ident['l1']:.4f}).")
        base = next((r for r in models if r["name"] == BASELINE_PRESET), None)
        if base is not None:
            for r in models:
                if r is base or r.get("fd") is None or base.get("fd") is None:
                    continue
                parts = [f"FD {r['fd']:.3g} against {base['fd']:.3g}"]
                if r.get("sharpness") is not None and base.get("sharpness") is not None:
                    parts.append(f"sharpness {r['sharpness']:.2f} against {base['sharpness']:.2f}")
                if r.get("psnr") is not None and base.get("psnr") is not None:
                    parts.append(f"PSNR {r['psnr']:.1f} against {base['psnr']:.1f} dB")
                lines.append(f"{r['name']} beside the L1-only U-Net: {'; '.join(parts)}.")
        return lines


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: Task = TranslationTask
