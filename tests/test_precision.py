"""Mixed precision done right: bf16 forwards with float32 losses and optimizer steps, and fp16
through a GradScaler (penalties' double backward included)."""

from __future__ import annotations

import copy

import pytest
import torch

from ganvae.config import replace
from ganvae.data import load_dataset, to_float
from ganvae.registry import resolve

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"width": 8, "latent": 8}
# (preset, extra overrides, the logged loss to follow)
# (wgan-gp's five critic steps and vaegan's three nets: the slow suite's, for the default suite's 6 minutes)
CASES = [("vae", {}, "loss/total"), ("dcgan", {}, "loss/d"),
         pytest.param("wgan-gp", {}, "loss/d", marks=pytest.mark.slow),
         pytest.param("vaegan", {}, "loss/enc", marks=pytest.mark.slow),
         ("aae", {}, "loss/recon"), ("bigan", {}, "loss/d")]


def build(preset, **overrides):
    cls, cfg = resolve(preset)
    torch.manual_seed(0)
    return cls(replace(cfg, {**TINY, **overrides}))


@pytest.fixture(scope="module")
def batch():
    ds = load_dataset("shapes:n=128,n_test=16")
    return to_float(torch.from_numpy(ds.train.x[:64]))


def _losses(model, x, precision, steps, key):
    model.set_precision(precision, "cpu")
    torch.manual_seed(1)
    out = []
    k = model.batches_per_step
    for step in range(steps):
        logs = model.train_step(torch.cat([x] * k) if k > 1 else x, step)
        out.append(float(logs[key]))
    return torch.tensor(out)


@pytest.mark.parametrize("preset,overrides,key", CASES)
def test_bf16_tracks_fp32(preset, overrides, key, batch):
    """Ten steps on one fixed batch: the bf16 loss stays within 10% (+0.05 absolute, for GAN
    losses near 0) of the fp32 loss at every step. bf16 keeps 8 bits of mantissa, so the forwards
    differ by ~0.4% per layer; losses summed in bf16 instead of float32 would drift far more."""
    base = build(preset, **overrides)
    fp32, bf16 = copy.deepcopy(base), copy.deepcopy(base)
    a = _losses(fp32, batch, "fp32", 10, key)
    b = _losses(bf16, batch, "bf16", 10, key)
    assert torch.isfinite(b).all()
    assert ((a - b).abs() <= 0.10 * a.abs() + 0.05).all(), (a, b)
    assert not torch.equal(a, b)         # bf16 really ran: the numbers are not bit-equal


@pytest.mark.parametrize("preset,overrides,key", CASES)
def test_losses_float32_and_steps_outside_autocast(preset, overrides, key, batch, monkeypatch):
    model = build(preset, **overrides)
    model.set_precision("bf16", "cpu")
    seen = []
    for opt in model.optimizers().values():
        original = opt.step

        def step(*a, _original=original, **kw):
            seen.append(torch.is_autocast_enabled("cpu"))
            return _original(*a, **kw)
        monkeypatch.setattr(opt, "step", step)
    k = model.batches_per_step
    logs = model.train_step(torch.cat([batch] * k) if k > 1 else batch, 0)
    assert seen and not any(seen), "an optimizer step ran under autocast"
    assert all(v.dtype == torch.float32 for v in logs.values() if torch.is_tensor(v))


@pytest.mark.parametrize("preset,overrides", [("vae", {}), ("wgan-gp", {}), ("gan", {"reg": "r1", "d_norm": "layer",
                                                                                      "r1_every": 1})])
def test_fp16_goes_through_a_grad_scaler(preset, overrides, batch, monkeypatch):
    """Every backward under fp16 is scaled (the penalties' backward with D's loss; their inner
    input gradient is taken in float32, where a scaled critic cannot overflow), and the
    scale is updated between steps of one optimizer; the penalties stay finite."""
    model = build(preset, **overrides)
    model.set_precision("fp16", "cpu")
    assert isinstance(model.scaler, torch.amp.GradScaler)
    calls = {"scale": 0, "update": 0}
    scale, update = model.scaler.scale, model.scaler.update

    def counting_scale(t):
        calls["scale"] += 1
        return scale(t)

    def counting_update(*a, **kw):
        calls["update"] += 1
        return update(*a, **kw)
    monkeypatch.setattr(model.scaler, "scale", counting_scale)
    monkeypatch.setattr(model.scaler, "update", counting_update)
    k = model.batches_per_step
    for step in range(2):
        logs = model.train_step(torch.cat([batch] * k) if k > 1 else batch, step)
    # once per step; GANs also between two steps of one optimizer (D's n_critic and R1 updates)
    assert calls["update"] == 2 if preset == "vae" else calls["update"] >= 4
    assert calls["scale"] >= 2 * (1 if preset == "vae" else 2)   # GAN: D loss with its penalty, G loss
    assert all(torch.isfinite(v).all() for v in logs.values() if torch.is_tensor(v))


