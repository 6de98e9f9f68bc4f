"""Data parallelism on PyTorch's own engine: DistributedDataParallel, launched by torchrun.

`torchrun --nproc-per-node N -m ganvae train ...` (or `ganvae train --nproc N`, which runs
torchrun for the user) starts N processes; each calls `init()` and then trains as one rank:

- The global batch is `--batch-size` B, and each rank takes its own B / N rows of it (`rows`
  below; the trainer slices the data, `draw_rows` the noise).
- Every random draw a training step makes (z, the reparameterization's eps, the gradient
  penalty's interpolation weights, augmentation parameters, binarization) is drawn for the
  whole global batch from the same RNG stream on every rank, and each rank keeps its rows. So
  the ranks' RNGs stay equal, a checkpoint's RNG state is every rank's, and a run resumes under
  any N. Dropout masks too (nets.GlobalBatchDropout): nn.Dropout would give row i of every
  rank the same mask, the ranks' generators being equal.
- Each trained network is wrapped in its own DDP (`GenerativeModel.parallelize`), which
  all-reduces (averages) its gradients during backward: the average of the ranks' gradients of
  their B / N-row mean losses is the gradient of the B-row mean loss, when each row's loss
  depends on that row alone. A model that takes its gradients itself (vaegan's autograd.grad,
  the translation models' backward(inputs=...): `averages_own_gradients`) is not wrapped and
  averages them in one all_mean_ per update instead, the same mean.
- Rank 0 alone writes files; the others compute.

What N ranks compute, against one process:
- Nets without batch norm: the same gradients, so the same weights, to float rounding
  (tests/test_ddp.py: 2 ranks against 1 for dcgan, vae, wgan-gp, lazy R1 with ADA, aae, bigan,
  ali with its dropout, vaegan, pix2pix, cyclegan with its pools and unit).
- Batch norm: each rank normalises by the statistics of its own B / N rows, and keeps its own
  running statistics (the trainer turns off DDP's broadcast of rank 0's buffers; rank 0's are
  saved, and every rank resumes from them). That is batch norm over B / N rows: a different,
  equally valid training run, close to the one-process run but not equal to it.
  `sync_bn=true` (SyncBatchNorm, GPUs only) normalises by the global batch's statistics
  instead, and the running statistics then agree.
- Batch norm is in the built-in nets by default. gan: G (g_norm=batch, in every preset) and D
  (d_norm=batch; layer in wgan-gp, none in sngan and cgan); `g_norm=none|layer` and
  `d_norm=none|layer` take it out. vae (beta-vae, cvae): encoder and decoder (norm=batch);
  `norm=none|layer`. ae, aae and bigan (ali): encoder and decoder / generator (norm=batch);
  `norm=none|layer`; aae's latent D has no norm, bigan's D has d_norm=layer (per sample) by
  default.

One process (no torchrun) is world size 1, rank 0: every helper here is then the identity and
costs nothing, so the single-process code path is the distributed one with N = 1.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

from .errors import BadInput, GanvaeError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True inside a torchrun job of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launched_rank() -> int:
    """This process's rank in its torchrun job from the environment (0 outside one), valid
    before the process group is joined and after it is left."""
    return int(os.environ.get("RANK", "0")) if launched() else 0


def world() -> World:
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return World()


def timeout_seconds() -> float:
    """How long a rank waits for the others in one collective before it gives up
    (GANVAE_DDP_TIMEOUT, seconds; 1800 by default, gloo's own default). A killed rank is noticed
    at once (its sockets close); this bounds a rank that hangs instead, and must cover what rank
    0 does alone while the others wait (compare's curve points, an evaluator trained first)."""
    text = os.environ.get("GANVAE_DDP_TIMEOUT", "1800")
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise BadInput(f"GANVAE_DDP_TIMEOUT={text!r}: give a positive number of seconds")
    return value


def init(device: str) -> World:
    """Join the torchrun job (gloo on CPU, NCCL on CUDA); a no-op outside one.

    Args:
        device: the run's --device ("auto", "cpu", "cuda", "cuda:N"); under torchrun each rank
            takes GPU LOCAL_RANK whatever N says.
    """
    if not launched():
        return World()
    if dist.is_initialized():
        return world()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    backend = _backend(cuda)
    if cuda:
        # NCCL takes one GPU per process; gloo (GANVAE_DDP_BACKEND=gloo) may put several
        # processes on one GPU, which is how a one-GPU machine checks the multi-process path
        if local >= torch.cuda.device_count() and backend == "nccl":
            raise BadInput(f"--nproc {os.environ.get('LOCAL_WORLD_SIZE')}: this machine has "
                           f"{torch.cuda.device_count()} GPUs; give at most that many processes "
                           "(or GANVAE_DDP_BACKEND=gloo to share them, slowly)")
        torch.cuda.set_device(local % torch.cuda.device_count())
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_seconds()))
    return world()


