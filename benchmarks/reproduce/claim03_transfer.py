"""Claim 3: transfer with Freeze-D helps a small target (Mo, Cho & Shin 2020).

Source: dcgan trained on Fashion-MNIST's classes 0-4 (T-shirt .. coat), all their images.
Target: classes 5-9 (sandal .. ankle boot), 100 images. Three runs on the target at equal
steps: from scratch, fine-tuned from the source (every weight trains), and fine-tuned with
Freeze-D (D's first block, nearest the image, frozen). FD in the features of an evaluator
trained on the target classes. Shown when best validation FD: Freeze-D < fine-tune < scratch.

    python benchmarks/reproduce/claim03_transfer.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common

SOURCE_STEPS, TARGET_STEPS, EVERY, WIDTH = 6000, 6000, 250, 32
QUICK = dict(source=100, target=200, every=50, width=8, eval_n=500, curve_n=300)


def main(argv=None) -> None:
    import ganvae

    args = common.parse_args(__doc__, argv, freeze=dict(type=int, default=1, help="D blocks frozen (Freeze-D)"),
                             seeds=dict(type=int, default=1, help="training seeds per target run (mean over them)"),
                             steps=dict(type=int, default=None, help=f"target steps (default {TARGET_STEPS})"))
    q = args.quick
    src_steps, tgt_steps = (QUICK["source"], QUICK["target"]) if q else (SOURCE_STEPS, args.steps or TARGET_STEPS)
    every, width = (QUICK["every"], QUICK["width"]) if q else (EVERY, WIDTH)
    out = args.out / "transfer"
    src = (out / "source").resolve()
    if not (src / "summary.json").exists():
        ganvae.train("dcgan", "fashion-mnist:classes=0-4", src, steps=src_steps, overrides={"width": width},
                     resume=(src / "checkpoints").is_dir() and any((src / "checkpoints").iterdir()), device="cpu")
    models = {"scratch": "dcgan", "fine-tune": f"dcgan:train.init_from={src}",
              "freeze-d": f"dcgan:train.init_from={src}:freeze_d={args.freeze}"}
    # the first setting keeps its directory name; another one gets its own
    target = out / ("target" if (args.seeds, tgt_steps) == (1, TARGET_STEPS) or q
                    else f"target-{tgt_steps}-seeds{args.seeds}")
    res = common.compare(target, list(models.values()), seeds=args.seeds, data="fashion-mnist:classes=5-9", limit=100,
                         steps=tgt_steps, curve_points=tgt_steps // every, overrides={"width": width},
                         eval_n=QUICK["eval_n"] if q else 5000, curve_n=QUICK["curve_n"] if q else 1000)
    numbers = {}
    for name, spec in models.items():
        per_seed = []
        for seed, row in enumerate(common.rows(res, spec)):
            pts = common.curve(target, spec, seed)
            i = min(range(len(pts)), key=lambda j: pts[j]["fd"])
            per_seed.append({"best_val_fd": round(pts[i]["fd"], 3), "best_step": pts[i]["step"],
                             "test_fd_best_checkpoint": round(row["best"]["fd"], 3) if row.get("best") else None,
                             "test_fd_final": round(row["final"]["fd"], 3),
                             "curve": [{"step": p["step"], "fd": round(p["fd"], 3)} for p in pts]})
        numbers[name] = {**per_seed[0], "seeds": len(per_seed)} if len(per_seed) == 1 else {
            "best_val_fd": round(sum(r["best_val_fd"] for r in per_seed) / len(per_seed), 3), "per_seed": per_seed}
    fd = {k: v["best_val_fd"] for k, v in numbers.items()}
    shown = fd["freeze-d"] < fd["fine-tune"] < fd["scratch"]
    common.write_result(
        args, 3, "transfer_freeze_d", title="Transfer with Freeze-D helps a small target",
        paper="Mo, Cho & Shin 2020, Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs",
        setup=f"dcgan (width {width}); source Fashion-MNIST classes 0-4 (all images, {src_steps} steps); "
              f"target classes 5-9, 100 images; Freeze-D = D's first {args.freeze} block(s) frozen",
        budget=f"{tgt_steps} steps per target run (batch 64), curve every {every}, {args.seeds} seed(s)",
        criterion="best val FD: Freeze-D < fine-tune < scratch",
        numbers=numbers, shown=shown,
        verdict=f"best val FD: Freeze-D {fd['freeze-d']:.2f}, fine-tune {fd['fine-tune']:.2f}, "
                f"scratch {fd['scratch']:.2f}", investigation=None)


if __name__ == "__main__":
    main()
