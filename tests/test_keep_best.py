"""`train --keep-best fd|elbo`: the best checkpoint on the validation split, kept as compare
keeps its runs' best (run/best + point.json), its scores recomputed independently, through
eval --checkpoint best, across a resume that only gets worse, and its one-line refusals."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

import ganvae
from ganvae.callbacks import Callback
from ganvae.data import to_float, to_uint8
from ganvae.errors import BadInput
from ganvae.models.base import GenerativeModel

from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--set", "width=8", "--set", "latent=8", "--batch-size", 16, "--quiet"]
STEPS = ["--steps", 30, "--checkpoint-every", 10, "--sample-every", 1000]


def _rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "validation.jsonl").read_text().splitlines()]


def _point(run) -> dict:
    return json.loads((run / "best" / "point.json").read_text())


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_data(run):
    from ganvae.trainer import run_dataset

    return run_dataset(json.loads((run / "config.json").read_text()))


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from ganvae.cli import main

    run = tmp_path_factory.mktemp("kb") / "vae"
    args = ["train", "vae", "--data", DATA, *STEPS, *TINY, "--keep-best", "elbo", "--out", run]
    assert main([str(a) for a in args]) == 0
    return run


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
    """dcgan with --keep-best fd, and the same run without it."""
    from ganvae.cli import main

    root = tmp_path_factory.mktemp("kb")
    for name, extra in (("kept", ["--keep-best", "fd", "--best-n", "200"]), ("plain", [])):
        args = ["train", "dcgan", "--data", DATA, *STEPS, *TINY, *extra, "--out", root / name]
        assert main([str(a) for a in args]) == 0
    return root / "kept", root / "plain"


def test_elbo_best_is_the_lowest_validation_nelbo_and_recomputes(vae_run):
    rows, point = _rows(vae_run), _point(vae_run)
    assert [r["step"] for r in rows] == [10, 20, 30]   # every checkpoint (the end is the last)
    assert all(r["metric"] == "nelbo" and r["split"] == "val" and r["value"] == r["nelbo"] for r in rows)
    assert point["value"] == min(r["value"] for r in rows)
    assert point == next(r for r in rows if r["step"] == point["step"])   # point.json: the best's own row
    summary = json.loads((vae_run / "summary.json").read_text())
    assert summary["best"] == {"metric": "nelbo", "value": point["value"], "step": point["step"]}
    assert (vae_run / "model" / "config.json").exists()   # the final model as ever
    # recomputed from the saved weights: -ELBO of the first n validation images, one seeded draw each
    model = GenerativeModel.from_pretrained(vae_run / "best")
    x = to_float(torch.from_numpy(_run_data(vae_run).val.x[:point["n"]]))
    assert point["n"] == len(_run_data(vae_run).val) == 26
    nelbo = -float(model.elbo(x, generator=torch.Generator().manual_seed(point["seed"])).mean())
    assert nelbo == pytest.approx(point["value"], rel=1e-5)


def test_fd_best_recomputes_from_its_samples_and_training_is_unchanged(gan_runs):
    from ganvae.evaluators import get_evaluator
    from ganvae.metrics.fd import fd_from_features

    kept, plain = gan_runs
    rows, point = _rows(kept), _point(kept)
    assert [r["step"] for r in rows] == [10, 20, 30] and point["metric"] == "fd" and point["n"] == 200
    assert point["value"] == min(r["value"] for r in rows)
    ds = _run_data(kept)
    ev = get_evaluator(ds)
    model = GenerativeModel.from_pretrained(kept / "best")
    fake = to_uint8(model.sample(point["n"], seed=point["seed"])).numpy()
    fd = fd_from_features(ev.features_and_probs(ds.val.x)[0], ev.features_and_probs(fake)[0])
    assert fd == pytest.approx(point["value"], rel=1e-4)
    # opt-in and side-effect free: the same final weights as the run without --keep-best
    assert _digest(kept / "model" / "model.safetensors") == _digest(plain / "model" / "model.safetensors")
    assert not (plain / "best").exists() and not (plain / "validation.jsonl").exists()
    assert "best" not in json.loads((plain / "summary.json").read_text())


def test_eval_and_sample_take_the_kept_best(gan_runs, run_cli, tmp_path):
    kept, _ = gan_runs
    code, out, err = run_cli("eval", kept, "--checkpoint", "best", "-n", 200, "--quiet")
    assert code == 0, err
    assert json.loads((kept / "eval-best.json").read_text())["checkpoint"] == "best"
    code, _, err = run_cli("sample", kept, "--checkpoint", "best", "-n", 8, "--seed", 1, "-o", tmp_path / "s.npz")
    assert code == 0, err
    best = GenerativeModel.from_pretrained(kept / "best")
    np.testing.assert_array_equal(np.load(tmp_path / "s.npz")["x"], to_uint8(best.sample(8, seed=1)).numpy())


class RaiseLR(Callback):
    """Resumes at a learning rate far too high: every later checkpoint scores worse."""

    def on_start(self, trainer):
        for opt in trainer.model.optimizers().values():
            for group in opt.param_groups:
                group["lr"] = 0.01


def test_resume_keeps_an_earlier_better_best(vae_run, tmp_path):
    run = tmp_path / "vae"
    shutil.copytree(vae_run, run)
    before, weights = _point(run), _digest(run / "best" / "model.safetensors")
    _, summary = ganvae.train("", run_dir=run, resume=True, steps=50, callbacks=[RaiseLR()])
    rows = _rows(run)
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50]
    assert all(r["value"] > before["value"] for r in rows[3:])   # the resumed steps: worse
    assert _point(run) == before and _digest(run / "best" / "model.safetensors") == weights
    assert summary["best"] == {"metric": "nelbo", "value": before["value"], "step": before["step"]}
    assert json.loads((run / "summary.json").read_text())["best"] == summary["best"]


def test_refusals_are_one_line(run_cli, tmp_path, vae_run):
    base = ["--data", DATA, "--steps", 2, *TINY]
    cases = [(["train", "dcgan", *base, "--keep-best", "elbo"], "--keep-best elbo: dcgan has no likelihood"),
             (["train", "vae", *base, "--keep-best", "fd", "--val-split", 0],
              "--keep-best fd: needs a validation split to score checkpoints on, and --val-split 0 holds none out"),
             (["train", "vae", *base, "--keep-best", "fdd"],
              "--keep-best fdd: choose none, fd, elbo (did you mean 'fd'?)"),
             (["train", "vae", *base, "--best-n", 0, "--keep-best", "fd"], "--best-n 0: must be at least 1")]
    for i, (args, message) in enumerate(cases):
        code, _, err = run_cli(*args, "--out", tmp_path / str(i))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / str(i)).exists()
    # a resume that would compare another metric with the kept best
    code, _, err = run_cli("train", "--resume", vae_run, "--keep-best", "fd", "--steps", 40, "--quiet")
    assert code == 2 and f"{vae_run}/best was chosen by nelbo of n=26" in err and len(err.strip().splitlines()) == 1
    assert [r["step"] for r in _rows(vae_run)] == [10, 20, 30]   # untouched
    with pytest.raises(BadInput, match="--val-split 0 holds none out"):
        ganvae.train("vae", DATA, tmp_path / "api", steps=2, keep_best="elbo", data_val_split=0)


def test_compare_refuses_keep_best_which_it_does_itself(run_cli, tmp_path):
    """compare keeps every run's best in runs/*/best from its curve; train.keep_best there would
    write the same directory from a second scorer."""
    code, _, err = run_cli("compare", "--data", DATA, "--models", "vae", "--set", "train.keep_best=fd", "--steps", 2,
                           "--out", tmp_path / "c")
    assert code == 2 and "--set keep_best=fd (vae): compare already keeps each run's best checkpoint" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
    code, _, err = run_cli("compare", "--data", DATA, "--models", "vae", "--set", "keep_best=fd", "--steps", 2,
                           "--out", tmp_path / "c")   # the unprefixed key: the nearest is train.keep_best
    assert code == 2 and "(did you mean 'train.keep_best'?)" in err
