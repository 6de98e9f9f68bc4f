"""Completion (issue 12): every applicable method on every trained model of a comparison, per
mask kind, beside the two baselines, with the time each method takes per image.

    # the trained models: ae, vae, dcgan, vaegan, 3 minutes each at the demo's settings
    .venv/bin/ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 3m \\
        --precision bf16 --set width=32 --out /tmp/cmp3m
    .venv/bin/python benchmarks/completion.py /tmp/cmp3m --n 500

Scores are on the first --n test images with the masks of seed 0 (the ones `compare --tasks
complete` uses); columns as in the report: hole MSE and PSNR on the missing pixels, SSIM of the
whole image, FD of the completions against the test split in the evaluator's features, the
share of completions the evaluator files under the original's class, and milliseconds per image
on this machine (latent-opt at its defaults: 100 Adam steps, 4 restarts). `--set key=value`
changes a CompleteConfig field (e.g. --set latent_weight=0.3) for tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganvae.config import parse_set, replace
from ganvae.data import to_float, to_uint8
from ganvae.evaluators import get_evaluator
from ganvae.hardware import machine_line
from ganvae.models.base import GenerativeModel
from ganvae.tasks.complete import METHODS, METRICS, CompleteConfig, CompletionTask, complete, image_metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("compare_dir", type=Path)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--masks", default="center,half,random-blocks,random-pixels")
    p.add_argument("--models", default="", help="comma-separated (default: every model of the comparison)")
    p.add_argument("--methods", default="latent-opt,encoder,gibbs")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--jsonl", default="", help="append every cell's numbers to this file")
    a = p.parse_args()

    from ganvae.trainer import load_run, run_dataset

    runs = sorted((a.compare_dir / "runs").glob("*-seed0"))
    wanted = [m for m in a.models.split(",") if m]
    runs = [r for r in runs if not wanted or r.name.rsplit("-seed", 1)[0] in wanted]
    if not runs:
        raise SystemExit(f"{a.compare_dir}: no runs/<model>-seed0 directories")
    _, run_cfg = load_run(runs[0])
    ds = run_dataset(run_cfg)
    ev = get_evaluator(ds, log=lambda s: None)
    cfg = replace(CompleteConfig(n=a.n, masks=tuple(a.masks.split(","))), parse_set(a.sets), where="--set")
    cfg.validate()
    prepared = CompletionTask.prepare(ds, ev, cfg, log=lambda s: None)
    original = ds.test.x[:prepared["n"]]
    x = to_float(torch.from_numpy(original))
    fill = to_float(torch.from_numpy(prepared["mean_image"]))
    rows = []
    for label in prepared["masks"]:
        for name, vals in prepared["baselines"][label].items():
            rows.append({"mask": label, "model": name, "method": "baseline", **vals})
    for run in runs:
        preset = run.name.rsplit("-seed", 1)[0]
        model = GenerativeModel.from_pretrained(run / "model")
        for method in a.methods.split(","):
            if not METHODS[method][1](model):
                continue
            for label, m in prepared["masks"].items():
                t = time.perf_counter()
                done = complete(model, x, torch.from_numpy(m), method, cfg, fill, torch.Generator().manual_seed(0))
                seconds = time.perf_counter() - t
                vals = image_metrics(to_uint8(done).numpy(), original, m, ev, prepared["real_feats"],
                                     prepared["labels"])
                row = {"mask": label, "model": preset, "method": method, **vals,
                       "ms_per_image": 1000 * seconds / len(x)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if a.jsonl:
                    with open(a.jsonl, "a") as f:
                        f.write(json.dumps({**row, "config": {k: v for k, v in vars(cfg).items()}}) + "\n")
    print(f"\n{a.compare_dir}: first {prepared['n']} test images, masks of seed {cfg.seed}; "
          f"latent-opt {cfg.steps} steps x {cfg.restarts} restarts; {machine_line()}\n")
    keys = [k for k, _, _ in METRICS]
    print("| mask | model | method | " + " | ".join(label for _, label, _ in METRICS) + " |")
    print("|---|---|---|" + "---|" * len(keys))
    fmt = {"hole_mse": "{:.4f}", "hole_psnr": "{:.1f}", "ssim": "{:.3f}", "fd": "{:.1f}", "accuracy": "{:.2f}",
           "ms_per_image": "{:.1f}"}
    for label in prepared["masks"]:
        for r in [r for r in rows if r["mask"] == label]:
            cells = [fmt[k].format(r[k]) if r.get(k) is not None else "–" for k in keys]
            print(f"| {label} | {r['model']} | {r['method']} | " + " | ".join(cells) + " |")
        fl = prepared["floor"]
        print(f"| {label} | originals | – | – | – | {fl['ssim']:.3f} | {fl['fd']:.1f} | {fl['accuracy']:.2f} | – |")


if __name__ == "__main__":
    main()