def _backend(cuda: bool) -> str:
    """NCCL on CUDA and gloo on CPU, unless GANVAE_DDP_BACKEND names one of them."""
    chosen = os.environ.get("GANVAE_DDP_BACKEND", "").strip().lower()
    if chosen and chosen not in ("nccl", "gloo"):
        raise BadInput(f"GANVAE_DDP_BACKEND={chosen}: choose nccl or gloo (or leave it unset)")
    if chosen == "nccl" and not cuda:
        raise BadInput("GANVAE_DDP_BACKEND=nccl: NCCL needs CUDA; on the CPU use gloo (or leave it unset)")
    return chosen or ("nccl" if cuda else "gloo")


def device_for(device: str) -> str:
    """The rank's own device: under torchrun on CUDA, GPU LOCAL_RANK (modulo the GPUs there
    are, where gloo shares them)."""
    w = world()
    if w.size > 1 and device != "cpu" and torch.cuda.is_available():
        return f"cuda:{w.local_rank % torch.cuda.device_count()}"
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rows(n_global: int) -> slice:
    """This rank's rows of a global batch of n_global (a multiple of the world size)."""
    w = world()
    n = n_global // w.size
    return slice(w.rank * n, (w.rank + 1) * n)


def draw_rows(draw: Callable[[int], torch.Tensor], n: int, dim: int = 0) -> torch.Tensor:
    """This rank's n rows of a draw for the global batch: draw(n * world size), narrowed along
    `dim` (the batch axis) to rows rank * n ... (rank + 1) * n. On one process, draw(n)."""
    w = world()
    if w.size == 1:
        return draw(n)
    return draw(n * w.size).narrow(dim, w.rank * n, n)


def randn_rows(like: torch.Tensor) -> torch.Tensor:
    """N(0, 1) noise of like's shape, dtype and device, rows (dim 0) drawn for the global batch."""
    return draw_rows(lambda m: torch.randn((m, *like.shape[1:]), dtype=like.dtype, device=like.device),
                     like.shape[0])


