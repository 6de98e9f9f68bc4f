"""Compression: what a latent code costs in bytes and what it gives back in PSNR (issue 15).

An autoencoder is a lossy codec once its code is quantised: each of the D latent dims of an
image is stored at b bits (a uniform quantiser per dim fitted on training codes, metrics/
codec.py), ceil(D * b / 8) bytes per image, and the decoder reconstructs from the quantised
code. That gives one rate-distortion point per b, for every model with an encoder. Beside each:

    PCA    the same number of dims at the same bits, on the pixels (the linear codec)
    JPEG   Pillow's, at the quality whose entropy-coded data matches the bytes (the headers
           and tables, identical for every image at one quality, are counted once per
           codebook, not per image: at 28x28 they would otherwise be most of the file)

For VAEs the KL term is a rate too: KL(q(z|x) || N(0, I)) in bits is what bits-back coding
(Hinton & van Camp 1993; Townsend et al. 2019) pays per image for the posterior's code. A
bits-back coder sends a *sample* z ~ q(z|x), so the distortion paired with that rate is the
decode of a sample (one seeded draw per image), not of the posterior mean; the mean's decode is
kept beside it, labelled, since it is what a deterministic code of the same encoder gives (and
0.2-0.5 dB better at beta 1-4, which the earlier tables wrongly credited to the KL rate). A beta sweep (`ganvae compare --models
vae --sweep beta=...`) traces the rate-distortion curve of Alemi et al. 2018 ("Fixing a broken
ELBO"). All points of all models go on one figure, bytes per image against PSNR.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import to_float, to_uint8
from ..errors import BadInput
from ..metrics.codec import Quantizer, jpeg_at_bytes, jpeg_curve, pca_codec, rate_distortion_point
from ..progress import bar as progress_bar
from ..registry import register_task
from ..evaluation import kl_bits, model_features
from . import EncoderTask

if TYPE_CHECKING:
    from .base import PlottingTask

# never ranked: each row is a different rate, so the best PSNR of the column would only name the
# largest code; the figure and the findings compare at equal bytes
COLUMNS = [("bytes", "bytes / image", None), ("psnr", "PSNR dB", None), ("mse", "MSE", None)]


def parse_bits(value: str) -> tuple[int, ...]:
    """'2,4,8' -> (2, 4, 8): bits per latent dim, each 1..16."""
    try:
        bits = tuple(sorted({int(v) for v in str(value).split(",") if v.strip()}))
    except ValueError:
        raise BadInput(f"--bits {value!r}: give whole numbers separated by commas, e.g. 2,4,8") from None
    if not bits or bits[0] < 1 or bits[-1] > 16:
        raise BadInput(f"--bits {value!r}: give bits per dimension between 1 and 16, e.g. 2,4,8")
    return bits


@dataclass
class CompressConfig:
    bits: str = "2,4,6,8"   # bits per latent dim, one rate-distortion point each
    n: int = 2000           # test images compressed (the first ones of the split)
    n_fit: int = 5000       # training images the quantisers and PCA are fitted on
    seed: int = 0           # of the training images drawn for fitting

    def validate(self) -> None:
        parse_bits(self.bits)
        if self.n < 10:
            raise BadInput(f"--n {self.n}: compress at least 10 test images")
        if self.n_fit < 100:
            raise BadInput(f"--n-fit {self.n_fit}: fit on at least 100 training images")


def decode_uint8(model, codes: np.ndarray, batch: int = 500, desc: str = "decoding") -> np.ndarray:
    """Latent codes (N, D) -> the model's decoded images, uint8 (N, C, H, W)."""
    out = []
    with torch.no_grad(), progress_bar(len(codes), f"compress: {desc}") as bar:
        for i in range(0, len(codes), batch):
            z = torch.from_numpy(np.ascontiguousarray(codes[i:i + batch], dtype=np.float32)).to(model.device)
            out.append(to_uint8(model.decode(z)).cpu().numpy())
            bar.update(len(z))
    return np.concatenate(out)


