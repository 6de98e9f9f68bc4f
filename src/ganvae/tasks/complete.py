"""Image completion (inpainting) with any trained model, and its measurement.

Given images x (B, C, H, W) in [-1, 1] and a mask (B, 1, H, W) with 1 = known pixel, fill the
hole with what the model believes belongs there, and paste the known pixels back, so that only
the hole is ever the model's. Three methods, by what the model has:

- `latent-opt` (Yeh, Chen, Lim, Schwing, Hasegawa-Johnson, Do, "Semantic image inpainting with
  deep generative models", CVPR 2017): search the latent space for the code whose decoding
  matches the known pixels. Adam on z minimises, per image,
      sum_i W_i |G(z)_i - x_i|  +  latent_weight * (-log p(z))  +  realism_weight * softplus(-D(G(z)))
  with W = M (1 + border_weight * w), w_i the share of hole pixels in a window around pixel i
  (Yeh et al.'s importance weighting, which counts the known pixels next to the hole most; the
  1 keeps the far ones in play, so a completed shirt stays the shirt of its known half). The
  prior terms keep z where the model has seen codes: -log p(z) is the latent prior's (||z||^2/2
  for N(0, I), the fitted density's for AE and the ex-post priors) and the discriminator's
  realism is Yeh et al.'s perceptual loss, for models that have an image discriminator (GANs,
  VAE-GAN, BiGAN). Several restarts per image; the one with the lowest loss is kept. For a
  model with an encoder one restart starts from the encoder's code of the pre-filled image.
  Works on every model: all of them decode.
- `encoder`: encode the pre-filled image (hole set to `fill`, the training mean image in the
  commands), decode the code (the posterior mean), paste back. One pass; AE, VAE, VAE-GAN, AAE,
  BiGAN.
- `gibbs` (Rezende, Mohamed, Wierstra, "Stochastic backpropagation and approximate inference in
  deep generative models", ICML 2014, §5): iterate encode -> decode -> paste back. A model with a
  Gaussian posterior draws z ~ q(z|x) at each step (a pseudo-Gibbs chain on the hole) and takes
  the posterior mean at the last; a deterministic encoder iterates its projection.

`auto` picks the method measured best on this model's kind (see AUTO and BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data import to_float, to_uint8
from ..errors import BadInput
from ..images import rgb
from ..metrics.inpainting import hole_mse, hole_psnr, ssim
from ..registry import register_task
from . import seed_means

if TYPE_CHECKING:
    from .base import Task

# ---------------------------------------------------------------------------------------------
# masks: (N, 1, H, W) float32, 1 = known pixel, 0 = hole

HALVES = ("left", "right", "top", "bottom")
MASK_HELP = ("center (a centred square, half the side, missing), half[:left|right|top|bottom] (that half "
             "missing; bottom by default), random-blocks[:COUNT] (COUNT squares of a quarter of the side, "
             "4 by default), random-pixels[:FRACTION] (that share of pixels missing, 0.6 by default), or "
             "PATH.png (white = known)")
DEFAULT_MASKS = ("center", "half", "random-blocks", "random-pixels")


@dataclass(frozen=True)
class MaskSpec:
    kind: str                  # center | half | random-blocks | random-pixels | file
    arg: str | float | int | None = None

    @property
    def label(self) -> str:
        if self.kind == "file":
            return Path(str(self.arg)).name
        if self.kind == "half":
            return f"half:{self.arg}"
        if self.kind == "random-pixels":
            return f"random-pixels:{self.arg:g}"
        if self.kind == "random-blocks":
            return f"random-blocks:{self.arg}"
        return self.kind


def parse_mask(spec: str) -> MaskSpec:
    """'center', 'half:left', 'random-blocks:3', 'random-pixels:0.8' or a .png path -> MaskSpec."""
    s = spec.strip()
    if s.lower().endswith(".png"):
        return MaskSpec("file", s)
    kind, _, arg = s.partition(":")
    if kind == "center" and not arg:
        return MaskSpec("center")
    if kind == "half":
        side = arg or "bottom"
        if side not in HALVES:
            raise BadInput(f"--mask {spec}: the missing half is one of {', '.join(HALVES)}")
        return MaskSpec("half", side)
    # kind -> (parse its argument, default, valid, what to say when it is not)
    numeric = {"random-blocks": (int, 4, lambda v: v >= 1, "COUNT of random-blocks:COUNT must be a whole number >= 1"),
               "random-pixels": (float, 0.6, lambda v: 0 < v < 1,
                                 "FRACTION of random-pixels:FRACTION (the share missing) must be in (0, 1)")}
    if kind in numeric:
        cast, default, valid, why = numeric[kind]
        try:
            value = cast(arg) if arg else default
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise BadInput(f"--mask {spec}: {why}")
        return MaskSpec(kind, value)
    raise BadInput(f"--mask {spec}: choose {MASK_HELP}")


def make_masks(spec: MaskSpec | str, n: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """n masks (n, 1, H, W) float32, 1 = known. Random kinds draw from `seed` alone, so every
    model of a comparison (and every run of the command) gets the same masks."""
    spec = parse_mask(spec) if isinstance(spec, str) else spec
    h, w = size
    m = np.ones((n, 1, h, w), np.float32)
    rng = np.random.default_rng(seed)
    if spec.kind == "center":
        sh, sw = h // 2, w // 2
        m[:, :, (h - sh) // 2:(h - sh) // 2 + sh, (w - sw) // 2:(w - sw) // 2 + sw] = 0
    elif spec.kind == "half":
        sl = {"left": (slice(None), slice(0, w // 2)), "right": (slice(None), slice(w - w // 2, w)),
              "top": (slice(0, h // 2), slice(None)), "bottom": (slice(h - h // 2, h), slice(None))}[spec.arg]
        m[:, :, sl[0], sl[1]] = 0
    elif spec.kind == "random-blocks":
        bh, bw = max(1, round(h / 4)), max(1, round(w / 4))
        tops = rng.integers(0, h - bh + 1, size=(n, spec.arg))
        lefts = rng.integers(0, w - bw + 1, size=(n, spec.arg))
        for i in range(n):
            for t, l in zip(tops[i], lefts[i]):
                m[i, :, t:t + bh, l:l + bw] = 0
    elif spec.kind == "random-pixels":
        k = int(round(spec.arg * h * w))
        for i in range(n):
            m[i, 0].flat[rng.choice(h * w, size=k, replace=False)] = 0
    else:
        m[:] = load_mask_png(Path(str(spec.arg)), (h, w))[None, None]
    return m


def load_mask_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A user's mask image -> (H, W) float32, 1 where the image is white (>= 128 in grey)."""
    from PIL import Image

    if not path.exists():
        raise BadInput(f"--mask {path}: no such file")
    try:
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"))
    except Exception as e:
        raise BadInput(f"--mask {path}: not a readable image ({type(e).__name__}: {e})") from None
    if grey.shape != tuple(size):
        raise BadInput(f"--mask {path}: is {grey.shape[1]}x{grey.shape[0]} but the images are "
                       f"{size[1]}x{size[0]}; draw the mask at the images' size")
    m = (grey >= 128).astype(np.float32)
    if m.min() == 1:
        raise BadInput(f"--mask {path}: is white everywhere, so nothing is missing; paint the hole black")
    if m.max() == 0:
        raise BadInput(f"--mask {path}: is black everywhere, so nothing is known; leave the known part white")
    return m


