"""The evaluation suite: score samples (from a run or from anywhere) against the test split.

Every sample metric is also computed for an equal-size slice of the training split against
the test split: the real-data floor, the value a perfect model would get at this sample size
(printed beside each score, so a number is never read without its scale).

Features and classifier outputs come from the dataset's evaluator (see evaluators/); those of
real data are cached by a hash of the images, the evaluator and the count.

A metric that cannot be computed from this much data (a 7-image test split cannot give the
covariance of 64-dim codes, nor k-NN balls with k >= 7) is left out, named in the result's
`skipped` {metric: why} and in one warning line, and every other score is kept: the metric's
own size check raises TooFewRows, and only that is caught, so any other error still stops.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import ImageDataset, to_float, to_uint8
from .data.binarize import binarize_static
from . import progress
from .errors import BadInput
from .evaluators import Evaluator, cache_root, get_evaluator
from .files import atomic_write, check_npz
from .metrics import TooFewRows, sample_metrics
from .metrics import directions as sample_directions
from .metrics.inpainting import psnr_of


@dataclass
class EvalConfig:
    n: int = 10_000            # generated samples (and the size of the floor's train slice)
    k: int = 5                 # neighbours for precision / recall / density / coverage
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    # The likelihood models' IWAE bound costs images x k decoder passes: ~55 s for 100 x 1000 at
    # 28x28 on 2 CPU cores, several minutes at 64x64 RGB. None (the default) sizes each to fit
    # nll_seconds, up to the targets (see plan_likelihood); a number is used as given.
    nll_k: int | None = None           # importance samples per image
    nll_images: int | None = None      # test images the bound is averaged over
    nll_seconds: float = 60.0
    nll_k_target: int = 1000
    nll_images_target: int = 100
    seed: int = 0
    batch: int = 500

    def validate(self) -> None:
        for name in ("n", "k", "kid_subsets", "kid_subset_size", "nll_k", "nll_images", "batch",
                     "nll_k_target", "nll_images_target"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if not self.nll_seconds > 0:
            raise BadInput(f"--nll-seconds {self.nll_seconds}: give a positive number of seconds")


# Below these the bound is poor enough that spending fewer images is the better trade: the gap
# to log p(x) shrinks like 1/k (Burda et al. 2016), while 20 images already give the mean.
NLL_K_FLOOR, NLL_IMAGES_FLOOR = 50, 20


def plan_likelihood(model, x: torch.Tensor, cfg: EvalConfig) -> dict:
    """The IWAE bound's k and image count: cfg's where given, else the most that fit
    cfg.nll_seconds at the decoder speed measured here (a short probe on x, images (N, C, H, W)
    in [-1, 1]), up to cfg's targets. Returns {"k", "images", "auto", "budget_seconds",
    "decodes_per_second"} (the last None when nothing was measured)."""
    k, n = cfg.nll_k, cfg.nll_images
    n_max = min(cfg.nll_images_target if n is None else n, len(x))
    plan = {"auto": k is None or n is None, "budget_seconds": cfg.nll_seconds, "decodes_per_second": None}
    if not plan["auto"]:
        return {**plan, "k": k, "images": n_max}
    probe = x[:min(4, len(x))]
    model.log_likelihood(probe, k=64)                   # warm-up: inference decoder, allocator
    t = time.perf_counter()
    model.log_likelihood(probe, k=256)
    rate = len(probe) * 256 / max(time.perf_counter() - t, 1e-6)
    decodes = rate * cfg.nll_seconds
    if k is not None:                                   # k given: as many images as fit
        n = max(1, min(n_max, int(decodes // k)))
    elif n is not None:                                 # images given: as many samples as fit
        n, k = n_max, max(1, min(cfg.nll_k_target, int(decodes // n_max)))
    else:
        n = n_max
        k = min(cfg.nll_k_target, int(decodes // n))
        if k < NLL_K_FLOOR:                             # too slow for all the images: fewer of them
            n = max(min(NLL_IMAGES_FLOOR, n_max), min(n_max, int(decodes // NLL_K_FLOOR)))
            k = max(1, min(cfg.nll_k_target, int(decodes // n)))
    return {**plan, "k": k, "images": n, "decodes_per_second": round(rate, 1)}


# Metrics that need an encoder or a likelihood: name -> (higher is better, description).
# A likelihood's numbers carry its data space in their name, so that only likelihoods of the
# same data are ever set side by side: `nll` is -log P of the 8-bit pixels (256 values each),
# `nll_binary` of binarized pixels, and `nll_invalid` a number that is no probability of the
# data at all (a Bernoulli on grey levels, a continuous Gaussian density): shown, never ranked.
EXTRA = {
    "recon_mse": (False, "reconstruction MSE per pixel on [0, 1] intensities, the first n test images"),
    "psnr": (True, "reconstruction PSNR in dB (peak 1), test split"),
    "elbo": (True, "test ELBO of the 8-bit data in nats per image (a lower bound on log P(x))"),
    "nll": (False, "test NLL of the 8-bit data in nats per image, importance-weighted bound"),
    "nll_bpd": (False, "the same NLL in bits per dimension (8 = a uniform guess)"),
    "elbo_binary": (True, "test ELBO of binarized data in nats per image"),
    "nll_binary": (False, "test NLL of binarized data in nats per image, importance-weighted bound"),
    "nll_binary_bpd": (False, "the same NLL in bits per dimension (1 = a uniform guess)"),
    "rate_bits": (None, "KL(q(z|x) || N(0, I)) in bits per test image: the code's rate under bits-back coding "
                        "(Gaussian encoders); never ranked, it trades against distortion"),
    "latent_tc": (None, "total correlation of the Gaussian fitted to the test codes, nats (0: uncorrelated dims)"),
    "mig": (True, "Mutual Information Gap of the test codes with the data's known factors (factors data)"),
    "elbo_invalid": (None, "an ELBO that is not a bound on a probability of the data; never ranked"),
    "nll_invalid": (None, "an 'NLL' that is not a likelihood of the data; never ranked"),
}

# data space -> (metric-name suffix, description, valid probability of the data)
SPACES = {
    "8-bit": ("", "the 8-bit pixels (256 values each)", True),
    "binary": ("_binary", "binarized pixels (one Bernoulli draw of each grey level)", True),
    "invalid": ("_invalid", "not a likelihood of the data", False),
}


def likelihood_space(model, binarize: str = "none") -> str:
    """The data space a likelihood model's numbers are probabilities in: 8-bit, binary, or
    invalid (what it computes is not a probability of the data it is scored on)."""
    return model.likelihood_space(binarize)


def likelihood_info(model, metrics: dict, binarize: str = "none", seconds: float | None = None) -> dict | None:
    """What a reader needs beside a likelihood number: its space, bound and the sample counts
    encoder_metrics used (from its `metrics`), and the `seconds` the bound took."""
    if not getattr(model, "has_likelihood", False):
        return None
    space = likelihood_space(model, binarize)
    k = metrics.get("nll_k")
    return {"space": space, "description": SPACES[space][1], "valid": SPACES[space][2],
            "likelihood": getattr(model.config, "likelihood", None), "binarize": binarize,
            "bound": "IWAE", "k": k, "images": metrics.get("nll_images"), "seconds": seconds,
            "label": f"NLL (IWAE, k={k})"}


def nats_to_bpd(nats_per_image: float, dims: int) -> float:
    """-log p(x) in nats per image -> bits per dimension: divided by dims * ln 2."""
    return nats_per_image / (dims * math.log(2))


def directions() -> dict[str, bool | None]:
    """{name: higher is better (None: never ranked)} for the sample, encoder and likelihood metrics."""
    out = sample_directions()
    out.update({k: v[0] for k, v in EXTRA.items()})
    return out


def sharpness(x: np.ndarray, batch: int = 2000) -> float:
    """Mean squared Laplacian of uint8 images (N, C, H, W): the energy of their edges.

    Reported for samples as a ratio to the test images' value (1 = as sharp as real data),
    because FD and precision do not say *why* samples look unlike the data; blur is the
    usual reason for VAEs.
    """
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).float().div_(255)
        xb = xb.reshape(-1, 1, *xb.shape[2:])                          # (B*C, 1, H, W)
        lap = torch.nn.functional.conv2d(xb, kernel)
        total += float(lap.pow(2).sum())
        count += lap.numel()
    return total / max(count, 1)


def _stats_key(x: np.ndarray, ev: Evaluator, what: str) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    # v2: features through the folded, channels-last evaluator (same values to ~1e-6)
    h.update(f"{ev.weights_sha256}|{what}|{len(x)}|v2".encode())
    return h.hexdigest()[:24]


def real_features(ev: Evaluator, x: np.ndarray, what: str, log: Callable[[str], None] = print):
    """Evaluator features (and probs) of real images x, cached by (images, evaluator, count)."""
    path = cache_root() / "stats" / f"{_stats_key(x, ev, what)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                feats, probs = z["feats"], (z["probs"] if "probs" in z.files else None)
                if "sha256" not in z.files:
                    raise KeyError("sha256")
                if str(z["sha256"]) != _arrays_sha256(feats, probs):
                    raise ValueError("checksum mismatch")
                return feats, probs
        except KeyError:   # written by a ganvae without checksums: replaced, not trusted
            log(f"{path}: a statistics cache without a checksum (an older ganvae's); recomputing")
        except Exception:  # a damaged cache file is recomputed, never used
            log(f"warning: {path}: damaged statistics cache; recomputing")
    feats, probs = ev.features_and_probs(x)
    arrays = {"feats": feats} if probs is None else {"feats": feats, "probs": probs}
    arrays["sha256"] = np.array(_arrays_sha256(feats, probs))
    atomic_write(path, lambda p: np.savez(open(p, "wb"), **arrays))
    return feats, probs


def _arrays_sha256(feats: np.ndarray, probs: np.ndarray | None) -> str:
    """The checksum a statistics cache entry carries: SHA-256 of its arrays' bytes and shapes."""
    h = hashlib.sha256()
    for a in (feats, probs):
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _floor_slice(ds: ImageDataset, n: int, seed: int) -> np.ndarray:
    """n real training images, the floor's sample. A run limited to N images (--limit) draws
    them from the whole train split it was cut from: the floor is what real data scores, and
    100 images scored against 10,000 samples would measure the sample size, not realism."""
    pool = ds.pool if ds.pool is not None else ds.train
    idx = np.sort(np.random.default_rng(seed).permutation(len(pool))[: min(n, len(pool))])
    return pool.x[idx]


