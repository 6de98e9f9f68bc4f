"""Trainer callbacks: a user's own code at fixed points of a run, and the CSV logger built on them.

A callback subclasses `Callback` and overrides the hooks it needs; each is optional:

    on_start(trainer)          training (re)starts at trainer.step: at the start of fit (after a
                               resume's restore) and after a NaN rollback; metrics.jsonl then
                               holds exactly the rows up to that step
    on_step(trainer)           after every step
    on_log(trainer, row)       after each metrics.jsonl line is written, with that line's dict
    on_end(trainer, summary)   after summary.json is written, with its dict

They run on rank 0 only (under DDP the other ranks wait for its on_step work at a barrier), and
outside the timed training: a slow callback does not lower images_per_second or spend --budget.
A plain callable `fn(trainer)` is still accepted and runs as on_step (how compare's curve
recorder hooks in). See docs/callbacks.md.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

from .errors import BadInput
from .files import atomic_write, read_jsonl


class Callback:
    """The trainer's hooks, all no-ops here: override the ones you need (see the module docstring).

    `trainer` is the running ganvae.trainer.Trainer: read trainer.step, trainer.images,
    trainer.elapsed, trainer.run_dir, trainer.cfg and trainer.model; changing them is not part of
    the contract.
    """

    def on_start(self, trainer) -> None:
        pass

    def on_step(self, trainer) -> None:
        pass

    def on_log(self, trainer, row: dict[str, Any]) -> None:
        pass

    def on_end(self, trainer, summary: dict[str, Any]) -> None:
        pass


class StepCallback(Callback):
    """A plain callable fn(trainer) as a Callback: run after every step, as callbacks were before
    they had hooks."""

    def __init__(self, fn: Callable[[Any], object]):
        self.fn = fn

    def on_step(self, trainer) -> None:
        self.fn(trainer)


def as_callback(obj) -> Callback:
    """A Callback as given, a plain callable wrapped as its on_step; anything else is refused."""
    if isinstance(obj, Callback):
        return obj
    if callable(obj):
        return StepCallback(obj)
    raise BadInput(f"callbacks: {obj!r} is neither a ganvae.callbacks.Callback nor a callable taking the trainer")


def has_step_hook(cb: Callback) -> bool:
    """Whether `cb` does work after every step (the trainer syncs DDP ranks around only those)."""
    return type(cb).on_step is not Callback.on_step


class EarlyStopping(Callback):
    """End the run cleanly once a logged metric stops improving (Lightning's EarlyStopping, on
    metrics.jsonl's rows): after `patience` logged rows in a row without the metric beating its
    best by more than `min_delta`, it calls trainer.request_stop, so the step finishes and the
    final model and summary.json (`stopped_early` says why) are written, as at the end of a run.

    Args:
        metric: a key of metrics.jsonl's rows (e.g. "loss/total"; `ganvae train` prints them).
        patience: logged rows without improvement before stopping (rows come every log_every steps).
        mode: "min" (a loss) or "max" (an accuracy).
        min_delta: how much better than the best a value must be to count as an improvement.
    """

    def __init__(self, metric: str, patience: int = 5, mode: str = "min", min_delta: float = 0.0):
        if mode not in ("min", "max"):
            raise BadInput(f"EarlyStopping(mode={mode!r}): choose min or max")
        if patience < 1:
            raise BadInput(f"EarlyStopping(patience={patience}): must be at least 1")
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.stale = 0

    def on_start(self, trainer) -> None:
        # a resume or a NaN rollback restarts from trainer.step: judge the rows up to it again
        self.best, self.best_step, self.stale = None, None, 0
        for row in read_jsonl(Path(trainer.run_dir) / "metrics.jsonl"):
            self._see(row)

    def on_log(self, trainer, row: dict[str, Any]) -> None:
        if self.metric not in row:
            known = ", ".join(k for k in row if k not in ("step", "images_seen", "train_seconds"))
            raise BadInput(f"EarlyStopping: metrics.jsonl has no {self.metric!r}; its rows have {known}")
        self._see(row)
        if self.stale >= self.patience and trainer.stop_reason is None:
            trainer.request_stop(f"{self.metric} did not improve for {self.stale} logged rows (best "
                                 f"{self.best:.6g} at step {self.best_step}; EarlyStopping)")

    def _see(self, row: dict[str, Any]) -> None:
        value = row.get(self.metric)
        if value is None:
            return
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.best_step, self.stale = float(value), row.get("step"), 0
        else:
            self.stale += 1


class CSVLogger(Callback):
    """metrics.jsonl's rows again as a CSV file (run_dir/metrics.csv), for spreadsheets and
    pandas.read_csv: the same rows, the same column names.

    The header is the first row's keys; a row with a key not seen before (a loss logged only by
    some steps) rewrites the file with the union of the keys, in first-seen order, cells a row
    lacks left empty. On every (re)start the file is rebuilt from metrics.jsonl, which the trainer
    has just cut back to the restored step, so a resume or a NaN rollback leaves no step twice and
    none missing. Each row is appended and closed at once: a crash loses no written row.

    Args:
        path: the CSV file; default run_dir/metrics.csv.
    """

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []

    def on_start(self, trainer) -> None:
        if self.path is None:
            self.path = Path(trainer.run_dir) / "metrics.csv"
        self.rows = read_jsonl(Path(trainer.run_dir) / "metrics.jsonl")
        self._rewrite()

    def on_log(self, trainer, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))   # (the trainer calls on_start first: self.path is set)
        if any(k not in self.columns for k in row):   # a new column: the header changes, so the file does
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(row)

    def _rewrite(self) -> None:
        """The whole file from self.rows, atomically; none at all while there are no rows yet."""
        self.columns = list(dict.fromkeys(k for row in self.rows for k in row))
        if not self.rows:
            self.path.unlink(missing_ok=True)   # a run that starts over has nothing logged yet
            return

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, self.columns, restval="")
                w.writeheader()
                w.writerows(self.rows)

        atomic_write(self.path, write)


__all__ = ["Callback", "CSVLogger", "StepCallback", "as_callback", "has_step_hook"]
