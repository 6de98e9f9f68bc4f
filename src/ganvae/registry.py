"""Registries of models and tasks: names -> classes, no if/elif chains (metrics keep theirs in
ganvae.metrics).

A model family registers its class once; presets are names for a family plus config
overrides (`beta-vae` = `vae` with beta=4), because a variant that differs by a number is
config, not a subclass.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import BadInput, did_you_mean

if TYPE_CHECKING:
    from .tasks.base import Task

MODELS: dict[str, type] = {}            # family name -> model class
PRESETS: dict[str, tuple[str, dict]] = {}  # preset name -> (family, config overrides)
PRESET_HELP: dict[str, str] = {}
# task name -> task class (ganvae.tasks); the class object itself is the Task (tasks/base.py)
TASKS: dict[str, Task] = {}
TaskClass = TypeVar("TaskClass", bound="Task")


def _check_free(registry: dict, name: str, cls: type, what: str) -> None:
    """Refuse a name another class already holds: a plugin that reused a built-in's name would
    otherwise replace it silently. The same class registered again (its module reloaded) is fine."""
    held = registry.get(name)
    if held is not None and (held.__module__, held.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"{what} name {name!r} is taken by {held.__module__}.{held.__qualname__}; "
                        f"give {cls.__module__}.{cls.__qualname__} another name")


def register_model(name: str, presets: dict[str, tuple[dict, str]] | None = None):
    """Class decorator: register a model family and its presets.

    Args:
        name: the family's registry key (also a preset with no overrides).
        presets: {preset name: (config overrides, one-line description)}.
    """

    def deco(cls):
        _check_free(MODELS, name, cls, "model family")
        cls.name = name
        MODELS[name] = cls
        PRESETS[name] = (name, {})
        # the docstring's first paragraph, joined: its first line alone may stop mid-sentence
        PRESET_HELP.setdefault(name, " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()))
        for preset, (overrides, text) in (presets or {}).items():
            PRESETS[preset] = (name, overrides)
            PRESET_HELP[preset] = text
        return cls

    return deco


def register_task(cls: TaskClass) -> TaskClass:
    """Class decorator: register a task (ganvae.tasks) under its `name`.

    The class must keep the task contract (ganvae.tasks.base.Task): a type checker sees that
    from this signature, and at import time `check_task` raises a TypeError naming the class and
    each member it lacks or gets wrong, before anything is registered.
    """
    from .tasks.base import check_task   # (only task modules register: ganvae.tasks is loaded)

    check_task(cls)
    _check_free(TASKS, cls.name, cls, "task")
    TASKS[cls.name] = cls
    return cls


# The package whose modules register the model families on import (@register_model). The
# registry names it rather than importing it: every family file imports the registry, so a
# static import back would tie the registry and all the model files into one import cycle.
# Loading by name is how a plugin registry finds its plugins (as entry points would).
FAMILY_PACKAGE = "ganvae.models"


def ensure_loaded() -> None:
    """Load the model families (each registers itself) before a lookup needs them."""
    importlib.import_module(FAMILY_PACKAGE)


def preset_names() -> list[str]:
    ensure_loaded()
    return list(PRESETS)


def parse_model_spec(spec: str) -> tuple[str, dict[str, str]]:
    """A model as compare's --models names it: a preset with optional overrides of its own,
    `PRESET:KEY=VALUE:KEY=VALUE` ('dcgan:augment=ada', 'dcgan:train.init_from=runs/0003'), so
    variants of one preset are compared side by side. -> (preset, {key: value})."""
    from .config import parse_set

    preset, *items = spec.split(":")
    if any(not item.partition("=")[1] or not item.partition("=")[0].strip() for item in items):
        raise BadInput(f"--models {spec!r}: write a variant as PRESET:KEY=VALUE[:KEY=VALUE], e.g. dcgan:augment=ada")
    return preset.strip(), parse_set(items)


def expand_sweep(models: list[str], sweep: str | None) -> list[str]:
    """compare's --sweep KEY=V1,V2,...: every model spec becomes one variant per value,
    'vae' with 'beta=0.5,4' -> ['vae:beta=0.5', 'vae:beta=4'] (a model spec's own overrides are
    kept: 'vae:latent=8' -> 'vae:latent=8:beta=0.5', ...). None: the models unchanged."""
    if not sweep:
        return models
    key, eq, values = sweep.partition("=")
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not key.strip() or not vals or ":" in key:
        raise BadInput(f"--sweep {sweep!r}: write KEY=V1,V2,..., e.g. --sweep beta=0.25,0.5,1,2,4,8")
    if len(set(vals)) != len(vals):
        raise BadInput(f"--sweep {sweep!r}: a value is named twice")
    key = key.strip()
    # the --set rule: a model without the key is compared once, unswept; a key no model has is
    # an error (a typo), before any work
    if not any(takes_key(m, key) for m in models):
        known = {k for m in models for k in model_keys(m)}
        raise BadInput(f"--sweep {key}: no model of this comparison has that key ({', '.join(models)})"
                       f"{did_you_mean(key.partition('.')[0], known)}; see ganvae config PRESET for a model's keys")
    out = []
    for m in models:
        if key in parse_model_spec(m)[1]:
            raise BadInput(f"--sweep {key}: {m!r} sets it already; sweep it or set it, not both")
        out += [f"{m}:{key}={v}" for v in vals] if takes_key(m, key) else [m]
    return out


def model_keys(preset: str) -> set[str]:
    """The --set keys a model spec takes: its config's fields (and their old names), the
    learning rate, and the run's own training keys (TRAIN_KEYS)."""
    from .config import fields_of
    from .trainer.config import TRAIN_KEYS

    cls, _ = resolve(preset)
    return set(fields_of(cls.Config)) | set(getattr(cls.Config, "renamed", {})) | {"lr"} | set(TRAIN_KEYS)


def takes_key(preset: str, key: str) -> bool:
    """Whether a shared --set / --sweep key reaches this model: its own keys, and the run and
    data keys (train.*, data.*) that reach every model."""
    return key.partition(".")[0] in ("train", "data") or key.removeprefix("model.").partition(".")[0] in model_keys(preset)


def resolve(preset: str) -> tuple[type, Any]:
    """The model class and its default config (with the preset's overrides) for `preset` (or
    the preset of a compare model spec, see parse_model_spec)."""
    ensure_loaded()
    preset = parse_model_spec(preset)[0]
    if preset not in PRESETS:
        raise BadInput(f"unknown model {preset!r}{did_you_mean(preset, PRESETS)}; choose one of: {', '.join(PRESETS)}")
    family, overrides = PRESETS[preset]
    cls = MODELS[family]
    cfg = dataclasses.replace(cls.Config(), **overrides)
    return cls, cfg
