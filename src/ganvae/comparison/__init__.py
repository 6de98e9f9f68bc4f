"""`ganvae compare`: every model on the same data, nets, budget and seeds; then the full suite.

Layout of the output directory (the report reads only these files):

    compare.json                 the comparison's config (a re-run must match it to resume)
    floor.json                   the real-data floor and the evaluator used
    runs/<model>-seed<s>/        a normal run directory, plus
        curve.jsonl              quick FDs on the validation split during training (FD vs compute)
        best/                    the model at the best curve point (save_pretrained)
        figures/*.png            samples, reconstructions, interpolations, traversals, embedding
        result.json              final and best-checkpoint metrics, cost; written last
    results.json, results.csv    one row per model and seed; results.json's `splits` says which
                                 split every number comes from
    report.html                  self-contained report

Two phases keep the test split out of every choice. First every model trains, its curve is
measured and its best checkpoint chosen on the validation split (held out of train by
--val-split; the models never train on it). Only then is the test split touched: the real-data
floor and the final and best models' scores. A test score that picked the checkpoint it reports
would be optimistic.

Models run one after another; a re-run of the same command skips finished runs (result.json
present), resumes an interrupted one from its last checkpoint, and scores trained ones.

The code: config.py (CompareConfig, compare.json), runner.py (compare() and its phases),
score.py (scoring one trained model), figures.py, curves.py (the curve callback), scoring.py
(how much scoring a comparison buys), results.py (results.json, results.csv, replays). The
package is `comparison`, not `compare`: importing it must never take the place of the
function `ganvae.compare` (as `evaluation` is not `evaluate`).
"""

from typing import TYPE_CHECKING

from .config import CompareConfig, config_from
from .results import run_name

if TYPE_CHECKING:
    from .runner import compare

__all__ = ["compare", "CompareConfig", "config_from", "run_name"]


def __getattr__(name: str):
    # compare() loads on first use: the runner brings the evaluation stack (evaluators, metrics,
    # every model family), which `ganvae report DIR` does not need when report.html imports
    # its helpers from this package (about 1.6 s more to import report.html, measured)
    if name == "compare":
        from .runner import compare

        return compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
