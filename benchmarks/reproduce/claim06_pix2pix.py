"""Claim 6: the adversary makes pix2pix sharper than L1 alone (Isola et al. 2017).

pix2pix (U-Net + PatchGAN, cGAN + 100 L1) against unet-l1 (the same U-Net, L1 only) on
edges2fashion at equal steps. Shown when pix2pix's FD is lower, its sharpness ratio (Laplacian
energy over the targets') closer to 1, and its L1 within 15% of unet-l1's. The mechanism is
measured too: the share of the adversarial term in the gradient reaching G's output, at the end.
With --seeds N (default 3) the criterion is on the means over training seeds 0 .. N-1: seed 0
is the first comparison (OUT/pix2pix), the others a second one (OUT/pix2pix-more), so a run
measured with one seed is reused, not trained again.

    python benchmarks/reproduce/claim06_pix2pix.py [--out runs/reproduce] [--quick] [--seeds 3]
"""

from __future__ import annotations

import numpy as np
import torch

import common
import translation as T

STEPS = 5000


@torch.no_grad()
def _pairs(n: int):
    from ganvae.data import load_dataset, to_float

    ds = load_dataset(T.DATA)
    return to_float(torch.from_numpy(ds.test.a[:n])), to_float(torch.from_numpy(ds.test.x[:n]))


def adversarial_share(model, n: int = 256) -> dict:
    """|d(adv_weight * adv)/d fake| / (that + |d(l1_weight * L1)/d fake|) on n test pairs: how much
    of what moves G's output comes from D (0: L1 alone, 1: D alone); D in eval mode."""
    from ganvae.models.translation import g_loss
    from ganvae.models.autoencoder import evaluating

    a, b = _pairs(n)
    c = model.config
    with evaluating(model):
        fake = model.g(a).detach().requires_grad_(True)
        adv = c.adv_weight * g_loss(c.loss, model.d(torch.cat([a, fake], 1)))
        (g_adv,) = torch.autograd.grad(adv, fake)
        l1 = c.l1_weight * (fake - b).abs().mean()
        (g_l1,) = torch.autograd.grad(l1, fake)
    na, nl = float(g_adv.norm()), float(g_l1.norm())
    return {"grad_adv": round(na, 5), "grad_l1": round(nl, 5), "adv_share": round(na / (na + nl), 4)}


def main(argv=None) -> None:
    import ganvae

    args = common.parse_args(__doc__, argv, seeds=dict(type=int, default=3, help="training seeds (default 3)"))
    steps = 60 if args.quick else STEPS
    out = args.out / "pix2pix"
    models = ["pix2pix", "unet-l1"]
    res, results, summary = T.run(out, models, steps, args.quick)
    if args.seeds > 1:
        _, more, _ = T.run(args.out / "pix2pix-more", models, steps, args.quick, seeds=args.seeds - 1, seed=1)
        results = {m: results[m] + more[m] for m in models}
    per_seed = {m: [T.scores(r) for r in results[m]] for m in models}
    p, u = ({k: round(float(np.mean([s[k] for s in per_seed[m]])), 4) for k in per_seed[m][0]} for m in models)
    share = adversarial_share(ganvae.load(common.run_dir(out, "pix2pix")))
    ok = p["fd"] < u["fd"] and abs(p["sharpness"] - 1) < abs(u["sharpness"] - 1) and p["l1"] <= 1.15 * u["l1"]
    common.write_result(
        args, 6, "pix2pix_sharper", title="The adversary makes pix2pix sharper than L1 alone",
        paper="Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks",
        setup=f"pix2pix vs unet-l1 (the same U-Net, width {8 if args.quick else T.WIDTH}, down to 4x4), edges2fashion; the first "
              "2,000 test inputs against their targets", budget=f"{steps} steps each (batch 64), {args.seeds} seed(s)",
        criterion=f"mean over {args.seeds} seed(s): pix2pix's FD lower, its sharpness ratio closer to 1, its L1 "
                  "within 15% of unet-l1's",
        numbers={"pix2pix": p, "unet-l1": u, "per_seed": per_seed,
                 "identity": T.scores(summary["baselines"]["identity"]), "pix2pix_gradient_at_end": share},
        shown=ok, verdict=f"mean of {args.seeds}: FD {p['fd']:.2f} vs {u['fd']:.2f}, sharpness {p['sharpness']:.2f} vs {u['sharpness']:.2f}, "
                          f"L1 {p['l1']:.3f} vs {u['l1']:.3f} (pix2pix vs unet-l1); adversarial share of G's "
                          f"output gradient {share['adv_share']:.2f}", investigation=None)


if __name__ == "__main__":
    main()
