"""report.html: one self-contained page (images inlined) built only from a compare directory.

Read by `ganvae compare` at its end and by `ganvae report DIR`; nothing here trains or samples.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write, within
from ..errors import BadInput

# The ranking table's columns: (metric, label). Those no row has are left out.
COLUMNS = [
    ("fd", "FD"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
    ("density", "density"), ("coverage", "coverage"), ("classifier_score", "class. score"),
    ("mode_coverage", "modes"), ("mode_reverse_kl", "KL(real‖modes)"), ("recon_mse", "recon MSE"),
    ("psnr", "PSNR dB"), ("nll", "NLL nats"), ("nll_bpd", "NLL bits/dim"), ("sharpness", "sharpness"),
]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _png_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _fig_data(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _fmt(v: float | None, name: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if name == "mode_coverage":
        return f"{v:.0f}"
    a = abs(v)
    return f"{v:.3g}" if a < 1000 else f"{v:,.0f}"


def aggregate(rows: list[dict], key: str = "final") -> dict[str, dict[str, tuple[float, float, int]]]:
    """{model: {metric: (mean, std, seeds)}} over the seeds that finished."""
    out: dict[str, dict] = {}
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok" and key in r:
            by_model.setdefault(r["model"], []).append(r[key])
    for model, runs in by_model.items():
        out[model] = {}
        for name in runs[0]:
            vals = np.array([m[name] for m in runs if name in m], dtype=float)
            out[model][name] = (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals))
    return out


def _cost(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict] = {}
    for r in rows:
        if r.get("status") != "ok":
            continue
        c = out.setdefault(r["model"], {"params": r["params"], "img_s": [], "secs": [], "images": []})
        c["img_s"].append(r["images_per_second"])
        c["secs"].append(r["train_seconds"])
        c["images"].append(r["images_seen"])
    return {m: {"params": c["params"], "img_s": float(np.mean(c["img_s"])), "secs": float(np.mean(c["secs"])),
                "images": float(np.mean(c["images"]))} for m, c in out.items()}


def findings(results: dict, agg: dict, curves: dict[str, list[dict]]) -> list[str]:
    """Plain-language observations computed from the numbers."""
    out = []
    floor = results["floor"]["metrics"]
    d = results["directions"]
    models = list(agg)
    if not models:
        return ["No model finished training."]
    axes = [("fd", "sample quality (FD)"), ("precision", "fidelity (precision)"), ("recall", "diversity (recall)"),
            ("coverage", "coverage of the real data"), ("nll", "likelihood (NLL)"), ("recon_mse", "reconstruction")]
    for name, label in axes:
        have = [m for m in models if name in agg[m]]
        if len(have) < 1 or (len(have) < 2 and name in ("recon_mse", "nll")):
            continue
        pick = (max if d[name] else min)(have, key=lambda m: agg[m][name][0])
        values = [agg[m][name][0] for m in have]
        if len(have) > 1 and max(values) - min(values) <= 1e-9 * max(1.0, abs(max(values))):
            out.append(f"On {label} every model ties at {_fmt(values[0], name)}.")
            continue
        text = f"Best {label}: <b>{pick}</b> ({_fmt(agg[pick][name][0], name)}"
        if name in floor:
            text += f"; real-data floor {_fmt(floor[name], name)}"
        out.append(text + ").")
    fd_best = min(models, key=lambda m: agg[m]["fd"][0])
    ratio = agg[fd_best]["fd"][0] / max(floor["fd"], 1e-12)
    out.append(f"The best FD is {ratio:.0f}x the real-data floor: " +
               ("the models are close to the data at this sample size." if ratio < 3 else
                "every model is still far from the real data under this budget."))
    k = results["floor"].get("classes") and len(results["floor"]["classes"])
    for m in models:
        a = agg[m]
        sharp = a.get("sharpness", (1.0,))[0]
        blurry = sharp < 0.6
        if blurry:
            out.append(f"<b>{m}</b>'s samples are blurry: their edge energy is {100 * sharp:.0f}% of real images' "
                       f"(precision {a['precision'][0]:.2f}, recall {a['recall'][0]:.2f}).")
        if k and "mode_coverage" in a and a["mode_coverage"][0] < 0.8 * k:
            hist = results["_hist"].get(m)
            missing = ""
            if hist:
                missing = ", ".join(results["floor"]["classes"][i] for i, h in enumerate(hist) if h < 0.5 / k)
                missing = f" (missing or rare: {missing})" if missing else ""
            why = ("the evaluator files its blurry samples under few classes" if blurry
                   else "a sign of mode collapse")
            out.append(f"<b>{m}</b> covers only {a['mode_coverage'][0]:.0f} of {k} classes{missing}: {why}.")
        if not blurry and "precision" in a and "recall" in a and a["recall"][0] < 0.3 * floor["recall"] \
                and a["precision"][0] > 0.5 * floor["precision"]:
            out.append(f"<b>{m}</b> has good precision ({a['precision'][0]:.2f}) but low recall "
                       f"({a['recall'][0]:.2f}): realistic samples from a narrow part of the data.")
    for m, curve in curves.items():
        fds = [r["fd"] for r in curve if math.isfinite(r["fd"])]
        if len(fds) >= 2 and fds[-1] > 1.5 * min(fds):
            i = int(np.argmin(fds))
            out.append(f"<b>{m}</b> got worse late in training: FD {fds[i]:.3g} at step {curve[i]['step']}, "
                       f"{fds[-1]:.3g} at the end. The best checkpoint is reported beside the last.")
    for r in results["rows"]:
        if r.get("status") == "diverged":
            out.append(f"<b>{r['model']}</b> (seed {r['seed']}) diverged: {r['error']}")
    cost = _cost(results["rows"])
    if len(cost) > 1:
        fast = max(cost, key=lambda m: cost[m]["img_s"])
        slow = min(cost, key=lambda m: cost[m]["img_s"])
        out.append(f"Training speed ranged from {cost[slow]['img_s']:.0f} img/s ({slow}) to "
                   f"{cost[fast]['img_s']:.0f} img/s ({fast}); under a time budget the faster model saw "
                   f"{cost[fast]['images'] / max(cost[slow]['images'], 1):.1f}x as many images.")
    return out


def _plots(results: dict, run_dirs: dict[str, list[Path]], curves: dict[str, list[dict]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(run_dirs)}
    # FD against time and against images seen
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, curve in curves.items():
        if not curve:
            continue
        axes[0].plot([r["time"] for r in curve], [r["fd"] for r in curve], "o-", color=colours[m], label=m)
        axes[1].plot([r["images"] for r in curve], [r["fd"] for r in curve], "o-", color=colours[m], label=m)
    floor = results["floor"]["metrics"]["fd"]
    for ax, xl in zip(axes, ("training seconds", "images seen")):
        ax.axhline(floor, color="grey", ls="--", lw=1, label="real-data floor")
        ax.set_xlabel(xl)
        ax.set_ylabel("FD (quick, %d samples)" % results["config"]["curve_n"])
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    plots["fd_curves"] = _fig_data(fig)
    # training losses, one panel per model (seed 0)
    n = len(run_dirs)
    cols = min(3, n)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(4.2 * cols, 2.8 * math.ceil(n / cols)), squeeze=False)
    for ax, (m, dirs) in zip(axes.flat, run_dirs.items()):
        rows = _read_jsonl(dirs[0] / "metrics.jsonl")
        keys = sorted({k for r in rows for k in r if k.startswith("loss/")})
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if k in r]
            if pts:
                ax.plot(*zip(*pts), label=k.split("/", 1)[1], lw=1)
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if any(v > 0 for k in keys for r in rows if k in r for v in [r[k]]) and \
                all(r[k] > 0 for k in keys for r in rows if k in r):
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    plots["losses"] = _fig_data(fig)
    # mode coverage: class histograms of the samples against the real one
    real = results["floor"].get("class_hist")
    hists = results["_hist"]
    if real and hists:
        classes = results["floor"]["classes"] or [str(i) for i in range(len(real))]
        fig, ax = plt.subplots(figsize=(10, 3.4))
        width = 0.8 / (len(hists) + 1)
        xs = np.arange(len(real))
        ax.bar(xs, real, width, color="lightgrey", edgecolor="grey", label="real (test)")
        for i, (m, h) in enumerate(hists.items(), start=1):
            ax.bar(xs + i * width, h, width, color=colours.get(m), label=m)
        ax.set_xticks(xs + 0.4 - width / 2, classes, rotation=20, fontsize=8)
        ax.set_ylabel("share of samples")
        ax.legend(fontsize=8, ncol=min(6, len(hists) + 1))
        fig.tight_layout()
        plots["modes"] = _fig_data(fig)
    return plots


def build_context(out: Path) -> dict:
    path = out / "results.json"
    if not path.exists():
        raise BadInput(f"{out}: no results.json; run ganvae compare --out {out} first")
    results = json.loads(path.read_text())
    rows = results["rows"]
    agg = aggregate(rows, "final")
    agg_best = aggregate(rows, "best")
    run_dirs: dict[str, list[Path]] = {}
    for r in rows:
        run_dirs.setdefault(r["model"], []).append(out / "runs" / f"{r['model']}-seed{r['seed']}")
    curves = {m: _read_jsonl(dirs[0] / "curve.jsonl") for m, dirs in run_dirs.items()}
    results["_hist"] = {r["model"]: r["class_hist"] for r in rows
                        if r.get("status") == "ok" and r.get("class_hist") and r["seed"] == 0}
    d = results["directions"]
    floor = results["floor"]["metrics"]
    # higher is None: no direction (sharpness is best near 1, the real data's value)
    columns = [(k, label, d.get(k)) for k, label in COLUMNS if any(k in a for a in agg.values())]
    best_of = {}
    for k, _, higher in columns:
        have = [m for m in agg if k in agg[m]]
        if have and higher is not None:
            best_of[k] = (max if higher else min)(have, key=lambda m: agg[m][k][0])
    order = sorted(agg, key=lambda m: agg[m]["fd"][0])
    cost = _cost(rows)
    table = []
    for rank, m in enumerate(order, 1):
        cells = []
        for k, _, _ in columns:
            if k not in agg[m]:
                cells.append({"text": "–", "best": False})
                continue
            mean, std, n = agg[m][k]
            text = _fmt(mean, k) + (f" ± {_fmt(std, k)}" if n > 1 else "")
            cells.append({"text": text, "best": best_of.get(k) == m})
        table.append({"rank": rank, "model": m, "cells": cells, "cost": cost.get(m)})
    floor_cells = [_fmt(floor[k], k) if k in floor else "" for k, _, _ in columns]
    best_last = []
    for m in order:
        if m in agg_best:
            steps = [r.get("best_step") for r in rows if r["model"] == m and r.get("best_step") is not None]
            best_last.append({"model": m, "last": _fmt(agg[m]["fd"][0]), "best": _fmt(agg_best[m]["fd"][0]),
                              "step": steps[0] if steps else "–",
                              "last_prec": _fmt(agg[m].get("precision", (None,))[0]),
                              "best_prec": _fmt(agg_best[m].get("precision", (None,))[0])})
    sections = []
    for m in order + [m for m in run_dirs if m not in order]:
        row0 = next(r for r in rows if r["model"] == m)
        figs = []
        if row0.get("status") == "ok":
            fig_dir = run_dirs[m][0] / "figures"
            for kind in ("samples", "reconstructions", "interpolations", "traversals", "embedding"):
                name = row0.get("figures", {}).get(kind)
                # a plain file name inside figures/: never inline a file from elsewhere
                if isinstance(name, str) and Path(name).name == name and within(fig_dir, fig_dir / name) \
                        and (fig_dir / name).is_file():
                    figs.append({"kind": kind, "src": _png_data(fig_dir / name)})
        sections.append({"model": m, "figures": figs, "status": row0.get("status"), "error": row0.get("error")})
    return {
        "title": f"ganvae comparison on {results['floor']['data']}",
        "results": results, "columns": columns, "table": table, "floor_cells": floor_cells,
        "best_last": best_last, "sections": sections, "findings": findings(results, agg, curves),
        "plots": _plots(results, run_dirs, curves), "seeds": results["config"]["seeds"],
        "evaluator": results["floor"]["evaluator"], "budget_kind": results["budget_kind"],
    }


def write_report(out: Path) -> Path:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("ganvae.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    ctx = build_context(Path(out))
    html = env.get_template("report.html.j2").render(**ctx)
    path = Path(out) / "report.html"
    atomic_write(path, lambda p: p.write_text(html))
    return path
