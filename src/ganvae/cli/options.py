"""What the commands share: ganvae's option class and `option()`, the value types of --device,
N|auto and SECONDS|auto, old option spellings, shell completion of names, the data, run,
checkpoint, quiet and task options, and the helpers that load a run for a command."""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import click

from ..errors import BadInput, did_you_mean

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Option(click.Option):
    """Every option of ganvae: a default given as text (show_default="64", for an option whose
    None means "the preset's or the run's own") is shown as click shows a plain default,
    `[default: 64]`, not `[default: (64)]`: one way for all."""

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def option(*names, **kwargs):
    """click.option with ganvae's Option class (see _Option)."""
    return click.option(*names, cls=_Option, **kwargs)


def warning_line(message, category, filename, lineno, file=None, line=None):
    # Warnings meant for the user (skipped files, ...) print as one line, not with source lines.
    print(f"ganvae: warning: {message}", file=sys.stderr)


class DeviceType(click.ParamType):
    """--device, the same on every command: auto, cpu, cuda or cuda:N, checked against this
    machine before any work (a GPU that is not there is a usage error, not a crash)."""

    name = "device"

    def convert(self, value, param, ctx):
        import re

        text = str(value).strip().lower()
        if text not in ("auto", "cpu") and not re.fullmatch(r"cuda(:\d+)?", text):
            self.fail(f"{value!r}: choose auto, cpu, cuda or cuda:N", param, ctx)
        if text.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                self.fail(f"{value!r}: CUDA is not available on this machine; use auto or cpu", param, ctx)
            index = int(text.partition(":")[2] or 0)
            if index >= torch.cuda.device_count():
                self.fail(f"{value!r}: this machine has {torch.cuda.device_count()} GPU(s)", param, ctx)
        return text


DEVICE = DeviceType()
DEVICE_HELP = "auto (a GPU if there is one, else the CPU), cpu, cuda or cuda:N."


class AutoNumber(click.ParamType):
    """A number or `auto` (None: the command chooses, e.g. the NLL bound's k to fit a time);
    the command checks its range."""

    def __init__(self, kind: type, name: str, what: str):
        self.kind, self.name, self.what = kind, name, what

    def convert(self, value, param, ctx):
        if value is None or str(value).strip().lower() == "auto":
            return None
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r}: give {self.what} or auto", param, ctx)


AUTO_COUNT = AutoNumber(int, "N|auto", "a whole number")
AUTO_SECONDS = AutoNumber(float, "SECONDS|auto", "a number of seconds")


def renamed(old: str, new: str, param: str, **settings):
    """An option's old spelling, hidden but still accepted (scripts keep working) with a
    deprecation note: given, it sets `param`, the parameter the option spelt `new` now sets.
    Goes below the new option's decorator."""
    def remember(ctx, _, value):
        if value is not None:
            warnings.warn(f"{ctx.command_path} {old} is now {new}; {old} will be removed", FutureWarning)
            ctx.meta.setdefault("ganvae.renamed", {})[param] = value

    def decorate(f):
        @functools.wraps(f)
        def run(*args, **kwargs):
            return f(*args, **{**kwargs, **click.get_current_context().meta.get("ganvae.renamed", {})})

        return option(old, f"old_{param}", default=None, hidden=True, expose_value=False, callback=remember,
                      **settings)(run)

    return decorate


# Shell completion (docs: README, "Shell completion"): click completes commands and options;
# these complete the values that are names ganvae knows.

def complete_presets(incomplete: str, listed: bool = False) -> list:
    """Preset names starting with `incomplete`; listed: the last item of a comma-separated list
    (compare --models ae,va<TAB> -> ae,vae, ae,vaegan)."""
    from click.shell_completion import CompletionItem

    from ..registry import PRESET_HELP, preset_names

    head, comma, last = incomplete.rpartition(",") if listed else ("", "", incomplete)
    return [CompletionItem(head + comma + n, help=PRESET_HELP.get(n)) for n in preset_names() if n.startswith(last)]


def complete_data(incomplete: str) -> list:
    """The named datasets and the spec prefixes; after `folder:` or `npz:`, paths."""
    from click.shell_completion import CompletionItem

    from ..data import NAMED

    kind, colon, _ = incomplete.partition(":")
    if colon:   # a path: the shell's own file completion does it better than we could
        return [CompletionItem(incomplete, type="file")]
    names = [*NAMED, "shapes", "factors", "folder:", "npz:", "pairs:", "unpaired:", "task:"]
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


# ---------------------------------------------------------------------------- data options

VAL_SPLIT_HELP = ("Images held out of train for model selection, by the data seed: a fraction in (0, 1), "
                  "a count, auto (10%, at most 5,000) or 0 for none.")


LIMIT_HELP = ("Train on only N training images (class-stratified, drawn by the data seed), the little-data "
              "setting; validation, test and the evaluator stay the full data's.")


