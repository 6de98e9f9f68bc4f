"""Moved: this module is ganvae.comparison.curves now (src/ganvae/comparison/curves.py).

The old import path works for one release: every name of the moved module is importable from
here with a DeprecationWarning (report/moved.py); patch ganvae.comparison.curves, not this.
"""

from .moved import forward

__getattr__, __dir__ = forward(__name__, "ganvae.comparison.curves")