def test_fp16_scale_is_checkpointed(tmp_path, run_cli):
    """A resumed fp16 run continues with the saved loss scale (and so bit-identically on CPU);
    on a CPU without native float16 convolutions the run warns that fp16 is emulated there."""
    from ganvae.checkpoint import load_state
    from ganvae.hardware import cpu_has_fp16
    from ganvae.trainer import checkpoints

    args = ["--data", "shapes:n=128,n_test=16", "--set", "width=8", "--set", "latent=4", "--batch-size", "16",
            "--precision", "fp16", "--device", "cpu", "--quiet", "--checkpoint-every", "3"]
    code, _, err = run_cli("train", "vae", "--steps", "3", "--out", tmp_path / "a", *args)
    assert code == 0, err
    assert ("no native float16" in err) == (not cpu_has_fp16()), err
    state = load_state(checkpoints(tmp_path / "a")[-1])
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0


def test_the_trainer_hands_the_precision_to_the_model(tmp_path, run_cli):
    """`--precision bf16` through the CLI changes the computed losses (it reached the forwards)
    while keeping them within the bf16 tolerance of the fp32 run's."""
    import json

    losses = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path / precision
        code, _, err = run_cli("train", "vae", "--data", "shapes:n=128,n_test=16", "--steps", "4", "--log-every", "1",
                               "--set", "width=8", "--set", "latent=4", "--batch-size", "16", "--quiet",
                               "--precision", precision, "--out", run)
        assert code == 0, err
        losses[precision] = torch.tensor([json.loads(line)["loss/total"]
                                          for line in (run / "metrics.jsonl").read_text().splitlines()])
    a, b = losses["fp32"], losses["bf16"]
    assert not torch.equal(a, b) and ((a - b).abs() <= 0.05 * a.abs()).all(), (a, b)


def test_auto_precision_is_bf16_only_where_the_device_has_it(tmp_path, run_cli):
    """--precision auto resolves by the device (bf16 on a CPU with native bfloat16, fp32 on one
    without) and summary.json records what ran; bf16 asked on a CPU without it warns."""
    import json

    from ganvae.hardware import cpu_has_bf16
    from ganvae.trainer import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision(cpu, "auto") == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision(cpu, "fp16") == "fp16"
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=128,n_test=16", "--steps", "1", "--set", "width=8",
                           "--set", "latent=4", "--batch-size", "16", "--quiet", "--precision", "auto",
                           "--out", tmp_path / "a")
    assert code == 0, err
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["dtype"] == resolve_precision(cpu, "auto")
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=128,n_test=16", "--steps", "1", "--set", "width=8",
                           "--set", "latent=4", "--batch-size", "16", "--quiet", "--precision", "bf16",
                           "--device", "cpu", "--out", tmp_path / "b")
    assert code == 0, err
    assert ("no native bfloat16" in err) == (not cpu_has_bf16())


def test_ganvae_limits_openmp_spinning_before_torch_loads_unless_the_user_set_it():
    import os
    import subprocess
    import sys

    code = "import os, sys, ganvae; print(os.environ['GOMP_SPINCOUNT'])"
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    # `import ganvae` must set it before anything loads torch (libgomp reads it once, at load)
    first = subprocess.run([sys.executable, "-c", "import ganvae, sys; print('torch' in sys.modules)"],
                           capture_output=True, text=True, env=env)
    assert first.stdout.strip() == "False", first.stderr
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env).stdout.strip() == "1000"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "GOMP_SPINCOUNT": "5"}).stdout.strip() == "5"
