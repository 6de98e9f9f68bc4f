"""The module-level `__getattr__` and `__dir__` of a module that moved (issue 33): every name of
the new module stays importable from the old path for one release, each use with a
DeprecationWarning that names the new home. The old module holds none of the names itself,
so every use goes through the warning (and a monkeypatch there would not reach the code)."""

from __future__ import annotations

import importlib
import warnings


def forward(old: str, new: str):
    """(__getattr__, __dir__) for module `old` that serve module `new`'s names."""

    def getattr_(name: str):
        moved = importlib.import_module(new)
        if name == "__all__" and hasattr(moved, name):   # (`import *`: each name then warns)
            return moved.__all__
        if name.startswith("__") or not hasattr(moved, name):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(f"{old} is now {new}; import {name} from there", DeprecationWarning, stacklevel=2)
        return getattr(moved, name)

    def dir_() -> list[str]:
        return sorted(n for n in dir(importlib.import_module(new)) if not n.startswith("__"))

    return getattr_, dir_
