"""Tune the tasks' settings on the validation split (issue 30): the probe's C and latent-opt's
latent weight, step size and realism weight. Nothing here reads a test image (tasks.tuning seals
the test split); the chosen values become the defaults, and BENCHMARKS.md records the grids.

    # the probe's C: pixels and 32-d PCA, 10/100/1,000 labels per class, Fashion-MNIST's
    # validation split (5,000 images held out of train, as compare's --val-split auto)
    .venv/bin/python benchmarks/tune_tasks.py probe --out benchmarks/results/tune_probe.json

    # completion: the models of a comparison (its runs hold out the same validation split)
    .venv/bin/ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 3m \\
        --precision bf16 --set width=32 --out /tmp/cmp3m
    .venv/bin/python benchmarks/tune_tasks.py complete /tmp/cmp3m --n 100 \\
        --out benchmarks/results/tune_completion.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganvae.files import write_json
from ganvae.hardware import machine_line


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    pr = sub.add_parser("probe")
    pr.add_argument("--data", default="fashion-mnist")
    pr.add_argument("--cs", default="1,0.1,0.01,0.001")
    pr.add_argument("--out", type=Path, required=True)
    co = sub.add_parser("complete")
    co.add_argument("compare_dir", type=Path)
    co.add_argument("--n", type=int, default=100)
    co.add_argument("--mask", default="center")
    co.add_argument("--latent-weight", default="0,0.1,0.5,1,2")
    co.add_argument("--lr", default="0.05,0.1,0.2")
    co.add_argument("--realism-weight", default="0,0.1,0.5")
    co.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    floats = lambda s: [float(v) for v in s.split(",")]  # noqa: E731

    if a.what == "probe":
        from ganvae.data import load_dataset
        from ganvae.data.base import hold_out_val
        from ganvae.tasks.tuning import tune_probe_c

        ds = hold_out_val(load_dataset(a.data), "auto")
        res = tune_probe_c(ds, cs=floats(a.cs))
        res["data"] = a.data
    else:
        from ganvae.trainer import load_run, run_dataset
        from ganvae.tasks.tuning import tune_completion

        runs = sorted((a.compare_dir / "runs").glob("*-seed0"))
        models = {r.name.rsplit("-seed", 1)[0]: load_run(r)[0] for r in runs}
        ds = run_dataset(load_run(runs[0])[1])
        grid = {"latent_weight": floats(a.latent_weight), "lr": floats(a.lr),
                "realism_weight": floats(a.realism_weight)}
        res = tune_completion(models, ds, grid, n=a.n, mask=a.mask)
    res["machine"] = machine_line()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(a.out, res)
    print(json.dumps({k: res[k] for k in ("chosen", "regret")}, indent=1))


if __name__ == "__main__":
    main()
