"""Moved: `ganvae compare`'s runner is the package ganvae.comparison now (src/ganvae/comparison/).

This module keeps the old import path working for one release: every name defined here before
(and the curve recorder and the scoring module it imported) is still importable from it, each
with a DeprecationWarning that says where it lives now. It holds none of them itself: the names
are served by the module's __getattr__, so every use goes through the warning.
"""

from __future__ import annotations

import importlib
import warnings

# name here -> (its module under ganvae.comparison now, its name there)
_MOVED = {
    "compare": ("runner", "compare"),
    "CompareConfig": ("config", "CompareConfig"),
    "own_stop": ("config", "own_stop"),
    "shared_overrides": ("config", "shared_overrides"),
    "task_config": ("config", "task_config"),
    "_run_name": ("results", "run_name"),
    "RESULTS_SCHEMA": ("results", "RESULTS_SCHEMA"),
    "CSV_HEAD": ("results", "CSV_HEAD"),
    "write_csv": ("results", "write_csv"),
    "budget_text": ("results", "budget_text"),
    "_timing": ("results", "timing_of"),
    "_write_replay": ("results", "write_replay"),
    "_figures": ("figures", "model_figures"),
    "_scoring": ("score", "scoring_sizes"),
    "_likelihood_plan": ("score", "_likelihood_plan"),
    "_score_model": ("score", "_score_model"),
    "_best_model": ("score", "_best_model"),
    "_finish_one": ("score", "finish_one"),
    "_sizes_before_scoring": ("score", "sizes_before_scoring"),
    "_selection_split": ("runner", "_selection_split"),
    "_train_one": ("runner", "_train_one"),
    "_adopt_saved_sizes": ("runner", "_adopt_saved_sizes"),
    "_check_models": ("runner", "_check_models"),
    "_set_up": ("runner", "_set_up"),
    "_run_tasks": ("runner", "_run_tasks"),
    "CurveRecorder": ("curves", "CurveRecorder"),
    "scoring": ("scoring", None),       # (the module itself)
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, there = _MOVED[name]
    home = f"ganvae.comparison.{module}"
    if there is None:
        warnings.warn(f"ganvae.report.compare is now ganvae.comparison; import {home}", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(home)
    public = "ganvae.comparison" if there in ("compare", "CompareConfig", "run_name") else home
    warnings.warn(f"ganvae.report.compare is now ganvae.comparison; import {there} from {public}",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(home), there)


def __dir__() -> list[str]:
    return sorted(_MOVED)
