"""Claims 6-8 share this: translation models on edges2fashion (Sobel edges -> Fashion-MNIST
images), scored by the translate task against the true targets, with the identity map beside
them. Unpaired models (cyclegan, unit) draw their inputs and targets independently."""

from __future__ import annotations

from pathlib import Path

import common

DATA = "task:edges2fashion"
WIDTH = 32
# the U-Nets (pix2pix, unet-l1, cyclegan) stop at a 4x4 grid, one level short of the default
# 2x2: 1.33x (pix2pix) and 1.39x (cyclegan) faster per step here, and what fits 28 pixels;
# UNIT has nets of its own
UNET_BOTTOM, UNET = 4, {"pix2pix", "unet-l1", "cyclegan"}


def run(out: Path, models: list[str], steps: int, quick: bool, seeds: int = 1,
        seed: int = 0) -> tuple[dict, dict, dict]:
    """(results.json, {model: translate-task result of seed `seed` .. as a list}, the task's summary)."""
    res = common.compare(out, models, data=DATA, steps=steps, seeds=seeds, seed=seed, curve_points=3 if quick else 5,
                         eval_n=500 if quick else 5000, curve_n=300 if quick else 1000, tasks=["translate"],
                         task_configs={"translate": {"n": 300 if quick else 2000}},
                         overrides={"width": 8 if quick else WIDTH,
                                    **({"unet_bottom": UNET_BOTTOM} if UNET & set(models) else {})})
    task = res["tasks"]["translate"]
    return res, task["results"], task["summary"]


def scores(r: dict) -> dict:
    keep = ("l1", "psnr", "ssim", "fd", "accuracy", "sharpness", "cycle")
    return {k: round(r[k], 4) for k in keep if r.get(k) is not None}
