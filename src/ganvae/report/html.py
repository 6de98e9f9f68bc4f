"""report.html: one self-contained page (images inlined) built only from a compare directory.

Read by `ganvae compare` at its end and by `ganvae report DIR`; nothing here trains or samples.
"""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from pathlib import Path

import numpy as np

from ..files import atomic_write, legacy_row, read_jsonl, within
from ..errors import BadInput
from ..comparison.scoring import summary_line

# a task table's rows that are references (the real data's floor, the ceiling a classifier on
# all real images reaches), never ranked or marked best
REFERENCE_ROWS = ("floor", "ceiling")

# The ranking table's columns: (metric, label). Those no row has are left out.
COLUMNS = [
    ("fd", "FD"), ("kid", "KID"), ("precision", "precision"), ("recall", "recall"),
    ("density", "density"), ("coverage", "coverage"), ("classifier_score", "class. score"),
    ("mode_coverage", "modes"), ("mode_reverse_kl", "KL(real‖modes)"), ("recon_mse", "recon MSE"),
    ("psnr", "PSNR dB"), ("nll", "NLL nats, 8-bit"), ("nll_bpd", "bits/dim, 8-bit"),
    ("nll_binary", "NLL nats, binarized"), ("nll_binary_bpd", "bits/dim, binarized"),
    ("nll_invalid", "“NLL”, not a likelihood"), ("sharpness", "sharpness"),
]


def _png_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def fig_data(fig) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
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


def split_notes(results: dict) -> dict[str, str]:
    """Which split each number of the report comes from, in words: {"table": ..., "curve": ...}.

    Stated next to the numbers because a score is only as honest as the split it is measured
    on: curves and the best checkpoint are chosen on the validation split, every score in the
    tables is on the test split.
    """
    sp = results.get("splits")
    test = f"test split ({sp['test_images'] if sp else results['floor']['test_images']:,} images)"
    if not sp:  # written before compare held out a validation split
        return {"table": f"Every score in this table: {test}. This comparison predates validation splits: its curves "
                         "and best checkpoints were measured on the test split too, so its best-checkpoint scores "
                         "are optimistic.", "curve": "test", "best": "the test split"}
    seed = sp.get("data_seed", 0)
    notes = _split_notes(sp, test, seed)
    if sp.get("limit"):  # --limit: the little-data setting, said before anything else
        lim = sp["limit"]
        notes["table"] = (f"Trained on {lim['n']:,} of the {lim['of']:,} training images (--limit, class-stratified "
                          f"by seed {seed}); the evaluator, the validation and test splits and the real-data floor "
                          f"are the full data's. " + notes["table"])
    return notes


def _split_notes(sp: dict, test: str, seed: int) -> dict[str, str]:
    if sp["best_selection"] is None:
        return {"table": f"Curves: a fixed slice of {sp['curve_images']:,} training images (no validation split: "
                         f"--val-split 0, so no best checkpoint is picked); every score in this table: {test}.",
                "curve": "train slice", "best": "none"}
    return {"table": f"Curves and best-checkpoint selection: validation split ({sp['val_images']:,} images held out "
                     f"of train, seed {seed}); every score in this table: {test}.",
            "curve": "val", "best": f"the validation split ({sp['val_images']:,} images)"}


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
        c = out.setdefault(r["model"], {"params": r["params"], "img_s": [], "secs": [], "images": [], "updates": []})
        c["img_s"].append(r["images_per_second"])
        c["secs"].append(r["train_seconds"])
        c["images"].append(r["images_seen"])
        c["updates"].append(r.get("updates") or {})
    return {m: {"params": c["params"], "img_s": float(np.mean(c["img_s"])), "secs": float(np.mean(c["secs"])),
                "images": float(np.mean(c["images"])), "updates": _updates_text(c["updates"])}
            for m, c in out.items()}


TIME_PARTS = (("train", "training"), ("curve", "curve points"), ("train_other", "start-up, checkpoints, logs"),
              ("final_scoring", "final scoring"), ("best_scoring", "best-checkpoint scoring"), ("figures", "figures"))