def score(fake_x: np.ndarray, ds: ImageDataset, ev: Evaluator, cfg: EvalConfig,
          log: Callable[[str], None] = print, with_floor: bool = True,
          skipped: dict[str, str] | None = None) -> dict:
    """Sample metrics of uint8 images fake_x against the test split, and the floor.

    skipped: None: a metric too few images cannot support raises TooFewRows. A dict: it is left
    out and recorded there, {name: why}; a floor value missing beside a computed metric as
    `floor/NAME`.
    """
    if fake_x.shape[1:] != ds.test.x.shape[1:]:
        raise BadInput(f"samples are {'x'.join(map(str, fake_x.shape[1:]))} images but {ds.name} "
                       f"has {'x'.join(map(str, ds.shape))}")
    t0 = time.perf_counter()
    real_f, real_p = real_features(ev, ds.test.x, "test", log)
    fake_f, fake_p = ev.features_and_probs(fake_x)
    num_classes = ds.num_classes if ev.is_classifier else None
    # The reference class histogram is the evaluator's own reading of the test images, not their
    # labels: samples are classified by the same (imperfect) evaluator, so its confusions (a
    # shirt filed as a T-shirt) appear on both sides and are not charged to the model.
    real_hist = real_class_hist(real_p) if ev.is_classifier else None
    common = dict(num_classes=num_classes, real_hist=real_hist, k=cfg.k, kid_subsets=cfg.kid_subsets,
                  kid_subset_size=cfg.kid_subset_size, seed=cfg.seed)
    t1 = time.perf_counter()
    out = {"metrics": sample_metrics(real_f, fake_f, real_p, fake_p, **common, skipped=skipped), "n": len(fake_x)}
    out["metrics"]["sharpness"] = sharpness(fake_x) / max(sharpness(ds.test.x[: len(fake_x)]), 1e-12)
    if fake_p is not None:  # the class histogram of the samples, for mode-coverage plots
        out["class_hist"] = (np.bincount(fake_p.argmax(1), minlength=fake_p.shape[1]) / len(fake_p)).tolist()
    t2 = time.perf_counter()
    if with_floor:
        floor_x = _floor_slice(ds, len(fake_x), cfg.seed)
        fl_f, fl_p = real_features(ev, floor_x, "train-slice", log)
        floor_skipped = None if skipped is None else {}
        out["floor"] = sample_metrics(real_f, fl_f, real_p, fl_p, **common, skipped=floor_skipped)
        out["floor_images"] = len(floor_x)
        if skipped is not None:   # the floor shares the test side, so it mostly fails with the metric: said once
            skipped.update({f"floor/{k}": why for k, why in floor_skipped.items() if k not in skipped})
    out["seconds"] = {"features": round(t1 - t0, 2), "metrics": round(t2 - t1, 2),
                      "floor": round(time.perf_counter() - t2, 2)}
    return out


