"""The tasks' settings are chosen on the validation split: tasks.tuning never reads a test
image (issue 30), and the defaults are the values the recorded tuning chose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganvae.errors import BadInput
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("one_thread")
RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def test_least_regret_picks_the_candidate_never_far_from_the_best():
    from ganvae.tasks.tuning import least_regret

    # a wins one cell by a lot and loses another by 0.3; b is never more than 0.05 behind
    chosen, regret = least_regret({"a": [0.9, 0.5], "b": [0.85, 0.8], "c": [0.2, 0.1]})
    assert chosen == "b" and regret == pytest.approx({"a": 0.3, "b": 0.05, "c": 0.7})
    assert least_regret({1: [0.5, 0.5], 2: [0.5, 0.5]})[0] == 1      # a tie: the first given


@pytest.fixture
def spied(monkeypatch):
    """A labelled dataset with a validation split, and a record of every image array handed to
    the probe and to completion while tuning: none may hold a test image."""
    import ganvae.metrics.probe as probe
    import ganvae.tasks.complete as complete
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val

    ds = hold_out_val(load_dataset("shapes:n=400,n_test=100"), 100)
    test_images = {x.tobytes() for x in ds.test.x} - {x.tobytes() for x in ds.train.x} - \
        {x.tobytes() for x in ds.val.x}
    assert len(test_images) > 50
    seen = {"arrays": 0, "test": 0}

    def check(arr):
        arr = np.asarray(arr.detach().cpu() if torch.is_tensor(arr) else arr)
        seen["arrays"] += 1
        for row in arr:
            for candidate in (row, np.round((row.astype(np.float64) + 1) * 127.5), np.round(row * 255)):
                if candidate.astype(np.uint8).reshape(ds.shape).tobytes() in test_images:
                    seen["test"] += 1

    curve, comp = probe.probe_curve, complete.complete

    def probe_spy(features, *a, **k):
        for tr, te in features.values():
            if tr.shape[1] == int(np.prod(ds.shape)):      # pixel features: comparable to images
                check(tr), check(te)
        return curve(features, *a, **k)

    def complete_spy(model, x, *a, **k):
        check(x)
        return comp(model, x, *a, **k)

    monkeypatch.setattr(probe, "probe_curve", probe_spy)
    monkeypatch.setattr(complete, "complete", complete_spy)
    return ds, seen


def test_probe_tuning_reads_no_test_image(spied):
    from ganvae.tasks.tuning import tune_probe_c

    ds, seen = spied
    res = tune_probe_c(ds, cs=(1.0, 0.01), per_class=(3, 10), pca_dims=(8,), log=lambda m: None)
    assert seen["arrays"] > 0 and seen["test"] == 0
    assert res["chosen"] in (1.0, 0.01) and res["val_images"] == 100
    assert {(r["features"], r["per_class"], r["c"]) for r in res["rows"]} == {
        (f, n, c) for f in ("pixels", "pca-8") for n in (3, 10) for c in (1.0, 0.01)}
    assert all(0 <= r["val_accuracy"] <= 1 for r in res["rows"])


def test_completion_tuning_reads_no_test_image(spied):
    from ganvae.tasks.complete import CompleteConfig
    from ganvae.tasks.tuning import tune_completion
    from ganvae.trainer import build

    ds, seen = spied
    models = {p: build(p, ds, {"width": 8, "latent": 8})[0].eval() for p in ("ae", "dcgan")}
    res = tune_completion(models, ds, {"latent_weight": [0.0, 1.0]}, base=CompleteConfig(steps=3, restarts=1),
                          n=6, log=lambda m: None)
    assert seen["arrays"] == 4 and seen["test"] == 0
    assert res["chosen"]["latent_weight"] in (0.0, 1.0) and len(res["rows"]) == 4


def test_the_spy_would_see_a_test_image(spied):
    # the spy itself can fail: completing test images is caught
    from ganvae.tasks.complete import CompleteConfig, complete
    from ganvae.data import to_float
    from ganvae.trainer import build
    import ganvae.tasks.complete as cm

    ds, seen = spied
    model = build("ae", ds, {"width": 8, "latent": 8})[0].eval()
    x = to_float(torch.from_numpy(ds.test.x[:4]))
    cm.complete(model, x, torch.ones(4, 1, *ds.shape[1:]), "latent-opt", CompleteConfig(steps=1, restarts=1))
    assert seen["test"] == 4


def test_tuning_refuses_data_without_a_validation_split():
    from ganvae.data import load_dataset
    from ganvae.tasks.tuning import tune_probe_c

    with pytest.raises(BadInput, match="validation split"):
        tune_probe_c(load_dataset("shapes:n=100,n_test=20"))


def test_tuning_cannot_read_the_test_split():
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val
    from ganvae.tasks.tuning import TestSplitRead, sealed

    ds = sealed(hold_out_val(load_dataset("shapes:n=100,n_test=20"), 20))
    with pytest.raises(TestSplitRead):
        ds.test.x
    assert len(ds.val.x) == 20 and len(ds.train.x) == 80


def test_the_probes_c_is_the_one_the_validation_split_chose():
    # benchmarks/tune_tasks.py probe wrote this file from Fashion-MNIST's validation split
    from ganvae.metrics.probe import LOGREG_C

    res = json.loads((RESULTS / "tune_probe.json").read_text())
    assert res["val_images"] == 5000 and res["chosen"] == LOGREG_C
    assert {r["c"] for r in res["rows"]} >= {LOGREG_C}


def test_completions_defaults_are_the_ones_the_validation_split_chose():
    # benchmarks/tune_tasks.py complete wrote this file from the validation images of the four
    # models of a comparison; CompleteConfig's defaults must be what it chose
    from ganvae.tasks.complete import CompleteConfig

    res = json.loads((RESULTS / "tune_completion.json").read_text())
    assert res["val_images"] == 100 and res["chosen"]
    defaults = CompleteConfig()
    for key, value in res["chosen"].items():
        assert getattr(defaults, key) == value, key