def time_split(results: dict) -> dict | None:
    """Seconds per part of each run (mean over seeds), and what the comparison spent around the
    training budget; None for results written before the split was recorded."""
    rows = [r for r in results["rows"] if r.get("status") == "ok" and r.get("timing")]
    if not rows:
        return None
    models: dict[str, list[dict]] = {}
    for r in rows:
        models.setdefault(r["model"], []).append(r["timing"])
    table = []
    for m, ts in models.items():
        parts = {k: float(np.mean([t.get(k) or 0.0 for t in ts])) for k, _ in TIME_PARTS}
        around = sum(v for k, v in parts.items() if k != "train")
        table.append({"model": m, "parts": [parts[k] for k, _ in TIME_PARTS], "around": around,
                      "share": around / max(parts["train"], 1e-9)})
    shared = results.get("timing", {})
    trained = sum(t.get("train", 0.0) for r in rows for t in [r["timing"]])
    around = sum(t["around"] * len(models[t["model"]]) for t in table) + shared.get("setup", 0) + shared.get("floor", 0)
    return {"labels": [label for _, label in TIME_PARTS], "rows": table, "setup": shared.get("setup"),
            "floor": shared.get("floor"), "train": trained, "around": around,
            "share": around / max(trained, 1e-9)}


def _updates_text(updates: list[dict]) -> str:
    """Mean optimizer updates per network over seeds, e.g. "g 1,000 · d 5,000"."""
    names = [k for k in (updates[0] if updates else {})]
    return " · ".join(f"{k} {np.mean([u.get(k, 0) for u in updates]):,.0f}" for k in names)


def used_sizes(results: dict) -> dict:
    """The comparison's config with the sample counts and NLL seconds it actually used
    (results.json `scoring`; a comparison before sizing existed: its config's numbers)."""
    sc = results.get("scoring") or {}
    return {**results["config"], **{k: sc[k] for k in ("eval_n", "curve_n", "nll_seconds") if sc.get(k) is not None}}


def likelihood_notes(rows: list[dict], config: dict) -> list[str]:
    """One sentence per data space the table's likelihoods are in, so no number is read as a
    probability of data it is not one of."""
    spaces: dict[str, list[str]] = {}
    for r in rows:
        info = r.get("likelihood")
        if r.get("status") == "ok" and info and r["model"] not in spaces.get(info["space"], []):
            spaces.setdefault(info["space"], []).append(r["model"])
    what = {"8-bit": "−log P of the 8-bit test images (each pixel a distribution over its 256 values)",
            "binary": "−log P of one fixed binarization of the test images (a different data space: "
                      "not comparable with 8-bit numbers)",
            "invalid": "not a likelihood of the data (a Bernoulli on grey levels or a continuous density); "
                       "shown, never ranked"}
    # the counts the bound used (sized to a time budget unless given), from the rows themselves
    used = {}
    for r in rows:
        info = r.get("likelihood") or {}
        if r.get("status") == "ok" and info:
            used.setdefault(info["space"], (info.get("k") or config.get("nll_k"),
                                            info.get("images") or config.get("nll_images")))
    how = ("as given by --nll-k and --nll-images" if config.get("nll_k") and config.get("nll_images")
           else f"sized to fit --nll-seconds {config.get('nll_seconds')} per scoring")
    return [f"{', '.join(models)}: NLL (IWAE, k={used[space][0]}) on the first {used[space][1]} test images "
            f"({how}), {what[space]}." for space, models in spaces.items()]


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
    for r in results.get("rows", []):
        if r.get("stopped_early"):
            out.append(f"<b>{r['model']}</b> (seed {r['seed']}) stopped early at step {r['steps']:,}: "
                       f"{escape(r['stopped_early'])}.")
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
    out += hybrid_findings(agg)
    for m, curve in curves.items():
        fds = [r["fd"] for r in curve if math.isfinite(r["fd"])]
        if len(fds) >= 2 and fds[-1] > 1.5 * min(fds):
            i = int(np.argmin(fds))
            best = (" The best checkpoint is reported beside the last."
                    if (results.get("splits") or {}).get("best_selection", "test") else "")
            out.append(f"<b>{m}</b> got worse late in training: FD ({split_notes(results)['curve']}) {fds[i]:.3g} "
                       f"at step {curve[i]['step']}, {fds[-1]:.3g} at the end.{best}")
    out += little_data_findings(results, agg)
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