def data_options(f):
    """--data-dir, --size, --channels: how a dataset spec is read."""
    f = option("--channels", type=int, default=None,
               help="1 (grey) or 3 (RGB); default: the data's own.")(f)
    f = option("--size", type=int, default=None,
               help="Resize + centre-crop images to SIZE x SIZE; default: the data's own.")(f)
    f = option("--data-dir", type=click.Path(path_type=Path), default=None,
               help="Directory searched first for fashion-mnist / mnist.")(f)
    return f


# ---------------------------------------------------------------------------- this invocation

ARGS: list[str] = []  # the arguments of this invocation, recorded in what it writes (main sets them)


# ---------------------------------------------------------------------------- using a run

def run_options(f):
    f = checkpoint_option(f)
    f = option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)(f)
    f = option("--seed", type=int, default=0, show_default=True, help="Seed of the latent draws.")(f)
    f = option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The .png to write.")(f)
    return f


def checkpoint_option(f):
    """--checkpoint last|best|STEP on a command that loads a run (read by load_model)."""
    def remember(ctx, param, value):
        ctx.meta["ganvae.checkpoint"] = value

    return option("--checkpoint", default="last", show_default=True, expose_value=False, callback=remember,
                  metavar="last|best|STEP",
                  help="Which weights: the final model, the best on the validation split (compare's "
                       "pick, or train --keep-best), or a step whose checkpoint is kept.")(f)


def chosen_checkpoint() -> str:
    """The command's --checkpoint (last where the command has none)."""
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get("ganvae.checkpoint", "last")).strip().lower() if ctx is not None else "last"


def quiet_option(f):
    """--quiet on a task command: no progress bars (read by chosen_quiet)."""
    def remember(ctx, param, value):
        ctx.meta["ganvae.quiet"] = value

    return option("--quiet", is_flag=True, expose_value=False, callback=remember, help="No progress bars.")(f)


def chosen_quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx.meta.get("ganvae.quiet", False)) if ctx is not None else False


def load_model(run, device):
    from ..trainer import load_run, resolve_device

    return load_run(run, device=resolve_device(device), checkpoint=chosen_checkpoint())


def held_out_images(cfg, n, device, seed=0):
    """The first n test images of the run's data, float in [-1, 1], and their labels."""
    import torch

    from ..data import to_float
    from ..trainer import run_dataset

    ds = run_dataset(cfg)
    n = min(n, len(ds.test))
    x = to_float(torch.from_numpy(ds.test.x[:n])).to(device)
    y = ds.test.y[:n] if ds.test.y is not None else None
    return x, y, ds


def check_png(output: Path) -> None:
    if output.suffix.lower() != ".png":
        raise BadInput(f"-o {output}: the output must be a .png file")


# ---------------------------------------------------------------------------- task options

def task_options(f):
    """--tasks and the completion task's options, shared by eval and compare."""
    f = option("--complete-method", type=click.Choice(["auto", "latent-opt", "encoder", "gibbs"]),
               default="auto", show_default=True, help="Completion method (--tasks complete).")(f)
    f = option("--complete-n", type=click.IntRange(1), default=500, show_default=True,
               help="Test images completed per mask kind (--tasks complete).")(f)
    f = option("--masks", default="center,half,random-blocks,random-pixels", show_default=True,
               help="Mask kinds scored by --tasks complete (see ganvae complete --help).")(f)
    f = option("--task-set", "task_sets", multiple=True, metavar="TASK.KEY=VALUE",
               help="A task's setting: augment.seeds=1, augment.ratio=2, translate.n=500, probe.per_class=10,100, "
                    "compress.bits=2,4,8 (repeatable).")(f)
    f = option("--tasks", default="generate", show_default=True,
               help="What to score: generate (samples; a translator's outputs), complete (inpainting), "
                    "translate (translation against ground truth), augment (a classifier on real and "
                    "synthetic images; class-conditional models), probe, compress, disentangle (the latent "
                    "space: see ganvae probe/compress/disentangle --help), comma-separated.")(f)
    return f


def parse_task_options(tasks, masks, complete_n, complete_method, seed, task_sets=()):
    """(task names, {task: config}) from the shared options, every value checked."""
    from .. import config as C
    from ..tasks import get_task, parse_tasks
    from ..tasks.complete import CompleteConfig

    names = parse_tasks(tasks)
    configs = {}
    if "complete" in names:
        cfg = CompleteConfig(method=complete_method, n=complete_n, seed=seed,
                             masks=tuple(m.strip() for m in masks.split(",") if m.strip()))
        cfg.validate()
        configs["complete"] = cfg
    by_task: dict[str, dict] = {}
    for key, value in C.parse_set(task_sets).items():
        task, dot, field = key.partition(".")
        if not dot or task not in names or task == "generate":
            given = [n for n in names if n != "generate"]
            hint = f"no task {task!r} in --tasks{did_you_mean(task, given)}; " if dot else ""
            raise BadInput(f"--task-set {key}={value}: {hint}write TASK.KEY=VALUE for a task in --tasks "
                           f"({', '.join(given) or 'none given'})")
        by_task.setdefault(task, {})[field] = value
    for task, values in by_task.items():
        cfg = C.replace(configs.get(task) or get_task(task).Config(), values, where=f"--task-set {task}")
        cfg.validate()
        configs[task] = cfg
    return names, configs
