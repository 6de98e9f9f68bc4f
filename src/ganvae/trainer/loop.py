"""The loop: data on the device, stepping, stopping, logging, samples and checkpoints.

It knows no model: it calls `model.train_step(x, step)` and logs whatever scalars come back
(minGPT's Trainer; the phases of each model live in the model, as in StyleGAN2-ADA). What
ends or rewinds a run mid-loop (signals, divergence, a lost DDP partner) is in guards.py.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from pathlib import Path

import torch

from .. import parallel
from ..augment import augment_data, parse_data_augment
from ..checkpoint import load_state, save_state
from ..data import ImageDataset, to_float, to_uint8
from ..data.binarize import binarize_batch
from ..errors import BadInput, GanvaeError
from ..files import write_json
from ..images import save_grid
from ..models.base import has_fitted_prior
from .config import RunConfig, check_precision, parse_budget, resolve_device, resolve_precision
from .guards import StopSignals, is_lost_peer, divergence, roll_back, step_is_finite, stopped
from .runs import checkpoints, prior_images, training_images
from .schedule import check_schedule, make_schedulers, rebase, restore, state as schedule_state, step_all


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
        from ..callbacks import CSVLogger, as_callback, has_step_hook

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
        if self.t.keep_best != "none":   # --keep-best: checked on every rank, scored on rank 0 (best.py)
            from .best import BestKeeper, check

            check(cfg, model, data, self.run_dir)
            if self.is_main:   # first: the callbacks after it see summary.json's `best` in on_end
                self.callbacks.insert(0, BestKeeper(cfg, data, self.run_dir))
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
            raise BadInput(f"{cfg.preset or model.name}: not trainable with several processes (its class does not "
                           "declare ddp_ready; every built-in model does); train it with one process (no --nproc)")
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
        check_schedule(self.t, self.max_steps)
        self.budget = parse_budget(self.t.budget) if self.t.budget else None
        # lr_schedule / lr_warmup: one LambdaLR per optimizer, made in fit() (schedule.py); none
        # on the constant schedule. `lrs`: {"lr/<optimizer>": rate} of the last update, logged.
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        self.lrs: dict[str, float] = {}
        # the data order: one permutation per epoch from a generator we can save and restore
        self.data_gen = torch.Generator().manual_seed(self.t.seed)
        self.perm = None
        self.perm_a = None   # unpaired translation data: the input domain's own order
        self.y_train = None  # a class-conditional model's training labels (on the device, in fit)
        if model.translation:
            from .builder import check_translation_data   # (build imports this module)

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
            "sched": schedule_state(self.schedulers),   # {} on the constant schedule
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
        # (a checkpoint from before schedules has no "sched": the schedule takes up at its step)
        restore(self.schedulers, self.model.optimizers(), state.get("sched") or {}, self.step)
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
        from ..files import atomic_write
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
        self._base_lrs()   # (before the schedulers: they set the rates to their step-0 values)
        self.schedulers = make_schedulers(self.model.optimizers(), self.t, self.max_steps)
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
        signals = StopSignals()
        signals.install()
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
                if signals.received and self.world.size == 1:
                    self._stop = signals.first
                if self._stop:
                    raise stopped(self, self._stop)
                x = self._batch(x_train, a_train)
                # the model autocasts its own forwards (see models/base.py): its losses and
                # optimizer steps stay in float32
                out = model.train_step(x, self.step)
                if not self._finite(out, signals.first):  # rolled back to the last good checkpoint
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
                # the schedules on to the next step's rates, before this step's checkpoint saves
                # them; `lrs`: the rates this step ran at, for its log row
                self.lrs = step_all(self.schedulers)
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
            if self.world.size > 1 and is_lost_peer(e):
                raise parallel.lost(e, self.step, self.run_dir) from None
            raise
        finally:
            model.parallelize(None)
            signals.restore()
            if bar is not None:
                bar.close()
            if metrics is not None:
                metrics.close()
            if writer is not None:
                writer.close()
        return self._finish(x_train, fixed_noise, fixed_state, x_fixed)

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
        ok, vals = step_is_finite(out, self.model)
        if self.world.size > 1:
            elapsed = self.elapsed + time.perf_counter() - self._t_step
            bad_any, stop, self._elapsed = parallel.all_max([float(not ok), float(signum), elapsed], self._comm_device)
            self._stop = self._stop or int(stop)
            ok = not bad_any
        if ok:
            return True
        go_on = roll_back(self, divergence(self.step, out, vals, self.model))
        rebase(self.schedulers)   # the lowered rates are the schedules' base from here on
        return go_on

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
               "images_per_second": round(rate, 1), **{k: round(v, 6) for k, v in scalars.items()},
               **self.lrs}   # (not rounded: 6 decimals would leave a rate of 2e-4 two digits)
        metrics.write(json.dumps(row) + "\n")
        metrics.flush()
        for k, v in {**scalars, **self.lrs}.items():
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
            from ..images import translation_grid

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