def little_data_findings(results: dict, agg: dict) -> list[str]:
    """Transferred runs and where they came from; with --limit, what the remedies in the
    comparison (variants of one preset: augmentation, transfer) bought over the plain preset."""
    from ..registry import parse_model_spec

    out, said = [], set()
    for r in results["rows"]:
        if r.get("init_from") and r["model"] not in said:   # once per model, whatever its seeds
            said.add(r["model"])
            out.append(f"<b>{r['model']}</b> started from the weights of {r['init_from']} (transfer), not from "
                       "random ones: its budget comes on top of that run's.")
    limit = (results.get("splits") or {}).get("limit")
    if not limit:
        return out
    by_preset: dict[str, list[str]] = {}
    for m in agg:
        by_preset.setdefault(parse_model_spec(m)[0], []).append(m)
    for preset, variants in by_preset.items():
        if preset not in agg or "fd" not in agg[preset]:
            continue
        base = agg[preset]["fd"][0]
        for v in variants:
            if v == preset or "fd" not in agg[v]:
                continue
            fd = agg[v]["fd"][0]
            verdict = "helped" if fd < base else "did not help"
            rec = (f", recall {agg[v]['recall'][0]:.2f} against {agg[preset]['recall'][0]:.2f}"
                   if "recall" in agg[v] and "recall" in agg[preset] else "")
            out.append(f"With {limit['n']:,} training images, <b>{v}</b> {verdict}: FD {fd:.3g} against {preset}'s "
                       f"{base:.3g}{rec}.")
    return out


def hybrid_findings(agg: dict) -> list[str]:
    """For each hybrid in the comparison whose parents (the model's `parents`) are in it too:
    does it beat both on FD, and is it sharper? The question a hybrid has to answer."""
    from ..errors import BadInput
    from ..registry import resolve

    out = []
    for m in agg:
        try:
            family = resolve(m)[0].parents
        except BadInput:        # a results file from a model this version does not know
            continue
        parents = [p for p in family if p in agg and "fd" in agg[p]]
        if not parents or "fd" not in agg[m]:
            continue
        best = min(parents, key=lambda p: agg[p]["fd"][0])
        fd, fd_p = agg[m]["fd"][0], agg[best]["fd"][0]
        verdict = "beats" if all(fd < agg[p]["fd"][0] for p in parents) else "does not beat"
        text = (f"<b>{m}</b> (a hybrid of {' and '.join(family)}) {verdict} {' and '.join(parents)} on FD "
                f"({fd:.3g} against {fd_p:.3g} for {best})")
        sharp = {k: agg[k]["sharpness"][0] for k in (m, *parents) if "sharpness" in agg[k]}
        if m in sharp and len(sharp) > 1:
            text += (f"; sharpness {sharp[m]:.2f} against "
                     + ", ".join(f"{sharp[k]:.2f} ({k})" for k in sharp if k != m))
        out.append(text + ".")
    return out