def decode_posterior_sample(model, x: np.ndarray, seed: int, batch: int = 500) -> np.ndarray:
    """uint8 images x (N, C, H, W) -> the decodes of one draw z = mu + sigma * eps of each
    image's posterior q(z|x) (what a bits-back coder transmits), eps from a generator seeded by
    `seed` on the CPU, so the draw is the same on any device; uint8 (N, C, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    codes = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            mu, logvar = model.encode_dist(to_float(torch.from_numpy(x[i:i + batch])).to(model.device))
            eps = torch.randn(mu.shape, generator=gen).to(mu.device)          # (B, D)
            codes.append((mu.float() + (0.5 * logvar.float()).exp() * eps).cpu().numpy())
    return decode_uint8(model, np.concatenate(codes))


def _fit_rows(ds, cfg: CompressConfig) -> np.ndarray:
    rng = np.random.default_rng(cfg.seed)
    return np.sort(rng.choice(len(ds.train), size=min(cfg.n_fit, len(ds.train)), replace=False))


@register_task
class CompressTask(EncoderTask):
    """Quantised latent codes against PCA and JPEG at the same bytes; a VAE's KL rate."""

    name = "compress"
    title = "Latent space: compression (rate and distortion)"
    Config = CompressConfig

    @staticmethod
    def prepare(ds, ev, cfg: CompressConfig, log=print) -> dict:
        cfg.validate()
        n = min(cfg.n, len(ds.test))
        log(f"compress: {n:,} test images; quantisers fitted on {min(cfg.n_fit, len(ds.train)):,} training images")
        test_x = ds.test.x[:n]
        # JPEG's own curve, the same for every model (its points at a model's bytes come in run)
        curve = [{"quality": j["quality"], **rate_distortion_point(test_x, j["images"], j["scan_bytes"])}
                 for j in jpeg_curve(test_x)]
        return {"n": n, "bits": list(parse_bits(cfg.bits)), "pixel_dims": int(np.prod(ds.shape)),
                "jpeg_curve": curve, "config": dataclasses.asdict(cfg)}

    @staticmethod
    def run(model, ds, ev, cfg: CompressConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        n = prepared["n"]
        test_x, fit_x = ds.test.x[:n], ds.train.x[_fit_rows(ds, cfg)]
        _, test_z = model_features(model, test_x, desc="compress: encoding the test images")
        _, fit_z = model_features(model, fit_x, desc="compress: encoding the fitting images")
        dims = int(test_z.shape[1])
        points, pca, jpeg = [], [], []
        for b in prepared["bits"]:
            q = Quantizer.fit(fit_z, b)
            recon = decode_uint8(model, q.decode(q.encode(test_z)), desc=f"decoding at {b} bits")
            nbytes = math.ceil(dims * b / 8)
            points.append({"bits": b, **rate_distortion_point(test_x, recon, nbytes)})
            if dims < prepared["pixel_dims"]:
                made, pbytes = pca_codec(fit_x, test_x, dims, b)
                pca.append({"bits": b, **rate_distortion_point(test_x, made, pbytes)})
            if nbytes >= prepared["jpeg_curve"][0]["bytes"]:   # else below JPEG's quality 1: no JPEG point
                j = jpeg_at_bytes(test_x, nbytes)
                jpeg.append({"quality": j["quality"], "target": nbytes,
                             **rate_distortion_point(test_x, j["images"], j["scan_bytes"])})
            else:
                jpeg.append(None)
        exact = rate_distortion_point(test_x, decode_uint8(model, test_z, desc="decoding float32 codes"), 4 * dims)
        out = {"dims": dims, "points": points, "pca": pca, "jpeg": jpeg, "float32": exact}
        rate = kl_bits(model, test_x)
        if rate is not None:
            sent = rate_distortion_point(test_x, decode_posterior_sample(model, test_x, cfg.seed), rate / 8)
            out["kl"] = {"bits": rate, "bytes": rate / 8, "psnr": sent["psnr"], "mse": sent["mse"],
                         "decode": "a sample z ~ q(z|x)",
                         "psnr_posterior_mean": exact["psnr"], "mse_posterior_mean": exact["mse"]}
        mid = points[len(points) // 2]
        log(f"compress: {dims} dims at {mid['bits']} bits = {mid['bytes']:g} bytes/image, PSNR {mid['psnr']:.2f} dB"
            + (f"; KL rate {rate:.1f} bits/image" if rate is not None else ""))
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        rows, pca_rows, jpeg_rows = [], {}, {}
        for model, runs in results.items():
            res = runs[0]
            if res.get("kl"):
                kl = res["kl"]
                if "decode" in kl:   # (results written before issue 30 paired it with the mean's decode)
                    rows.append({"name": f"{model}, KL rate (bits-back), decoding a sample z ~ q(z|x)",
                                 "kind": "model", **{k: kl[k] for k in ("bytes", "psnr", "mse")}})
                    rows.append({"name": f"{model}, same rate, decoding the posterior mean (not what bits-back "
                                         "sends)", "kind": "model", "bytes": kl["bytes"],
                                 "psnr": kl["psnr_posterior_mean"], "mse": kl["mse_posterior_mean"]})
                else:
                    rows.append({"name": f"{model}, KL rate (bits-back), posterior mean's decode", "kind": "model",
                                 **{k: kl[k] for k in ("bytes", "psnr", "mse")}})
            for p in res["points"]:
                rows.append({"name": f"{model}, {res['dims']} dims x {p['bits']} bits", "kind": "model", **p})
            for p in res.get("pca", []):
                pca_rows.setdefault((res["dims"], p["bits"]), {
                    "name": f"PCA, {res['dims']} dims x {p['bits']} bits", "kind": "baseline", **p})
            for p in filter(None, res.get("jpeg", [])):
                jpeg_rows.setdefault(p["target"], {"name": f"JPEG quality {p['quality']} (scan data)",
                                                   "kind": "baseline", **p})
        rows += [pca_rows[k] for k in sorted(pca_rows)] + [jpeg_rows[k] for k in sorted(jpeg_rows)]
        if prepared.get("jpeg_curve"):   # JPEG's smallest file: below it JPEG has no point at all
            q1 = prepared["jpeg_curve"][0]
            rows.append({"name": f"JPEG quality {q1['quality']}, its smallest (scan data)", "kind": "baseline", **q1})
        return [{"title": "bytes per image and reconstruction PSNR of the test images",
                 "columns": COLUMNS, "rows": rows, "n": prepared["n"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """Per model, at its middle bit depth: PSNR against PCA and JPEG at (about) the same bytes."""
        lines = []
        for model, runs in results.items():
            res = runs[0]
            i = len(res["points"]) // 2
            p = res["points"][i]
            parts = [f"{model} at {p['bits']} bits per dim ({p['bytes']:g} bytes per image): PSNR {p['psnr']:.2f} dB"]
            if res.get("pca"):
                parts.append(f"PCA at the same size {res['pca'][i]['psnr']:.2f}")
            if res.get("jpeg") and res["jpeg"][i]:
                j = res["jpeg"][i]
                parts.append(f"JPEG at {j['bytes']:.1f} bytes of scan data {j['psnr']:.2f}")
            line = "; ".join(parts)
            if res.get("kl"):
                line += f"; its KL rate is {res['kl']['bits']:.0f} bits ({res['kl']['bytes']:.1f} bytes) per image"
                if "decode" in res["kl"]:
                    line += f" at {res['kl']['psnr']:.2f} dB (the decode of a posterior sample, what bits-back sends)"
            lines.append(line + ".")
        return lines

    @staticmethod
    def plot(prepared: dict, results: dict[str, list[dict]]):
        """The rate-distortion figure: bytes per image (log) against PSNR, every model's
        quantised codes (solid), its KL rate (star), PCA (dashed) and JPEG's curve (dotted)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker

        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
        colours = plt.get_cmap("tab10")
        seen_pca = set()
        for i, (model, runs) in enumerate(results.items()):
            res, c = runs[0], colours(i % 10)
            pts = res["points"]
            ax.plot([p["bytes"] for p in pts], [p["psnr"] for p in pts], "o-", color=c, label=f"{model} (quantised)")
            if res.get("kl"):
                ax.plot([res["kl"]["bytes"]], [res["kl"]["psnr"]], "*", ms=12, color=c,
                        label=f"{model} KL rate (sampled code)" if "decode" in res["kl"] else f"{model} KL rate")
            if res.get("pca") and res["dims"] not in seen_pca:
                seen_pca.add(res["dims"])
                ax.plot([p["bytes"] for p in res["pca"]], [p["psnr"] for p in res["pca"]], "s--", color="0.45",
                        ms=4, label=f"PCA {res['dims']}-d" if len(seen_pca) < 4 else None)

        jp = prepared.get("jpeg_curve") or []
        ax.plot([p["bytes"] for p in jp], [p["psnr"] for p in jp], "^:", color="0.2", ms=4,
                label="JPEG (scan data), quality " + ", ".join(str(p["quality"]) for p in jp))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("bytes per image")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="best")
        fig.tight_layout()
        return fig


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: PlottingTask = CompressTask
