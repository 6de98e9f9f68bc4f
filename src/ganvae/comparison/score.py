"""Scoring one trained model of a comparison on the test split (phase 2): its final and best
checkpoints' metrics, figures and timing in its result.json, at the comparison's one set of
sizes (OUT/scoring.json, OUT/likelihood.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..data import to_float
from ..evaluation import EvalConfig, encoder_metrics, generate, likelihood_info, plan_likelihood, score, skipped_line
from ..files import read_jsonl, write_json
from ..nets import count_params
from . import scoring
from .config import CompareConfig
from .figures import model_figures
from .results import timing_of, run_name


def scoring_sizes(cfg: CompareConfig, out: Path, model, ev, inputs, seed: int, train_seconds: float, log) -> dict:
    """The comparison's sample counts and NLL seconds: as given, else sized once to the first
    model's training time and kept in OUT/scoring.json (comparison/scoring.py)."""
    return scoring.plan(out / "scoring.json", cfg, model, ev, inputs, seed, train_seconds, log)


def _likelihood_plan(cfg: CompareConfig, out: Path, model, ds, nll_seconds: float,
                     log) -> tuple[int | None, int | None]:
    """The comparison's one (k, images) for the IWAE bound: as given, else sized on the first
    likelihood model scored and kept in OUT/likelihood.json for the rest (and a resumed run)."""
    if not getattr(model, "has_likelihood", False) or (cfg.nll_k is not None and cfg.nll_images is not None):
        return cfg.nll_k, cfg.nll_images
    path = out / "likelihood.json"
    if not path.exists():
        ecfg = EvalConfig(nll_k=cfg.nll_k, nll_images=cfg.nll_images, nll_seconds=nll_seconds,
                          nll_k_target=100, nll_images_target=200)
        x = torch.from_numpy(ds.test.x[:min(len(ds.test), ecfg.nll_images or ecfg.nll_images_target)])
        plan = plan_likelihood(model, to_float(x.to(model.device)), ecfg)
        write_json(path, {**plan, "measured_on": model.name})
        log(f"likelihood bound: k={plan['k']} on {plan['images']} test images for every model, sized to "
            f"--nll-seconds {nll_seconds:g} at {plan['decodes_per_second']:.0f} decodes/s of {model.name}")
    plan = json.loads(path.read_text())
    return plan["k"], plan["images"]


def _score_model(model, ds, ev, cfg: CompareConfig, seed: int, log, binarize: str, out: Path,
                 train_seconds: float) -> dict:
    sizes = scoring_sizes(cfg, out, model, ev, ds.test.a, seed, train_seconds, log)
    nll_k, nll_images = _likelihood_plan(cfg, out, model, ds, sizes["nll_seconds"], log)
    ecfg = EvalConfig(n=sizes["eval_n"], nll_k=nll_k, nll_images=nll_images, nll_seconds=sizes["nll_seconds"],
                      nll_k_target=100, nll_images_target=200, seed=seed)
    fake = generate(model, ecfg.n, seed, 500, inputs=ds.test.a)
    # a metric too few test images cannot support is left out and named (results.json: skipped),
    # the rest of the model's scores kept, as `ganvae eval` does
    skipped: dict[str, str] = {}
    res = score(fake, ds, ev, ecfg, log, with_floor=False, skipped=skipped)
    took: dict = {}
    res["metrics"].update(encoder_metrics(model, ds, ecfg, log=lambda m: None, binarize=binarize, skipped=skipped,
                                          seconds=took))
    res["likelihood"] = likelihood_info(model, res["metrics"], binarize, took.get("likelihood"))
    if skipped:
        res["skipped"] = skipped
        log(f"{model.name}: warning: {skipped_line(skipped)}")
    return res


def _best_model(best_dir: Path, point: dict, run_cfg: dict, device):
    """The best checkpoint as scored on the test split: a prior its curve point fitted on fewer
    images than the final model's (auto scoring) is refitted on the run's full set first, so
    best and final are scored alike, and saved back so runs/*/best samples as scored."""
    from ..models.base import GenerativeModel
    from ..trainer import refit_prior

    best = GenerativeModel.from_pretrained(best_dir, device=device)
    if point.get("prior_images") is not None:
        refit_prior(best, run_cfg)
        best.save_pretrained(best_dir)
        write_json(best_dir / "point.json", {**point, "prior_images": None, "prior_refitted": True})
    return best


