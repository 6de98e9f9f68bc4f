"""Claim 12: synthetic data alone teaches a classifier less than real data (Ravuri & Vinyals 2019).

cgan and cvae trained on all of Fashion-MNIST's training images; the augment task then trains
the same classifier on N real images and on N of the model's samples (classes balanced), each
for the same optimizer steps and images (issue 30's equal budgets), and scores both on the test
split. Shown when each model's Classification Accuracy Score (synthetic only) is below the
real-only accuracy.

    python benchmarks/reproduce/claim12_cas.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common

STEPS, WIDTH = 4000, 32


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps = 100 if q else STEPS
    out = args.out / "cas"
    res = common.compare(out, ["cgan", "cvae"], data="fashion-mnist", steps=steps, curve_points=3,
                         eval_n=500 if q else 5000, curve_n=300 if q else 1000, tasks=["augment"],
                         limit=1000 if q else None,
                         task_configs={"augment": {"seeds": 1 if q else 3, "budget_images": 2000 if q else 30000}},
                         overrides={"width": 8 if q else WIDTH})
    results = res["tasks"]["augment"]["results"]
    numbers, parts, shown = {}, [], True
    for m in ("cgan", "cvae"):
        r = results[m][0]
        numbers[m] = {k: round(r[k], 4) for k in ("real", "synthetic", "mixed") if k in r}
        numbers[m].update(n_real=r.get("n_real"), classifier_steps=r.get("classifier_steps"),
                          classifier_images_seen=r.get("classifier_images_seen"))
        shown = shown and r["synthetic"] < r["real"]
        parts.append(f"{m}: CAS {r['synthetic']:.3f} vs real {r['real']:.3f}")
    common.write_result(
        args, 12, "cas", title="Synthetic data alone teaches less than real",
        paper="Ravuri & Vinyals 2019, Classification Accuracy Score for Conditional Generative Models",
        setup=f"cgan and cvae, width {8 if q else WIDTH}, Fashion-MNIST (all training images); classifiers on N real vs "
              "N synthetic images, equal steps and images",
        budget=f"{steps} steps per generative model (batch 64); classifiers {2000 if q else 30000} images each, "
               f"{1 if q else 3} seeds", criterion="CAS (synthetic only) below the real-only accuracy for each model",
        numbers=numbers, shown=shown, verdict="; ".join(parts), investigation=None)


if __name__ == "__main__":
    main()
