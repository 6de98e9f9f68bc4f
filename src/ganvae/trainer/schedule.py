"""Learning-rate schedules: a linear warm-up, then the base rate held or decayed to zero at the
run's last step, applied by the trainer to every optimizer a model has (models never see it).

With T the run's steps (--steps / --epochs), W = lr_warmup and D = max(W, floor(lr_decay_start
* T)) the step the decay begins at, the update taken at step s (0-based: the one that makes
step s + 1) runs at base_lr * f(s), each optimizer scaling its own base rate (a GAN's G and D
keep their ratio):

    f(s) = s / W                       s < W        linear warm-up from 0 (Goyal et al. 2017, §2.2)
         = 1                           W <= s < D   held (CycleGAN's first half, below)
         = shape((s - D) / (T - D))    D <= s

    shape(p) = 1                       constant
             = 1 - p                   linear (Zhu et al. 2017, CycleGAN §4: 100 epochs at 2e-4,
                                       then 100 decaying linearly to 0: lr_decay_start=0.5)
             = (1 + cos(pi p)) / 2     cosine (Loshchilov & Hutter 2017, SGDR eq. 5 with
                                       eta_min = 0 and no restarts)

f is continuous and reaches 0 at s = T, after the last update, so no update runs at rate 0 but
a warm-up's first (PyTorch's LambdaLR convention: the factor of the step counter before the
update). A constant schedule without warm-up makes no scheduler at all: the run is the one it
was before schedules existed.

One torch LambdaLR per optimizer does the work; its state (base rates, step) is saved in each
checkpoint beside the optimizer's and restored on --resume. The factor itself is a plain
function of the run's config, never saved: a run resumed with a new --steps follows the new
length's schedule from the step it resumes at.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import TYPE_CHECKING, Callable

import torch
from torch.optim.lr_scheduler import LambdaLR

from ..errors import BadInput

if TYPE_CHECKING:
    from .config import TrainConfig


def _constant(p: float) -> float:
    return 1.0


def _linear(p: float) -> float:
    return 1.0 - p


def _cosine(p: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * p))


# lr_schedule's values: the decay's shape over its fraction p in [0, 1] of the decaying steps
SHAPES: dict[str, Callable[[float], float]] = {"constant": _constant, "linear": _linear, "cosine": _cosine}


def decay_begins(total: int, warmup: int, decay_start: float) -> int:
    """D of the module docstring: the first step of the decay (after the warm-up, at the
    earliest)."""
    return max(warmup, math.floor(decay_start * total))


def lr_factor(step: int, schedule: str, warmup: int = 0, total: int | None = None,
              decay_start: float = 0.0) -> float:
    """f(step) of the module docstring: the fraction of the base rate the update at `step`
    (0-based) runs at. `total` (the run's steps) may be None for the constant schedule alone."""
    if step < warmup:
        return step / warmup
    if schedule == "constant":
        return 1.0
    begin = decay_begins(total, warmup, decay_start)
    if step < begin:
        return 1.0
    return SHAPES[schedule](min(1.0, (step - begin) / (total - begin)))


def is_scheduled(t: TrainConfig) -> bool:
    """Whether `t` asks for a schedule: a decay or a warm-up (the default asks for neither)."""
    return t.lr_schedule != "constant" or t.lr_warmup > 0


def check_schedule(t: TrainConfig, max_steps: int | None) -> None:
    """The refusals that need the run's length (TrainConfig.validate has the rest)."""
    if t.lr_schedule != "constant" and max_steps is None:
        raise BadInput(f"lr_schedule={t.lr_schedule}: decays to zero at the run's last step, which --budget "
                       "alone does not fix; give --steps or --epochs (--budget may stay as a time limit)")
    if max_steps is not None and t.lr_warmup >= max_steps:
        raise BadInput(f"lr_warmup={t.lr_warmup}: the warm-up must be shorter than the run's {max_steps} steps; "
                       "lower it or train for more --steps")


def make_schedulers(optimizers: dict[str, torch.optim.Optimizer], t: TrainConfig,
                    total: int | None) -> dict[str, LambdaLR]:
    """One LambdaLR per optimizer, {name: scheduler}, each on its optimizer's current rates;
    none for the constant schedule without warm-up. Sets every rate to its step-0 value."""
    if not is_scheduled(t):
        return {}

    # A plain function (not a callable object): LambdaLR then saves nothing of it, and the
    # schedule always comes from the config, never from a checkpoint.
    def factor(step: int) -> float:
        return lr_factor(step, t.lr_schedule, t.lr_warmup, total, t.lr_decay_start)

    out = {}
    for name, opt in optimizers.items():
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]   # the base: this rate, not one a former scheduler left
        out[name] = LambdaLR(opt, factor)
    return out


# The trainer steps schedules by run steps, whether or not each optimizer stepped in one (a
# VAE-GAN's resting D, an fp16 step the loss scaler skipped): PyTorch's ordering warning at a
# scheduler's first step does not apply.
_ORDER_WARNING = re.escape("Detected call of `lr_scheduler.step()` before `optimizer.step()`")


def _step(s: LambdaLR, quiet: bool = True) -> None:
    """s.step(), without the ordering warning where `quiet` (it can come only at the first
    step() after a scheduler is made: the loop asks for quiet then alone, not at every step)."""
    if not quiet:
        s.step()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ORDER_WARNING, category=UserWarning)
        s.step()


def step_all(schedulers: dict[str, LambdaLR]) -> dict[str, float]:
    """Move every schedule one run step on, after the step's updates.

    Returns:
        {"lr/<optimizer>": the rate the update just taken ran at (its first parameter group)},
        for metrics.jsonl; {} without schedules.
    """
    used = {f"lr/{name}": float(s.optimizer.param_groups[0]["lr"]) for name, s in schedulers.items()}
    for s in schedulers.values():
        _step(s, quiet=s.last_epoch == 0)   # (a resumed scheduler's first step() was restore's)
    return used


def state(schedulers: dict[str, LambdaLR]) -> dict[str, dict]:
    """The schedulers' states for a checkpoint (plain numbers: base rates, step counters)."""
    return {name: s.state_dict() for name, s in schedulers.items()}


def restore(schedulers: dict[str, LambdaLR], optimizers: dict[str, torch.optim.Optimizer],
            saved: dict[str, dict], step: int) -> None:
    """Put the schedules (restored optimizers already loaded) at `step` of this run.

    A saved state gives the base rates (a NaN rollback's lowered ones included). Without one (a
    checkpoint from before schedules, or from a constant run) the optimizers' restored rates
    are the base and the schedule takes up at `step`. The rate at `step` is then this run's
    schedule's, the same as the checkpoint's unless the run's length changed. A constant run
    resumed from a scheduled one goes back to the schedule's base rates.
    """
    for name, s in schedulers.items():
        if name in saved:
            s.load_state_dict(saved[name])
        else:
            s.base_lrs = [g["lr"] for g in s.optimizer.param_groups]
        s.last_epoch = step - 1
        _step(s)
    if not schedulers:
        for name, st in saved.items():
            for group, lr in zip(optimizers[name].param_groups, st["base_lrs"]):
                group["lr"] = lr


def rebase(schedulers: dict[str, LambdaLR]) -> None:
    """After a NaN rollback set the optimizers' rates to a fraction of the originals
    (guards.roll_back): those become the schedules' base, and each rate goes back on its
    schedule at the restored step."""
    for s in schedulers.values():
        s.base_lrs = [g["lr"] for g in s.optimizer.param_groups]
        s.last_epoch -= 1
        _step(s)