def finish_one(cfg: CompareConfig, out: Path, preset: str, seed: int, ds, ev, log, device="cpu") -> dict:
    from ..models.base import GenerativeModel
    from ..trainer import read_summary

    run_dir = out / "runs" / run_name(preset, seed)
    model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
    summary = read_summary(run_dir)
    binarize = json.loads((run_dir / "config.json").read_text()).get("data", {}).get("binarize", "none")
    t0 = time.perf_counter()
    final = _score_model(model, ds, ev, cfg, seed, log, binarize, out, summary["train_seconds"])
    t1 = time.perf_counter()
    figures = model_figures(model, run_dir, ds, seed)
    t2 = time.perf_counter()
    run_cfg = json.loads((run_dir / "config.json").read_text())
    row = {"model": preset, "seed": seed, "family": model.name, "params": count_params(model),
           # transfer (--init-from): where the weights came from, for the report to say
           "init_from": run_cfg.get("train", {}).get("init_from"),
           "steps": summary["steps"], "images_seen": summary["images_seen"], "train_seconds": summary["train_seconds"],
           "images_per_second": summary["images_per_second"], "final": final["metrics"],
           # optimizer updates by network: a WGAN's step is 1 G and 5 D updates on 5 batches
           "updates": summary.get("updates", {}), "dtype": summary.get("dtype"), "likelihood": final["likelihood"],
           "class_hist": final.get("class_hist"), "figures": figures, "status": "ok"}
    if final.get("skipped"):
        row["skipped"] = final["skipped"]
    if summary.get("stopped_early"):   # --stop-on-rise (or a callback) ended it before its budget
        row["stopped_early"] = summary["stopped_early"]
    best_dir = run_dir / "best"
    if (best_dir / "point.json").exists():
        point = json.loads((best_dir / "point.json").read_text())
        curve_last = read_jsonl(run_dir / "curve.jsonl")
        if curve_last and point["step"] == curve_last[-1]["step"]:
            row["best"] = dict(final["metrics"])  # the last point is the best: same model
            if point.get("prior_images") is not None:   # with the final model's full prior
                model.save_pretrained(best_dir)
                write_json(best_dir / "point.json", {**point, "prior_images": None, "prior_refitted": True})
        else:
            best = _best_model(best_dir, point, run_cfg, device)
            row["best"] = _score_model(best, ds, ev, cfg, seed, log, binarize, out,
                                       summary["train_seconds"])["metrics"]
        row["best_step"] = point["step"]
    row["timing"] = timing_of(run_dir, summary, t1 - t0, time.perf_counter() - t2, t2 - t1)
    write_json(run_dir / "result.json", row)
    return row


def sizes_before_scoring(cfg: CompareConfig, out: Path, runs, ds, ev, log, device) -> dict:
    """The scoring sizes every final score and the floor use: OUT/scoring.json, written at the
    first model's first curve point; where no curve point wrote it (runs trained by an earlier
    version), sized now on the first trained model and its training time."""
    from ..models.base import GenerativeModel
    from ..trainer import read_summary

    if (out / "scoring.json").exists() or None not in (cfg.eval_n, cfg.curve_n, cfg.nll_seconds):
        return scoring_sizes(cfg, out, None, ev, None, cfg.seed, 0.0, log)   # (all given: nothing to measure)
    for preset, seed in runs:
        run_dir = out / "runs" / run_name(preset, seed)
        if (run_dir / "summary.json").exists() and (run_dir / "model" / "config.json").exists():
            model = GenerativeModel.from_pretrained(run_dir / "model", device=device)
            return scoring_sizes(cfg, out, model, ev, ds.test.a, seed, read_summary(run_dir)["train_seconds"], log)
    # nothing trained (every run diverged): the largest sizes, nothing to spend them on
    return {"eval_n": cfg.eval_n or scoring.EVAL_N[1], "curve_n": cfg.curve_n or scoring.CURVE_N[1],
            "nll_seconds": cfg.nll_seconds or scoring.NLL_SECONDS[1], "auto": []}
