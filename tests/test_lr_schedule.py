"""Learning-rate schedules (trainer/schedule.py): the rates real runs log against the closed
forms, an interrupted scheduled GAN run resumed bit for bit, the constant schedule as the run
it was before schedules, and the refusals."""

from __future__ import annotations

import json
import math
import os
import signal
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganvae
from ganvae.callbacks import Callback
from ganvae.errors import Stopped

from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"width": 8, "latent": 8}
# dcgan with G and D at different rates: each schedule scales its own optimizer's base rate
GAN = {**TINY, "lr_g": 1e-4, "lr_d": 3e-4, "lr_schedule": "linear", "lr_warmup": 2, "lr_decay_start": 0.5}
GAN_STEPS = 10


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model" / "model.safetensors")


def _train(preset: str, out: Path, steps: int, overrides: dict, **kw):
    return ganvae.train(preset, DATA, out, steps=steps, batch_size=16, overrides=overrides, progress=False,
                        log_every=1, sample_every=1000, device="cpu", **kw)


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# The closed forms, written out here on their own (not through schedule.lr_factor): the update
# at 0-based step s, logged in the row of step s + 1, runs at base * f(s).
def _linear_warm_held(s: int, total: int, warmup: int, begin: int) -> float:
    if s < warmup:
        return s / warmup
    if s < begin:
        return 1.0
    return 1.0 - (s - begin) / (total - begin)


def _cosine_warm(s: int, total: int, warmup: int) -> float:
    if s < warmup:
        return s / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / (total - warmup)))


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """The uninterrupted scheduled dcgan run the resumed one must equal."""
    run, summary = _train("dcgan", tmp_path_factory.mktemp("lr") / "whole", GAN_STEPS, GAN)
    assert summary["steps"] == GAN_STEPS
    return run


def test_cosine_with_warmup_follows_the_closed_form(tmp_path):
    run, _ = _train("vae", tmp_path / "r", 11, {**TINY, "lr_schedule": "cosine", "lr_warmup": 3})
    base = json.loads((run / "config.json").read_text())["model"]["lr"]
    rows = _rows(run)
    assert [r["step"] for r in rows] == list(range(1, 12))
    for r in rows:
        assert r["lr/vae"] == pytest.approx(base * _cosine_warm(r["step"] - 1, 11, 3), rel=1e-12, abs=1e-15)
    # chosen points: the warm-up's first update at 0, the second at 1/3, the warm-up's end at the
    # base, half of it half-way through the 8 decaying updates (s = 7), 1 - cos(pi / 8) at the last
    by_step = {r["step"]: r["lr/vae"] for r in rows}
    assert by_step[1] == 0 and by_step[2] == pytest.approx(base / 3) and by_step[4] == base
    assert by_step[8] == pytest.approx(base / 2)
    assert by_step[11] == pytest.approx(base * (1 - math.cos(math.pi / 8)) / 2)


def test_linear_with_warmup_and_decay_start_per_optimizer(gan_run):
    # CycleGAN's shape: warm-up 2, held to half the run (step 5), then linearly to 0 at step 10
    rows = _rows(gan_run)
    assert [r["step"] for r in rows] == list(range(1, GAN_STEPS + 1))
    for name, base in (("g", 1e-4), ("d", 3e-4)):
        for r in rows:
            expected = base * _linear_warm_held(r["step"] - 1, GAN_STEPS, 2, 5)
            assert r[f"lr/{name}"] == pytest.approx(expected, rel=1e-12, abs=1e-15), (name, r["step"])
    held = [r for r in rows if 3 <= r["step"] <= 6]
    assert all(r["lr/g"] == pytest.approx(1e-4) and r["lr/d"] == pytest.approx(3e-4) for r in held)
    assert rows[-1]["lr/d"] == pytest.approx(3e-4 / 5)   # the last update: 1/5 of the way from 0
    # the checkpoint keeps each scheduler's state (plain JSON numbers beside the tensors)
    ckpt = json.loads(sorted((gan_run / "checkpoints").glob("*.json"))[-1].read_text())
    keys = [k for k, _ in ckpt["state"]["__dict__"]]
    assert "sched" in keys


