"""Claim 1: DiffAugment stops D overfitting with little data (Zhao et al. 2020).

dcgan on Fashion-MNIST at N = 100 and 1,000 training images: the plain dcgan trains until its
validation FD has turned up (>= 10% above its best for two curve points); dcgan with DiffAugment
(translation + cutout) then trains exactly as many steps. Shown at an N when DiffAugment's best
validation FD is >= 10% below plain's and its own curve has not turned up in those steps; the
claim is shown when it holds at both N.

    python benchmarks/reproduce/claim01_diffaugment.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import common
import little_data as L

SPEC = "dcgan:augment=diffaug:augment_policy=translation+cutout"


def main(argv=None) -> None:
    args = L.parse_args(__doc__, argv)
    per_n, verdicts, shown = L.run_claim(args, "diffaugment", SPEC, "diffaug")
    common.write_result(
        args, 1, "diffaugment", title="DiffAugment stops D overfitting with little data",
        paper="Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN Training",
        setup="dcgan (width 32), Fashion-MNIST --limit 100 and 1000, batch 64; DiffAugment translation+cutout",
        budget={n: f"{v['plain']['steps']} steps (plain "
                   f"{'stopped: FD turned up' if v['plain']['stopped_early'] else 'ran to its cap'})"
                for n, v in per_n.items()},
        criterion="DiffAugment's best val FD >= 10% below plain's at the same N, and its curve does not turn up "
                  "in the same steps (at N = 100 and 1,000)",
        numbers=per_n, shown=shown, verdict="; ".join(verdicts), investigation=None)


if __name__ == "__main__":
    main()
