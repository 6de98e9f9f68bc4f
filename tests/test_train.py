"""The trainer and the run-using commands, end to end through the CLI, for every preset."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ganvae.registry import preset_names

from tests.conftest import DATA, TINY, data_for

PRESETS = preset_names()


def test_registry_has_every_preset():
    assert set(PRESETS) >= {"ae", "vae", "beta-vae", "gan", "dcgan", "wgan", "wgan-gp", "sngan", "vaegan", "aae", "bigan", "ali"}


@pytest.mark.parametrize("preset", PRESETS)
def test_run_directory(runs, preset):
    run = runs[preset]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == preset and cfg["train"]["steps"] == 4 and cfg["model"]["width"] == 8
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4]
    # a step is one G update; WGANs' five critic updates each take their own batch of 16
    per_step = 16 * (5 if preset in ("wgan", "wgan-gp") else 1)
    assert lines[-1]["images_seen"] == 4 * per_step and all(np.isfinite(v) for r in lines for v in r.values())
    summary = json.loads((run / "summary.json").read_text())
    if preset in ("wgan", "wgan-gp"):
        assert summary["updates"] == {"g": 4, "d": 20}
    assert any(k.startswith("loss/") for k in lines[-1])
    assert (run / "samples" / "step_00000002.png").exists() and (run / "samples" / "final.png").exists()
    assert [p.name for p in sorted((run / "checkpoints").glob("*.safetensors"))] == [
        "step_00000002.safetensors", "step_00000004.safetensors"]
    meta = json.loads((run / "model" / "config.json").read_text())
    c = meta["config"]
    # a codec's code is its latent map, M x size/4 x size/4, whatever --set latent says
    side = -(-c["size"] // 4)   # ceil(size / 4)
    assert c["latent"] == (c["latent_channels"] * side ** 2 if preset.startswith("codec") else 8)
    assert load_file(run / "model" / "model.safetensors")
    assert list((run / "tb").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("preset", PRESETS)
def test_sample_png_and_npz(runs, preset, run_cli, tmp_path):
    from ganvae.registry import resolve

    if resolve(preset)[0].translation:  # nothing to sample from: a one-line pointer to translate
        code, out, err = run_cli("sample", runs[preset], "-n", 10, "-o", tmp_path / "s.npz")
        assert code == 2 and "ganvae translate" in err and "Traceback" not in err
        assert not (tmp_path / "s.npz").exists()
        return
    code, out, err = run_cli("sample", runs[preset], "-n", 10, "-o", tmp_path / "s.npz", "--seed", 3)
    assert code == 0, err
    x = np.load(tmp_path / "s.npz")["x"]
    assert x.shape == (10, 1, 28, 28) and x.dtype == np.uint8
    run_cli("sample", runs[preset], "-n", 10, "-o", tmp_path / "t.npz", "--seed", 3)
    np.testing.assert_array_equal(x, np.load(tmp_path / "t.npz")["x"])  # seeded
    code, _, err = run_cli("sample", runs[preset], "-n", 5, "-o", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("command", ["reconstruct", "interpolate", "traverse", "embed"])
def test_latent_commands(runs, preset, command, run_cli, tmp_path):
    from ganvae.registry import resolve

    cls, _ = resolve(preset)
    code, out, err = run_cli(command, runs[preset], "-o", tmp_path / "o.png")
    if cls.translation:
        assert code == 2 and "Traceback" not in err and not (tmp_path / "o.png").exists()
        assert "ganvae translate" in err or "needs a model with an encoder" in err
    elif command != "interpolate" and not cls.has_encoder:
        assert code == 2 and "needs a model with an encoder" in err and "Traceback" not in err
        assert not (tmp_path / "o.png").exists()
    else:
        assert code == 0, err
        from PIL import Image

        assert Image.open(tmp_path / "o.png").size[0] > 28


def test_stop_by_epochs(tmp_path, run_cli):
    code, out, err = run_cli("train", "ae", "--data", "shapes:n=256,n_test=32", "--epochs", 2, "--batch-size", 64,
                             "--val-split", 0, "--out", tmp_path / "r", "--set", "width=8", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["steps"] == 8  # 256/64 * 2


def test_stop_by_budget(tmp_path, run_cli):
    code, out, err = run_cli("train", "dcgan", "--data", DATA, "--budget", "2s", "--out", tmp_path / "r", *TINY)
    assert code == 0, err
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["train_seconds"] >= 2 and s["steps"] > 2


def _weights(run):
    return load_file(Path(run) / "model" / "model.safetensors")


# translation models too: their unpaired draws and CycleGAN's replay buffer resume exactly
@pytest.mark.parametrize("preset", ["dcgan", "vae", "pix2pix", "cyclegan", "unit"])
def test_resume_is_bit_identical(tmp_path, run_cli, preset):
    common = ["--data", data_for(preset), "--log-every", 1, "--checkpoint-every", 100, *TINY]
    assert run_cli("train", preset, "--steps", 6, "--out", tmp_path / "a", *common)[0] == 0
    assert run_cli("train", preset, "--steps", 3, "--out", tmp_path / "b", *common)[0] == 0
    code, _, err = run_cli("train", "--resume", tmp_path / "b", "--steps", 6, "--quiet")
    assert code == 0, err
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_refuses_before_any_work(tmp_path, run_cli):
    def refused(*args, msg):
        code, _, err = run_cli("train", *args, "--out", tmp_path / "r")
        assert code == 2 and msg in err and "Traceback" not in err, err
        assert not (tmp_path / "r").exists()

    refused("nope", "--data", DATA, "--steps", 1, msg="unknown model 'nope'")
    refused("vae", "--data", DATA, "--steps", 1, "--set", "nope=1", msg="unknown key 'nope'")
    refused("vae", "--data", DATA, "--steps", 1, "--set", "beta=high", msg="expected a number")
    refused("vae", "--data", DATA, "--steps", -1, msg="must be positive")
    refused("vae", "--data", DATA, msg="say when to stop")
    refused("vae", "--data", DATA, "--steps", 1, "--batch-size", 1000, msg="larger than the 230 training images")  # 26 held out
    refused("vae", "--data", "nothing", "--steps", 1, msg="unknown dataset")
    refused("vae", "--steps", 1, msg="give --data")


def test_existing_run_dir_is_not_overwritten(runs, run_cli):
    before = (runs["ae"] / "model" / "model.safetensors").read_bytes()
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 1, "--out", runs["ae"], *TINY)
    assert code == 2 and "--resume" in err
    assert (runs["ae"] / "model" / "model.safetensors").read_bytes() == before


def test_resume_missing_dir(tmp_path, run_cli):
    code, _, err = run_cli("train", "--resume", tmp_path / "nothing", "--steps", 2)
    assert code == 2 and "no such directory" in err
    (tmp_path / "empty").mkdir()   # a directory that is not a run
    code, _, err = run_cli("train", "--resume", tmp_path / "empty", "--steps", 2)
    assert code == 2 and "no config.json" in err


def test_default_run_dir_numbering(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run_cli("train", "ae", "--data", DATA, "--steps", 1, *TINY)[0] == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["0000-ae-shapes-n-256-n_test-64",
                                                                       "0001-ae-shapes-n-256-n_test-64"]


def test_python_api(tmp_path):
    import torch

    import ganvae

    run, summary = ganvae.train("vae", "shapes:n=64,n_test=16", tmp_path / "r", steps=2, batch_size=16,
                                overrides={"width": 8, "latent": 4}, progress=False)
    assert summary["steps"] == 2 and run == tmp_path / "r"
    model = ganvae.load(run)
    assert model.name == "vae" and model.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_trains_on_fashion_mnist(preset, tmp_path, run_cli):
    from ganvae.registry import resolve

    data = "task:edges2fashion" if resolve(preset)[0].translation else "fashion-mnist"
    code, out, err = run_cli("train", preset, "--data", data, "--steps", 2, "--out", tmp_path / "r",
                             "--log-every", 1, *TINY)
    assert code == 0, err
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["spec"] == data


def test_embed_tsne_and_pca_differ(runs, run_cli, tmp_path):
    for method in ("pca", "tsne"):
        code, out, err = run_cli("embed", runs["vae"], "-n", 64, "--method", method, "-o", tmp_path / f"{method}.png")
        assert code == 0 and method in out, err
    assert (tmp_path / "pca.png").read_bytes() != (tmp_path / "tsne.png").read_bytes()


def test_config_file_and_precision(tmp_path, run_cli):
    (tmp_path / "c.yaml").write_text("model:\n  beta: 2.5\n  width: 8\ntrain:\n  log_every: 1\n")
    code, _, err = run_cli("train", "vae", "--data", DATA, "--steps", 2, "--batch-size", 16, "--quiet",
                           "--config", tmp_path / "c.yaml", "--set", "latent=3", "--precision", "bf16",
                           "--out", tmp_path / "r")
    assert code == 0, err
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["model"]["beta"] == 2.5 and cfg["model"]["latent"] == 3 and cfg["model"]["width"] == 8
    assert cfg["train"]["log_every"] == 1 and cfg["train"]["precision"] == "bf16"
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2


def test_cuda_requested_without_one(tmp_path, run_cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 1, "--device", "cuda", "--out", tmp_path / "r",
                           *TINY)
    assert code == 2 and "CUDA is not available" in err


def test_memory_format_is_a_speed_choice_not_a_model_change(tmp_path, run_cli):
    """channels-last (the CPU default) and NCHW train the same function: equal losses step by
    step up to float rounding, and weights saved in the ordinary layout either way."""
    from ganvae.trainer import TrainConfig

    assert TrainConfig().torch_memory_format("cpu") == torch.channels_last
    assert TrainConfig().torch_memory_format("cuda") == torch.contiguous_format          # fp32 on a GPU
    assert TrainConfig(precision="bf16").torch_memory_format("cuda") == torch.channels_last
    losses = {}
    for fmt in ("channels_last", "contiguous"):
        code, out, err = run_cli("train", "vae", "--data", DATA, "--steps", 6, "--out", tmp_path / fmt,
                                 "--set", "train.log_every=1", "--set", f"train.memory_format={fmt}", *TINY)
        assert code == 0, err
        rows = [json.loads(x) for x in (tmp_path / fmt / "metrics.jsonl").read_text().splitlines()]
        losses[fmt] = [r["loss/total"] for r in rows if "loss/total" in r]
        assert all(t.flags["C_CONTIGUOUS"] for t in _weights(tmp_path / fmt).values())
    assert len(losses["contiguous"]) == 6
    np.testing.assert_allclose(losses["channels_last"], losses["contiguous"], rtol=1e-4)
    code, out, err = run_cli("train", "vae", "--data", DATA, "--steps", 1, "--out", tmp_path / "bad",
                             "--set", "train.memory_format=nhwc", *TINY)
    assert code == 2 and "memory_format" in err and "Traceback" not in err


@pytest.mark.parametrize("preset,extra", [("ae", []), ("vaegan", []), ("vae", ["--set", "prior=gmm",
                                                                             "--set", "gmm_components=2"])])
def test_a_step_checkpoint_samples_from_its_own_fitted_prior(tmp_path, preset, extra):
    # Issue 30: checkpoints were written before fit_prior ran, so --checkpoint STEP sampled
    # N(0, I) while the codes had std ~0.02. The last checkpoint holds the final weights: it
    # must sample exactly as the final model; an earlier one from a prior fitted to its own
    # encoder (refitting it now, independently, gives the same buffers).
    from ganvae.checkpoint import load_state, save_state
    from ganvae.cli import main
    from ganvae.trainer import load_run, prior_images

    run = tmp_path / preset
    assert main(["train", preset, "--data", DATA, "--steps", "6", "--checkpoint-every", "3", "--out", str(run),
                 *TINY, *extra]) == 0
    final, _ = load_run(run)
    last, _ = load_run(run, checkpoint="6")
    assert torch.equal(final.sample(8, seed=3), last.sample(8, seed=3))
    early, cfg = load_run(run, checkpoint="3")
    assert bool(early.prior_fitted)
    prior = {k: v.clone() for k, v in early.state_dict().items() if k.startswith(("prior_", "gmm_"))}
    assert prior
    from ganvae.data import to_float
    from ganvae.trainer import run_dataset

    x = torch.from_numpy(run_dataset(cfg).train.x)
    early.fit_prior(to_float(prior_images(x, cfg["train"]["prior_images"], cfg["train"]["seed"])))
    for k, v in prior.items():
        assert torch.allclose(v, early.state_dict()[k], rtol=1e-4, atol=1e-6), k   # (memory layout: last bits)
    # a checkpoint written before checkpoints carried their prior is refit on load, the same way
    stem = run / "checkpoints" / "step_00000003"
    state = load_state(stem)
    del state["trainer"]["prior_fitted"]
    for k in prior:
        state["model"][k] = early.__class__(early.config).state_dict()[k]   # the unfitted buffers
    save_state(stem, state)
    old, _ = load_run(run, checkpoint="3")
    for k, v in prior.items():
        assert torch.allclose(v, old.state_dict()[k], rtol=1e-4, atol=1e-6), k
