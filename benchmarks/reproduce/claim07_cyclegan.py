"""Claims 7 and 8: CycleGAN (Zhu et al. 2017) and UNIT (Liu et al. 2017) learn the mapping
without pairs.

edges2fashion with inputs and targets drawn independently (no pairs seen in training); the
translations of the first 2,000 test inputs are scored against their true targets. Shown
when the L1 to the true targets is at most half the identity map's and the evaluator finds
the input's class in at least 60% of them. The mechanism is logged too: whether the cycle
loss falls (metrics.jsonl's loss/cycle over training).

    python benchmarks/reproduce/claim07_cyclegan.py [--model cyclegan|unit] [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common
import translation as T

STEPS = 3000
CLAIM = {"cyclegan": (7, "cyclegan_unpaired", "CycleGAN learns the mapping without pairs",
                      "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"),
         "unit": (8, "unit_unpaired", "UNIT learns the mapping without pairs, through one shared latent space",
                  "Liu, Breuel & Kautz 2017, Unsupervised Image-to-Image Translation Networks")}


def cycle_trend(out, model: str) -> dict:
    """The mean logged cycle loss over the first and the last tenth of training."""
    from ganvae.files import read_jsonl

    rows = [r for r in read_jsonl(common.run_dir(out, model) / "metrics.jsonl") if "loss/cycle" in r]
    if not rows:
        return {}
    k = max(1, len(rows) // 10)
    mean = lambda rs: round(sum(r["loss/cycle"] for r in rs) / len(rs), 4)  # noqa: E731
    return {"cycle_loss_first_tenth": mean(rows[:k]), "cycle_loss_last_tenth": mean(rows[-k:])}


def main(argv=None) -> None:
    args = common.parse_args(__doc__, argv, model=dict(choices=sorted(CLAIM), default="cyclegan"))
    claim, slug, title, paper = CLAIM[args.model]
    steps = 40 if args.quick else STEPS
    out = args.out / f"unpaired-{args.model}"
    res, results, summary = T.run(out, [args.model], steps, args.quick)
    m = T.scores(results[args.model][0])
    ident = T.scores(summary["baselines"]["identity"])
    ok = m["l1"] <= 0.5 * ident["l1"] and m["accuracy"] >= 0.6
    common.write_result(
        args, claim, slug, title=title, paper=paper,
        setup=f"{args.model} (width {8 if args.quick else T.WIDTH}{', U-Nets down to 4x4' if args.model == 'cyclegan' else ''}), edges2fashion drawn unpaired; the first 2,000 "
              "test inputs against their true targets", budget=f"{steps} steps (batch 64)",
        criterion="L1 to the true targets <= 0.5x the identity map's, class kept >= 0.6",
        numbers={args.model: m, "identity": ident, "training": cycle_trend(out, args.model)}, shown=ok,
        verdict=f"L1 {m['l1']:.3f} (identity {ident['l1']:.3f}), class kept {m['accuracy']:.2f}, FD {m['fd']:.2f}",
        investigation=None)


if __name__ == "__main__":
    main()