def build_context(out: Path) -> dict:
    from ..comparison.results import run_name
    from .plots import plots   # (it draws with this module's helpers)

    path = out / "results.json"
    if not path.exists():
        raise BadInput(f"{out}: no results.json; run ganvae compare --out {out} first")
    results = json.loads(path.read_text())
    rows = results["rows"]
    agg = aggregate(rows, "final")
    agg_best = aggregate(rows, "best")
    run_dirs: dict[str, list[Path]] = {}
    for r in rows:
        run_dirs.setdefault(r["model"], []).append(out / "runs" / run_name(r["model"], r["seed"]))

    curves = {m: [legacy_row(r) for r in read_jsonl(dirs[0] / "curve.jsonl")] for m, dirs in run_dirs.items()}
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
        "title": f"ganvae comparison on {results['floor']['data']}", "out_name": str(out),
        "results": results, "columns": columns, "table": table, "floor_cells": floor_cells,
        "best_last": best_last, "sections": sections, "findings": findings(results, agg, curves),
        "plots": plots(results, run_dirs, curves), "seeds": results["config"]["seeds"],
        "evaluator": results["floor"]["evaluator"], "budget_kind": results["budget_kind"],
        "split_notes": split_notes(results), "time_split": time_split(results),
        "likelihood_notes": likelihood_notes(rows, used_sizes(results)),
        # the sample counts scored (sized to the training time unless given) and why
        "sizes": used_sizes(results), "scoring_line": summary_line(results.get("scoring")),
        "column_dirs": [_dir_text(k, higher) for k, _, higher in columns],
        "tasks": task_sections(results, run_dirs),
    }


def task_sections(results: dict, run_dirs: dict[str, list[Path]]) -> list[dict]:
    """One report section per task of the comparison (ganvae.tasks): its findings, its tables
    with the best value of each column in bold (among models and baselines; the floor row is the
    originals' own score), and each model's figure (seed 0)."""
    from ..tasks import get_task

    sections = []
    for name, task in (results.get("tasks") or {}).items():
        plot, impl = None, None
        try:   # tables and findings from the numbers, by this version's task (as a rebuilt report should)
            impl = get_task(name)
            task = {**task, "tables": impl.tables(task["summary"], task["results"]),
                    "findings": impl.findings(task["summary"], task["results"])}
            if hasattr(impl, "plot"):   # one figure of every model's results (compress: rate-distortion)
                plot = fig_data(impl.plot(task["summary"], task["results"]))
        except (BadInput, KeyError):
            pass   # a task this version does not know: what the file says
        tables = []
        for t in task["tables"]:
            cols = [(k, label, higher) for k, label, higher in t["columns"]
                    if any(r.get(k) is not None for r in t["rows"])]
            ranked = [r for r in t["rows"] if r["kind"] not in REFERENCE_ROWS]
            best = {}
            for k, _, higher in cols:
                have = [r for r in ranked if r.get(k) is not None]
                if have and higher is not None:
                    best[k] = (max if higher else min)(have, key=lambda r: r[k])["name"]
            rows = []
            for r in t["rows"]:
                cells = []
                for k, _, _ in cols:
                    v = r.get(k)
                    text = _fmt(v, k) + (f" ± {_fmt(r[k + '_std'], k)}" if r.get(k + "_std") is not None else "")
                    cells.append({"text": text, "best": r["kind"] not in REFERENCE_ROWS and best.get(k) == r["name"]})
                label = r["name"] + (f" ({r['method']})" if r.get("method") else "")
                rows.append({"name": label, "kind": r["kind"], "cells": cells})
            tables.append({"title": t["title"], "n": t.get("n"), "rows": rows,
                           "columns": [(label, "" if h is None else "↑" if h else "↓") for _, label, h in cols]})
        figures = []
        for model, file in task.get("figures", {}).items():
            fig_dir = run_dirs.get(model, [None])[0]
            if fig_dir is None:
                continue
            fig_dir = fig_dir / "figures"
            if isinstance(file, str) and Path(file).name == file and (fig_dir / file).is_file():
                figures.append({"model": model, "src": _png_data(fig_dir / file)})
        sections.append({"name": name, "title": task["title"], "findings": task.get("findings", []),
                         "tables": tables, "figures": figures, "summary": task.get("summary", {}), "plot": plot,
                         "group": getattr(impl, "group", None)})
    return sections


def _dir_text(key: str, higher: bool | None) -> str:
    if higher is None:
        return "1 = real" if key == "sharpness" else "not ranked"
    return "↑" if higher else "↓"


def write_report(out: Path) -> Path:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("ganvae.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    ctx = build_context(Path(out))
    html = env.get_template("report.html.j2").render(**ctx)
    path = Path(out) / "report.html"
    atomic_write(path, lambda p: p.write_text(html))
    return path
