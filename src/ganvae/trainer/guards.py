"""What ends or rewinds a run in the middle of the loop: a stop signal (SIGINT / SIGTERM end it
at a step boundary, with a checkpoint), divergence (a non-finite loss or weight stops the run,
or rolls it back to the last checkpoint with lower learning rates) and, under DDP, a partner
process that is gone."""

from __future__ import annotations

import math
import signal
import threading

import torch

from ..errors import GanvaeError, Stopped
from .runs import checkpoints


# ------------------------------------------------------------------------------- stop signals

class StopSignals:
    """SIGINT / SIGTERM: finish the current step, checkpoint, and stop (exit 130 / 143).

    `install` makes both signals only note themselves (in `received`), so the loop can stop at
    the next step boundary; `restore` puts the previous handlers back. Python sets handlers in
    the main thread only: elsewhere (a run in a thread) nothing is installed.
    """

    def __init__(self):
        self.received: list[int] = []
        self._previous = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, lambda signum, frame: self.received.append(signum))

    def restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)

    @property
    def first(self) -> int:
        """The first signal received, 0 for none."""
        return self.received[0] if self.received else 0


def stopped(trainer, signum: int) -> Stopped:
    """Checkpoint at the step boundary and say how to go on."""
    if trainer.is_main:
        trainer.save_checkpoint()
    name = signal.Signals(signum).name
    error = Stopped(f"{name} at step {trainer.step}: checkpoint saved. Continue with: "
                    f"ganvae train --resume {trainer.run_dir}", signum)
    error.quiet = not trainer.world.is_main   # under DDP rank 0 says it for the job
    return error


# ------------------------------------------------------------------------------- divergence

def step_is_finite(out: dict, model) -> tuple[bool, list[torch.Tensor]]:
    """Whether this step's losses `out` and `model`'s weights are all finite (one small device
    sync), and the losses as float tensors."""
    vals = [v.detach().float().reshape(()) if torch.is_tensor(v) else torch.tensor(float(v))
            for v in out.values()]
    params = [p.detach() for p in model.parameters()]
    ok = bool(torch.isfinite(torch.stack(vals)).all()) and \
        bool(torch.isfinite(torch.stack([p.float().sum() for p in params]).sum()))
    return ok, vals


def divergence(step: int, out: dict, vals: list[torch.Tensor], model) -> str:
    """What went non-finite at `step`: the losses, else the weights, else (under DDP) another
    process's."""
    bad = [f"{k} = {float(v):g}" for k, v in zip(out, vals) if not math.isfinite(float(v))]
    if not bad:
        names = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
        bad = [f"weights of {', '.join(names[:3])} non-finite"] if names else \
            ["another process's losses non-finite"]
    return f"training diverged at step {step + 1}: {'; '.join(bad)}"


def roll_back(trainer, where: str) -> bool:
    """on_nan=rollback, with rollbacks left and a checkpoint to go back to: restore the last good
    checkpoint with lowered learning rates and return False (the step did not count); else
    raise, saying `where` the run diverged."""
    t = trainer.t
    if t.on_nan == "rollback" and trainer.rollbacks < t.max_rollbacks and checkpoints(trainer.run_dir):
        trainer.rollbacks += 1
        spent = trainer.elapsed    # the diverged steps took real time: it counts against --budget
        trainer._restore()
        trainer.elapsed = max(trainer.elapsed, spent)
        # Rollback r trains at 0.5^r of the original rates: the checkpoint's optimizer state
        # may already hold a lowered rate (saved after an earlier rollback), so the rate is
        # set from the originals, not multiplied into whatever was restored.
        factor = 0.5 ** trainer.rollbacks
        for name, opt in trainer.model.optimizers().items():
            for group, lr in zip(opt.param_groups, trainer.base_lrs[name]):
                group["lr"] = lr * factor
        import warnings

        # stacklevel 3: the line that called Trainer._finite, as when this lived there
        warnings.warn(f"{where}; rolled back to step {trainer.step} with learning rates x{factor:g} of the "
                      f"original (rollback {trainer.rollbacks} of {t.max_rollbacks})", stacklevel=3)
        return False
    extra = f" after {trainer.rollbacks} rollbacks" if trainer.rollbacks else ""
    raise GanvaeError(f"{where}{extra}; lower the learning rate or try another loss / regularizer "
                      "(--set train.on_nan=rollback retries from the last checkpoint)")


# ------------------------------------------------------------------------------- DDP

def is_lost_peer(e: RuntimeError) -> bool:
    """A collective's failure because a partner process is gone (killed, crashed, hung)."""
    import torch.distributed as dist

    text = str(e)
    return isinstance(e, getattr(dist, "DistError", ())) or any(
        s in text for s in ("Connection closed", "Connection reset", "Broken pipe", "Gloo", "NCCL", "imed out"))
