"""The run's settings: the data and training configs (RunConfig, what config.json holds), the
parsing of --budget, --device and --precision, and the split of dotted --set overrides."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..augment import parse_data_augment
from ..data.base import parse_val_split
from ..errors import BadInput, did_you_mean
from ..hardware import cpu_has_bf16, cpu_has_fp16
from ..selection import QUICK_FD_N, SELECTORS
from .schedule import SHAPES


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
    # Learning-rate schedule of every optimizer (trainer/schedule.py has the formulas): a name in
    # schedule.SHAPES, "constant" (the rates as the model set them), "linear" or "cosine" (to 0
    # at the run's last step, so they need --steps or --epochs); after `lr_warmup` steps rising
    # linearly from 0, and held at the base rate until `lr_decay_start` (a fraction of the run;
    # CycleGAN's paper schedule is linear with 0.5).
    lr_schedule: str = "constant"
    lr_warmup: int = 0
    lr_decay_start: float = 0.0
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
    # Keep the checkpoint with the best validation score in run_dir/best, as compare keeps its
    # runs' best (trainer/best.py): "fd" (a quick FD of best_n seeded samples) or "elbo" (-ELBO
    # of best_n validation images; models with a likelihood), scored at every checkpoint and at
    # the end on rank 0. "none": nothing is scored, and training is as fast as without it.
    keep_best: str = "none"
    best_n: int = QUICK_FD_N

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
                     "n_samples", "best_n"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if self.memory_format not in ("auto", "channels_last", "contiguous"):
            raise BadInput(f"memory_format={self.memory_format}: choose auto, channels_last or contiguous")
        parse_data_augment(self.augment_data)
        if self.lr_schedule not in SHAPES:
            raise BadInput(f"lr_schedule={self.lr_schedule!r}: choose one of {', '.join(SHAPES)}")
        if self.lr_warmup < 0:
            raise BadInput(f"lr_warmup={self.lr_warmup}: give the warm-up in steps, at least 0 (0: none)")
        if not 0 <= self.lr_decay_start < 1:
            raise BadInput(f"lr_decay_start={self.lr_decay_start}: give the fraction of the run before the decay, "
                           "in [0, 1)")
        if self.lr_decay_start and self.lr_schedule == "constant":
            raise BadInput(f"lr_decay_start={self.lr_decay_start}: the constant schedule does not decay; "
                           "set lr_schedule=linear or cosine too")
        if self.keep_best not in ("none", *SELECTORS):
            raise BadInput(f"--keep-best {self.keep_best}: choose none, {', '.join(SELECTORS)}"
                           f"{did_you_mean(self.keep_best, SELECTORS)}")
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


# Unprefixed --set keys that belong to the run, not the model: how it is trained, whatever the model
TRAIN_KEYS = ("sync_bn", "lr_schedule", "lr_warmup", "lr_decay_start")


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