def real_class_hist(probs: np.ndarray | None) -> np.ndarray | None:
    """The share of images the evaluator files under each class, (K,), from its probabilities."""
    if probs is None:
        return None
    return np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)


@torch.no_grad()
def generate(model, n: int, seed: int, batch: int, inputs: np.ndarray | None = None) -> np.ndarray:
    """n images from the model as uint8 (n, C, H, W): samples; for a translation model, the
    translations (a2b) of the first n of `inputs`, held-out input-domain images (fewer when
    there are fewer): what it generates is conditioned on them, and scoring them against real
    target-domain images measures its outputs as sample metrics measure samples."""
    if model.translation:
        if inputs is None:
            raise BadInput(f"{model.name} translates images: scoring it needs input-domain images")
        was = model.training
        model.eval()
        n = min(n, len(inputs))
        with progress.bar(n, f"translating ({model.name})") as bar:
            out = []
            for i in range(0, n, batch):
                x = to_float(torch.from_numpy(inputs[i:i + batch])).to(model.device)
                out.append(to_uint8(model.translate(x)).cpu().numpy())
                bar.update(len(x))
        model.train(was)
        return np.concatenate(out)[:n]
    gen = torch.Generator().manual_seed(seed)
    out = []
    with progress.bar(n, f"sampling ({model.name})") as bar:
        for i in range(0, n, batch):
            out.append(to_uint8(model.sample(min(batch, n - i), generator=gen)).cpu().numpy())
            bar.update(len(out[-1]))
    return np.concatenate(out)


