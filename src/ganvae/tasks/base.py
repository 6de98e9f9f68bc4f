"""The task contract: what every class registered with `register_task` provides, and when each
member is used. A task is its class, never an instance: the registry (ganvae.registry.TASKS)
holds the class object, and callers read its attributes and call its static methods on it, so
the class object itself is what satisfies `Task` (PEP 544: class objects as implementations).

Required members (checked by `register_task` at import time, `check_task` below):

    name        str: the registry key: `--tasks NAME`, `--task-set NAME.KEY=VALUE`, the files
                tasks/NAME.json of a comparison and of each of its runs, the report's anchor
    title       str: the report section's heading (kept in the comparison's results)
    Config      a dataclass class with a `validate()` method (TaskConfig) whose every field has a
                default: `Config()` is the task's default settings, `dataclasses.asdict` of one
                is the cache key of its results
    applies(model) -> bool
                whether the task can run on this trained model
    prepare(ds, ev, cfg, log) -> dict
                what is the same for every model (inputs, masks, baselines, reference
                features), computed once per `ganvae eval` call or comparison
    run(model, ds, ev, cfg, prepared, figures_dir, log, progress) -> dict
                one model's results (JSON-able); its figures written to figures_dir
    tables(prepared, results) -> list[dict]
                what the terminal and the report show
    findings(prepared, results) -> list[str]
                one-line conclusions for the report

Optional members (callers test for them with hasattr / getattr and a default):

    plot(prepared, results) -> matplotlib Figure
                one figure of every model's results, shown under the task's tables (compress's
                rate-distortion curve); `report.html.task_sections` calls it where
                `hasattr(task, "plot")`, i.e. where `isinstance(task, PlottingTask)`
    uses_evaluator  bool, default True: False when the task scores no images in the evaluator's
                features, so `ganvae eval --tasks` trains or loads no evaluator for it (`ev` is
                then None when no task of the call uses one)
    needs       str, default "": what a model needs for `applies`, said when it does not apply
    group       str, default None: a heading the report puts over consecutive tasks of one group

`generate` (sample quality) is no registered task: every comparison scores it.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..data.base import ImageDataset
    from ..evaluators import Evaluator
    from ..models.base import GenerativeModel

# what `register_task` checks, in the order of the contract
ATTRIBUTES = ("name", "title")                                      # non-empty strings
METHODS = ("applies", "prepare", "run", "tables", "findings")        # static methods
REQUIRED = ATTRIBUTES + ("Config",) + METHODS
# the optional members and the value a caller assumes where a task has none (plot: no figure)
OPTIONAL: dict[str, Any] = {"plot": None, "uses_evaluator": True, "needs": "", "group": None}


class TaskConfig(Protocol):
    """A task's settings: a dataclass whose every field has a default, with `validate()`, which
    raises BadInput naming the setting to change. Callers build it with `Config()` (defaults),
    `config.from_dict(task.Config, ...)` (compare.json's task_configs) or `config.replace` (the
    command line's --task-set), validate it before any work, and key the cached results on
    `dataclasses.asdict` of it."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def validate(self) -> None: ...


@runtime_checkable
class Task(Protocol):
    """The contract of a task class (see the module docstring). Declared read-only (properties)
    for the attributes and static for the methods, because the class object is the
    implementation: `_check: Task = CompletionTask` is what a type checker verifies."""

    @property
    def name(self) -> str:
        """The registry key (`--tasks NAME`), also the name of the task's result files."""
        ...

    @property
    def title(self) -> str:
        """The report section's heading."""
        ...

    @property
    def Config(self) -> type[TaskConfig]:
        """The task's settings dataclass; `Config()` gives its defaults."""
        ...

    @staticmethod
    def applies(model: GenerativeModel) -> bool:
        """Whether the task can run on `model` (a trained model, loaded, in eval use).

        Called by `evaluate_tasks` for every task before any runs (one that does not apply is
        a BadInput naming `needs`) and by a comparison before each run (a model it does not
        apply to is skipped and logged)."""
        ...

    @staticmethod
    def prepare(ds: ImageDataset, ev: Evaluator | None, cfg: Any, log: Callable[[str], object] = print) -> dict:
        """What every model of a comparison shares, computed once: inputs, masks, baselines'
        and the originals' scores, reference features.

        Args:
            ds: the dataset the models are scored on (its test split, with train for
                baselines); a comparison's own, or eval's run data or `--data`.
            ev: the evaluator (features, class probabilities); None in `ganvae eval` when no
                task of the call has `uses_evaluator` True.
            cfg: an instance of this task's `Config` (typed Any here: each task narrows it to its
                own Config class); prepare validates it.
            log: one line of progress text at a time.
        Returns:
            a dict that holds "config": dataclasses.asdict(cfg) (the cache key a comparison
            compares with) and anything else run() needs; arrays may be in it. Its JSON-able part
            (`tasks.task_summary`: ndarrays left out, "masks" by their keys) is the summary that
            a comparison writes to tasks/<name>.json and that tables / findings / plot receive.

        Called once by `evaluate_tasks`, and by a comparison when its saved summary's config is
        not this one's or when some model's result must be computed afresh."""
        ...

    @staticmethod
    def run(model: GenerativeModel, ds: ImageDataset, ev: Evaluator | None, cfg: Any, prepared: dict,
            figures_dir: str | Path | None = None, log: Callable[[str], object] = print,
            progress: bool = False) -> dict:
        """One model's results: scores, timings, and the name of its figure.

        Args:
            model, ds, ev, cfg: as for applies / prepare (the same cfg prepare had).
            prepared: prepare()'s whole dict (arrays included), never its JSON summary.
            figures_dir: the folder to write figures into, a str or a Path (a comparison:
                runs/<run>/figures; `evaluate_tasks` passes its own); None: write none.
            log: one line of progress text at a time.
            progress: whether to show progress bars.
        Returns:
            a JSON-able dict; "figure": the file name of its figure inside figures_dir, where it
            wrote one (the report shows seed 0's). A comparison adds "config" and "seconds" to it
            and keeps it in runs/<run>/tasks/<name>.json, reused while the config is the same.

        Called after prepare, once per model (per seed) on which the task applies: every time by
        `evaluate_tasks`; by a comparison where no result with this config is saved yet."""
        ...

    @staticmethod
    def tables(prepared: dict, results: dict[str, list[dict]]) -> list[dict]:
        """What the terminal and the report show.

        Args:
            prepared: prepare()'s JSON summary (`tasks.task_summary`; read back from
                tasks/<name>.json when a comparison reuses it or a report is rebuilt).
            results: {model name: [run() results, one per seed]}.
        Returns:
            tables, each {"title": str, "columns": [(key, label, higher is better: True, False,
            or None for a column never ranked)], "rows": [{"name", "kind": "model" | "baseline"
            | "floor", key: value, key + "_std": its std over seeds or None, "method": optional}],
            "n": optional count of images}; the report bolds the best value of each ranked
            column among the model and baseline rows.

        Called by `evaluate_tasks` (one model), by a comparison after every run, and by the
        report each time it is built (`report.html.task_sections`: a KeyError there falls back to
        the tables saved in the results)."""
        ...

    @staticmethod
    def findings(prepared: dict, results: dict[str, list[dict]]) -> list[str]:
        """One-line conclusions for the report, from the same arguments as tables().

        Called by a comparison after every run and by the report each time it is built."""
        ...


@runtime_checkable
class PlottingTask(Task, Protocol):
    """A task with the optional `plot`: one figure of every model's results under its tables."""

    @staticmethod
    def plot(prepared: dict, results: dict[str, list[dict]]) -> Figure:
        """A matplotlib figure of every model's results, from the same arguments as tables().

        Called by the report each time it is built, where `hasattr(task, "plot")`."""
        ...


def check_task(cls: object) -> None:
    """Raise TypeError, naming `cls` and every member it lacks or gets wrong, unless the class
    keeps the task contract as far as can be seen without running it: `name` and `title`
    non-empty strings, `Config` a dataclass with `validate` whose fields all have defaults, the
    methods (and `plot`, where there is one) callable on the class itself (static, not instance
    methods), and the optional attributes of their types. `register_task` calls it."""
    what = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
    if not isinstance(cls, type):
        raise TypeError(f"register_task: {what} is not a class; a task is a class of static methods "
                        "(ganvae.tasks.base.Task)")
    problems = []
    for attr in ATTRIBUTES:
        value = getattr(cls, attr, None)
        if not hasattr(cls, attr):
            problems.append(f"no `{attr}`")
        elif not isinstance(value, str) or not value:
            problems.append(f"`{attr}` is {value!r}, not a non-empty string")
    config = getattr(cls, "Config", None)
    if config is None:
        problems.append("no `Config` (the settings dataclass)")
    elif not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        problems.append(f"`Config` is {config!r}, not a dataclass")
    else:
        if not callable(getattr(config, "validate", None)):
            problems.append(f"`Config` ({config.__qualname__}) has no validate()")
        bare = [f.name for f in dataclasses.fields(config) if f.init and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING]
        if bare:
            problems.append(f"`Config` ({config.__qualname__}) has fields without a default: {', '.join(bare)}")
    for meth in METHODS + tuple(m for m in ("plot",) if hasattr(cls, m)):
        if not hasattr(cls, meth):
            problems.append(f"no `{meth}`")
        elif inspect.isfunction(inspect.getattr_static(cls, meth)):
            problems.append(f"`{meth}` is an instance method; make it a @staticmethod (callers call it on the class)")
        elif not callable(getattr(cls, meth)):
            problems.append(f"`{meth}` is not callable")
    for attr, kinds in (("uses_evaluator", (bool,)), ("needs", (str,)), ("group", (str, type(None)))):
        if hasattr(cls, attr) and not isinstance(getattr(cls, attr), kinds):
            problems.append(f"`{attr}` is {getattr(cls, attr)!r}, not {' or '.join(k.__name__ for k in kinds)}")
    if problems:
        raise TypeError(f"register_task: task class {what} does not keep the task contract "
                        f"(ganvae.tasks.base.Task): {'; '.join(problems)}")
