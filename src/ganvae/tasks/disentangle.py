"""Disentanglement: does each latent dimension capture one factor of the data? (issue 15)

On data with known generative factors (`--data factors`: shape, scale, rotation, x, y), the
encoder's codes of test images (a VAE's posterior mean) are scored against the factor levels
with three metrics of metrics/disentangle.py:

    MIG        Mutual Information Gap (Chen et al. 2018): per factor, the gap between the two
               code dims that know most about it, over its entropy; 1 = one dim per factor
    FactorVAE  majority-vote accuracy of "which factor was held fixed?" from the code dim that
               varies least (Kim & Mnih 2018)
    DCI        disentanglement, completeness, informativeness (Eastwood & Williams 2018)

On any data, the total correlation of the Gaussian fitted to the codes (nats; 0 = the code's
dims are uncorrelated), the quantity a β-VAE's larger KL weight is said to push down. The
figure is a latent traversal whose rows say which factor each dimension captures most.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import to_float, to_uint8
from ..errors import BadInput
from ..metrics.disentangle import dci, factor_vae_score, gaussian_total_correlation, mig
from ..registry import register_task
from ..evaluation import model_features
from . import EncoderTask, seed_means

if TYPE_CHECKING:
    from .base import Task

METRICS = [("mig", "MIG", True), ("factor_vae", "FactorVAE score", True), ("dci_d", "DCI disentanglement", True),
           ("dci_c", "DCI completeness", True), ("dci_i", "DCI informativeness", True),
           ("tc", "Gaussian TC (nats)", None), ("active", "active dims", None)]   # TC: a collapsed code has ~0


@dataclass
class DisentangleConfig:
    n: int = 5000        # test images encoded (the first ones of the split)
    bins: int = 20       # MIG's discretisation of each code dim
    seed: int = 0        # of the FactorVAE votes and DCI's split and trees
    dims: int = 8        # rows of the labelled traversal figure

    def validate(self) -> None:
        if self.n < 100:
            raise BadInput(f"--n {self.n}: encode at least 100 test images")
        if self.bins < 2:
            raise BadInput(f"--bins {self.bins}: at least 2")
        if self.dims < 1:
            raise BadInput(f"--dims {self.dims}: at least 1")


def active_dims(codes: np.ndarray, threshold: float = 0.01) -> int:
    """Dims whose variance over the data is above `threshold` x the largest dim's: the rest
    carry (almost) nothing (a VAE's collapsed units, Burda et al. 2016's activity criterion
    made scale-free)."""
    var = codes.var(0)
    return int((var > threshold * var.max()).sum()) if var.max() > 0 else 0


@register_task
class DisentangleTask(EncoderTask):
    """MIG, FactorVAE, DCI against known factors; the codes' total correlation on any data."""

    name = "disentangle"
    title = "Latent space: disentanglement"
    Config = DisentangleConfig

    @staticmethod
    def prepare(ds, ev, cfg: DisentangleConfig, log=print) -> dict:
        cfg.validate()
        n = min(cfg.n, len(ds.test))
        info = ds.info.get("factors")
        has = ds.test.factors is not None and info is not None
        log(f"disentangle: {n:,} test images" + ("" if has else f"; {ds.name} has no known factors: "
                                                  "total correlation only (use --data factors for MIG/DCI)"))
        return {"n": n, "factors": list(info["names"]) if has else None, "config": dataclasses.asdict(cfg)}

    @staticmethod
    def run(model, ds, ev, cfg: DisentangleConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        from ..visualize import factor_labels, save_labelled_grid, traverse

        n = prepared["n"]
        _, codes = model_features(model, ds.test.x[:n], desc="disentangle: encoding the test images")
        out = {"dims": int(codes.shape[1]), "active": active_dims(codes)}
        live = codes[:, codes.var(0) > 0]
        out["tc"] = gaussian_total_correlation(live) if live.shape[1] > 1 else 0.0
        names = prepared["factors"]
        if names:
            f = ds.test.factors[:n]
            m = mig(codes, f, bins=cfg.bins)
            d = dci(codes, f, seed=cfg.seed)
            out.update(mig=m["mig"], mig_per_factor=dict(zip(names, m["per_factor"])),
                       factor_vae=factor_vae_score(codes, f, seed=cfg.seed),
                       dci_d=d["disentanglement"], dci_c=d["completeness"], dci_i=d["informativeness"])
            log(f"disentangle: MIG {out['mig']:.3f}, FactorVAE {out['factor_vae']:.3f}, DCI "
                f"{out['dci_d']:.3f}/{out['dci_c']:.3f}/{out['dci_i']:.3f}, TC {out['tc']:.2f} nats")
        else:
            log(f"disentangle: Gaussian TC {out['tc']:.2f} nats, {out['active']} of {out['dims']} dims active")
        if figures_dir is not None:
            x = to_float(torch.from_numpy(ds.test.x[:min(n, 1000)])).to(model.device)
            imgs, order = traverse(model, x, min(cfg.dims, out["dims"]), 11)
            labels = factor_labels(model, x, ds.test.factors[:len(x)], names, order) if names else \
                [f"z{d}" for d in order]
            Path(figures_dir).mkdir(parents=True, exist_ok=True)
            save_labelled_grid(Path(figures_dir) / "traversals_factors.png", to_uint8(imgs).cpu().numpy(), 11, labels)
            out["figure"] = "traversals_factors.png"
            out["dim_labels"] = labels
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        rows = [{"name": model, "kind": "model", **seed_means(runs, [k for k, _, _ in METRICS])}
                for model, runs in results.items()]
        columns = [c for c in METRICS if any(r.get(c[0]) is not None for r in rows)]
        what = f"against the {len(prepared['factors'])} known factors ({', '.join(prepared['factors'])})" \
            if prepared["factors"] else "(no known factors in this data: total correlation only)"
        return [{"title": f"the encoder's codes of test images {what}", "columns": columns,
                 "rows": rows, "n": prepared["n"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """The most and the least disentangled model by MIG, and what the others traded for it."""
        if not prepared["factors"] or len(results) < 2:
            return []
        (table,) = DisentangleTask.tables(prepared, results)
        rows = [r for r in table["rows"] if r.get("mig") is not None]
        if len(rows) < 2:
            return []
        best, worst = max(rows, key=lambda r: r["mig"]), min(rows, key=lambda r: r["mig"])
        return [f"{best['name']} is the most disentangled by MIG ({best['mig']:.3f}, DCI disentanglement "
                f"{best.get('dci_d', float('nan')):.3f}); {worst['name']} the least ({worst['mig']:.3f}, "
                f"{worst.get('dci_d', float('nan')):.3f})."]


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: Task = DisentangleTask
