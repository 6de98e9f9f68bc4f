"""The trainer: data on the device, the loop, stopping, logging, samples and checkpoints.

It knows no model: it calls `model.train_step(x, step)` and logs whatever scalars come back
(minGPT's Trainer; the phases of each model live in the model, as in StyleGAN2-ADA).
Everything a run writes goes under one run directory (StyleGAN's run dirs):

    config.json  metrics.jsonl  tb/  samples/  checkpoints/step_NNNNNNNN.{safetensors,json}  model/

Resuming restores weights, optimizer states, RNG states and the data order, so on CPU a run
interrupted and resumed ends with the same weights as one that was not.

What lives where (every name is importable from `ganvae.trainer` itself):

    config.py  DataConfig, TrainConfig, RunConfig; parse_budget, resolve_device,
               resolve_precision, check_precision; split_overrides, TRAIN_KEYS, data_option_field
    loop.py    Trainer: the loop
    schedule.py  learning-rate schedules (lr_schedule, lr_warmup, lr_decay_start): one LambdaLR
               per optimizer, checkpointed with it
    guards.py  what ends or rewinds a run mid-loop: stop signals, divergence (NaN rollback),
               a lost DDP partner
    runs.py    run directories and their files: new_run_dir, checkpoints, read_summary,
               load_run, init_from, load_data, run_dataset, refit_prior, ...
    builder.py build (a model for a preset and data), spread_lr, train (the Python
               twin of `ganvae train`)
    best.py    BestKeeper: --keep-best fd|elbo, the best checkpoint on the validation split
               kept in run_dir/best (the scores themselves: ganvae.selection)
"""

from __future__ import annotations

from ..models.base import has_fitted_prior
from .builder import build, check_translation_data, spread_lr, train
from .config import (TRAIN_KEYS, DataConfig, RunConfig, TrainConfig, check_precision, data_option_field,
                     parse_budget, resolve_device, resolve_precision, split_overrides)
from .guards import is_lost_peer
from .loop import Trainer
from .runs import (LEGACY_FIELDS, legacy_val_split, load_step, checkpoints, init_from, legacy_row, load_data,
                   load_run, new_run_dir, prior_images, read_summary, refit_prior, run_dataset, slug,
                   training_images)

# the private names these had before they were public (used across modules and in tests)
_spread_lr = spread_lr
_load_data = load_data
_is_lost_peer, _legacy_val_split, _load_step = is_lost_peer, legacy_val_split, load_step

__all__ = ["Trainer", "TrainConfig", "DataConfig", "RunConfig", "train", "build", "load_run", "parse_budget"]