def randn(n: int, *shape: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """N(0, 1) float32 noise (n, *shape) for this rank's n rows of the global batch."""
    return draw_rows(lambda m: torch.randn((m, *shape), device=device), n)


def all_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum t over the ranks in place (identity on one process); every rank must call it."""
    if world().size > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_mean_(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over the ranks, in place, in one collective: the
    gradient averaging of a model that takes its gradients with torch.autograd.grad or
    backward(inputs=...) itself instead of through DDP wrappers. Every rank must pass tensors
    of the same shapes in the same order (identity on one process)."""
    w = world()
    if w.size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])       # (sum of numels,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= w.size
    i = 0
    for t in tensors:
        t.copy_(flat[i:i + t.numel()].view_as(t))
        i += t.numel()


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """The global batch whose rows (dim 0) this rank holds a part of: every rank's x, in rank
    order (x itself on one process). For a per-image draw that must see the whole batch, such
    as CycleGAN's pool of fakes; parallel.rows gives this rank's part back."""
    w = world()
    if w.size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(w.size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def broadcast_(tensors: list[torch.Tensor]) -> None:
    """Rank 0's values of these tensors on every rank, in place (identity on one process)."""
    if world().size == 1:
        return
    for t in tensors:
        dist.broadcast(t, src=0)


def all_max(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Each value's maximum over the ranks, in one collective (identity on one process)."""
    if world().size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_mean(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Each value averaged over the ranks, in one collective (for the logged losses)."""
    w = world()
    if w.size == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(values, (t / w.size).tolist()))


def broadcast(obj):
    """Rank 0's `obj` on every rank (a small picklable value: a path, a message)."""
    if world().size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class SharedError(GanvaeError):
    """An error every rank raised alike (a bad option): only rank 0 prints it."""

    def __init__(self, message: str, exit_code: int, quiet: bool = False):
        super().__init__(message)
        self.exit_code = exit_code
        self.quiet = quiet   # True on every rank but 0


def agree(error: GanvaeError | None) -> None:
    """Every rank passes the error its checks raised (or None); if any rank failed, all raise
    the first failure, so no rank goes on to wait for a partner that has already left."""
    if world().size == 1:
        if error is not None:
            raise error
        return
    errors: list = [None] * world().size
    dist.all_gather_object(errors, None if error is None else (str(error), getattr(error, "exit_code", 1)))
    for rank, e in enumerate(errors):
        if e is not None:
            message, code = e
            # leave the job together: a rank that exits while another still talks to it makes
            # that one's gloo abort (SIGABRT) instead of exiting with the message
            quiet = not world().is_main
            barrier()
            shutdown()
            raise SharedError(message if rank == 0 or error is not None else f"rank {rank}: {message}", code, quiet)


def barrier() -> None:
    if world().size > 1:
        dist.barrier()


def lost(e: BaseException, step: int, run_dir) -> GanvaeError:
    """The error a rank gives when a collective fails because another rank is gone."""
    return GanvaeError(f"rank {world().rank}: another process of this job stopped (killed or crashed) near step "
                       f"{step}; no checkpoint was written after the last complete one. Continue with: "
                       f"ganvae train --resume {run_dir} (any --nproc)")


def launch(nproc: int, args: list[str]) -> int:
    """Run `python -m ganvae ARGS` as a torchrun job of nproc processes on this machine (what
    `ganvae train --nproc N` does); returns the job's exit code.

    The processes print their own one-line errors; when one dies of a signal (SIGKILL, the
    out-of-memory killer) the others stop at once (their collectives fail) and this says
    which one died. CPU threads are shared out: cores // nproc per process.
    """
    import logging
    import signal
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise BadInput(f"--nproc {nproc}: give at least 1 process")
    # the agent's own log lines (closing signals, restarts) are not for the user; torch gives
    # each of its modules' loggers its own level, so every one is quietened
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"ganvae-{uuid.uuid4().hex[:8]}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.2)
    try:
        elastic_launch(config, sys.executable)("-m", "ganvae", *args)
    except SignalException as e:
        # Ctrl-C / SIGTERM: the processes got it too, stopped at one step with a checkpoint and
        # said so; the agent passed it on to them and ends with the signal's exit code
        return 128 + int(e.sigval)
    except ChildFailedError as e:
        # a rank killed by a signal is the cause: the others then fail their next collective
        # and exit with an error of their own, maybe before the agent sees the killed one
        killed = [(r, f) for r, f in sorted(e.failures.items()) if f.exitcode < 0]
        rank, failure = killed[0] if killed else e.get_first_failure()
        code = failure.exitcode
        if code < 0:   # killed by a signal: the process could not say so itself
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            print(f"ganvae: error: process {rank} of {nproc} (pid {failure.pid}) was killed by {name}; the others "
                  "stopped. Continue from the last checkpoint with: ganvae train --resume RUN_DIR", file=sys.stderr)
            return 128 - code
        return code
    return 0


__all__ = ["World", "init", "world", "launched", "launched_rank", "rows", "draw_rows", "randn", "randn_rows", "all_sum_", "all_max",
           "all_mean", "broadcast", "agree", "barrier", "shutdown", "SharedError", "device_for", "launch"]
