"""Claims 1 and 2 share this: dcgan on Fashion-MNIST limited to N images, trained until the
plain dcgan's validation FD has turned up (stood >= 10% above its best for two curve points),
then each remedy for exactly the plain run's steps, with the curve at the same steps.

The plain runs are shared (OUT/little/plain-N): whichever claim runs first trains them.
"""

from __future__ import annotations

import re
from pathlib import Path

import common
from ganvae.comparison.curves import risen

RISE = 0.10          # "turned up": 10% above the best FD, two points in a row
WIDTH = 32           # the little-data benchmark's nets (BENCHMARKS.md, Little data)
SETTINGS = dict(data="fashion-mnist", eval_n=5000, curve_n=1000, overrides={"width": WIDTH})
# How long the plain run may go before we give up waiting for its curve to turn; one curve
# point every EVERY steps.
MAX_STEPS = {100: 20_000, 1000: 40_000}
EVERY = 500
QUICK = dict(max_steps=300, every=50, eval_n=500, curve_n=300)


def parse_args(doc: str, argv=None):
    """The claims' options: common's, and --n (which N to run; the claim needs 100 and 1000)."""
    return common.parse_args(doc, argv, n=dict(type=int, nargs="*", default=[100, 1000],
                                               help="the N to run (default 100 1000; the claim needs both)"))


def run_claim(args, name: str, spec: str, dirname: str) -> tuple[dict, list[str], bool]:
    """Plain and the remedy `spec` (its runs in OUT/little/DIRNAME-N) at each N of args.n:
    ({N: {"plain", name, "shown"}}, one verdict per N, shown at every N)."""
    out = args.out / "little"
    per_n, verdicts, shown = {}, [], True
    for n in args.n:
        p = plain(out, n, args.quick)
        r = remedy(out, n, dirname, spec, p["steps"], args.quick)
        ok, why = judge(p, r)
        if not p["turned_up"]:   # the criterion is judged all the same, on the steps plain had
            rise = p["last_val_fd"] / p["best_val_fd"] - 1
            why += (f"; plain's curve did not turn up within its {p['steps']} steps (best at {p['best_step']}, "
                    f"last {rise * 100:+.0f}% above it)")
        per_n[n] = {"plain": p, name: r, "shown": ok}
        verdicts.append(f"N={n}: {why}")
        shown = shown and ok
    # an N not run here keeps its last written result (each N is hours: a session runs one)
    before = common.earlier(args, *CLAIM_OF[name])
    said = {int(m.group(1)): m.group(0).rstrip("; ") for m in
            re.finditer(r"N=(\d+): .*?(?=; N=\d+: |$)", before.get("verdict", ""))}
    for key, v in before.get("numbers", {}).items():
        if int(key) not in per_n and int(key) in said:
            per_n[int(key)] = v
            verdicts.append(said[int(key)])
            shown = shown and bool(v.get("shown"))
    order = sorted(per_n)
    verdicts = [next(t for t in verdicts if t.startswith(f"N={n}: ")) for n in order]
    per_n = {n: per_n[n] for n in order}
    # the claim is about both N: with only some measured, it is not settled either way
    return per_n, verdicts, (shown if set(per_n) >= {100, 1000} else None)


CLAIM_OF = {"diffaugment": (1, "diffaugment"), "ada": (2, "ada")}


