"""The trainer: data on the device, the loop, stopping, logging, samples and checkpoints.

It knows no model: it calls `model.train_step(x, step)` and logs whatever scalars come back
(minGPT's Trainer; the phases of each model live in the model, as in StyleGAN2-ADA).
Everything a run writes goes under one run directory (StyleGAN's run dirs):

    config.json  metrics.jsonl  tb/  samples/  checkpoints/step_NNNNNNNN.{safetensors,json}  model/

Resuming restores weights, optimizer states, RNG states and the data order, so on CPU a run
interrupted and resumed ends with the same weights as one that was not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from .augment import augment_data, parse_data_augment
from .checkpoint import load_state, save_state, within
from .config import replace
from .data import ImageDataset, load_dataset, to_float, to_uint8
from .data.base import hold_out_val, limit_train, parse_val_split
from .data.binarize import binarize_batch, binarize_static
from .errors import BadInput, GanvaeError, Stopped
from .files import dir_lock, write_json
from .hardware import cpu_has_bf16, cpu_has_fp16
from .images import save_grid
from .models.base import has_fitted_prior
from . import parallel


# ------------------------------------------------------------------------------- configs

@dataclass
class DataConfig:
    spec: str = "shapes"
    data_dir: str | None = None
    size: int | None = None
    channels: int | None = None
    seed: int = 0  # seed of random splits and procedural data
    # Bernoulli likelihoods need binary pixels: "dynamic" draws every pixel afresh per batch
    # (Burda et al. 2016), "static" fixes one draw by `seed`; "none" keeps the 8-bit values.
    binarize: Literal["none", "dynamic", "static"] = "none"
    # images held out of train as the validation split (model selection, never trained on),
    # drawn by `seed`: "auto" (10%, at most 5,000), a fraction in (0, 1), a count, or 0 for none
    val_split: int | float | str = "auto"
    # train on only this many training images (class-stratified, drawn by `seed`, nested across
    # limits), the little-data setting; validation, test and the evaluator stay the full data's
    limit: int | None = None

    def validate(self) -> None:
        parse_val_split(self.val_split)  # the count against the data's size: when it is loaded
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise BadInput(f"--limit {self.limit!r}: give a number of training images, at least 1")


@dataclass
class TrainConfig:
    steps: int | None = None
    epochs: float | None = None
    budget: str | None = None        # wall-clock limit: "90s", "5m", "1h" or seconds
    batch_size: int = 64
    seed: int = 0
    # "auto": bf16 where the device runs it natively (a CUDA GPU with bf16, a CPU with AVX-512
    # BF16 or AMX), else fp32 (see resolve_precision)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    device: str = "auto"
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    n_samples: int = 64              # images in each sample grid
    prior_images: int = 10_000       # training images given to model.fit_prior at the end
    on_nan: Literal["stop", "rollback"] = "stop"   # a non-finite loss or weight: stop, or go back
    max_rollbacks: int = 3           # to the last checkpoint with halved learning rates, this often
    # Activations and conv weights in NHWC order: oneDNN's convolutions run ~1.1x faster so on
    # this project's CPU (BENCHMARKS.md), as do tensor-core convolutions under autocast on a GPU;
    # "auto" picks it there and keeps NCHW for fp32 on a GPU. The function is the same either way.
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    # Transfer: start from the weights of this run's final model (same nets), with fresh
    # optimizers; recorded so reports can say where a run came from (--init-from RUN).
    init_from: str | None = None
    # Ordinary augmentation of the training images ("flip", "translation", comma-separated):
    # for models without a discriminator to augment (AE, VAE). It changes the distribution
    # being modelled (samples come out flipped and shifted too), so it is opt-in and warned
    # about; GANs and VAE-GAN have the non-leaking kind: --set augment=diffaug|ada.
    augment_data: str = "none"
    # Under DDP (torchrun, --nproc): replace every BatchNorm by SyncBatchNorm, so batch
    # statistics are the global batch's and N ranks train as one process would. PyTorch runs
    # SyncBatchNorm on GPUs only; on CPU ranks use nets without BN (norm, or a GAN's d_norm /
    # g_norm, = none or layer). Ignored on one process.
    sync_bn: bool = False
    # Also write metrics.jsonl's rows as run_dir/metrics.csv (ganvae.callbacks.CSVLogger), for
    # spreadsheets and pandas; false: the JSON lines alone.
    csv_log: bool = True

    def torch_memory_format(self, device_type: str) -> torch.memory_format:
        fmt = self.memory_format
        if fmt == "auto":
            fmt = "channels_last" if device_type == "cpu" or self.precision not in ("fp32", "auto") else "contiguous"
        return torch.channels_last if fmt == "channels_last" else torch.contiguous_format

    def validate(self) -> None:
        for name in ("steps", "epochs"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise BadInput(f"--{name} {v}: must be positive")
        if self.budget is not None:
            parse_budget(self.budget)
        if self.max_rollbacks < 0:
            raise BadInput(f"max_rollbacks={self.max_rollbacks}: must be at least 0")
        for name in ("batch_size", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                     "n_samples"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if self.memory_format not in ("auto", "channels_last", "contiguous"):
            raise BadInput(f"memory_format={self.memory_format}: choose auto, channels_last or contiguous")
        parse_data_augment(self.augment_data)
        if self.device not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", self.device):
            raise BadInput(f"--device {self.device}: choose auto, cpu, cuda or cuda:N")


@dataclass
class RunConfig:
    """What config.json in a run directory holds; enough to rebuild the run."""

    model: Any = None            # the family's config dataclass
    preset: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def parse_budget(text: str | float | int) -> float:
    """'90s' / '5m' / '1.5h' / '120' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise BadInput(f"--budget {text!r}: use a positive duration such as 90s, 5m or 1h")
    scale = {"s": 1, "sec": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


def resolve_precision(device: torch.device, precision: str) -> str:
    """--precision auto -> bf16 where the device has native bfloat16, else fp32; others as given."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


def check_precision(device: torch.device, precision: str) -> None:
    """Refuse a precision the device cannot autocast to, and warn of one it only emulates,
    before any work."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise BadInput(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16; "
                       "use fp16 (with loss scaling) or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        import warnings

        # Without AVX-512 BF16 / AMX, oneDNN has no bf16 convolution and PyTorch runs its
        # reference loops instead: 20-50x slower than fp32 (measured on an AVX2 EPYC, BENCHMARKS.md).
        warnings.warn("--precision bf16: this CPU has no native bfloat16 convolutions (no AVX-512 BF16 or AMX); "
                      "they run many times slower than fp32 here; use --precision fp32", stacklevel=2)
    if precision == "fp16" and device.type == "cpu" and not cpu_has_fp16():
        import warnings

        # oneDNN has float16 convolutions only with AVX-512 FP16 / AMX-FP16; elsewhere autocast
        # runs PyTorch's reference loops: 45x slower than fp32 (48 against 2,167 img/s, issue 32).
        warnings.warn("--precision fp16: this CPU has no native float16 convolutions (no AVX-512 FP16 or AMX-FP16); "
                      "they run many times slower than fp32 here; use --precision fp32 (or auto)", stacklevel=2)



# ------------------------------------------------------------------------------- run dirs

def slug(spec: str) -> str:
    """A data spec as a directory-name part: `folder:/a/b/cats` -> `folder-cats`."""
    kind, _, arg = spec.partition(":")
    if kind in ("folder", "npz") and arg:
        spec = f"{kind}-{Path(arg.rstrip('/')).stem}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-") or "data"