class _Interrupt(Callback):
    """Ctrl-C at a chosen step: the loop checkpoints at the step boundary and stops."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, trainer):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupted_scheduled_gan_resumes_bit_identically(gan_run, tmp_path):
    run = tmp_path / "cut"
    with pytest.raises(Stopped, match="SIGINT at step 4"):
        _train("dcgan", run, GAN_STEPS, GAN, callbacks=[_Interrupt(4)])
    _, summary = ganvae.train("dcgan", run_dir=run, resume=True, progress=False)
    assert summary["steps"] == GAN_STEPS
    _assert_same_weights(gan_run, run)
    whole, cut = _rows(gan_run), _rows(run)
    assert [r["step"] for r in cut] == list(range(1, GAN_STEPS + 1))
    assert [(r["lr/g"], r["lr/d"]) for r in cut] == [(r["lr/g"], r["lr/d"]) for r in whole]


def test_constant_schedule_is_the_run_without_one(tmp_path):
    plain, _ = _train("vae", tmp_path / "plain", 3, TINY)
    named, _ = _train("vae", tmp_path / "named", 3, {**TINY, "lr_schedule": "constant", "lr_warmup": 0})
    _assert_same_weights(plain, named)
    assert not any(k.startswith("lr/") for r in _rows(named) for k in r)

    # A checkpoint without scheduler state (as written before schedules existed) still resumes,
    # and a schedule asked for on resume takes up at its step, on the optimizer's rate
    stem = sorted((plain / "checkpoints").glob("*.json"))[-1]
    meta = json.loads(stem.read_text())
    meta["state"]["__dict__"] = [kv for kv in meta["state"]["__dict__"] if kv[0] != "sched"]
    stem.write_text(json.dumps(meta))
    _, summary = ganvae.train("vae", run_dir=plain, resume=True, steps=6, progress=False,
                              overrides={"lr_schedule": "linear"})
    assert summary["steps"] == 6
    base = json.loads((plain / "config.json").read_text())["model"]["lr"]
    later = [r for r in _rows(plain) if r["step"] > 3]
    assert [r["lr/vae"] for r in later] == pytest.approx([base * (1 - s / 6) for s in (3, 4, 5)])


def test_rollback_lowers_the_schedule_base(tmp_path):
    """on_nan=rollback halves the original rates: on a schedule, the halved rate becomes the
    base the schedule scales from the restored step on."""
    from ganvae.config import replace
    from ganvae.trainer import RunConfig, Trainer, build, load_data
    from ganvae.trainer.schedule import step_all

    cfg = replace(RunConfig(preset="vae"), {"data": {"spec": DATA}, "train": {
        "batch_size": 16, "steps": 4, "checkpoint_every": 1, "on_nan": "rollback", "lr_schedule": "linear",
        "device": "cpu"}})
    ds = load_data(cfg.data)
    model, mcfg = build("vae", ds, TINY)
    import dataclasses

    t = Trainer(model, ds, dataclasses.replace(cfg, model=mcfg), tmp_path / "run", progress=False)
    t.fit()
    base = t.base_lrs["vae"][0]
    for suffix in (".json", ".safetensors"):   # go back to step 3, where linear is at 1/4
        (tmp_path / "run" / "checkpoints" / f"step_00000004{suffix}").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert t._finite({"loss/x": torch.tensor(float("nan"))}) is False
    group = t.model.optimizers()["vae"].param_groups[0]
    assert t.step == 3 and group["lr"] == pytest.approx(base * 0.5 * 0.25)
    assert step_all(t.schedulers) == {"lr/vae": pytest.approx(base * 0.5 * 0.25)}
    assert group["lr"] == 0   # step 4 of 4: the end of the decay


def test_schedule_keys_are_training_keys():
    from ganvae.trainer import split_overrides

    model, train, _ = split_overrides({"lr_schedule": "cosine", "lr_warmup": "200", "lr_decay_start": "0.5",
                                       "beta": 4})
    assert model == {"beta": 4} and train == {"lr_schedule": "cosine", "lr_warmup": "200", "lr_decay_start": "0.5"}


@pytest.mark.parametrize("args, message", [
    (["--budget", "2s", "--set", "lr_schedule=cosine"],
     "lr_schedule=cosine: decays to zero at the run's last step, which --budget alone does not fix; give --steps or "
     "--epochs"),
    (["--steps", "4", "--set", "lr_warmup=-1"], "lr_warmup=-1: give the warm-up in steps, at least 0"),
    (["--steps", "4", "--set", "lr_schedule=step"], "lr_schedule='step': choose one of constant, linear, cosine"),
    (["--steps", "4", "--set", "lr_schedule=linear", "--set", "lr_warmup=4"],
     "lr_warmup=4: the warm-up must be shorter than the run's 4 steps"),
    (["--steps", "4", "--set", "lr_schedule=linear", "--set", "lr_decay_start=1"], "lr_decay_start=1.0: give the"),
    (["--steps", "4", "--set", "lr_decay_start=0.5"], "the constant schedule does not decay"),
])
def test_cli_refuses_bad_schedules(tmp_path, run_cli, args, message):
    code, _, err = run_cli("train", "vae", "--data", DATA, "--out", tmp_path / "r", "--batch-size", 16,
                           "--set", "width=8", "--quiet", *args)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()