@torch.no_grad()
def model_features(model, x: np.ndarray, batch: int = 500, desc: str | None = None) -> tuple[str, np.ndarray]:
    """A frozen model's features of uint8 images x (N, C, H, W): (what they are, (N, F) float32).
    The encoder's code where the model has one (a VAE's posterior mean), else the
    discriminator's penultimate activations (GANs' `d_features`)."""
    if model.has_encoder:
        kind, fn = "encoder codes", model.encode
    elif hasattr(model, "d_features"):
        kind, fn = "discriminator features", model.d_features
    else:
        raise BadInput(f"{model.name} has neither an encoder nor an image discriminator: no features to probe")
    out = []
    # (a bar: tens of thousands of 64x64 images take minutes on a CPU; desc names what for)
    with torch.no_grad(), progress.bar(len(x), desc or f"{model.name}: {kind}") as bar:
        for i in range(0, len(x), batch):
            xb = to_float(torch.from_numpy(x[i:i + batch])).to(model.device)
            out.append(fn(xb).float().flatten(1).cpu().numpy())
            bar.update(len(xb))
    return kind, np.concatenate(out)


def kl_bits(model, x: np.ndarray, batch: int = 500) -> float | None:
    """Mean KL(q(z|x) || N(0, I)) over uint8 images x, in bits per image: the bits-back rate of
    a Gaussian posterior (VAE, VAE-GAN); None for models without one."""
    if not hasattr(model, "encode_dist"):
        return None
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            mu, logvar = model.encode_dist(to_float(torch.from_numpy(x[i:i + batch])).to(model.device))
            mu, logvar = mu.double(), logvar.double()
            total += float((0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).sum())
    return total / len(x) / math.log(2)


def latent_summary(model, ds: ImageDataset, n: int, skipped: dict[str, str] | None = None) -> dict:
    """The cheap latent-space numbers of an encoder model on its first n (at most 5,000) test
    codes: the Gaussian total correlation, the bits-back rate of a Gaussian posterior, and the
    MIG when the data has known factors. The full measurements are the probe, compress and
    disentangle tasks (ganvae eval --tasks ...).

    skipped: as in `score`: None raises TooFewRows (a test split with no more codes than live
    code dims has no total correlation); a dict records it and leaves latent_tc out."""
    from .metrics.disentangle import gaussian_total_correlation, mig

    x = ds.test.x[:min(n, 5000)]
    _, codes = model_features(model, x)
    live = codes[:, codes.var(0) > 0]
    out = {}
    try:
        out["latent_tc"] = gaussian_total_correlation(live) if live.shape[1] > 1 else 0.0
    except TooFewRows as e:
        if skipped is None:
            raise
        skipped["latent_tc"] = str(e)
    rate = kl_bits(model, x)
    if rate is not None:
        out["rate_bits"] = rate
    if ds.test.factors is not None and len(x) >= 2:
        out["mig"] = mig(codes, ds.test.factors[:len(x)])["mig"]
    return out