def new_run_dir(root: Path, preset: str, data_spec: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{4})-", p.name))]
    return root / f"{max(numbers, default=-1) + 1:04d}-{preset}-{slug(data_spec)}"


# Field names written before the result files shared one vocabulary (docs/results.md), and
# their names now: read_summary / legacy_row map an old run's files onto today's.
LEGACY_FIELDS = {"step": "steps", "images": "images_seen", "time": "train_seconds", "img_per_s": "images_per_second",
                 "precision": "dtype"}


def legacy_row(row: dict, total: bool = False) -> dict:
    """A metrics.jsonl / curve.jsonl line (total=False: `step` stays) or a summary (total=True)
    with its old field names renamed."""
    renames = {k: v for k, v in LEGACY_FIELDS.items() if total or k != "step"}
    return {renames.get(k, k) if k in renames and renames[k] not in row else k: v for k, v in row.items()}


def read_summary(run_dir: Path) -> dict:
    """A run's summary.json in today's field names (older runs wrote step, images, precision)."""
    return legacy_row(json.loads((Path(run_dir) / "summary.json").read_text()), total=True)


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint stems (without suffix), oldest first."""
    d = run_dir / "checkpoints"
    if not d.is_dir():
        return []
    stems = sorted(p.with_suffix("") for p in d.glob("step_*.json"))
    return [s for s in stems if s.with_suffix(".safetensors").exists()
            and within(d, s.with_suffix(".json")) and within(d, s.with_suffix(".safetensors"))]


# ------------------------------------------------------------------------------- trainer

class Trainer:
    """Train `model` on `data` under `cfg`, writing everything to `run_dir`.

    Args:
        model: any GenerativeModel (already built for the data's shape).
        data: the dataset; its train split is moved to the device once, as uint8.
        cfg: the run's config (saved as config.json).
        run_dir: the run directory.
        progress: show a live progress bar.
    """

    def __init__(self, model, data: ImageDataset, cfg: RunConfig, run_dir: Path, progress: bool = True,
                 is_main: bool = True, callbacks: list | None = None):
        from .callbacks import CSVLogger, as_callback, has_step_hook

        self.model, self.data, self.cfg, self.run_dir = model, data, cfg, Path(run_dir)
        self.t = cfg.train
        self.world = parallel.world()
        self.is_main = is_main and self.world.is_main  # rank 0 under DDP: the only one that writes
        # ganvae.callbacks.Callback objects, or plain callables (trainer) -> None run as their
        # on_step (compare's evaluation points): wrapped once here, so the loop knows one kind.
        # They run outside the timed training, on rank 0 only.
        self.callbacks = [as_callback(c) for c in callbacks or []]
        if self.t.csv_log and self.is_main and not any(isinstance(c, CSVLogger) for c in self.callbacks):
            self.callbacks.insert(0, CSVLogger())
        # only these work after every step: under DDP the other ranks wait for them at a barrier
        self._step_callbacks = [c for c in self.callbacks if has_step_hook(c)]
        self.device = resolve_device(parallel.device_for(self.t.device))
        self._comm_device = self.device   # gloo reduces CPU tensors, NCCL CUDA ones
        self._stop = 0                    # the signal every rank agreed to stop on (0: none)
        # a callback's early stop (request_stop): the run ends at this step as if its budget were
        # spent, and summary.json says why
        self.stop_reason: str | None = None
        self._x_train = None              # the training images on the device, once fit() has them
        self._prior_fitted = False        # whether the last checkpoint's prior fits its encoder
        self._elapsed = 0.0               # under DDP: the slowest rank's training time
        self._t_step = time.perf_counter()
        self.progress = progress
        self.step = 0
        self.images = 0
        self.elapsed = 0.0       # training seconds, summed over resumes
        self.rollbacks = 0       # on_nan=rollback: how often this session went back
        n = len(data.train)
        if self.t.batch_size % self.world.size:
            raise BadInput(f"--batch-size {self.t.batch_size}: the global batch is split evenly over the "
                           f"{self.world.size} processes; give a multiple of {self.world.size}")
        if self.world.size > 1 and not model.ddp_ready:
            raise BadInput(f"{cfg.preset or model.name}: not yet trainable with several processes (DDP runs gan, vae, "
                           "ae, aae and bigan and their presets); train it with one process (no --nproc)")
        if self.t.sync_bn and self.world.size > 1 and self.device.type == "cpu":
            raise BadInput("sync_bn=true: PyTorch's SyncBatchNorm runs on GPUs only; on CPU processes train nets "
                           "without batch norm (--set norm=none, for a GAN --set d_norm=none --set g_norm=none; or layer) "
                           "or use one process")
        if self.t.batch_size > n:
            raise BadInput(f"--batch-size {self.t.batch_size}: larger than the {n} training images of {data.name}")
        # a step may consume several batches (a GAN's n_critic D updates): an epoch is measured
        # in images, so every model sees the data the same number of times per epoch
        self.per_step = model.batches_per_step
        if self.t.batch_size * self.per_step > n:
            raise BadInput(f"--batch-size {self.t.batch_size}: one step of {model.name} takes {self.per_step} "
                           f"batches, more than the {n} training images of {data.name}")
        self.steps_per_epoch = n // (self.t.batch_size * self.per_step)
        self.precision = resolve_precision(self.device, self.t.precision)
        check_precision(self.device, self.precision)
        self.max_steps = self._max_steps()
        self.budget = parse_budget(self.t.budget) if self.t.budget else None
        # the data order: one permutation per epoch from a generator we can save and restore
        self.data_gen = torch.Generator().manual_seed(self.t.seed)
        self.perm = None
        self.perm_a = None   # unpaired translation data: the input domain's own order
        self.y_train = None  # a class-conditional model's training labels (on the device, in fit)
        if model.translation:
            check_translation_data(type(model), data)
        # paired models see aligned pairs; unpaired ones independent draws even from paired data
        self._aligned = model.translation == "paired"
        self.data_ops = parse_data_augment(self.t.augment_data)
        if self.data_ops:
            if model.translation:
                raise BadInput(f"augment_data={self.t.augment_data}: {model.name} translates aligned images; "
                               "augmenting the targets alone would misalign them")
            import warnings

            warnings.warn(f"augment_data={self.t.augment_data}: the model learns the augmented images, so its samples "
                          "will be flipped / shifted too; for GANs and VAE-GAN prefer --set augment=diffaug or ada, "
                          "which augment only what the discriminator sees", stacklevel=2)

    def _max_steps(self) -> int | None:
        limits = []
        if self.t.steps:
            limits.append(self.t.steps)
        if self.t.epochs:
            limits.append(max(1, math.ceil(self.t.epochs * self.steps_per_epoch)))
        if not limits and not self.t.budget:
            raise BadInput("say when to stop: --steps N, --epochs E or --budget 5m")
        return min(limits) if limits else None

    # ---- state
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optim": {k: o.state_dict() for k, o in self.model.optimizers().items()},
            "trainer": {
                "step": self.step, "images": self.images, "elapsed": self.elapsed,
                "rng_cpu": torch.get_rng_state(), "data_gen": self.data_gen.get_state(),
                "perm": self.perm.cpu() if self.perm is not None else None,
                "perm_a": self.perm_a.cpu() if self.perm_a is not None else None,
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "base_lrs": self.base_lrs,
            },
            # fp16: the loss scale and its growth tracker, so a resumed run scales as this one
            "scaler": self.model.scaler.state_dict() if self.model.scaler is not None else None,
        }

    @property
    def prior_pool(self) -> torch.Tensor | None:
        """The uint8 training images (N, C, H, W) fit_prior draws from; None before fit()."""
        return self._x_train

    def fit_prior(self, strict: bool = True, images: int | None = None) -> bool:
        """Fit the model's latent prior to its encoder as it is now (a no-op for models without
        a fitted prior). Always the same training images: `prior_images` of them chosen by the
        run's seed, so the final model and every checkpoint each carry the prior of their own
        encoder, fitted alike; `images`: the first that many of them instead (compare's curve
        points, sized to the budget). Returns whether the prior now fits the
        encoder; `strict=False`: codes that are not finite (an encoder diverging before its
        loss shows it) leave the prior as it was and return False instead of raising."""
        if self._x_train is None or not has_fitted_prior(self.model):
            return True
        n = self.t.prior_images if images is None else min(images, self.t.prior_images)
        try:
            self.model.fit_prior(to_float(prior_images(self._x_train, n, self.t.seed)))
        except GanvaeError:
            if strict:
                raise
            return False
        return True

    def save_checkpoint(self) -> Path:
        stem = self.run_dir / "checkpoints" / f"step_{self.step:08d}"
        # A checkpoint's prior must be its own encoder's (issue 30): fitted before writing, so
        # `--checkpoint STEP` samples like the final model would have at that step.
        # The loss check decides about divergence, not the prior: a checkpoint whose codes are
        # not finite is still written, marked unfitted (loading refits or says why it can't).
        fitted = self.fit_prior(strict=False)
        state = self.state()
        state["trainer"]["prior_fitted"] = self._prior_fitted = fitted   # (False or absent: refit on load)
        save_state(stem, state)
        for old in checkpoints(self.run_dir)[: -self.t.keep_checkpoints]:
            old.with_suffix(".safetensors").unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return stem

    def _restore(self) -> None:
        """Continue from the newest checkpoint that verifies; a damaged one is skipped with a
        warning (the one before it is used). Without any, start from step 0."""
        import warnings

        d = self.run_dir / "checkpoints"
        if d.is_dir() and self.is_main:  # leftovers of a killed write: temporaries, tensors without JSON
            for leftover in [*d.glob(".*.tmp"), *(p for p in d.glob("step_*.safetensors")
                                                  if not p.with_suffix(".json").exists())]:
                leftover.unlink(missing_ok=True)
        for stem in reversed(checkpoints(self.run_dir)):
            try:
                self.load_checkpoint(stem)
                return
            except GanvaeError as e:
                warnings.warn(f"{e}; falling back to the previous checkpoint", stacklevel=2)
        self._truncate_metrics()  # a run killed before its first checkpoint starts over

    def load_checkpoint(self, stem: Path) -> None:
        state = load_state(stem)
        self.model.load_state_dict(state["model"])
        for k, o in self.model.optimizers().items():
            o.load_state_dict(state["optim"][k])
        tr = state["trainer"]
        self.step, self.images, self.elapsed = int(tr["step"]), int(tr["images"]), float(tr["elapsed"])
        if tr.get("base_lrs"):
            self.base_lrs = tr["base_lrs"]
        if state.get("scaler") and self.model.scaler is not None:
            self.model.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(tr["rng_cpu"])
        self.data_gen.set_state(tr["data_gen"])
        self.perm = tr["perm"].to(self.device) if tr["perm"] is not None else None
        self.perm_a = tr["perm_a"].to(self.device) if tr.get("perm_a") is not None else None
        if tr["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(tr["rng_cuda"])
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop metric lines past the checkpoint, so a resumed run logs no step twice."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists() or not self.is_main:   # (under DDP rank 0's file alone)
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= self.step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
        from .files import atomic_write
        atomic_write(path, lambda p: p.write_text("".join(f"{line}\n" for line in keep)))

    # ---- the loop
    def _batch(self, x_train: torch.Tensor, a_train: torch.Tensor | None = None):
        """The step's batch: target images x (B, C, H, W), or for a translation model the pair
        (a, x): a's aligned with x on paired data; on unpaired data (or for an unpaired model)
        a's drawn by a permutation of its own, so the two domains are independent draws."""
        pos = self.step % self.steps_per_epoch
        if pos == 0 or self.perm is None:
            self.perm = torch.randperm(len(x_train), generator=self.data_gen).to(self.device)
            if a_train is not None and not self._aligned:
                self.perm_a = torch.randperm(len(a_train), generator=self.data_gen).to(self.device)
        size = self.t.batch_size * self.per_step
        idx = self.perm[pos * size:(pos + 1) * size]
        if self.world.size > 1:   # this rank's rows of each of the step's global batches
            idx = idx.view(self.per_step, self.t.batch_size)[:, parallel.rows(self.t.batch_size)].reshape(-1)
        x = to_float(x_train[idx]).contiguous(memory_format=self.memory_format)
        x = augment_data(x, self.data_ops)
        x = binarize_batch(x) if self.cfg.data.binarize == "dynamic" else x
        if self.y_train is not None:    # a class-conditional model: (images, their labels)
            return x, self.y_train[idx]
        if a_train is None:
            return x
        if not self._aligned:  # A may hold another number of images: wrap around its permutation
            at = pos * size + torch.arange(size, device=self.device)
            if self.world.size > 1:
                at = at.view(self.per_step, self.t.batch_size)[:, parallel.rows(self.t.batch_size)].reshape(-1)
            idx = self.perm_a[at % len(a_train)]
        return to_float(a_train[idx]).contiguous(memory_format=self.memory_format), x

    def fraction_done(self) -> float:
        """How far through its stopping point the run is, in [0, 1]."""
        parts = []
        if self.max_steps is not None:
            parts.append(self.step / self.max_steps)
        if self.budget is not None:
            parts.append(self.elapsed / self.budget)
        return min(1.0, max(parts)) if parts else 0.0

    def request_stop(self, reason: str) -> None:
        """End the run after the current step as a finished one (final model, summary.json with
        `stopped_early`: reason), not as an interruption; for callbacks such as compare's early
        stop on a rising validation FD. Under DDP rank 0's request reaches every rank."""
        self.stop_reason = reason

    def _agree_stop(self) -> None:
        """Under DDP: every rank takes rank 0's early stop (callbacks run there alone)."""
        if self.world.size > 1:
            if parallel.all_max([float(self.stop_reason is not None)], self._comm_device)[0] > 0:
                self.stop_reason = self.stop_reason or "stopped early by rank 0"

    def _done(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.max_steps is not None and self.step >= self.max_steps:
            return True
        return self.budget is not None and self.elapsed >= self.budget

    def fit(self) -> dict:
        """Train until the stopping point; returns a summary dict (also in summary.json)."""
        from torch.utils.tensorboard import SummaryWriter

        self.memory_format = self.t.torch_memory_format(self.device.type)
        model = self.model.to(self.device, memory_format=self.memory_format).train()
        model.set_precision(self.precision, self.device.type)
        if self.world.size > 1 and self.t.sync_bn:   # before the optimizers: it replaces modules
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model.optimizers()
        self._base_lrs()
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
        self._restore()
        self._callbacks("on_start")   # metrics.jsonl now holds the rows up to self.step
        if self.world.size > 1:
            # G and D (or encoder and decoder) each in its own wrapper; buffers (BN statistics)
            # not broadcast from rank 0 at every forward: with BN each rank keeps its own
            # running statistics (rank 0's are saved), with SyncBatchNorm they agree anyway
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters \
                else {"broadcast_buffers": False}   # (the newer name of the same setting)
            model.parallelize(lambda net: DDP(net, device_ids=ids, **no_sync))
        x_np = training_images(self.data.train.x, self.cfg.data.binarize, self.cfg.data.seed)
        x_train = torch.from_numpy(x_np).to(self.device)  # uint8, stays there
        self._x_train = x_train   # (what fit_prior fits to)
        a_train = torch.from_numpy(self.data.train.a).to(self.device) if model.translation else None
        self.y_train = torch.from_numpy(self.data.train.y).to(self.device) if model.conditional else None
        fixed_noise = torch.Generator().manual_seed(1234)
        fixed_state = fixed_noise.get_state()
        n_fixed = min(self.t.n_samples, len(self.data.test))
        x_fixed = to_float(torch.from_numpy(self.data.test.x[:n_fixed]).to(self.device))
        if model.translation:  # the fixed inputs and their targets, for the sample grids
            n_fixed = min(n_fixed, len(self.data.test.a))
            x_fixed = (to_float(torch.from_numpy(self.data.test.a[:n_fixed]).to(self.device)), x_fixed[:n_fixed])
        writer = SummaryWriter(str(self.run_dir / "tb")) if self.is_main else None
        metrics = open(self.run_dir / "metrics.jsonl", "a") if self.is_main else None
        bar = self._bar()
        # SIGINT / SIGTERM: finish the current step, checkpoint, and stop (exit 130 / 143)
        stop_signal: list[int] = []
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        t_log, images_log = time.perf_counter(), self.images
        self._t_step = time.perf_counter()
        self._stop = 0
        # whether any rank has per-step callbacks (only rank 0 may: compare's curve recorder)
        sync_callbacks = self.world.size > 1 and \
            parallel.all_max([float(bool(self._step_callbacks))], self._comm_device)[0] > 0
        self._agree_stop()   # a callback's on_start may have stopped the run already
        try:
            while not self._done():
                if stop_signal and self.world.size == 1:
                    self._stop = stop_signal[0]
                if self._stop:
                    raise self._stopped(self._stop)
                x = self._batch(x_train, a_train)
                # the model autocasts its own forwards (see models/base.py): its losses and
                # optimizer steps stay in float32
                out = model.train_step(x, self.step)
                if not self._finite(out, stop_signal[0] if stop_signal else 0):  # rolled back to the last good checkpoint
                    sums, counts = {}, {}
                    if metrics is not None:  # metrics.jsonl was rewritten up to that step
                        metrics.close()
                        metrics = open(self.run_dir / "metrics.jsonl", "a")
                    self._callbacks("on_start")
                    continue
                for k, v in out.items():
                    v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                    sums[k] = sums[k] + v if k in sums else v
                    counts[k] = counts.get(k, 0) + 1
                self.step += 1
                self.images += len(x[-1] if isinstance(x, tuple) else x) * self.world.size
                now = time.perf_counter()
                self.elapsed = self._elapsed if self.world.size > 1 else self.elapsed + now - self._t_step
                self._t_step = now
                if bar is not None:
                    bar.update(1)
                if self.step % self.t.log_every == 0 or self._done():
                    t_log, images_log = self._log_since(metrics, writer, bar, sums, counts, now, t_log, images_log)
                    sums, counts = {}, {}
                if self.step % self.t.sample_every == 0 and self.is_main:
                    fixed_noise.set_state(fixed_state)
                    self._write_samples(f"step_{self.step:08d}", fixed_noise, x_fixed)
                if self.step % self.t.checkpoint_every == 0 and self.is_main:
                    self.save_checkpoint()
                if self.is_main:   # under DDP callbacks (compare's curve points) run on rank 0 ...
                    for callback in self._step_callbacks:
                        callback.on_step(self)
                if sync_callbacks:   # ... while the others wait here, outside the training time,
                    self._agree_stop()  # and learn whether one of them stopped the run
                if self.stop_reason is not None and sums:   # stopped early: log the steps since the last line
                    self._log_since(metrics, writer, bar, sums, counts, now, t_log, images_log)
                    sums, counts = {}, {}
                self._t_step = time.perf_counter()  # logging, checkpoints, callbacks: not training time
        except RuntimeError as e:
            # a collective failed: another rank is gone (a GanvaeError passes through untouched)
            if self.world.size > 1 and _is_lost_peer(e):
                raise parallel.lost(e, self.step, self.run_dir) from None
            raise
        finally:
            model.parallelize(None)
            for sig, old in previous.items():
                signal.signal(sig, old)
            if bar is not None:
                bar.close()
            if metrics is not None:
                metrics.close()
            if writer is not None:
                writer.close()
        return self._finish(x_train, fixed_noise, fixed_state, x_fixed)

    def _stopped(self, signum: int) -> Stopped:
        """Checkpoint at the step boundary and say how to go on."""
        if self.is_main:
            self.save_checkpoint()
        name = signal.Signals(signum).name
        stopped = Stopped(f"{name} at step {self.step}: checkpoint saved. Continue with: "
                          f"ganvae train --resume {self.run_dir}", signum)
        stopped.quiet = not self.world.is_main   # under DDP rank 0 says it for the job
        return stopped

    def _base_lrs(self) -> None:
        """The learning rates the run started with, {optimizer: [lr per group]}: rollbacks halve
        relative to these, never to a rate an earlier rollback already lowered."""
        self.base_lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self.model.optimizers().items()}

    def _finite(self, out: dict, signum: int = 0) -> bool:
        """Check this step's losses and the weights; on a NaN / Inf stop, or roll back.

        One small device sync per step: the price of catching divergence at the step where it
        appears, so that no non-finite weights ever reach a checkpoint. Under DDP the ranks
        agree in one collective on the verdict, on a stop signal any of them got (`signum`: the
        job stops at this step boundary on every rank), and on the training time (the
        slowest rank's, so a --budget ends every rank at the same step).
        """
        vals = [v.detach().float().reshape(()) if torch.is_tensor(v) else torch.tensor(float(v))
                for v in out.values()]
        params = [p.detach() for p in self.model.parameters()]
        ok = bool(torch.isfinite(torch.stack(vals)).all()) and \
            bool(torch.isfinite(torch.stack([p.float().sum() for p in params]).sum()))
        if self.world.size > 1:
            elapsed = self.elapsed + time.perf_counter() - self._t_step
            bad_any, stop, self._elapsed = parallel.all_max([float(not ok), float(signum), elapsed], self._comm_device)
            self._stop = self._stop or int(stop)
            ok = not bad_any
        if ok:
            return True
        bad = [f"{k} = {float(v):g}" for k, v in zip(out, vals) if not math.isfinite(float(v))]
        if not bad:
            names = [n for n, p in self.model.named_parameters() if not bool(torch.isfinite(p).all())]
            bad = [f"weights of {', '.join(names[:3])} non-finite"] if names else \
                ["another process's losses non-finite"]
        where = f"training diverged at step {self.step + 1}: {'; '.join(bad)}"
        if self.t.on_nan == "rollback" and self.rollbacks < self.t.max_rollbacks and checkpoints(self.run_dir):
            self.rollbacks += 1
            spent = self.elapsed    # the diverged steps took real time: it counts against --budget
            self._restore()
            self.elapsed = max(self.elapsed, spent)
            # Rollback r trains at 0.5^r of the original rates: the checkpoint's optimizer state
            # may already hold a lowered rate (saved after an earlier rollback), so the rate is
            # set from the originals, not multiplied into whatever was restored.
            factor = 0.5 ** self.rollbacks
            for name, opt in self.model.optimizers().items():
                for group, lr in zip(opt.param_groups, self.base_lrs[name]):
                    group["lr"] = lr * factor
            import warnings

            warnings.warn(f"{where}; rolled back to step {self.step} with learning rates x{factor:g} of the "
                          f"original (rollback {self.rollbacks} of {self.t.max_rollbacks})", stacklevel=2)
            return False
        extra = f" after {self.rollbacks} rollbacks" if self.rollbacks else ""
        raise GanvaeError(f"{where}{extra}; lower the learning rate or try another loss / regularizer "
                          "(--set train.on_nan=rollback retries from the last checkpoint)")

    def _finish(self, x_train, fixed_noise, fixed_state, x_fixed) -> dict:
        model = self.model
        if self.is_main:
            self.save_checkpoint()   # fits the prior: the final model's is the last checkpoint's
        if not self.is_main or not self._prior_fitted:
            self.fit_prior()         # (strict: a final model never carries a prior of other codes)
        # the field names of every result file (see docs/results.md): summary.json, metrics.jsonl,
        # curve.jsonl and compare's results share them
        summary = {"steps": self.step, "images_seen": self.images, "train_seconds": round(self.elapsed, 3),
                   "images_per_second": round(self.images / max(self.elapsed, 1e-9), 1),
                   "updates": self.updates(), "dtype": self.precision}
        if self.stop_reason is not None:
            summary["stopped_early"] = self.stop_reason
        if self.world.size > 1:
            summary["processes"] = self.world.size
        if self.is_main:
            model.save_pretrained(self.run_dir / "model")
            fixed_noise.set_state(fixed_state)
            self._write_samples("final", fixed_noise, x_fixed)
            write_json(self.run_dir / "summary.json", summary)
            self._callbacks("on_end", summary)
        parallel.barrier()   # every rank returns once the run's files are complete
        return summary

    def _callbacks(self, hook: str, *args) -> None:
        """Run one hook of every callback (ganvae.callbacks), on rank 0 only."""
        if self.is_main:
            for callback in self.callbacks:
                getattr(callback, hook)(self, *args)

    def updates(self) -> dict[str, int]:
        """Optimizer updates so far, {optimizer name: count} (e.g. {"g": 1000, "d": 5000}): the
        model's own count of the steps that ran where it keeps one (a VAE-GAN's D rests on some
        steps), else its fixed updates per step times the steps."""
        done = self.model.updates_done()
        if done is not None:
            return {k: int(v) for k, v in done.items()}
        return {k: int(round(v * self.step)) for k, v in self.model.updates_per_step().items()}

    def _bar(self):
        if not (self.progress and self.is_main):
            return None
        import sys

        from tqdm.auto import tqdm

        total = self.max_steps
        # redraw twice a second on a terminal; in a log file, a line every 15 s is plenty
        interval = 0.5 if sys.stderr.isatty() else 15.0
        return tqdm(total=total, initial=self.step if total else 0, unit="step", dynamic_ncols=True,
                    desc=f"{self.cfg.preset}", leave=True, mininterval=interval, file=sys.stderr)

    def _log_since(self, metrics, writer, bar, sums, counts, now, t_log, images_log) -> tuple[float, int]:
        """Log the mean of each loss since the last line; returns the new (t_log, images_log)."""
        # under DDP the ranks' averages, averaged: the global batch's
        scalars = parallel.all_mean({k: float(sums[k]) / counts[k] for k in sums}, self._comm_device)
        self._log(metrics, writer, bar, scalars, (self.images - images_log) / max(now - t_log, 1e-9))
        return now, self.images

    def _log(self, metrics, writer, bar, scalars, rate) -> None:
        if not self.is_main:
            return
        # images_per_second here: the rate since the previous line (summary.json's is the run's mean)
        row = {"step": self.step, "images_seen": self.images, "train_seconds": round(self.elapsed, 3),
               "images_per_second": round(rate, 1), **{k: round(v, 6) for k, v in scalars.items()}}
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        for k, v in scalars.items():
            writer.add_scalar(k, v, self.step)
        writer.add_scalar("perf/images_per_second", rate, self.step)
        self._callbacks("on_log", row)
        if bar is not None:
            shown = {k.split("/")[-1] if k.startswith("loss/") else k: f"{v:.3g}" for k, v in scalars.items()
                     if k.startswith("loss/")}
            shown["img/s"] = f"{rate:.0f}"
            if self.budget:
                shown["left"] = f"{max(0, self.budget - self.elapsed):.0f}s"
            bar.set_postfix(shown, refresh=False)

    @torch.no_grad()
    def _write_samples(self, name: str, gen: torch.Generator, x_fixed) -> None:
        model = self.model
        if model.translation:  # rows of 8: inputs, their translations, the true targets
            from .images import translation_grid

            a, b = x_fixed
            was = model.training
            model.eval()
            out = model.translate(a, "a2b")
            model.train(was)
            save_grid(self.run_dir / "samples" / f"{name}.png",
                      translation_grid(to_uint8(a).cpu().numpy(), to_uint8(out).cpu().numpy(),
                                       to_uint8(b).cpu().numpy() if self.data.test.paired else None), nrow=8)
            return
        if model.conditional:   # one column per class: row r, column k is class k
            k = model.config.num_classes
            labels = torch.arange(max(self.t.n_samples // k, 1) * k) % k
            x = model.sample(len(labels), generator=gen, labels=labels)
            save_grid(self.run_dir / "samples" / f"{name}.png", to_uint8(x).cpu().numpy(), nrow=k)
        else:
            x = model.sample(self.t.n_samples, generator=gen)
            save_grid(self.run_dir / "samples" / f"{name}.png", to_uint8(x).cpu().numpy())
        if getattr(model, "has_encoder", False):
            was = model.training
            model.eval()
            x_hat = model.reconstruct(x_fixed)
            model.train(was)
            # originals in the odd rows, reconstructions below them
            n, row = len(x_fixed), 8
            pairs = []
            for i in range(0, n, row):
                pairs += [x_fixed[i:i + row], x_hat[i:i + row]]
            save_grid(self.run_dir / "samples" / f"{name}_recon.png",
                      to_uint8(torch.cat(pairs)).cpu().numpy(), nrow=row)


def _is_lost_peer(e: RuntimeError) -> bool:
    """A collective's failure because a partner process is gone (killed, crashed, hung)."""
    import torch.distributed as dist

    text = str(e)
    return isinstance(e, getattr(dist, "DistError", ())) or any(
        s in text for s in ("Connection closed", "Connection reset", "Broken pipe", "Gloo", "NCCL", "imed out"))


# ------------------------------------------------------------------------------- API

def build(preset: str, data: ImageDataset, overrides: dict | None = None):
    """The model for `preset`, sized for `data`, with `overrides` applied to its config."""
    from .registry import resolve

    cls, cfg = resolve(preset)
    c, h, w = data.shape
    if h != w:
        raise BadInput(f"{data.name}: images are {h}x{w}; the networks need square images (pass --size)")
    fill = {"channels": c, "size": h}
    if cls.translation:
        check_translation_data(cls, data)
        fill["channels_a"] = data.train.a.shape[1]
    if any(f.name == "num_classes" for f in dataclasses.fields(cfg)):
        # p(x | y): K from the data's labels (used only when the config says conditional)
        wants = getattr(cfg, "conditional", False) or \
            str((overrides or {}).get("conditional", "")).strip().lower() in ("true", "1", "yes")
        if wants and (data.train.y is None or data.num_classes < 2):
            raise BadInput(f"{preset} is class-conditional and {data.name} has no class labels: give labelled data "
                           "(fashion-mnist, mnist, shapes, or folder:PATH with one subfolder per class)")
        fill["num_classes"] = data.num_classes if wants else 0
    over = _spread_lr(cfg, overrides or {})
    cfg = replace(cfg, {**fill, **over}, where=f"--set for {preset}")   # names the preset typed
    return cls(cfg), cfg


def _spread_lr(cfg, overrides: dict) -> dict:
    """`lr` is every network's learning rate, in every family: it sets each of the config's
    lr / lr_g / lr_d / lr_e that is not given itself (those refine it). So one --set lr=...
    works in a comparison of GANs (lr_g, lr_d) and autoencoders (lr) alike."""
    if "lr" not in overrides:
        return overrides
    names = {f.name for f in dataclasses.fields(cfg)}
    out = dict(overrides)
    lr = out["lr"] if "lr" in names else out.pop("lr")
    for key in ("lr_g", "lr_d", "lr_e"):
        if key in names and key not in overrides:
            out[key] = lr
    return out


def check_translation_data(cls, data: ImageDataset) -> None:
    """A translation model needs input-domain images beside the targets, aligned if it is paired."""
    forms = "--data task:NAME (edges2fashion, lowres2fashion, inverted, colorized), pairs:DIR or unpaired:DIR_A,DIR_B"
    if data.train.a is None:
        raise BadInput(f"{cls.name} translates images from one domain to another; {data.name} has only one "
                       f"domain: give {forms}")
    if cls.translation == "paired" and not data.train.paired:
        raise BadInput(f"{cls.name} trains on aligned pairs; {data.name} is unpaired: give pairs:DIR or "
                       "task:NAME, or train cyclegan or unit on it")


# Unprefixed --set keys that belong to the run, not the model: how it is trained, whatever the model
TRAIN_KEYS = ("sync_bn",)


def split_overrides(overrides: dict[str, Any]) -> tuple[dict, dict, dict]:
    """Dotted overrides -> (model, train, data); an unprefixed key belongs to the model."""
    model, train, data = {}, {}, {}
    for k, v in overrides.items():
        head, dot, rest = k.partition(".")
        if dot and head in ("model", "train", "data"):
            {"model": model, "train": train, "data": data}[head][rest] = v
        elif k in TRAIN_KEYS:
            train[k] = v
        else:
            model[k] = v
    return model, train, data


def data_option_field(option: str) -> str | None:
    """The DataConfig field a keyword of train() sets (data_dir under its own name, the others
    with a data_ prefix: data_size -> size), or None where it is no data option."""
    name = option if option == "data_dir" else option[5:] if option.startswith("data_") else None
    return name if name in {f.name for f in dataclasses.fields(DataConfig)} and name != "spec" else None


def train(preset: str, data: str = "shapes", run_dir: str | Path | None = None, *,
          overrides: dict | None = None, resume: bool = False, progress: bool = True,
          runs_root: str | Path = "runs", callbacks: list | None = None, dataset: ImageDataset | None = None,
          nets: dict | None = None, **train_options) -> tuple[Path, dict]:
    """Train a model; the Python twin of `ganvae train`.

    Args:
        preset: a registry name (`vae`, `dcgan`, ...).
        data: a --data spec.
        run_dir: the run directory (default runs/NNNN-<preset>-<data>).
        overrides: dotted config overrides (`{"beta": 4, "train.lr": ...}`).
        resume: continue the run in `run_dir` from its last checkpoint.
        callbacks: ganvae.callbacks.Callback objects (hooks on_start, on_step, on_log, on_end;
            docs/callbacks.md) or plain callables run with the trainer after every step.
        dataset: the already loaded dataset of `data` (saves loading it again).
        nets: a user's own nets in place of the built-in ones, {role: ganvae.net(Class, **kwargs)}
            (roles g and d for GANs, encoder and decoder for AEs and VAEs; see ganvae.custom).
        **train_options: TrainConfig fields (steps=..., budget="2m", batch_size=...) and
            DataConfig fields prefixed `data_` (data_dir, data_size, ...).

    Returns:
        (run directory, summary dict).
    """
    m_over, t_over, d_over = split_overrides(overrides or {})
    if nets:   # a user's own nets (ganvae.net): part of the model's config, saved in config.json
        m_over["nets"] = nets
    for k in list(train_options):
        name = data_option_field(k)
        if name is not None:
            v = train_options.pop(k)
            if v is not None:
                d_over[name] = v
    t_over.update({k: v for k, v in train_options.items() if v is not None})
    # one writer per run directory: a second command on it is refused while this one runs
    with contextlib.ExitStack() as lock:
        if resume:
            run_dir = Path(run_dir)
            cfg_path = run_dir / "config.json"
            if not run_dir.is_dir():
                raise BadInput(f"--resume {run_dir}: no such directory")
            if not cfg_path.exists():
                raise BadInput(f"--resume {run_dir}: no config.json there; is it a run directory?")
            saved = json.loads(cfg_path.read_text())
            preset = saved["preset"]
            _legacy_val_split(saved)
            base = replace(RunConfig(preset=preset), {"data": saved["data"], "train": saved["train"]},
                           where=str(cfg_path))
            if {"steps", "epochs", "budget"} & set(t_over):  # a new stopping point replaces the old one
                base = replace(base, {"train": {"steps": None, "epochs": None, "budget": None}})
            cfg = replace(base, {"train": t_over}, where="--resume option")
        else:
            base = RunConfig(preset=preset)
            cfg = replace(base, {"data": {"spec": data, **d_over}, "train": t_over}, where="option")
        # Under torchrun: join the job. From here on a rank that fails tells the others (agree),
        # so none waits for a partner that has left.
        world = parallel.init(cfg.train.device)
        error = None
        try:
            ds = dataset or _load_data(cfg.data)
            if resume:
                torch.manual_seed(cfg.train.seed)  # the weights are replaced by the checkpoint's anyway
                model, mcfg = build(preset, ds, saved["model"])
            else:
                torch.manual_seed(cfg.train.seed)  # the initial weights, then the noise of every step
                model, mcfg = build(preset, ds, m_over)
                if cfg.train.init_from:
                    init_from(model, cfg.train.init_from)
            cfg = dataclasses.replace(cfg, model=mcfg)
        except GanvaeError as e:
            error = e
        parallel.agree(error)
        if not resume:   # rank 0 numbers a new run directory; every rank uses its choice
            run_dir = parallel.broadcast(Path(run_dir) if run_dir else new_run_dir(Path(runs_root), preset, data)
                                         if world.is_main else None)
        try:
            trainer = Trainer(model, ds, cfg, run_dir, progress=progress, callbacks=callbacks)   # checks the settings
            if world.is_main:   # (locking creates the directory: only once every setting has passed)
                what = f"--resume {run_dir}" if resume else f"--out {run_dir}"
                lock.enter_context(dir_lock(run_dir, what))
                if not resume and (checkpoints(run_dir) or (run_dir / "model").exists()):
                    raise BadInput(f"--out {run_dir}: already holds a run; use --resume {run_dir} or another "
                                   "directory")
                run_dir.mkdir(parents=True, exist_ok=True)
                write_json(run_dir / "config.json", {"preset": cfg.preset, "family": model.name,
                                                     "model": dataclasses.asdict(cfg.model),
                                                     "data": dataclasses.asdict(cfg.data),
                                                     "train": dataclasses.asdict(cfg.train)})
        except GanvaeError as e:
            error = e
        parallel.agree(error)
        summary = trainer.fit()
    return run_dir, summary


def init_from(model, run: str | Path) -> None:
    """Load the final weights of `run` into `model` (transfer learning, --init-from RUN).

    The nets must be the same: the same family and every tensor of the same shape (a run on
    RGB images cannot start a grey one, nor a width-64 run a width-32 one). Only the weights
    move: optimizer states, the step count and the data order start afresh.
    """
    from .models.base import GenerativeModel

    run = Path(run)
    model_dir = run / "model" if (run / "model").is_dir() else run
    if not (model_dir / "config.json").exists():
        hint = " (still training? it has no final model yet)" if checkpoints(run) else ""
        raise BadInput(f"--init-from {run}: no trained model there{hint}; give a finished run directory")
    source = GenerativeModel.from_pretrained(model_dir)
    if source.name != model.name:
        raise BadInput(f"--init-from {run}: a {source.name} run cannot start a {model.name}; give a {model.name} run")
    # The nets' tensors only: an augmentation's state (ADA's p) belongs to the new run's setting.
    nets = lambda state: {k: v for k, v in state.items() if not k.startswith("augment.")}  # noqa: E731
    theirs, mine = nets(source.state_dict()), nets(model.state_dict())
    if (missing := sorted(set(mine) - set(theirs))) or (extra := sorted(set(theirs) - set(mine))):
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]} that this model does not"
        raise BadInput(f"--init-from {run}: its nets differ from this {model.name}'s (the run {what}); "
                       "use the same config (e.g. ema, reg)")
    for k, v in mine.items():
        if theirs[k].shape != v.shape:
            got, want = "x".join(map(str, theirs[k].shape)), "x".join(map(str, v.shape))
            raise BadInput(f"--init-from {run}: its nets differ from this {model.name}'s ({k} is {got}, here {want}); "
                           "the image size and channels, width and latent must match the run's (see --size, --channels, --set)")
    model.load_state_dict(theirs, strict=False)


