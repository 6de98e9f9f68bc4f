"""Model selection on the validation split: the scores a checkpoint is chosen by.

`ganvae compare` measures a quick FD at its curve points and keeps the best one
(comparison/curves.py); `ganvae train --keep-best` scores every checkpoint and keeps the best
(trainer/best.py). Both score here, so the same weights get the same number in either:

    fd     the quick FD: n samples drawn with a fixed seed, against the validation images, in
           the features of the dataset's evaluator (evaluators.get_evaluator, trained and
           cached once per dataset); lower is better
    nelbo  -ELBO in nats per image of the first n validation images, one posterior draw each
           from a fixed seed (models with a likelihood: VAEs); lower is better

Both are seeded: the same weights always give the same score. A quick FD is biased upwards by
its sample size (the bias falls like 1/n), so scores are comparable only at one n: a run keeps
its n in every row it records, and a resumed run must keep it too.

`SELECTORS` is the registry `--keep-best` names; heavy imports (the evaluator, the metrics) wait
until a selector is made, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import torch

# samples per quick FD: the largest of compare's curve_n (comparison/scoring.py CURVE_N); below
# 1,000 samples an FD in the evaluator's 128 features is mostly its own bias
QUICK_FD_N = 1000


@torch.no_grad()
def sample_features(model, ev, n: int, seed: int, inputs: np.ndarray | None = None) -> np.ndarray:
    """The evaluator's features (n, F) of n images the model generates from `seed` (for a
    translation model: its translations of the first n `inputs`, fewer if there are fewer):
    the sample side of every quick FD."""
    from .evaluation import generate

    fake = generate(model, n, seed, 500, inputs=inputs)   # (n, C, H, W) uint8
    feats, _ = ev.features_and_probs(fake)
    return feats


def quick_fd(model, ev, real_feats: np.ndarray, n: int, seed: int,
             inputs: np.ndarray | None = None) -> tuple[float, int]:
    """(FD of n seeded samples against `real_feats`, the number of samples scored)."""
    from .metrics import fd_from_features

    feats = sample_features(model, ev, n, seed, inputs)
    return fd_from_features(real_feats, feats), len(feats)


@torch.no_grad()
def validation_nelbo(model, x_val: np.ndarray, n: int, seed: int, binarize: str = "none",
                     batch: int = 500) -> tuple[float, int]:
    """(-ELBO in nats per image, mean over the first n uint8 images x_val (N, C, H, W), the
    number of images): one posterior draw each from `seed`. Data trained binarized
    (binarize != "none") is scored on one fixed draw of it, as `ganvae eval` scores it."""
    from .data import to_float
    from .data.binarize import binarize_static

    x = x_val[:min(n, len(x_val))]
    if binarize != "none":
        x = binarize_static(x, seed)
    gen = torch.Generator().manual_seed(seed)   # (one stream over the batches, as encoder_metrics)
    elbo = torch.cat([model.elbo(to_float(torch.from_numpy(x[i:i + batch]).to(model.device)), generator=gen)
                      for i in range(0, len(x), batch)])   # (n,)
    return -float(elbo.mean()), len(x)


class Selector:
    """One score a checkpoint is chosen by: made once per run with its data (the evaluator and
    the real features are prepared then), called per checkpoint. Lower is better."""

    metric: ClassVar[str] = ""                # the name recorded in rows and point.json
    title: ClassVar[str] = ""                 # in log lines and errors
    needs_likelihood: ClassVar[bool] = False  # only for models with has_likelihood (an ELBO)

    @staticmethod
    def count(ds, n: int) -> int:
        """How many samples (or images) a call with n scores on `ds`: the n in its rows."""
        return n

    def __call__(self, model, n: int, seed: int) -> tuple[float, int]:
        raise NotImplementedError


class QuickFD(Selector):
    metric, title = "fd", "validation FD"

    def __init__(self, ds, device, log: Callable[[str], None] = print, binarize: str = "none"):
        from .evaluation import real_features
        from .evaluators import get_evaluator

        # the evaluator of the dataset as compare uses it (it says so when it trains one)
        self.ev = get_evaluator(ds, device=device, log=log)
        self.real_feats, _ = real_features(self.ev, ds.val.x, "val", log)   # cached by the images
        self.inputs = ds.val.a   # translation models translate the held-out inputs

    @staticmethod
    def count(ds, n: int) -> int:
        return n if ds.val.a is None else min(n, len(ds.val.a))

    def __call__(self, model, n: int, seed: int) -> tuple[float, int]:
        return quick_fd(model, self.ev, self.real_feats, n, seed, self.inputs)


class ValidationNELBO(Selector):
    metric, title, needs_likelihood = "nelbo", "validation -ELBO", True

    def __init__(self, ds, device, log: Callable[[str], None] = print, binarize: str = "none"):
        self.x, self.binarize = ds.val.x, binarize

    @staticmethod
    def count(ds, n: int) -> int:
        return min(n, len(ds.val))

    def __call__(self, model, n: int, seed: int) -> tuple[float, int]:
        return validation_nelbo(model, self.x, n, seed, self.binarize)


# --keep-best NAME -> the selector; "none" (the default) keeps no best
SELECTORS: dict[str, type[Selector]] = {"fd": QuickFD, "elbo": ValidationNELBO}


__all__ = ["QUICK_FD_N", "SELECTORS", "Selector", "QuickFD", "ValidationNELBO", "quick_fd", "sample_features",
           "validation_nelbo"]
