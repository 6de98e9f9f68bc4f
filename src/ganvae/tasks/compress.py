"""Compression: what a model's compressed files cost in bytes and what they give back (issues
15 and 35).

Every rate here is the size of a real file (ganvae.bitstreams), divided by its images:

    learned codecs  (codec, codec-hyper, codec-gan) their own entropy-coded bitstream, one
                    point per trained model (`--sweep lmbda=...` traces the curve)
    other encoders  the latent code quantised to b bits per dimension and entropy-coded under
                    the training codes' histograms, one point per b; the fixed-length packing of
                    issue 15 (ceil(D * b / 8) bytes, no entropy coder) is kept as a column
    PCA             the same dims at the same bits on the pixels (packed: the linear codec)
    JPEG, WebP      Pillow's, one quality per set, matched to each model point's bytes, and
                    their curves over quality; PNG, lossless, as the ceiling of the rate axis

Two sizes per point, both per image: `bytes`, the payload (the entropy-coded data; a JPEG's
scan, a WebP's VP8 data, a PNG's IDAT), and `file_bytes`, the whole file (its header and
tables too: a learned code's file carries its quantiser and histograms once for the whole set,
a JPEG file its Huffman and quantisation tables in every image). The figure and findings use
the payload: what grows with the images; the tables show both.

Beside PSNR: MS-SSIM (Wang, Simoncelli & Bovik 2003; metrics/image_codecs.py's configuration for
small images), and, in the evaluator's features, the FD of the decoded test images to real
*training* images (so a perfect codec scores the real-data floor, FD(test, train), shown beneath,
not 0) and the class kept (the evaluator's accuracy on the decoded images against the labels;
the originals' accuracy beneath). HiFiC (Mentzer et al. 2020) is why FD belongs here: at low
rates a GAN-trained decoder gives sharp, realistic images at a PSNR cost.

For VAEs the KL term is a rate too: KL(q(z|x) || N(0, I)) in bits is what bits-back coding
(Hinton & van Camp 1993; Townsend et al. 2019) pays per image; the distortion paired with it is
the decode of a sample z ~ q(z|x) (what bits-back sends), the posterior mean's beside it. It is a
number, not a file, and is labelled so. A beta sweep traces the curve of Alemi et al. 2018.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..bitstreams import LevelModel, compress as compress_file, compress_quantised, decompress, writes_own_bitstream
from ..data import to_float, to_uint8
from ..errors import BadInput, did_you_mean
from ..metrics.codec import packed_bytes, pca_codec, rate_distortion_point
from ..metrics.image_codecs import codec_at_bytes, codec_curve, ms_ssim
from ..progress import bar as progress_bar
from ..registry import register_task
from ..evaluation import kl_bits, model_features
from . import EncoderTask, evaluator_scores

if TYPE_CHECKING:
    from .base import PlottingTask

# never ranked: each row is a different rate, so the best of a column would only name the
# largest file; the figure and the findings compare at equal bytes
COLUMNS = [("bytes", "payload bytes / image", None), ("file_bytes", "whole file / image", None),
           ("psnr", "PSNR dB", None), ("ms_ssim", "MS-SSIM", None), ("fd", "FD", None),
           ("accuracy", "class kept", None)]
FORMATS = ("jpeg", "webp")
CURVE_QUALITIES = {"jpeg": (1, 3, 6, 10, 20, 40, 70, 95), "webp": (0, 5, 10, 20, 40, 60, 80, 95)}
NAMES = {"jpeg": "JPEG", "webp": "WebP", "png": "PNG"}


def parse_bits(value: str) -> tuple[int, ...]:
    """'2,4,8' -> (2, 4, 8): bits per latent dim, each 1..16."""
    try:
        bits = tuple(sorted({int(v) for v in str(value).split(",") if v.strip()}))
    except ValueError:
        raise BadInput(f"--bits {value!r}: give whole numbers separated by commas, e.g. 2,4,8") from None
    if not bits or bits[0] < 1 or bits[-1] > 16:
        raise BadInput(f"--bits {value!r}: give bits per dimension between 1 and 16, e.g. 2,4,8")
    return bits


def parse_formats(value: str) -> tuple[str, ...]:
    out = tuple(v.strip().lower() for v in str(value).split(",") if v.strip())
    for f in out:
        if f not in FORMATS:
            raise BadInput(f"formats={value!r}: unknown format {f!r}{did_you_mean(f, FORMATS)}; "
                           f"choose from {', '.join(FORMATS)} (PNG, lossless, is always shown)")
    return out


@dataclass
class CompressConfig:
    bits: str = "2,4,6,8"     # bits per latent dim (models that are not learned codecs), a point each
    n: int = 2000             # test images compressed (the first ones of the split)
    n_fit: int = 5000         # training images the quantisers, histograms and PCA are fitted on
    seed: int = 0             # of the training images drawn for fitting and for the FD reference
    formats: str = "jpeg,webp"   # the classical lossy codecs beside the models

    def validate(self) -> None:
        parse_bits(self.bits)
        parse_formats(self.formats)
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


def _rows(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(size, n), replace=False))


def score(original: np.ndarray, decoded: np.ndarray, nbytes: float, file_bytes: float | None,
          prepared: dict, ev=None, labels=None) -> dict:
    """One point: bytes and file_bytes per image, PSNR, MSE, MS-SSIM and, with an evaluator,
    FD to the reference training images and the class kept."""
    out = rate_distortion_point(original, decoded, nbytes)
    out["file_bytes"] = None if file_bytes is None else float(file_bytes)
    out["ms_ssim"] = float(np.mean(ms_ssim(original, decoded)))
    if ev is not None:
        out |= evaluator_scores(decoded, ev, prepared.get("ref_feats"), labels)
    return out


def interpolate(curve: list[dict], nbytes: float, key: str = "psnr") -> float | None:
    """A curve's `key` at `nbytes`, linear in log(bytes) between its points (sorted by bytes);
    None outside its range (no extrapolation)."""
    pts = sorted((p["bytes"], p[key]) for p in curve if p.get(key) is not None)
    if not pts or not pts[0][0] <= nbytes <= pts[-1][0]:
        return None
    xs, ys = np.log([p[0] for p in pts]), [p[1] for p in pts]
    return float(np.interp(math.log(nbytes), xs, ys))


# the rates the findings read every curve at (issue 35's targets: 20 to 120 bytes; 32 for the
# quantised codes)
REFERENCE_BYTES = (20, 32, 64, 120)


def family_curves(results: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """{preset: its points}, the points of every variant of one preset together (a --sweep's,
    or `codec:lmbda=...` specs'): one rate-distortion curve per family."""
    from ..registry import parse_model_spec

    out: dict[str, list[dict]] = {}
    for model, runs in results.items():
        try:
            base = parse_model_spec(model)[0]
        except BadInput:
            base = model
        out.setdefault(base, []).extend(runs[0]["points"])
    return out


def rate_line(nbytes: float, families: dict[str, list[dict]], curves: dict[str, list[dict]]) -> str:
    """"At 32 bytes per image: codec 24.1 dB, ae 19.0 dB, JPEG none, ..." (interpolated; none
    where a curve does not reach that rate)."""
    parts = []
    for name, pts in list(families.items()) + [(NAMES[f], c) for f, c in curves.items()]:
        at = interpolate(pts, nbytes)
        parts.append(f"{name} {at:.2f} dB" if at is not None else f"{name} none")
    return f"At {nbytes:g} payload bytes per image (curves interpolated in log bytes): PSNR " + ", ".join(parts) + "."


def parent_lines(families: dict[str, list[dict]]) -> list[str]:
    """A model built on another in the comparison (its class's `parents`, e.g. codec-gan on
    codec): at each of its points, FD and PSNR against the parent's curve at the same bytes,
    the realism HiFiC claims and what it costs in PSNR."""
    from ..registry import resolve

    lines = []
    for name, pts in families.items():
        try:
            parents = [p for p in resolve(name)[0].parents if p in families]
        except BadInput:
            continue
        for parent in parents:
            for p in sorted(pts, key=lambda q: q["bytes"]):
                fd, psnr = interpolate(families[parent], p["bytes"], "fd"), interpolate(families[parent], p["bytes"])
                if fd is None or psnr is None or p.get("fd") is None:
                    lines.append(f"{name} at {p['bytes']:.1f} bytes: outside {parent}'s curve, no comparison.")
                    continue
                verdict = "lower" if p["fd"] < fd else "not lower"
                lines.append(f"{name} at {p['bytes']:.1f} bytes: FD {p['fd']:.2f} against {parent}'s {fd:.2f} at the "
                             f"same bytes ({verdict}), PSNR {p['psnr']:.2f} dB against {psnr:.2f} "
                             f"({p['psnr'] - psnr:+.2f} dB).")
    return lines


@register_task
class CompressTask(EncoderTask):
    """Real compressed files against JPEG, WebP, PNG and PCA at the same bytes; a VAE's KL rate."""

    name = "compress"
    title = "Latent space: compression (rate and distortion)"
    Config = CompressConfig
    uses_evaluator = True

    @staticmethod
    def prepare(ds, ev, cfg: CompressConfig, log=print) -> dict:
        cfg.validate()
        n = min(cfg.n, len(ds.test))
        log(f"compress: {n:,} test images; quantisers fitted on {min(cfg.n_fit, len(ds.train)):,} training images")
        test_x = ds.test.x[:n]
        labels = None if ds.test.y is None else ds.test.y[:n]
        prepared = {"n": n, "bits": list(parse_bits(cfg.bits)), "formats": list(parse_formats(cfg.formats)),
                    "pixel_dims": int(np.prod(ds.shape)), "config": dataclasses.asdict(cfg)}
        if ev is not None:
            # FD to n training images: a perfect codec scores FD(test, train), the real-data floor
            ref = ds.train.x[_rows(len(ds.train), n, cfg.seed + 1)]
            prepared["ref_feats"] = ev.features_and_probs(ref)[0]
            prepared["floor"] = evaluator_scores(test_x, ev, prepared["ref_feats"], labels)
        # each format's own curve over quality, the same for every model
        prepared["curves"] = {}
        for fmt in prepared["formats"]:
            prepared["curves"][fmt] = [
                {"quality": c["quality"], **score(test_x, c["images"], c["payload_bytes"], c["file_bytes"],
                                                  prepared, ev, labels)}
                for c in codec_curve(test_x, fmt, CURVE_QUALITIES[fmt])]
        png = codec_curve(test_x, "png")[0]
        prepared["png"] = {"bytes": png["payload_bytes"], "file_bytes": png["file_bytes"]}
        return prepared

    @staticmethod
    def run(model, ds, ev, cfg: CompressConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        n = prepared["n"]
        test_x = ds.test.x[:n]
        labels = None if ds.test.y is None else ds.test.y[:n]
        points = []
        if writes_own_bitstream(model):
            # a learned codec: its file, decoded from the bytes alone
            f = compress_file(model, test_x)
            points.append({"label": "entropy-coded file",
                           **score(test_x, decompress(model, f.data), f.payload_per_image, f.bytes_per_image,
                                   prepared, ev, labels)})
            dims, pca, out = int(model.config.latent), [], {}
        else:
            fit_x = ds.train.x[_rows(len(ds.train), cfg.n_fit, cfg.seed)]
            _, test_z = model_features(model, test_x, desc="compress: encoding the test images")
            _, fit_z = model_features(model, fit_x, desc="compress: encoding the fitting images")
            dims, pca = int(test_z.shape[1]), []
            for b in prepared["bits"]:
                f = compress_quantised(model, test_x, LevelModel.from_codes(fit_z, b), codes=test_z)
                decoded = decompress(model, f.data)
                points.append({"label": f"{dims} dims x {b} bits, entropy-coded", "bits": b,
                               "packed_bytes": packed_bytes(dims, b),
                               **score(test_x, decoded, f.payload_per_image, f.bytes_per_image, prepared, ev, labels)})
                if dims < prepared["pixel_dims"]:
                    made, pbytes = pca_codec(fit_x, test_x, dims, b)
                    pca.append({"bits": b, **score(test_x, made, pbytes, None, prepared)})
            out = {"float32": rate_distortion_point(test_x, decode_uint8(model, test_z, desc="decoding float32 codes"),
                                                    4 * dims)}
            rate = kl_bits(model, test_x)
            if rate is not None:
                sent = rate_distortion_point(test_x, decode_posterior_sample(model, test_x, cfg.seed), rate / 8)
                out["kl"] = {"bits": rate, "bytes": rate / 8, "psnr": sent["psnr"], "mse": sent["mse"],
                             "decode": "a sample z ~ q(z|x)",
                             "psnr_posterior_mean": out["float32"]["psnr"], "mse_posterior_mean": out["float32"]["mse"]}
        # the classical codecs matched to each point's payload bytes
        matched = {}
        for fmt in prepared["formats"]:
            matched[fmt] = []
            for p in points:
                m = codec_at_bytes(test_x, fmt, p["bytes"], count="payload")
                matched[fmt].append(None if m is None else {
                    "quality": m["quality"], "target": p["bytes"],
                    **score(test_x, m["images"], m["payload_bytes"], m["file_bytes"], prepared, ev, labels)})
        mid = points[len(points) // 2]
        log(f"compress: {mid['label']}: {mid['bytes']:.1f} bytes/image (payload), PSNR {mid['psnr']:.2f} dB")
        return {"dims": dims, "points": points, "pca": pca, "matched": matched, **out}

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        rows, baseline = [], {}
        for model, runs in results.items():
            res = runs[0]
            if res.get("kl"):
                kl = res["kl"]
                rows.append({"name": f"{model}, KL rate (bits-back; a number, no file), decoding a sample "
                                     "z ~ q(z|x)", "kind": "model", **{k: kl[k] for k in ("bytes", "psnr")}})
                if "psnr_posterior_mean" in kl:
                    rows.append({"name": f"{model}, same rate, decoding the posterior mean (not what bits-back "
                                         "sends)", "kind": "model", "bytes": kl["bytes"],
                                 "psnr": kl["psnr_posterior_mean"]})
            for p in res["points"]:
                label = p.get("label") or f"{res['dims']} dims x {p['bits']} bits"
                rows.append({"name": f"{model}, {label}", "kind": "model", **p})
            for p in res.get("pca", []):
                baseline.setdefault(("PCA", res["dims"], p["bits"]), {
                    "name": f"PCA, {res['dims']} dims x {p['bits']} bits (packed)", "kind": "baseline", **p})
            for fmt, pts in (res.get("matched") or {}).items():
                for p in filter(None, pts):
                    baseline.setdefault((fmt, p["quality"]), {
                        "name": f"{NAMES[fmt]} quality {p['quality']}", "kind": "baseline", **p})
        rows += [baseline[k] for k in sorted(baseline, key=lambda k: (k[0], k[1:]))]
        for fmt, curve in (prepared.get("curves") or {}).items():
            low = curve[0]   # the smallest it makes: below it the format has no point at all
            rows.append({"name": f"{NAMES[fmt]} quality {low['quality']}, its smallest", "kind": "baseline", **low})
        if prepared.get("png"):
            rows.append({"name": "PNG (lossless)", "kind": "baseline", "psnr": None, **prepared["png"]})
        if prepared.get("floor"):
            rows.append({"name": "the originals (real-data floor of FD, the evaluator's own accuracy)",
                         "kind": "floor", **prepared["floor"]})
        return [{"title": "bytes per image (payload: the entropy-coded data; whole file: with headers and "
                          "tables) and what the decoded test images keep",
                 "columns": COLUMNS, "rows": rows, "n": prepared["n"]}]

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """Per model, at its middle point: PSNR against JPEG's and WebP's curves at the same
        payload bytes (interpolated). Then every family's curve (a sweep's points together) at
        the reference rates, and a GAN-trained codec against its parent at its own bytes."""
        lines = []
        curves = prepared.get("curves") or {}
        for model, runs in results.items():
            res = runs[0]
            p = res["points"][len(res["points"]) // 2]
            line = f"{model} ({p.get('label', '')}): {p['bytes']:.1f} bytes per image, PSNR {p['psnr']:.2f} dB"
            if p.get("fd") is not None:
                line += f", FD {p['fd']:.2f}"
            vs = []
            for fmt, curve in curves.items():
                at = interpolate(curve, p["bytes"])
                vs.append(f"{NAMES[fmt]} {at:.2f} dB" if at is not None
                          else f"{NAMES[fmt]} none (its smallest is {curve[0]['bytes']:.0f} bytes)")
            if vs:
                line += "; at the same bytes " + ", ".join(vs)
            if res.get("kl"):
                line += f"; its KL rate is {res['kl']['bytes']:.1f} bytes (bits-back, not a file)"
            lines.append(line + ".")
        families = family_curves(results)
        lines += [rate_line(b, families, curves) for b in REFERENCE_BYTES]
        lines += parent_lines(families)
        return lines

    @staticmethod
    def plot(prepared: dict, results: dict[str, list[dict]]):
        """Two panels against payload bytes per image (log): PSNR, and FD in the evaluator's
        features (lower is better; the real-data floor dashed). Models solid, JPEG / WebP dotted,
        PCA dashed grey, a VAE's KL rate a star."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker

        has_fd = any(p.get("fd") is not None for runs in results.values() for p in runs[0]["points"])
        fig, axes = plt.subplots(1, 2 if has_fd else 1, figsize=(11 if has_fd else 7, 4.5), dpi=100, squeeze=False)
        panels = [("psnr", "PSNR (dB)")] + ([("fd", "FD (evaluator features)")] if has_fd else [])
        colours = plt.get_cmap("tab10")
        for ax, (key, label) in zip(axes[0], panels):
            seen_pca = set()
            # one line per family: a sweep's variants (codec:lmbda=...) are the points of one curve
            families = family_curves(results)
            colour_of = {name: colours(i % 10) for i, name in enumerate(families)}
            for name, fam in families.items():
                pts = sorted((p for p in fam if p.get(key) is not None), key=lambda p: p["bytes"])
                ax.plot([p["bytes"] for p in pts], [p[key] for p in pts], "o-", color=colour_of[name], label=name)
            for model, runs in results.items():
                res, c = runs[0], colour_of[next(iter(family_curves({model: runs})))]
                if key == "psnr" and res.get("kl"):
                    ax.plot([res["kl"]["bytes"]], [res["kl"]["psnr"]], "*", ms=12, color=c,
                            label=f"{model} KL rate (a number)")
                if key == "psnr" and res.get("pca") and res["dims"] not in seen_pca:
                    seen_pca.add(res["dims"])
                    ax.plot([p["bytes"] for p in res["pca"]], [p["psnr"] for p in res["pca"]], "s--", color="0.55",
                            ms=4, label=f"PCA {res['dims']}-d (packed)" if len(seen_pca) < 4 else None)
            for j, (fmt, curve) in enumerate((prepared.get("curves") or {}).items()):
                pts = [p for p in curve if p.get(key) is not None]
                ax.plot([p["bytes"] for p in pts], [p[key] for p in pts], "^:" if j == 0 else "v:",
                        color=f"{0.15 + 0.3 * j}", ms=4, label=NAMES[fmt])
            if key == "fd" and (prepared.get("floor") or {}).get("fd") is not None:
                ax.axhline(prepared["floor"]["fd"], color="0.3", lw=0.8, ls="--", label="real-data floor")
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("payload bytes per image")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, frameon=False, loc="best")
        fig.tight_layout()
        return fig


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: PlottingTask = CompressTask
