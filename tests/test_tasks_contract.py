"""The task contract (ganvae.tasks.base.Task): every registered task keeps it, register_task
refuses a class that does not, and the documents list the contract's members."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ganvae.registry import TASKS, register_task
from ganvae.tasks import get_task, parse_tasks
from ganvae.tasks.base import METHODS, OPTIONAL, REQUIRED, PlottingTask, Task, check_task

ROOT = Path(__file__).resolve().parents[1]
BUILT = ("complete", "translate", "augment", "probe", "compress", "disentangle")


def members(proto: type) -> set[str]:
    """The members a Protocol class declares itself (its public names)."""
    return {k for k in vars(proto) if not k.startswith("_")}


def registered() -> dict:
    parse_tasks(",".join(BUILT))   # loads (and so registers) every task module
    return dict(TASKS)


@dataclass
class _Cfg:
    n: int = 1

    def validate(self) -> None:
        pass


def _task_class(key: str, drop: str = "", **extra):
    """A class named `key` that keeps the contract, less the member `drop`, with `extra` members."""
    body = {"name": key, "title": "Test task", "Config": _Cfg,
            "applies": staticmethod(lambda model: True),
            "prepare": staticmethod(lambda ds, ev, cfg, log=print: {"config": {}}),
            "run": staticmethod(lambda model, ds, ev, cfg, prepared, figures_dir=None, log=print, progress=False: {}),
            "tables": staticmethod(lambda prepared, results: []),
            "findings": staticmethod(lambda prepared, results: [])}
    body.pop(drop, None)
    return type(f"Task{drop.title()}Less" if drop else "WholeTask", (), {**body, **extra})


# ---------------------------------------------------------------------------------------------
# every registered task keeps the contract

def test_the_protocol_declares_what_register_task_checks():
    assert members(Task) == set(REQUIRED)
    assert members(PlottingTask) == {"plot"} and "plot" in OPTIONAL


@pytest.mark.parametrize("name", BUILT)
def test_every_registered_task_satisfies_the_protocol(name):
    tasks = registered()
    cls = tasks[name]
    assert get_task(name) is cls and cls.name == name
    assert isinstance(cls, Task)          # the class object is the Task (runtime_checkable)
    check_task(cls)                       # what register_task checked at import, again
    assert isinstance(cls, PlottingTask) == hasattr(cls, "plot")   # how the report tests for a figure
    cls.Config().validate()               # Config() gives valid defaults


def test_registered_tasks_are_exactly_the_built_in_ones():
    assert set(registered()) == set(BUILT)
    assert [n for n, cls in registered().items() if isinstance(cls, PlottingTask)] == ["compress"]


@pytest.mark.parametrize("name", BUILT)
def test_every_task_method_has_the_protocols_parameters_and_defaults(name):
    """The names, order and defaults callers rely on (run is called positionally, prepare's log
    and run's figures_dir / log / progress may be left out)."""
    cls = registered()[name]
    for meth in METHODS + (("plot",) if hasattr(cls, "plot") else ()):
        want = inspect.signature(getattr(PlottingTask if meth == "plot" else Task, meth)).parameters
        got = inspect.signature(getattr(cls, meth)).parameters
        assert list(got) == list(want), (name, meth)
        assert [p.default for p in got.values()] == [p.default for p in want.values()], (name, meth)


# ---------------------------------------------------------------------------------------------
# register_task refuses a class that breaks it

def test_register_task_refuses_a_class_without_run():
    cls = _task_class("contract-test-no-run", drop="run")
    with pytest.raises(TypeError, match=r"TaskRunLess.*no `run`"):
        register_task(cls)
    assert "contract-test-no-run" not in TASKS          # nothing registered
    assert not isinstance(cls, Task)


@pytest.mark.parametrize("drop", REQUIRED)
def test_register_task_names_every_missing_member(drop):
    with pytest.raises(TypeError, match=rf"`{drop}`"):
        check_task(_task_class("contract-test-missing", drop=drop))


def test_register_task_refuses_instance_methods_a_bad_config_and_bad_optional_members():
    def applies(self, model):   # would be called as applies(model) on the class: self = model
        return True

    @dataclass
    class NoDefault:
        n: int

        def validate(self) -> None:
            pass

    cases = [({"applies": applies}, "`applies` is an instance method"),
             ({"Config": dict}, "not a dataclass"),
             ({"Config": NoDefault}, "fields without a default: n"),
             ({"name": ""}, "`name` is ''"),
             ({"plot": 3}, "`plot` is not callable"),
             ({"uses_evaluator": "no"}, "`uses_evaluator` is 'no', not bool")]
    for extra, why in cases:
        with pytest.raises(TypeError, match=re.escape(why)):
            check_task(_task_class("contract-test-bad", **extra))
    with pytest.raises(TypeError, match="not a class"):
        check_task(lambda: None)


def test_register_task_accepts_and_registers_a_whole_class():
    cls = _task_class("contract-test-whole")
    try:
        assert register_task(cls) is cls and TASKS["contract-test-whole"] is cls
        assert isinstance(cls, Task) and not isinstance(cls, PlottingTask)
    finally:
        TASKS.pop("contract-test-whole", None)


def test_a_name_another_task_holds_is_refused_and_nothing_replaced():
    """A plugin reusing a built-in task's name would replace it silently: refused, naming both."""
    from ganvae.registry import MODELS, ensure_loaded, register_model

    ensure_loaded()                                         # the model families register on import

    builtin = get_task("probe")                             # (loads its module)
    with pytest.raises(TypeError, match=r"task name 'probe' is taken by ganvae\.tasks\.probe\.ProbeTask"):
        register_task(_task_class("probe"))
    assert TASKS["probe"] is builtin
    assert register_task(builtin) is builtin                # the same class again (a reload): fine
    vae = MODELS["vae"]
    with pytest.raises(TypeError, match=r"model family name 'vae' is taken by ganvae\.models\.vae\.VAE"):
        register_model("vae")(type("MyVAE", (), {}))
    assert MODELS["vae"] is vae


# ---------------------------------------------------------------------------------------------
# the documents list the contract

def test_the_base_module_docstring_lists_every_member_with_the_protocols_parameters():
    import ganvae.tasks.base as base

    doc = base.__doc__
    listed = set(re.findall(r"^    ([A-Za-z_]+)\b", doc, re.M))
    assert listed == set(REQUIRED) | set(OPTIONAL)
    for meth in METHODS + ("plot",):
        params = list(inspect.signature(getattr(PlottingTask if meth == "plot" else Task, meth)).parameters)
        assert f"    {meth}({', '.join(params)})" in doc, meth
    for proto in (Task, PlottingTask):   # and every member has its own docstring
        for name in members(proto):
            member = vars(proto)[name]
            assert inspect.getdoc(getattr(member, "fget", None) or getattr(member, "__func__", member)), name


def test_architecture_points_to_the_contract_and_names_its_members():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Adding a task", 1)[1].split("\n## ", 1)[0]
    assert "src/ganvae/tasks/base.py" in section
    for name in set(REQUIRED) | set(OPTIONAL):
        assert re.search(rf"`{name}\b", section), name