def encoder_metrics(model, ds: ImageDataset, cfg: EvalConfig, log: Callable[[str], None] = print,
                    binarize: str = "none", skipped: dict[str, str] | None = None,
                    seconds: dict | None = None) -> dict:
    """Reconstruction error for encoder models; ELBO and IWAE NLL for likelihood models.

    The likelihood terms are named by their data space (see EXTRA): `binarize` is the run's
    data.binarize, which decides whether a Bernoulli decoder's numbers are probabilities.
    skipped: as in `score`, for the metrics too few test images cannot support.
    seconds: where given, its "likelihood" entry is set to the bound's wall time.
    """
    out = {}
    x_all = torch.from_numpy(ds.test.x)
    dims = math.prod(ds.shape)
    if getattr(model, "has_encoder", False):
        # on as many test images as samples are scored (all 10,000 by default; a comparison's
        # --eval-n); the mean squared error of thousands of images is stable to ~1%
        per_image = []
        x_rec = x_all[:cfg.n]
        with torch.no_grad():   # (reconstruct is differentiable for the tasks that need it)
            for i in range(0, len(x_rec), cfg.batch):
                x = to_float(x_rec[i:i + cfg.batch].to(model.device))
                x_hat = model.reconstruct(x).clamp(-1, 1)
                # (B,) each image's MSE on [0, 1] intensities, in float64
                per_image.append(((x_hat - x) / 2).double().pow(2).flatten(1).mean(1).cpu().numpy())
        per_image = np.concatenate(per_image)
        out["recon_mse"] = float(per_image.mean())    # (equal-sized images: the pooled MSE too)
        out["psnr"] = psnr_of(per_image)              # the mean of per-image PSNRs, as everywhere
        out.update(latent_summary(model, ds, cfg.n, skipped))
    if getattr(model, "has_likelihood", False):
        # The ELBO and the importance-weighted bound on the same images, so that IWAE >= ELBO
        # can be read off the table; binary models are scored on one fixed draw of them.
        x_ll = ds.test.x[:min(len(x_all), cfg.nll_images or cfg.nll_images_target)]
        if binarize != "none":
            x_ll = binarize_static(x_ll, cfg.seed)
        x_ll = torch.from_numpy(x_ll)
        plan = plan_likelihood(model, to_float(x_ll.to(model.device)), cfg)
        n, k = plan["images"], plan["k"]
        x_ll = x_ll[:n]
        suffix = SPACES[likelihood_space(model, binarize)][0]
        gen = torch.Generator().manual_seed(cfg.seed)
        elbo = torch.cat([model.elbo(to_float(x_ll[i:i + cfg.batch].to(model.device)), generator=gen)
                          for i in range(0, n, cfg.batch)])
        out[f"elbo{suffix}"] = float(elbo.mean())
        t = time.perf_counter()
        # in chunks of about 4,096 decodes, for the progress bar (minutes at 64x64 RGB)
        chunk = max(1, 4096 // k)
        with progress.bar(n * k, f"IWAE bound (k={k})", unit="decode") as bar:
            ll = []
            for i in range(0, n, chunk):
                ll.append(model.log_likelihood(to_float(x_ll[i:i + chunk].to(model.device)), k=k, generator=gen))
                bar.update(len(ll[-1]) * k)
        ll = torch.cat(ll)
        out[f"nll{suffix}"] = -float(ll.mean())
        if suffix != "_invalid":   # a density of continuous values has no bits per dimension
            out[f"nll{suffix}_bpd"] = nats_to_bpd(out[f"nll{suffix}"], dims)
        out["nll_images"], out["nll_k"] = n, k
        took = round(time.perf_counter() - t, 2)
        if seconds is not None:
            seconds["likelihood"] = took
        how = (f"sized to fit --nll-seconds {cfg.nll_seconds:g} at {plan['decodes_per_second']:.0f} decodes/s"
               if plan["auto"] else "as given")
        log(f"IWAE bound (k={k}) on {n} test images, {how}: {took:.1f}s")
    return out


def evaluate_run(run: Path, cfg: EvalConfig, device="cpu", log: Callable[[str], None] = print,
                 checkpoint: str = "last") -> dict:
    """The full suite for a run's final model (or another `checkpoint`: best or a step, see
    load_run) on the run's own data; `ganvae eval` writes it to RUN/eval.json (eval-best.json,
    eval-step2.json)."""
    from .trainer import load_run, run_dataset

    model, run_cfg = load_run(run, device=device, checkpoint=checkpoint)
    out = evaluate_model(model, run_dataset(run_cfg), cfg, device, log, source=str(run),
                         name=run_cfg.get("preset", model.name),
                         binarize=run_cfg.get("data", {}).get("binarize", "none"))
    out["checkpoint"] = str(checkpoint)
    return out


def evaluate_model(model, ds: ImageDataset, cfg: EvalConfig, device="cpu", log: Callable[[str], None] = print,
                   source: str = "", name: str | None = None, binarize: str = "none") -> dict:
    """The full suite for a model against `ds`: cfg.n samples scored in the evaluator's
    features, with its encoder and likelihood metrics where it has them."""
    ev = get_evaluator(ds, device=device, log=log)
    t0 = time.perf_counter()
    fake = generate(model, cfg.n, cfg.seed, cfg.batch, inputs=ds.test.a)
    t_gen = time.perf_counter() - t0
    skipped: dict[str, str] = {}
    res = score(fake, ds, ev, cfg, log, skipped=skipped)
    res["metrics"].update(encoder_metrics(model, ds, cfg, log, binarize=binarize, skipped=skipped,
                                          seconds=res["seconds"]))
    res["seconds"]["generate"] = round(t_gen, 2)
    note_skipped(skipped, log)
    out = eval_result(res, ev, ds, cfg, source=source or f"{model.name} model", model=name or model.name,
                  skipped=skipped)
    if (info := likelihood_info(model, out["metrics"], binarize, res["seconds"].get("likelihood"))) is not None:
        out["likelihood"] = info
    return out


def _evaluator_info(ev: Evaluator) -> dict:
    return {"id": ev.id, "kind": ev.meta["kind"], "accuracy": ev.meta["accuracy"], "accuracy_of": ev.meta["accuracy_of"]}


def evaluate_samples(samples: Path, ds: ImageDataset, cfg: EvalConfig, device="cpu",
                     log: Callable[[str], None] = print) -> dict:
    """Score images from anywhere: an .npz with `x` uint8 (N, C, H, W) or a folder of images."""
    x = load_samples(samples, ds)
    ev = get_evaluator(ds, device=device, log=log)
    skipped: dict[str, str] = {}
    res = score(x, ds, ev, cfg, log, skipped=skipped)
    note_skipped(skipped, log)
    return eval_result(res, ev, ds, cfg, source=str(samples), model=None, skipped=skipped)


def load_samples(path: Path, ds: ImageDataset) -> np.ndarray:
    """Samples as uint8 (N, C, H, W) of ds's shape: an .npz must already have it; a folder's
    images are fitted to it (grey or RGB, resized) as a folder dataset's are, and what that
    changed or skipped is said in one warning line (`--samples DIR: ...`)."""
    c, h, _ = ds.shape
    if path.is_dir():
        from .data.folder import EXTENSIONS, read_folder

        x, kept, fitting = read_folder(path, h, c)
        fitting.warn(f"--samples {path}", path)
        if not kept:
            raise BadInput(f"--samples {path}: no readable images found (looked for {', '.join(sorted(EXTENSIONS))})")
        return x
    if path.suffix == ".npz":
        if not path.exists():
            raise BadInput(f"--samples {path}: no such file")
        check_npz(path, "--samples ")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z.files:
                    raise BadInput(f"--samples {path}: no array 'x' (found {', '.join(z.files)})")
                x = z["x"]
        except BadInput:
            raise
        except Exception as e:
            raise BadInput(f"--samples {path}: not a readable .npz ({type(e).__name__}: {e})") from None
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise BadInput(f"--samples {path}: 'x' must be uint8 (N, C, H, W) or (N, H, W); found {x.dtype} {x.shape}")
        return x[:, None] if x.ndim == 3 else x
    raise BadInput(f"--samples {path}: give an .npz file (array x) or a folder of images")


def eval_result(res: dict, ev: Evaluator, ds: ImageDataset, cfg: EvalConfig, source: str, model,
            skipped: dict[str, str] | None = None) -> dict:
    """The result object eval.json holds. `skipped` is always there ({} when nothing was): an
    evaluation merged into an older RUN/eval.json must not keep that one's stale notes."""
    return {
        "source": source, "model": model, "data": ds.name, "n": res["n"], "test_images": len(ds.test),
        "evaluator": _evaluator_info(ev),
        "metrics": res["metrics"], "floor": res.get("floor", {}), "floor_images": res.get("floor_images"),
        "higher_is_better": {k: v for k, v in directions().items() if k in res["metrics"]},
        "skipped": dict(skipped or {}),
        "seconds": res["seconds"],
    }


def note_skipped(skipped: dict[str, str], log: Callable[[str], None]) -> None:
    if skipped:
        log(f"warning: {skipped_line(skipped)}")


def skipped_line(skipped: dict[str, str]) -> str:
    """{metric: why} as one line, the metrics that share a reason (a family) named together:
    `not computed from this little data: latent_tc (codes: 7 rows ...); precision, recall, ...`."""
    by_reason: dict[str, list[str]] = {}
    for name, why in skipped.items():
        by_reason.setdefault(why, []).append(name)
    return "not computed from this little data: " + "; ".join(
        f"{', '.join(names)} ({why})" for why, names in by_reason.items())


def format_task_table(table: dict) -> str:
    """One task table (see ganvae.tasks) as aligned text: a row per model, baseline and floor."""
    cols = [(k, label) for k, label, _ in table["columns"] if any(r.get(k) is not None for r in table["rows"])]
    rows = [["", *[label for _, label in cols]]]
    for r in table["rows"]:
        name = r["name"] + (f" ({r['method']})" if r.get("method") else "") + \
            {"baseline": " [baseline]", "floor": " [floor]", "ceiling": " [ceiling]"}.get(r["kind"], "")
        rows.append([name, *("" if r.get(k) is None else f"{r[k]:.4g}" for k, _ in cols)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(len(r))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"{table['title']} ({table.get('n', '?')} test images)\n" + "\n".join(lines)


def format_table(result: dict) -> str:
    """metric | value | real-data floor | better, for the terminal; then each task's tables."""
    parts = [_format_generate(result)] if "metrics" in result else \
        [f"{result['model']} on {result['data']}" +
         (f": evaluator {result['evaluator']['id']}" if result.get("evaluator") else "")]
    for name, task in result.get("tasks", {}).items():
        parts += [format_task_table(t) for t in task["tables"]]
    return "\n\n".join(parts)


def _format_generate(result: dict) -> str:
    ev = result["evaluator"]
    rows = [("metric", "value", "floor", "better")]
    for name, value in result["metrics"].items():
        if name in ("nll_images", "nll_k", "kid_std"):
            continue
        label = f"FD[{ev['id'].rsplit('-', 1)[0]}]" if name == "fd" else name
        if name.startswith("nll") and "nll_k" in result["metrics"]:
            label += f" (IWAE, k={result['metrics']['nll_k']})"
        if name.endswith("_invalid"):
            label += ": not a likelihood of the data"
        floor = result["floor"].get(name)
        higher = result["higher_is_better"].get(name)
        better = "" if higher is None else ("higher" if higher else "lower")
        shown = f"{value:.4g}"
        if name == "kid" and "kid_std" in result["metrics"]:
            shown += f" ± {result['metrics']['kid_std']:.2g}"
        rows.append((label, shown, "" if floor is None else f"{floor:.4g}", better))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = (f"{result['model'] or result['source']} on {result['data']}: {result['n']} samples vs "
            f"{result['test_images']} test images; evaluator {ev['id']} ({ev['kind']}, "
            f"accuracy {ev['accuracy']:.4f} on {ev['accuracy_of']})")
    if (lk := result.get("likelihood")) is not None:
        head += (f"\nlikelihood ({lk['likelihood']}): a probability of {lk['description']}; "
                 f"ELBO and NLL on the first {result['metrics'].get('nll_images')} test images, "
                 f"k={lk['k']} ({lk.get('seconds')} s; --nll-k/--nll-images/--nll-seconds set them)")
    return head + "\n" + "\n".join(lines)
