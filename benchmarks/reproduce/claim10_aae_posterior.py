"""Claim 10: the AAE matches its aggregate posterior to the prior (Makhzani et al. 2016).

aae against vae, three seeds each, equal steps; 64-d codes. The aggregate posterior q(z) is
sampled by encoding 5,000 test images (the VAE: one draw of q(z|x) per image, the AAE: its
deterministic code) and compared with N(0, I) two ways: the KL divergence of a Gaussian fitted
to the codes from N(0, I) (closed form; it sees the first two moments only), and the squared
MMD against 5,000 draws of N(0, I) with a Gaussian kernel of width sqrt(d) (sees the shape).
Shown when the AAE is closer by both, for the mean over seeds.

    python benchmarks/reproduce/claim10_aae_posterior.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import numpy as np
import torch

import common

STEPS, SEEDS, WIDTH, N = 3000, 3, 32, 5000


def gaussian_kl_to_standard(z: np.ndarray) -> float:
    """KL(N(m, S) || N(0, I)) for the Gaussian N(m, S) fitted to codes z (n, d), in nats:
    (tr S + m'm - d - log det S) / 2."""
    m = z.mean(0)
    s = np.cov(z, rowvar=False)
    sign, logdet = np.linalg.slogdet(s)
    return float(0.5 * (np.trace(s) + m @ m - z.shape[1] - (logdet if sign > 0 else -np.inf)))


def mmd2_to_standard(z: np.ndarray, seed: int = 0) -> float:
    """Unbiased squared MMD between codes z (n, d) and as many N(0, I) draws, Gaussian kernel
    exp(-|a - b|^2 / (2 d))."""
    from ganvae.metrics.kid import mmd2_unbiased

    x = torch.from_numpy(z).double()
    y = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    k = lambda a, b: torch.exp(-torch.cdist(a, b).pow(2) / (2 * x.shape[1]))  # noqa: E731
    return float(mmd2_unbiased(k(x, x), k(y, y), k(x, y)))


@torch.no_grad()
def codes(model, x_uint8: np.ndarray, seed: int = 0) -> np.ndarray:
    """One draw of the aggregate posterior per image: q(z|x) sampled where it is a distribution."""
    from ganvae.data import to_float

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(x_uint8), 500):
        xb = to_float(torch.from_numpy(x_uint8[i:i + 500]))
        if hasattr(model, "encode_dist"):
            mu, logvar = model.encode_dist(xb)
            out.append(mu + torch.randn(mu.shape, generator=g) * logvar.mul(0.5).exp())
        else:
            out.append(model.encode(xb))
    return torch.cat(out).double().numpy()


def main(argv=None) -> None:
    import ganvae
    from ganvae.data import load_dataset

    args = common.parse_args(__doc__, argv)
    q = args.quick
    steps, seeds, n = (100, 1, 1000) if q else (STEPS, SEEDS, N)
    out = args.out / "aae"
    common.compare(out, ["vae", "aae"], data="fashion-mnist", steps=steps, seeds=seeds, curve_points=3,
                   eval_n=500 if q else 5000, curve_n=300 if q else 1000, overrides={"width": 8 if q else WIDTH})
    test = load_dataset("fashion-mnist").test.x[:n]
    numbers = {}
    for m in ("vae", "aae"):
        kls, mmds = [], []
        for s in range(seeds):
            z = codes(ganvae.load(common.run_dir(out, m, s)), test, seed=s)
            kls.append(gaussian_kl_to_standard(z))
            mmds.append(mmd2_to_standard(z, seed=s))
        numbers[m] = {"gaussian_kl_nats": [round(v, 3) for v in kls], "mmd2": [round(v, 5) for v in mmds],
                      "gaussian_kl_mean": round(float(np.mean(kls)), 3), "mmd2_mean": round(float(np.mean(mmds)), 5)}
    v, a = numbers["vae"], numbers["aae"]
    shown = a["gaussian_kl_mean"] < v["gaussian_kl_mean"] and a["mmd2_mean"] < v["mmd2_mean"]
    common.write_result(
        args, 10, "aae_aggregate_posterior", title="The AAE matches its aggregate posterior to the prior",
        paper="Makhzani et al. 2016, Adversarial Autoencoders",
        setup=f"aae (deterministic encoder) vs vae, width {8 if q else WIDTH}, 64-d codes, Fashion-MNIST; "
              f"codes of {n} test images against N(0, I)",
        budget=f"{steps} steps per run (batch 64), {seeds} seeds",
        criterion="aae's aggregate posterior closer to N(0, I) than the VAE's by the fitted-Gaussian KL and the MMD",
        numbers=numbers, shown=shown,
        verdict=f"Gaussian KL {a['gaussian_kl_mean']:.2f} vs {v['gaussian_kl_mean']:.2f} nats, MMD² "
                f"{a['mmd2_mean']:.4f} vs {v['mmd2_mean']:.4f} (aae vs vae)", investigation=None)


if __name__ == "__main__":
    main()