def plain(out: Path, n: int, quick: bool) -> dict:
    """The plain dcgan at N, trained until its FD turns up (or MAX_STEPS)."""
    max_steps = QUICK["max_steps"] if quick else MAX_STEPS[n]
    every = QUICK["every"] if quick else EVERY
    res = common.compare(out / f"plain-{n}", ["dcgan"], steps=max_steps, limit=n,
                         curve_points=max_steps // every, stop_on_rise=RISE, **_settings(quick))
    return _numbers(out / f"plain-{n}", "dcgan", res)


def remedy(out: Path, n: int, name: str, spec: str, steps: int, quick: bool) -> dict:
    """A remedy at N for exactly `steps` steps (the plain run's), curve points at the same steps."""
    every = QUICK["every"] if quick else EVERY
    res = common.compare(out / f"{name}-{n}", [spec], steps=steps, limit=n,
                         curve_points=max(1, steps // every), **_settings(quick))
    return _numbers(out / f"{name}-{n}", spec, res)


def _settings(quick: bool) -> dict:
    s = dict(SETTINGS)
    if quick:
        s.update(eval_n=QUICK["eval_n"], curve_n=QUICK["curve_n"], overrides={"width": 8})
    return s


def _numbers(out: Path, spec: str, res: dict) -> dict:
    row = common.rows(res, spec)[0]
    pts = common.curve(out, spec)
    fds = [p["fd"] for p in pts]
    i_best = min(range(len(fds)), key=fds.__getitem__)
    summ = common.summary(out, spec)
    gap = lambda p: None if "d_real_train" not in p else round(p["d_real_train"] - p["d_real_val"], 4)  # noqa: E731
    return {"model": spec, "steps": row["steps"], "stopped_early": summ.get("stopped_early"),
            "best_val_fd": round(fds[i_best], 3), "best_step": pts[i_best]["step"],
            "last_val_fd": round(fds[-1], 3), "turned_up": risen(fds, RISE),
            "test_fd_best_checkpoint": round(row["best"]["fd"], 3) if row.get("best") else None,
            "test_fd_final": round(row["final"]["fd"], 3),
            # D's mean logit on training images minus on held-out real ones: the overfitting signal
            "d_gap_at_best": gap(pts[i_best]), "d_gap_at_end": gap(pts[-1]),
            "ada_p_end": common.last_logged(out, spec, "aug/p"),
            "copying": copying(out, spec),
            "curve": [{"step": p["step"], "fd": round(p["fd"], 3), "d_gap": gap(p)} for p in pts]}


def copying(out: Path, spec: str, n_samples: int = 1000) -> dict:
    """Does the final G copy its N training images? Each of n_samples samples' nearest pixel
    distance (L2 on [0, 1]) to the N training images, and to as many held-out real images;
    `ratio` = the mean of the first over the mean of the second: about 1 for a G that models
    the distribution, well below 1 for one that reproduces its training set."""
    import numpy as np
    import torch

    import ganvae
    from ganvae.trainer import load_run, run_dataset

    run = common.run_dir(out, spec)
    model, cfg = load_run(run)
    ds = run_dataset(cfg)
    x = ganvae.evaluation.generate(model, n_samples, 0, 500).reshape(n_samples, -1).astype(np.float32) / 255
    train = ds.train.x.reshape(len(ds.train.x), -1).astype(np.float32) / 255
    val = ds.val.x[:len(train)].reshape(-1, train.shape[1]).astype(np.float32) / 255
    nearest = lambda ref: torch.cdist(torch.from_numpy(x), torch.from_numpy(ref)).min(1).values.mean().item()  # noqa: E731
    d_train, d_val = nearest(train), nearest(val)
    return {"nn_to_train": round(d_train, 4), "nn_to_val": round(d_val, 4), "ratio": round(d_train / d_val, 4)}


def judge(plain_n: dict, rem: dict) -> tuple[bool, str]:
    """Shown at this N: the remedy's best FD at least 10% below plain's, and its curve did not
    turn up within the same steps; only meaningful once plain's curve did turn up."""
    better = rem["best_val_fd"] <= (1 - RISE) * plain_n["best_val_fd"]
    return better and not rem["turned_up"], (
        f"best val FD {rem['best_val_fd']:.2f} vs plain {plain_n['best_val_fd']:.2f} "
        f"({(rem['best_val_fd'] / plain_n['best_val_fd'] - 1) * 100:+.0f}%), "
        f"{'turned up' if rem['turned_up'] else 'did not turn up'} by step {rem['steps']}")
