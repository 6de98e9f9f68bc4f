"""Moved: this module is ganvae.comparison.scoring now (src/ganvae/comparison/scoring.py).

The old import path works for one release: every name of the moved module is importable from
here with a DeprecationWarning (report/moved.py); patch ganvae.comparison.scoring, not this.
"""

from .moved import forward

__getattr__, __dir__ = forward(__name__, "ganvae.comparison.scoring")