def _load_data(d: DataConfig) -> ImageDataset:
    """The dataset of a run: loaded, then its validation split held out (by d.seed), so that
    training, `ganvae eval RUN`, resume and compare all see the same train / val / test; with
    --limit, train is cut to its N images after that."""
    ds = load_dataset(d.spec, data_dir=d.data_dir, size=d.size, channels=d.channels, seed=d.seed)
    return limit_train(hold_out_val(ds, d.val_split, d.seed), d.limit, d.seed)


def _legacy_val_split(saved: dict) -> None:
    """A config.json written before validation splits trained on the whole train split: rebuild
    it that way (val_split 0), not with today's default, or a resume would change its data."""
    if isinstance(saved.get("data"), dict):
        saved["data"].setdefault("val_split", 0)


def load_run(run: str | Path, device: str = "cpu", checkpoint: str = "last"):
    """(model, run config dict) of a run; `run` is a run dir or a model dir.

    checkpoint: "last" (the final model), "best" (the checkpoint `ganvae compare` picked on the
    validation split, run/best), or a step number whose checkpoint is still in checkpoints/
    (also of a run that is still training).
    """
    from .models.base import GenerativeModel

    run = Path(run)
    if not run.exists():
        raise BadInput(f"{run}: no such run directory")
    checkpoint = str(checkpoint).strip().lower()
    if checkpoint.isdigit():
        return _load_step(run, int(checkpoint), device)
    if checkpoint not in ("last", "best"):
        raise BadInput(f"--checkpoint {checkpoint}: give last, best or a step number")
    if checkpoint == "best":
        if not (run / "best" / "config.json").exists():
            raise BadInput(f"--checkpoint best: {run} has no best checkpoint (ganvae compare picks one for its runs on "
                           "the validation split); use last or a step number")
        model = GenerativeModel.from_pretrained(run / "best", device=device)
        cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
        return model, cfg
    model_dir = run / "model" if (run / "model").is_dir() else run
    if not within(run, model_dir / "model.safetensors") or not within(run, model_dir / "config.json"):
        raise BadInput(f"{run}: its model files point outside the run directory; refusing to load them")
    if not (model_dir / "config.json").exists():
        hint = " (still training? it has checkpoints but no final model)" if checkpoints(run) else ""
        raise BadInput(f"{run}: no trained model found{hint}")
    model = GenerativeModel.from_pretrained(model_dir, device=device)
    cfg = {}
    if (run / "config.json").exists() and model_dir != run:
        cfg = json.loads((run / "config.json").read_text())
    return model, cfg


