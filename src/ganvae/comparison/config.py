"""A comparison's settings (`CompareConfig`, written as OUT/compare.json) and the helpers that
read a model spec's share of them: its own stopping point, its share of --set, a task's Config."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.base import parse_val_split
from ..errors import BadInput
from ..registry import parse_model_spec, resolve


@dataclass
class CompareConfig:
    data: str = "shapes"
    models: tuple[str, ...] = ("ae", "vae", "dcgan", "vaegan")
    budget: str | None = None
    steps: int | None = None
    epochs: float | None = None
    seeds: int = 1
    seed: int = 0               # the first training seed: runs use seed, seed + 1, ... seed + seeds - 1
    data_seed: int = 0          # the seed of the data's random splits (validation, --limit) and procedural data
    batch_size: int = 64
    precision: str = "fp32"
    overrides: dict = field(default_factory=dict)
    # samples for the final and best-checkpoint metrics; None: sized to the training time
    # (comparison/scoring.py), once per comparison, in OUT/scoring.json
    eval_n: int | None = None
    curve_points: int = 5       # quick evaluations during training (the last at the end)
    # samples per quick evaluation (None: sized as eval_n is): the curve and the best-checkpoint
    # choice compare points of one model with each other, so the FD's bias at small n (the same
    # at every point) cancels
    curve_n: int | None = None
    # end a model's training once its curve's FD stands this fraction above its best for two
    # points in a row (0.1: 10%), the point where a GAN's D starts to overfit; None: never
    stop_on_rise: float | None = None
    # the likelihood models' IWAE bound: None sizes k and the image count once per comparison to
    # fit nll_seconds per scoring (up to 100 and 200), measured on the first such model and kept
    # in OUT/likelihood.json, so every model's NLL is the same bound on the same images;
    # nll_seconds None: 5% of the training time within 5..20 s (comparison/scoring.py)
    nll_k: int | None = None
    nll_images: int | None = None
    nll_seconds: float | None = None
    data_dir: str | None = None
    size: int | None = None
    channels: int | None = None
    val_split: int | float | str = "auto"  # held out of train for curves and best-checkpoint choice
    limit: int | None = None    # train on N images (--limit); scores stay against the full data
    # generate (always) and the registered tasks (ganvae.tasks) every model is scored on, with
    # {task: its Config as a dict}; adding a task to a finished comparison runs only that task
    tasks: tuple[str, ...] = ("generate",)
    task_configs: dict = field(default_factory=dict)

    def validate(self) -> None:
        from ..tasks import get_task, parse_tasks

        parse_val_split(self.val_split)
        parse_tasks(self.tasks)
        for name, tc in self.task_configs.items():
            task_config(get_task(name), tc).validate()
        if not self.models:
            raise BadInput("--models: name at least one model")
        for m in self.models:
            resolve(m)  # unknown model -> BadInput before any work
        if len(set(self.models)) != len(self.models):
            raise BadInput(f"--models {','.join(self.models)}: a model is named twice")
        shared = sum(x is not None for x in (self.budget, self.steps, self.epochs))
        # a model may carry its own stopping point (`vae:train.steps=1234`: the replay of a
        # wall-clock comparison); with one for every model no shared budget is needed
        if shared > 1 or (shared == 0 and not all(own_stop(m) for m in self.models)):
            raise BadInput("give exactly one budget for every model: --budget 3m, --steps N or --epochs E")
        if self.seeds < 1 or self.seeds > 100:
            raise BadInput(f"--seeds {self.seeds}: choose 1..100")
        if self.stop_on_rise is not None and not 0 < self.stop_on_rise < 10:
            raise BadInput(f"--stop-on-rise {self.stop_on_rise}: give a fraction above the best FD, e.g. 0.1 for 10%")
        if self.stop_on_rise is not None and self.curve_points < 4:
            raise BadInput(f"--stop-on-rise needs a curve to watch: give --curve-points 4 or more "
                           f"(now {self.curve_points})")
        if self.nll_seconds is not None and not self.nll_seconds > 0:
            raise BadInput(f"--nll-seconds {self.nll_seconds}: give a positive number of seconds")
        for name in ("eval_n", "curve_points", "curve_n", "nll_k", "nll_images", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise BadInput(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")

    @property
    def budget_kind(self) -> str:
        if self.budget:
            return f"wall-clock training time of {self.budget} per model"
        if self.steps:
            return (f"{self.steps} steps per model (a step is one update of each network, and for a GAN one "
                    f"generator update after its n_critic discriminator updates, each on a batch of "
                    f"{self.batch_size})")
        if self.epochs:
            return f"{self.epochs} epochs (passes over the training split) per model"
        return "each model's own stopping point (PRESET:train.steps=N in --models)"


def config_from(values: dict, where: str) -> CompareConfig:
    """A comparison's config from what a user gave (the API's arguments, the command's options,
    a --config file with options over it), made the one way for both: typed by the dataclass
    (`where` names the source in errors), models and tasks as tuples with "generate" the first
    task (a comparison always scores samples), a budget that parses."""
    from ..config import from_dict
    from ..trainer import parse_budget

    values = dict(values)
    if isinstance(values.get("models"), str):
        values["models"] = [m.strip() for m in values["models"].split(",") if m.strip()]
    tasks = values.get("tasks")
    if tasks is not None:
        tasks = tasks.split(",") if isinstance(tasks, str) else list(tasks)   # "probe" is one task
        values["tasks"] = tuple(dict.fromkeys(("generate", *(t.strip() for t in tasks if t.strip()))))
    cfg = from_dict(CompareConfig, values, where=where)    # "90" -> budget "90", lists -> tuples
    if cfg.budget:
        parse_budget(cfg.budget)
    return cfg


def own_stop(spec: str) -> dict:
    """The stopping point a model spec carries itself: `vae:train.steps=1234` -> {"steps": "1234"}."""
    own = parse_model_spec(spec)[1]
    return {k: own[f"train.{k}"] for k in ("steps", "epochs", "budget") if f"train.{k}" in own}


def shared_overrides(cfg: CompareConfig, preset: str) -> dict:
    """compare's --set for one model: every key the model has. A mixed comparison shares one
    --set (`norm=none` reaches the VAEs, `d_norm=layer` the GANs) while each model takes only
    its own keys; run and data keys (train.*, data.*) reach every model."""
    from ..registry import takes_key

    return {k: v for k, v in cfg.overrides.items() if takes_key(preset, k)}


def task_config(task, values: dict):
    """A task's Config from a dict (compare.json's task_configs), type-checked."""
    from ..config import from_dict

    return from_dict(task.Config, values, where=f"task {task.name}")
