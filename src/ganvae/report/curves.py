"""Moved: this module is ganvae.comparison.curves now (src/ganvae/comparison/curves.py).

The old import path works for one release: every name of the moved module is importable from
here with a DeprecationWarning. It holds none of them itself: the names are served by the
module's __getattr__, so every use goes through the warning (and a monkeypatch of a name here
would not reach the code: patch ganvae.comparison.curves).
"""

from __future__ import annotations

import importlib
import warnings


def __getattr__(name: str):
    moved = importlib.import_module("ganvae.comparison.curves")
    if name == "__all__" and hasattr(moved, name):   # (`import *`: each name then warns)
        return moved.__all__
    if name.startswith("__") or not hasattr(moved, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"ganvae.report.curves is now ganvae.comparison.curves; import {name} from there",
                  DeprecationWarning, stacklevel=2)
    return getattr(moved, name)


def __dir__() -> list[str]:
    return sorted(n for n in dir(importlib.import_module("ganvae.comparison.curves")) if not n.startswith("__"))