# ---------------------------------------------------------------------------------------------
# methods


@dataclass
class CompleteConfig:
    """Settings of completion and of its evaluation."""

    method: str = "auto"          # auto | latent-opt | encoder | gibbs
    # latent-opt's defaults are tuned on the validation split, never on test (issue 30;
    # `benchmarks/tune_tasks.py complete`, benchmarks/results/tune_completion.json, BENCHMARKS.md
    # "Tuning the tasks"): hole MSE of centre masks on 100 validation images, ae, vae, dcgan and
    # vaegan trained 2,000 steps, one setting at a time. A prior weight of 0.5 (1: up to 5% worse,
    # 0.1: up to 40%, 0: up to 92%), a step size of 0.2 (0.1: up to 3.6% worse), and the realism
    # term's 0.1 kept (0 and 0.5 within 1%: noise).
    steps: int = 100              # latent-opt: Adam steps on z
    restarts: int = 4             # latent-opt: codes searched per image; the best is kept
    lr: float = 0.2               # latent-opt: Adam's step size on z
    latent_weight: float = 0.5    # latent-opt: weight of -log p(z)
    realism_weight: float = 0.1   # latent-opt: weight of softplus(-D(G(z))), models with a D
    border_weight: float = 2.0    # latent-opt: extra weight of known pixels next to the hole
    window: int = 7               # latent-opt: side of that neighbourhood (Yeh et al.: 7)
    gibbs_steps: int = 20         # gibbs: encode -> decode -> paste-back iterations
    batch: int = 256              # images completed at once
    # network forwards in bfloat16 (autocast; the losses and z stay float32): ~2x faster on CPUs
    # with AVX-512 bf16 and on GPUs, at a hole MSE within a few percent (BENCHMARKS.md)
    precision: str = "fp32"       # fp32 | bf16
    # evaluation
    masks: tuple[str, ...] = DEFAULT_MASKS
    n: int = 500                  # test images per mask kind
    seed: int = 0

    def validate(self) -> None:
        if self.method != "auto" and self.method not in METHODS:
            raise BadInput(f"--method {self.method}: choose auto, {', '.join(METHODS)}")
        for name in ("steps", "restarts", "gibbs_steps", "batch", "n"):
            if getattr(self, name) < 1:
                raise BadInput(f"completion {name}={getattr(self, name)}: must be at least 1")
        for name in ("lr",):
            if not getattr(self, name) > 0:
                raise BadInput(f"completion {name}={getattr(self, name)}: must be positive")
        for name in ("latent_weight", "realism_weight", "border_weight"):
            if getattr(self, name) < 0:
                raise BadInput(f"completion {name}={getattr(self, name)}: must be at least 0")
        if self.precision not in ("fp32", "bf16"):
            raise BadInput(f"completion precision={self.precision}: choose fp32 or bf16")
        if self.window < 1 or self.window % 2 == 0:
            raise BadInput(f"completion window={self.window}: must be odd and at least 1")
        if not self.masks:
            raise BadInput("--masks: name at least one mask kind")
        for m in self.masks:
            parse_mask(m)


