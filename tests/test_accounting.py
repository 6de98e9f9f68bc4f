"""Fair budgets and consistent accounting: update counts, rollback learning rates and time,
compare's --device, class histograms that compare like with like, the likelihood's space."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(tmp_path, preset="vae", **train):
    from ganvae.config import replace
    from ganvae.trainer import DataConfig, RunConfig, Trainer, _load_data, build

    cfg = replace(RunConfig(preset=preset), {"data": {"spec": DATA},
                                             "train": {"batch_size": 16, "checkpoint_every": 1, **train}})
    ds = _load_data(cfg.data)
    torch.manual_seed(0)
    model, mcfg = build(preset, ds, {"width": 8, "latent": 4})
    import dataclasses

    return Trainer(model, ds, dataclasses.replace(cfg, model=mcfg), tmp_path / "run", progress=False)


def test_rollback_rates_are_relative_to_the_original_and_time_counts(tmp_path):
    """Rollback r trains at 0.5^r of the *original* rates, even when the checkpoint it returns to
    already holds a lowered rate; the time of the diverged steps stays spent."""
    t = _trainer(tmp_path, steps=3, on_nan="rollback", max_rollbacks=3)
    t.fit()
    base = t.model.optimizers()["vae"].param_groups[0]["lr"]
    nan = {"loss/x": torch.tensor(float("nan"))}
    t.elapsed = 100.0
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert t._finite(nan) is False
    assert t.model.optimizers()["vae"].param_groups[0]["lr"] == pytest.approx(base * 0.5)
    assert "x0.5 of the original" in str(w[-1].message)
    assert t.elapsed >= 100.0                      # the checkpoint's own clock was earlier
    t.save_checkpoint()                            # this checkpoint holds the halved rate
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert t._finite(nan) is False
    # 0.25 of the original, not 0.5 * 0.25 of the restored 0.5
    assert t.model.optimizers()["vae"].param_groups[0]["lr"] == pytest.approx(base * 0.25)
    assert "x0.25 of the original" in str(w[-1].message)


def test_budget_counts_steps_and_images_by_updates(tmp_path, run_cli):
    """--steps N is N generator updates for every GAN; images seen and D updates follow n_critic."""
    for preset, n_critic in (("dcgan", 1), ("wgan-gp", 5)):
        run = tmp_path / preset
        code, _, err = run_cli("train", preset, "--data", DATA, "--steps", "3", "--batch-size", "16", "--out", run,
                               "--set", "width=8", "--set", "latent=4", "--quiet")
        assert code == 0, err
        s = json.loads((run / "summary.json").read_text())
        assert s["steps"] == 3 and s["images_seen"] == 3 * 16 * n_critic
        assert s["updates"] == {"g": 3, "d": 3 * n_critic}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from ganvae.cli import main

    out = tmp_path_factory.mktemp("acc") / "out"
    code = main(["compare", "--models", "vae,wgan-gp", "--data", "shapes:n=256,n_test=64", "--steps", "3",
                 "--batch-size", "16", "--set", "width=8", "--set", "latent=4", "--eval-n", "100", "--curve-n", "60",
                 "--curve-points", "2", "--nll-k", "4", "--nll-images", "8", "--device", "cpu", "--quiet",
                 "--out", str(out)])
    assert code == 0
    return out


def test_compare_rows_show_updates_device_and_likelihood_space(compared):
    res = json.loads((compared / "results.json").read_text())
    rows = {r["model"]: r for r in res["rows"]}
    assert rows["wgan-gp"]["updates"] == {"g": 3, "d": 15} and rows["wgan-gp"]["images_seen"] == 3 * 16 * 5
    assert rows["vae"]["updates"] == {"vae": 3}
    assert rows["vae"]["likelihood"]["space"] == "8-bit" and rows["vae"]["likelihood"]["k"] == 4
    assert rows["wgan-gp"]["likelihood"] is None
    for m in rows:    # --device reached the training runs
        assert json.loads((compared / "runs" / f"{m}-seed0" / "config.json").read_text())["train"]["device"] == "cpu"
    html = (compared / "report.html").read_text()
    assert "g 3 · d 15" in html and "NLL (IWAE, k=4) on the first 8 test images" in html
    assert "8-bit" in html and "Likelihoods are compared only within one data space" in html
    assert "updates" in (compared / "results.csv").read_text().splitlines()[0]


def test_class_histograms_compare_like_with_like(compared):
    """The reference histogram is the evaluator's reading of the test images: scoring the test
    images themselves gives mode KL 0, whatever the evaluator's errors (against labels it
    would not)."""
    from ganvae.data import load_dataset
    from ganvae.evaluation import EvalConfig, score
    from ganvae.evaluators import get_evaluator

    floor = json.loads((compared / "floor.json").read_text())
    assert len(floor["class_hist"]) == len(floor["class_hist_labels"])
    assert sum(floor["class_hist"]) == pytest.approx(1.0)
    ds = load_dataset("shapes:n=256,n_test=64")
    ev = get_evaluator(ds, log=lambda s: None)
    res = score(ds.test.x, ds, ev, EvalConfig(n=len(ds.test), kid_subset_size=32, kid_subsets=4), log=lambda s: None,
                with_floor=False)
    assert res["metrics"]["mode_kl"] == pytest.approx(0.0, abs=1e-9)
    assert res["class_hist"] == pytest.approx(floor["class_hist"])