def _load_step(run: Path, step: int, device: str):
    """The model as checkpoint step_<step> of `run` holds it (its own config.json rebuilds it)."""
    from .models.base import GenerativeModel

    stems = {int(s.name[5:]): s for s in checkpoints(run)}
    if step not in stems:
        kept = ", ".join(map(str, sorted(stems))) or "none"
        raise BadInput(f"--checkpoint {step}: {run} has no checkpoint of step {step} (kept: {kept})")
    cfg = json.loads((run / "config.json").read_text())
    model = GenerativeModel.from_config(cfg["family"], cfg["model"], where=str(run / "config.json"))
    state = load_state(stems[step])
    model.load_state_dict(state["model"])
    model = model.to(device).eval()
    if has_fitted_prior(model) and not state["trainer"].get("prior_fitted"):
        # a checkpoint written before checkpoints carried their prior: refit it now
        refit_prior(model, cfg)
    return model, cfg


def refit_prior(model, cfg: dict) -> None:
    """Fit a loaded model's prior as its run's trainer would have at the end: the run's training
    images (rebuilt from its config.json `cfg`), its seed and its prior_images."""
    t = cfg.get("train", {})
    d = cfg.get("data", {})
    x = torch.from_numpy(training_images(run_dataset(cfg).train.x, d.get("binarize", "none"), d.get("seed", 0)))
    x = x.to(model.device)
    model.fit_prior(to_float(prior_images(x, t.get("prior_images", TrainConfig.prior_images), t.get("seed", 0))))


def prior_images(x_train: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The min(n, N) training images (uint8, (n, C, H, W)) a run fits its prior to: the first of a
    permutation drawn from `seed`, the same at every checkpoint and at the end."""
    idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:min(n, len(x_train))]
    return x_train[idx.to(x_train.device)]


def training_images(x: np.ndarray, binarize: str, seed: int) -> np.ndarray:
    """The uint8 training images (N, C, H, W) a run trains on: x itself, or with
    binarize="static" one fixed draw of it, reproduced from the data seed."""
    return binarize_static(x, seed) if binarize == "static" else x


def run_dataset(cfg: dict) -> ImageDataset:
    if not cfg:
        raise BadInput("this command needs the run's data; give a run directory, not a bare model directory")
    _legacy_val_split(cfg)
    d = replace(DataConfig(), cfg["data"], where="config.json")
    return _load_data(d)


__all__ = ["Trainer", "TrainConfig", "DataConfig", "RunConfig", "train", "build", "load_run", "parse_budget"]
