"""Claim 2: ADA stops D overfitting with little data, adapting p (Karras et al. 2020).

As claim 1 (the same plain runs), with adaptive discriminator augmentation; shown when ADA's
best validation FD is >= 10% below plain's at both N without its curve turning up, and its
augmentation probability p ends higher at N = 100 than at N = 1,000.

    python benchmarks/reproduce/claim02_ada.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common
import little_data as L

SPEC = "dcgan:augment=ada"


def main(argv=None) -> None:
    args = L.parse_args(__doc__, argv)
    per_n, verdicts, shown = L.run_claim(args, "ada", SPEC, "ada")
    verdicts = [f"{v}, p ends {common.fmt(per_n[n]['ada']['ada_p_end'], 3)}" for n, v in zip(per_n, verdicts)]
    p100, p1000 = (per_n[n]["ada"]["ada_p_end"] if n in per_n else None for n in (100, 1000))
    p_order = p100 is not None and p1000 is not None and p100 > p1000
    verdicts.append(f"p at N=100 {'>' if p_order else 'not >'} p at N=1000")
    common.write_result(
        args, 2, "ada", title="ADA stops D overfitting with little data, adapting p",
        paper="Karras et al. 2020, Training Generative Adversarial Networks with Limited Data",
        setup="dcgan (width 32), Fashion-MNIST --limit 100 and 1000, batch 64; ADA (target r_t 0.6)",
        budget={n: f"{v['plain']['steps']} steps" for n, v in per_n.items()},
        criterion="as claim 1, and ADA's p ends higher at N = 100 than at N = 1,000",
        numbers={**per_n, "p_end": {"100": p100, "1000": p1000}},
        shown=None if shown is None else shown and p_order,
        verdict="; ".join(verdicts), investigation=None)


if __name__ == "__main__":
    main()
