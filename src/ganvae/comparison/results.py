"""What a comparison writes besides its runs: results.json's schema, results.csv, the replay
configs of a wall-clock comparison, one model's timing, and the run directories' names."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

from ..files import atomic_write, read_jsonl, write_json
from .config import CompareConfig, own_stop


# results.json's layout (docs/results.md); a change of its fields bumps the number
RESULTS_SCHEMA = "ganvae.results/1"

# results.csv's columns before the metrics (docs/results.md): what was compared, on what, under
# which budget and scored by which evaluator, so that one CSV row stands on its own
# `kind` first: "run" (a model and seed) or "floor" (the real data's line), so a reader can take
# the runs alone (`df[df.kind == "run"].fd.min()`); the floor leaves the run-only integer columns
# empty, which pandas reads as its nullable Int64 when asked (docs/results.md)
CSV_HEAD = ["kind", "model", "seed", "status", "dataset", "budget", "evaluator", "dtype", "params", "steps", "images_seen",
            "train_seconds", "images_per_second", "updates"]


def run_name(model: str, seed: int) -> str:
    """The run directory of a model spec (`dcgan:augment=ada` -> dcgan_augment=ada-seed0)."""
    return f"{re.sub(r'[^A-Za-z0-9.=+-]+', '_', model)}-seed{seed}"


def timing_of(run_dir: Path, summary: dict, scoring: float, best_scoring: float, figures: float) -> dict:
    """Where one model's wall-clock time went, in seconds: `train` is the budgeted training
    time itself; everything else is what the comparison spent around it."""
    curve = sum(r.get("eval_seconds", 0.0) for r in read_jsonl(run_dir / "curve.jsonl"))
    phase1 = run_dir / "phase1_seconds.json"
    wall = json.loads(phase1.read_text())["seconds"] if phase1.exists() else None
    train = summary["train_seconds"]
    other = max(0.0, wall - train - curve) if wall is not None else None
    return {"train": round(train, 2), "curve": round(curve, 2),
            "train_other": None if other is None else round(other, 2),
            "final_scoring": round(scoring, 2), "best_scoring": round(best_scoring, 2), "figures": round(figures, 2)}


def write_replay(cfg: CompareConfig, out: Path, rows: list[dict], sizes: dict) -> list[dict]:
    """A wall-clock budget is not reproducible on another machine (or a busier one): for each
    seed, the same comparison with every model stopped at the step it reached, as a config file
    for `ganvae compare --config`. -> [{"seed", "config" (file name in out), "steps" {model: N}}]."""
    if not cfg.budget:
        return []
    replays = []
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        reached = {r["model"]: r["steps"] for r in rows if r["seed"] == seed and r.get("status") == "ok"}
        if not reached:
            continue
        # scored as this comparison was (the same sample counts), not re-sized
        again = dataclasses.replace(cfg, budget=None, seed=seed, seeds=1, eval_n=sizes["eval_n"],
                                    curve_n=sizes["curve_n"], nll_seconds=sizes["nll_seconds"],
                                    models=tuple(f"{m}:train.steps={n}" for m, n in reached.items()))
        name = f"replay-seed{seed}.json"
        write_json(out / name, dataclasses.asdict(again))
        replays.append({"seed": seed, "config": name, "steps": reached})
    return replays


def write_csv(path: Path, results: dict) -> None:
    """One line per model and seed (kind `run`), then the real-data floor's line (kind `floor`,
    model `real-data-floor`, status `floor`): the cost columns, every final metric, then best_*."""
    rows, floor, cfg = results["rows"], results["floor"], results["config"]
    metric_names = sorted({k for r in rows for k in r.get("final", {})} | set(floor["metrics"]))
    cols = CSV_HEAD + metric_names + [f"best_{m}" for m in metric_names] + ["best_step"]
    common = {"dataset": floor.get("data", cfg["data"]), "budget": budget_text(cfg),
              "evaluator": floor.get("evaluator", {}).get("id", "")}

    def line(r):
        d = {c: r.get(c, "") for c in CSV_HEAD}
        d.update(common, kind="run", dtype=r.get("dtype", cfg.get("precision", "")))
        stop = own_stop(r["model"])   # a model with its own stopping point (a replay)
        if stop:
            d["budget"] = " ".join(f"{v} {k}" if k != "budget" else str(v) for k, v in stop.items())
        d["updates"] = " ".join(f"{k}={v}" for k, v in r.get("updates", {}).items())
        d.update({m: r.get("final", {}).get(m, "") for m in metric_names})
        d.update({f"best_{m}": r.get("best", {}).get(m, "") for m in metric_names})
        d["best_step"] = r.get("best_step", "")
        return d

    floor_line = {c: "" for c in cols}
    floor_line.update(common, kind="floor", model="real-data-floor", status="floor")
    floor_line.update({m: v for m, v in floor["metrics"].items() if m in metric_names})

    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow(line(r))
            w.writerow(floor_line)

    atomic_write(path, write)


def budget_text(cfg: dict) -> str:
    """A comparison's budget per model in a few words: `90s`, `1000 steps`, `3 epochs`."""
    if cfg.get("budget"):
        return str(cfg["budget"])
    if cfg.get("steps"):
        return f"{cfg['steps']} steps"
    if cfg.get("epochs"):
        return f"{cfg['epochs']} epochs"
    return "per model"