def _paste(x: torch.Tensor, mask: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
    """Known pixels from x, the hole from filled; all (B, C, H, W), mask (B, 1, H, W)."""
    return mask * x + (1 - mask) * filled


def _prefill(x: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor | None) -> torch.Tensor:
    if fill is None:
        fill = torch.zeros_like(x[:1])
    fill = fill.to(x.device, x.dtype)
    return _paste(x, mask, fill.expand_as(x) if fill.dim() == 4 else fill[None].expand_as(x))


def context_weights(mask: torch.Tensor, window: int, border_weight: float) -> torch.Tensor:
    """W (B, 1, H, W): 0 in the hole; 1 + border_weight * (share of hole pixels in the window
    around the pixel) on known pixels (Yeh et al. 2017, eq. 3, plus the constant 1)."""
    hole = 1 - mask
    near = F.avg_pool2d(hole, window, stride=1, padding=window // 2, count_include_pad=False)
    return mask * (1 + border_weight * near)


def _encoder_codes(model, x: torch.Tensor, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Codes (B, latent) of x: a draw from q(z|x) when sample and the posterior is Gaussian
    (`encode_dist`), else the encoder's code (the posterior mean)."""
    if sample and hasattr(model, "encode_dist"):
        mu, logvar = model.encode_dist(x)
        eps = torch.randn(mu.shape, generator=generator, device=generator.device if generator else mu.device)
        return mu + torch.exp(0.5 * logvar) * eps.to(mu.device)
    return model.encode(x)


@torch.no_grad()
def complete_encoder(model, x, mask, cfg: CompleteConfig, fill=None, generator=None, progress=None):
    """One pass: encode the pre-filled image, decode its code, paste the known pixels back."""
    x0 = _prefill(x, mask, fill)
    out = _paste(x, mask, model.decode(model.encode(x0)).float().clamp(-1, 1))
    if progress is not None:
        progress.update(1)
    return out


@torch.no_grad()
def complete_gibbs(model, x, mask, cfg: CompleteConfig, fill=None, generator=None, progress=None):
    """cfg.gibbs_steps rounds of encode -> decode -> paste back; sampled z but for the last round."""
    xt = _prefill(x, mask, fill)
    for t in range(cfg.gibbs_steps):
        z = _encoder_codes(model, xt, sample=t < cfg.gibbs_steps - 1, generator=generator)
        xt = _paste(x, mask, model.decode(z).float().clamp(-1, 1))
        if progress is not None:
            progress.update(1)
    return xt


def complete_latent_opt(model, x, mask, cfg: CompleteConfig, fill=None, generator=None, progress=None):
    """Yeh et al. 2017's search of z (see the module docstring); returns the pasted completion."""
    b, d, r = len(x), model.config.latent, cfg.restarts
    dev = x.device
    x = x.float()
    weights = context_weights(mask, cfg.window, cfg.border_weight)               # (B, 1, H, W)
    # starting codes (R, B, D): draws of the model's own prior, which is where its decoder works
    with torch.no_grad():
        if hasattr(model, "sample_prior"):
            z0 = model.sample_prior(r * b, generator).float().view(r, b, d)
        else:
            g_dev = generator.device if generator is not None else dev
            z0 = torch.randn((r, b, d), generator=generator, device=g_dev).to(dev)
        if getattr(model, "has_encoder", False):
            z0[0] = model.encode(_prefill(x, mask, fill)).float()
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    realism = getattr(model, "realism", None) if cfg.realism_weight > 0 else None
    xr = x.expand(r, *x.shape).reshape(r * b, *x.shape[1:])                      # (R*B, C, H, W)
    wr = weights.expand(r, *weights.shape).reshape(r * b, *weights.shape[1:])     # (R*B, 1, H, W)

    def losses(zz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = zz.reshape(r * b, d)
        img = model.decode(flat).float()                                         # (R*B, C, H, W)
        loss = (wr * (img - xr).abs()).flatten(1).sum(1)                          # (R*B,) context
        loss = loss + cfg.latent_weight * model.latent_nll(flat)
        if realism is not None:
            loss = loss + cfg.realism_weight * F.softplus(-realism(img, flat))
        return loss, img

    for _ in range(cfg.steps):
        loss, _ = losses(z)
        (grad,) = torch.autograd.grad(loss.sum(), [z])
        z.grad = grad
        opt.step()
        if progress is not None:
            progress.update(1)
    with torch.no_grad():
        loss, img = losses(z)
        best = loss.view(r, b).argmin(0)                                          # (B,)
        img = img.view(r, b, *x.shape[1:])[best, torch.arange(b, device=dev)]      # (B, C, H, W)
    return _paste(x, mask, img.clamp(-1, 1))


# name -> (function, which models it applies to, one line, progress units per batch)
METHODS: dict[str, tuple[Callable, Callable, str, Callable]] = {
    "latent-opt": (complete_latent_opt, lambda m: not m.translation,
                   "search z to match the known pixels under the latent prior (+ D's realism)",
                   lambda cfg: cfg.steps),
    "encoder": (complete_encoder, lambda m: getattr(m, "has_encoder", False),
                "encode the pre-filled image, decode, paste back", lambda cfg: 1),
    "gibbs": (complete_gibbs, lambda m: getattr(m, "has_encoder", False),
              "encode -> decode -> paste back, repeated (pseudo-Gibbs for a Gaussian posterior)",
              lambda cfg: cfg.gibbs_steps),
}


def auto_method(model) -> str:
    """The method `auto` picks: latent-opt, the only one that applies to models without an
    encoder and the one measured best on every model and mask kind (BENCHMARKS.md: encoder and
    gibbs are 50-500x cheaper and 2-8x worse on hole MSE)."""
    return "latent-opt"


def resolve_method(model, method: str) -> str:
    if model.translation:
        raise BadInput(f"{model.name} translates images and has no latent space to complete from; a translation "
                       "model completes images when trained on (masked, whole) pairs: ganvae translate")
    if method == "auto":
        return auto_method(model)
    if method not in METHODS:
        raise BadInput(f"--method {method}: choose auto, {', '.join(METHODS)}")
    if not METHODS[method][1](model):
        usable = ", ".join(k for k, v in METHODS.items() if v[1](model))
        raise BadInput(f"--method {method}: needs a model with an encoder; '{model.name}' has none "
                       f"(use {usable} or auto)")
    return method


def complete(model, x: torch.Tensor, mask: torch.Tensor, method: str = "auto",
             config: CompleteConfig | None = None, fill: torch.Tensor | None = None,
             generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
    """Complete the holes of images with a trained model.

    Args:
        model: any ganvae model (through its contract: decode, latent_nll, and encode /
            encode_dist / realism where it has them).
        x: images (N, C, H, W) in [-1, 1]; hole pixels may hold anything.
        mask: (N, 1, H, W) or (1, 1, H, W), 1 = known pixel, 0 = hole.
        method: auto, latent-opt, encoder or gibbs.
        config: steps, restarts, weights (CompleteConfig); its method is ignored.
        fill: what the hole holds before an encoder sees it, (C, H, W) in [-1, 1]; default 0.
        generator: seeds the starting codes and the posterior draws.
        progress: show a progress bar.
    Returns:
        (N, C, H, W) in [-1, 1], equal to x on the known pixels.
    """
    cfg = config or CompleteConfig()
    name = resolve_method(model, method)
    fn, _, _, units = METHODS[name]
    if x.dim() != 4 or mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2:] != x.shape[2:]:
        raise BadInput(f"complete: x must be (N, C, H, W) and mask (N, 1, H, W); got {tuple(x.shape)} and "
                       f"{tuple(mask.shape)}")
    mask = mask.to(x.device, torch.float32).expand(len(x), -1, -1, -1)
    model.eval()
    batches = range(0, len(x), cfg.batch)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(batches) * units(cfg), desc=f"complete ({name})", unit="step", leave=False,
               disable=not progress)
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    try:
        with autocast:
            out = [fn(model, x[i:i + cfg.batch].float(), mask[i:i + cfg.batch], cfg, fill, generator, bar)
                   for i in batches]
    finally:
        bar.close()
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# measurement


METRICS = [("hole_mse", "hole MSE", False), ("hole_psnr", "hole PSNR dB", True), ("ssim", "SSIM", True),
           ("fd", "FD", False), ("accuracy", "class kept", True),
           ("ms_per_image", "ms / image", None)]      # a cost, shown beside the scores, never ranked


def image_metrics(completed: np.ndarray, original: np.ndarray, mask: np.ndarray, ev=None,
                  real_feats: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict:
    """Every completion metric of uint8 completions against the originals (see METRICS)."""
    from . import evaluator_scores

    out = {"hole_mse": hole_mse(completed, original, mask), "hole_psnr": hole_psnr(completed, original, mask),
           "ssim": ssim(completed, original)}
    if ev is not None:
        out.update(evaluator_scores(completed, ev, real_feats, labels))
    return out


def mean_fill(original: np.ndarray, mask: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Baseline: the hole holds the training split's mean image (uint8 (N, C, H, W))."""
    known = mask.astype(bool)
    return np.where(known, original, np.broadcast_to(mean, original.shape)).astype(np.uint8)


def nearest_fill(original: np.ndarray, mask: np.ndarray, train: np.ndarray, batch: int = 256) -> np.ndarray:
    """Baseline: the hole holds the pixels of the training image nearest on the known pixels.

    ||m * (x - t)||^2 = m.x^2 - 2 (m*x).t + m.t^2 for every test image x and train image t,
    from two matrix products; m is x's mask (per image), so only known pixels count.
    """
    n = len(original)
    t = torch.from_numpy(train.reshape(len(train), -1)).float().div_(255)          # (T, P)
    t2 = t.pow(2)
    x = torch.from_numpy(original.reshape(n, -1)).float().div_(255)              # (N, P)
    m = torch.from_numpy(np.broadcast_to(mask, original.shape).reshape(n, -1).astype(np.float32))
    out = original.copy()
    for i in range(0, n, batch):
        xb, mb = x[i:i + batch], m[i:i + batch]
        d = (mb * xb.pow(2)).sum(1, keepdim=True) - 2 * (mb * xb) @ t.T + mb @ t2.T   # (b, T)
        nearest = d.argmin(1).numpy()
        out[i:i + batch] = np.where(np.broadcast_to(mask[i:i + batch], original[i:i + batch].shape).astype(bool),
                                    original[i:i + batch], train[nearest])
    return out


def masked_view(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, 3, H, W) RGB with the hole painted a flat pink, for figures."""
    rgb = np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x.copy()
    hole = np.broadcast_to(mask < 0.5, (len(x), 1, *x.shape[2:]))[:, 0]             # (N, H, W)
    for c, v in enumerate((236, 112, 160)):
        rgb[:, c][hole] = v
    return rgb


def triplet_grid(completed: np.ndarray, original: np.ndarray, mask: np.ndarray, row: int = 8) -> np.ndarray:
    """Rows of `row` images: masked input, completion, original, repeated; (N', 3, H, W)."""
    parts = []
    for i in range(0, len(completed), row):
        parts += [masked_view(original[i:i + row], mask[i:i + row]), rgb(completed[i:i + row]),
                  rgb(original[i:i + row])]
    return np.concatenate(parts)


def mean_image(ds) -> np.ndarray:
    """The training split's mean image, uint8 (C, H, W): the mean-image baseline, and what the
    commands put in the hole before an encoder sees it."""
    return np.round(ds.train.x.astype(np.float64).mean(0)).astype(np.uint8)


def complete_images(model, original: np.ndarray, mask: np.ndarray, method: str, cfg: CompleteConfig,
                    mean: np.ndarray, progress: bool = False) -> tuple[np.ndarray, float]:
    """Complete uint8 images `original` (N, C, H, W) under `mask` (N, 1, H, W), 1 = known, with
    `method` (resolve_method's name); the hole starts as the training mean image `mean`
    (C, H, W). Returns the completions, uint8 (N, C, H, W), and the seconds they took. The one
    path of `ganvae complete` and the comparison's completion task."""
    dev = model.device
    fill = to_float(torch.from_numpy(mean)).to(dev)
    x = to_float(torch.from_numpy(original)).to(dev)
    gen = torch.Generator().manual_seed(cfg.seed)
    t = time.perf_counter()
    done = complete(model, x, torch.from_numpy(mask).to(dev), method, cfg, fill, gen, progress)
    return to_uint8(done).cpu().numpy(), time.perf_counter() - t


@register_task
class CompletionTask:
    """Completion of masked test images, per mask kind, against two baselines and the originals."""

    name = "complete"
    title = "Completion"
    Config = CompleteConfig

    @staticmethod
    def applies(model) -> bool:
        return not model.translation   # every generative model decodes, so latent-opt applies to all

    @staticmethod
    def prepare(ds, ev, cfg: CompleteConfig, log=print) -> dict:
        """The test images, the masks (one seed for every model), the baselines' and the
        originals' scores: computed once per comparison."""
        from ..evaluation import real_features

        cfg.validate()
        n = min(cfg.n, len(ds.test))
        original = ds.test.x[:n]
        labels = ds.test.y[:n] if ds.test.y is not None else None
        real_f, _ = real_features(ev, ds.test.x, "test", log)
        mean = mean_image(ds)                                                            # (C, H, W)
        masks, baselines = {}, {}
        floor = image_metrics(original, original, np.zeros((n, 1, *ds.shape[1:]), np.float32), ev, real_f, labels)
        floor = {k: v for k, v in floor.items() if k in ("ssim", "fd", "accuracy")}
        for kind in cfg.masks:
            spec = parse_mask(kind)
            m = make_masks(spec, n, ds.shape[1:], cfg.seed)
            masks[spec.label] = m
            rows = {}
            for name, fn in (("mean image", lambda: mean_fill(original, m, mean)),
                             ("nearest neighbour", lambda: nearest_fill(original, m, ds.train.x))):
                t = time.perf_counter()
                filled = fn()
                seconds = time.perf_counter() - t
                rows[name] = {**image_metrics(filled, original, m, ev, real_f, labels),
                              "ms_per_image": 1000 * seconds / n}
            baselines[spec.label] = rows
        return {"n": n, "masks": masks, "baselines": baselines, "floor": floor, "mean_image": mean,
                "real_feats": real_f, "labels": labels, "config": dataclasses.asdict(cfg)}

    @staticmethod
    def run(model, ds, ev, cfg: CompleteConfig, prepared: dict, figures_dir: str | Path | None = None,
            log=print, progress: bool = False) -> dict:
        """Complete every mask kind's images with the model; scores, timings and a figure."""
        from ..images import save_grid

        n = prepared["n"]
        original = ds.test.x[:n]
        method = resolve_method(model, cfg.method)
        out = {"method": method, "masks": {}}
        shown = []
        for label, m in prepared["masks"].items():
            done8, seconds = complete_images(model, original, m, method, cfg, prepared["mean_image"], progress)
            out["masks"][label] = {**image_metrics(done8, original, m, ev, prepared["real_feats"], prepared["labels"]),
                                   "ms_per_image": 1000 * seconds / n}
            shown.append((label, done8[:8], m[:8]))
            log(f"completion {label} ({method}): hole MSE {out['masks'][label]['hole_mse']:.4f}, "
                f"{1000 * seconds / n:.1f} ms/image")
        if figures_dir is not None:
            # one figure: the originals, then per mask kind the masked input and the completion
            rows = [rgb(original[:8])]
            for _, done8, m in shown:
                rows += [masked_view(original[:8], m), rgb(done8)]
            save_grid(Path(figures_dir) / "completion.png", np.concatenate(rows), nrow=8)
            out["figure"] = "completion.png"
        return out

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        """One table per mask kind: every model (mean over seeds), the baselines, the originals.

        Args:
            prepared: prepare()'s summary (JSON form: masks by label, baselines, floor, n).
            results: {model name: [run() results of its seeds]}.
        """
        tables = []
        for label, base in prepared["baselines"].items():
            rows = []
            for model, runs in results.items():
                vals = [r["masks"][label] for r in runs if label in r.get("masks", {})]
                if not vals:
                    continue
                rows.append({"name": model, "kind": "model", "method": runs[0]["method"], "seeds": len(vals),
                             **seed_means(vals, [k for k, _, _ in METRICS])})
            for name, vals in base.items():
                rows.append({"name": name, "kind": "baseline", **vals})
            rows.append({"name": "originals", "kind": "floor", **prepared["floor"]})
            tables.append({"title": f"mask {label}", "mask": label, "columns": METRICS, "rows": rows,
                           "n": prepared["n"]})
        return tables

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """Which model completes best overall and per mask kind, at what cost, and which models
        do not beat the best baseline (where, and which baseline)."""
        lines, wins, short = [], {}, {}
        tables = CompletionTask.tables(prepared, results)
        for t in tables:
            models = [r for r in t["rows"] if r["kind"] == "model" and r.get("hole_mse") is not None]
            base = [r for r in t["rows"] if r["kind"] == "baseline"]
            if not models:
                continue
            best = min(models, key=lambda r: r["hole_mse"])
            best_base = min(base, key=lambda r: r["hole_mse"])
            wins.setdefault(best["name"], []).append(t["mask"])
            ratio = best["hole_mse"] / max(best_base["hole_mse"], 1e-12)
            lines.append(f"{t['mask']}: {best['name']} completes best (hole MSE {best['hole_mse']:.4f}, "
                         f"{ratio:.0%} of the {best_base['name']} baseline's {best_base['hole_mse']:.4f}; "
                         f"{best['method']}, {best['ms_per_image']:.0f} ms per image).")
            for r in models:
                if r["hole_mse"] >= best_base["hole_mse"]:
                    short.setdefault(r["name"], []).append(
                        f"{t['mask']} ({r['hole_mse']:.4f} against the {best_base['name']}'s "
                        f"{best_base['hole_mse']:.4f})")
        if wins and len(tables) > 1:
            most = max(len(v) for v in wins.values())
            tops = [m for m in wins if len(wins[m]) == most]
            cost = [r["ms_per_image"] for t in tables for r in t["rows"] if r["name"] in tops and r["kind"] == "model"]
            who = " and ".join(tops) + (" each complete" if len(tops) > 1 else " completes")
            lines.insert(0, f"{who} best on {most} of {len(tables)} mask kinds, at "
                            f"{min(cost):.0f}-{max(cost):.0f} ms per image.")
        for name, where in short.items():
            lines.append(f"{name} does not beat the best baseline on hole MSE for {'; '.join(where)}: "
                         "a baseline with no model at all completes those holes as well or better.")
        return lines


if TYPE_CHECKING:   # a type checker verifies that the class object keeps the contract
    _check: Task = CompletionTask
