"""How much scoring a comparison buys: sample counts sized to the training time (issue 32).

Scoring costs per image what the nets cost per image. At 64x64 RGB a DCGAN decoder forward is
~0.7 GFLOP, about 5x the 28x28 one, while a wall-clock budget buys about 5x fewer training
steps; fixed counts (10,000 samples for the final score, 1,000 per curve point, the prior of
every curve point fitted on 10,000 encoded images) made the time around training 55% of a
`--budget 3m` comparison on a 64x64 RGB folder, against 22% on Fashion-MNIST (BENCHMARKS.md,
"Performance II").

`auto` (the default of --eval-n, --curve-n and --nll-seconds) sizes each to a share of the
training time instead, from rates measured on the model itself:

    eval_n       = FINAL_SHARE x T x r,            within EVAL_N        (final and best scores)
    curve_n      = CURVE_SHARE x T x r / points,   within CURVE_N       (each quick FD)
    nll_seconds  = LIKELIHOOD_SHARE x T,           within NLL_SECONDS   (each IWAE bound)

T is the training time the first model is projected to take (the budget itself for --budget),
r the samples per second it generates and the evaluator reads. These three are measured once
per comparison, on its first model at its first curve point, and kept in OUT/scoring.json:
every model is then scored on the same number of samples (the FD's bias depends on n), and a
resumed comparison keeps its numbers. The floors keep each number meaningful however short
the budget: below 1,000 samples an FD in 128 features is mostly its own bias.

The images a curve point fits an encoder model's prior to (ae, vaegan, prior=gmm) are per
model, sized by that model's own encoding rate, since curve points compare a model only with
itself:

    curve_prior_images = PRIOR_SHARE x T x r_encode / points, within CURVE_PRIOR_IMAGES

(at most the run's own train.prior_images, which the final model's prior always uses); kept in
the run's curve_plan.json. A best checkpoint whose prior was fitted on fewer images is refitted
on the run's full set before it is scored on the test split, so best and final are scored alike.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..data import to_float
from ..files import write_json

FINAL_SHARE = 0.05        # the final score's samples: 5% of the training time (the best's again)
CURVE_SHARE = 0.05        # all curve points' samples together
PRIOR_SHARE = 0.04        # all curve points' prior fits together (encoder models)
LIKELIHOOD_SHARE = 0.05   # each IWAE bound

EVAL_N = (1_000, 10_000)
CURVE_N = (200, 1_000)
# 1,000 codes: 100 a component of the default 10-component GMM, more than the dims of a
# preset's code (64 at 64x64), so every full covariance is estimated from more points than it has rows
CURVE_PRIOR_IMAGES = (1_000, None)   # (the upper limit: the run's train.prior_images)
NLL_SECONDS = (5.0, 20.0)

PROBE = 128               # samples (and images encoded) timed to measure a rate


def _within(value: float, limits: tuple, step: int = 100) -> int:
    lo, hi = limits
    n = int(value // step * step)
    return max(lo, n if hi is None else min(hi, n))


def projected_seconds(trainer) -> float:
    """The training seconds a run will have taken at its stopping point, projected from how far
    through it is now (exact for a wall-clock --budget)."""
    done = trainer.fraction_done()
    if trainer.budget is not None and trainer.max_steps is None:
        return float(trainer.budget)
    return trainer.elapsed / done if done > 0 else trainer.elapsed


@torch.no_grad()
def sample_rate(model, ev, inputs: np.ndarray | None, seed: int) -> float:
    """Samples per second that `model` generates and the evaluator reads (the cost per sample of
    every curve point and final score)."""
    from ..evaluation import generate
    from ..progress import quiet

    with quiet():
        generate(model, 8, seed, 500, inputs=inputs)         # warm-up: first-call allocations
        t = time.perf_counter()
        fake = generate(model, PROBE, seed, 500, inputs=inputs)
        ev.features_and_probs(fake)
    return len(fake) / max(time.perf_counter() - t, 1e-6)


@torch.no_grad()
def encode_rate(model, x_uint8: torch.Tensor) -> float:
    """Images per second the model encodes (the cost per image of fitting its prior)."""
    x = to_float(x_uint8[:PROBE].to(model.device))
    model.encode(x[:8])
    t = time.perf_counter()
    model.encode(x)
    return len(x) / max(time.perf_counter() - t, 1e-6)


def plan(path: Path, cfg, model, ev, inputs: np.ndarray | None, seed: int, train_seconds: float,
         log=print) -> dict:
    """The comparison's scoring sizes: OUT/scoring.json if it exists, else measured now on
    `model` (trained for `train_seconds`, projected) and written there. Counts the user gave
    (not None in cfg) are used as given."""
    if path.exists():
        return json.loads(path.read_text())
    asked = {"eval_n": cfg.eval_n, "curve_n": cfg.curve_n, "nll_seconds": cfg.nll_seconds}
    auto = sorted(k for k, v in asked.items() if v is None)
    out = {**asked, "auto": auto, "measured_on": model.name if auto else None,
           "train_seconds": round(train_seconds, 2) if auto else None, "samples_per_second": None}
    if auto:
        r = sample_rate(model, ev, inputs, seed)
        out["samples_per_second"] = round(r, 1)
        sized = {"eval_n": _within(FINAL_SHARE * train_seconds * r, EVAL_N, 500),
                 "curve_n": _within(CURVE_SHARE * train_seconds * r / max(cfg.curve_points, 1), CURVE_N),
                 "nll_seconds": round(min(NLL_SECONDS[1], max(NLL_SECONDS[0], LIKELIHOOD_SHARE * train_seconds)), 1)}
        out.update({k: sized[k] for k in out["auto"]})
        log(f"scoring sized to {train_seconds:.0f}s of training at {r:.0f} samples/s of {model.name}: "
            + ", ".join(f"--{k.replace('_', '-')} {out[k]:g}" for k in out["auto"]) + " (OUT/scoring.json)")
    write_json(path, out)
    return out


def curve_prior_images(path: Path, trainer, points: int) -> int:
    """The training images each curve point of this run fits its prior to: its curve_plan.json
    if it exists, else sized now from the run's encoding rate and written there."""
    if path.exists():
        return json.loads(path.read_text())["prior_images"]
    pool = trainer.prior_pool
    full = min(trainer.t.prior_images, len(pool))
    r = encode_rate(trainer.model, pool)
    seconds = projected_seconds(trainer)
    n = min(full, _within(PRIOR_SHARE * seconds * r / max(points, 1), (CURVE_PRIOR_IMAGES[0], full)))
    write_json(path, {"prior_images": n, "of": full, "images_per_second": round(r, 1),
                      "train_seconds": round(seconds, 2)})
    return n


def summary_line(sc: dict | None) -> str | None:
    """What the report says about the sizes (None where every size was given)."""
    if not sc or not sc.get("auto"):
        return None
    what = ", ".join(f"--{k.replace('_', '-')} {sc[k]:g}" for k in sc["auto"])
    return (f"sized to the training time: {what}, from {sc['train_seconds']:.0f} s of training of "
            f"{sc['measured_on']} at {sc['samples_per_second']:.0f} samples/s")


__all__ = ["plan", "curve_prior_images", "projected_seconds", "sample_rate", "encode_rate", "summary_line",
           "FINAL_SHARE", "CURVE_SHARE", "PRIOR_SHARE", "LIKELIHOOD_SHARE"]
