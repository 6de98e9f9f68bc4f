"""Images in memory as the data of the Python API (ganvae.train / compare / evaluate): numpy
arrays, torch tensors and Datasets, kept in the run as data.npz so that the run reloads, resumes
and is scored like any other; too large to keep, a fingerprint and a one-line error instead."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ganvae
from ganvae.data import memory
from ganvae.errors import BadInput

TINY = dict(overrides={"width": 8, "latent": 8}, steps=3, batch_size=16, progress=False)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shapes():
    """Procedural shapes with labels: uint8 (N, 28, 28) and int64 (N,)."""
    ds = ganvae.load_dataset("shapes:n=160,n_test=16")
    return ds.train.x[:, 0], ds.train.y


@pytest.fixture(scope="module", autouse=True)
def quick_evaluator():
    """A one-pass evaluator: these tests check what data a run reloads, not the evaluator."""
    from ganvae import evaluators

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluators, "recipe_for", lambda ds: evaluators.Recipe(epochs=1, batch_size=64, precision="fp32"))
        yield


def kept(run: Path) -> dict:
    with np.load(run / "data.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def run_data(run: Path):
    """The dataset the run reloads from its config.json, as `ganvae eval RUN` does."""
    from ganvae.trainer import run_dataset

    return run_dataset(json.loads((run / "config.json").read_text()))


# ---------------------------------------------------------------------------------- forms

def test_uint8_array_trains_is_kept_in_the_run_and_reloads(tmp_path, shapes):
    x, _ = shapes
    run, summary = ganvae.train("vae", x, runs_root=tmp_path / "runs", **TINY)
    assert run.name == "0000-vae-memory" and summary["steps"] == 3
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["spec"] == f"npz:{(run / 'data.npz').resolve()}"
    assert np.array_equal(kept(run)["x"], x[:, None]) and "y" not in kept(run)   # (N, C, H, W)
    info = json.loads((run / "data.json").read_text())
    assert info["fingerprint"] == memory.as_in_memory(x).fingerprint and info["images"] == len(x)
    # the npz rule: a seeded tenth held out as the test split, then the validation split
    ds = run_data(run)
    assert len(ds.test) == 16 and len(ds.train) + len(ds.val) + len(ds.test) == len(x)
    model = ganvae.load(run)
    assert model.sample(4, seed=0).shape == (4, 1, 28, 28)
    # a model scored against images in memory: their held-out tenth
    assert "fd" in ganvae.evaluate(model, x, n=100, nll_k=4, nll_images=8)["metrics"]


def test_float_tensor_in_0_1_is_the_same_images(tmp_path, shapes):
    x, _ = shapes
    xf = torch.from_numpy(x[:, None]).float() / 255          # (N, 1, H, W) in [0, 1]
    run, _ = ganvae.train("ae", xf, tmp_path / "run", **TINY)
    assert np.array_equal(kept(run)["x"], x[:, None])
    assert memory.as_in_memory(xf).fingerprint == memory.as_in_memory(x).fingerprint


def test_rgb_channels_last_array(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)
    run, _ = ganvae.train("vae", x, tmp_path / "run", **TINY)
    assert np.array_equal(kept(run)["x"], x.transpose(0, 3, 1, 2))
    assert ganvae.load(run).sample(2, seed=0).shape == (2, 3, 16, 16)


def test_torch_dataset_of_image_label_pairs_trains_a_cvae_on_its_labels(tmp_path, shapes):
    x, y = shapes
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x[:, None]).float() / 255, torch.from_numpy(y))
    run, _ = ganvae.train("cvae", ds, tmp_path / "run", **TINY)
    assert np.array_equal(kept(run)["y"], y) and np.array_equal(kept(run)["x"], x[:, None])
    back = run_data(run)
    assert back.num_classes == 10 and back.train.y is not None
    assert ganvae.load(run).config.num_classes == 10
    # the same labels as labels= or as a tuple give the same data, fingerprint included
    assert memory.as_in_memory(x, labels=y).fingerprint == memory.as_in_memory((x, y)).fingerprint \
        == memory.as_in_memory(ds).fingerprint


def test_a_dataset_of_images_alone_and_labels_beside_it():
    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.full((8, 8), i / 4)

    mem = memory.as_in_memory(Images(), labels=[0, 1, 0, 1])
    assert mem.x.shape == (4, 1, 8, 8) and mem.y.tolist() == [0, 1, 0, 1]
    alone = memory.as_in_memory(torch.utils.data.TensorDataset(torch.zeros(4, 3, 8, 8)))   # items (image,)
    assert alone.x.shape == (4, 3, 8, 8) and alone.y is None


# ------------------------------------------------------------------- reload, resume, CLI

def test_resume_and_the_cli_on_a_run_of_images_in_memory(tmp_path, shapes, run_cli):
    x, y = shapes
    run, _ = ganvae.train("vae", x, tmp_path / "run", **TINY)
    # the Python API with the same images, then the command line from config.json alone
    _, summary = ganvae.train("vae", x, run, resume=True, **{**TINY, "steps": 5})
    assert summary["steps"] == 5
    code, _, err = run_cli("train", "--resume", run, "--steps", "7", "--quiet")
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["steps"] == 7
    code, out, err = run_cli("eval", run, "-n", "100", "--nll-k", "4", "--nll-images", "8", "--quiet")
    assert code == 0, err
    assert "fd" in json.loads((run / "eval.json").read_text())["metrics"]
    code, _, err = run_cli("sample", run, "-n", "4", "-o", tmp_path / "s.png")
    assert code == 0 and (tmp_path / "s.png").exists(), err
    with pytest.raises(BadInput, match="not the ones .* was trained on"):
        ganvae.train("vae", 255 - x, run, resume=True, **TINY)


def test_other_images_into_a_finished_run_are_refused_and_change_nothing(tmp_path, shapes):
    x, _ = shapes
    run, _ = ganvae.train("vae", x, tmp_path / "run", **TINY)
    before = (run / "data.npz").read_bytes()
    with pytest.raises(BadInput, match="already holds a run; pass resume=True"):
        ganvae.train("vae", 255 - x, run, **TINY)
    assert (run / "data.npz").read_bytes() == before


def test_images_too_large_to_keep_record_a_fingerprint(tmp_path, shapes, run_cli, monkeypatch):
    x, _ = shapes
    monkeypatch.setattr(memory, "MAX_KEPT_BYTES", 1000)   # the threshold, cut for tiny arrays
    with pytest.warns(UserWarning, match="records only their fingerprint"):
        run, _ = ganvae.train("vae", x, tmp_path / "run", **TINY)
    fingerprint = memory.as_in_memory(x).fingerprint
    assert not (run / "data.npz").exists()
    assert json.loads((run / "config.json").read_text())["data"]["spec"] == f"memory:{fingerprint}"
    assert json.loads((run / "data.json").read_text())["fingerprint"] == fingerprint
    assert ganvae.load(run).sample(2, seed=0).shape == (2, 1, 28, 28)     # the model needs no data
    code, _, err = run_cli("eval", run, "-n", "100", "--quiet")
    assert code == 2 and "trained on in-memory images" in err and "ganvae.evaluate(RUN, data=images)" in err
    assert len(err.strip().splitlines()) == 1
    # given the same images again, it resumes and is scored on its own split
    _, summary = ganvae.train("vae", x, run, resume=True, **{**TINY, "steps": 4})
    assert summary["steps"] == 4
    scores = ganvae.evaluate(run, data=x, n=100, nll_k=4, nll_images=8)
    assert scores["data"] == f"memory:{fingerprint}" and "fd" in scores["metrics"]


def test_compare_on_images_in_memory(tmp_path, shapes):
    x, y = shapes
    out = tmp_path / "cmp"
    res = ganvae.compare(["ae"], (x, y), out=out, steps=3, batch_size=16, overrides=TINY["overrides"],
                         eval_n=100, curve_n=100, curve_points=2)
    assert [r["status"] for r in res["rows"]] == ["ok"]
    assert np.array_equal(kept(out)["y"], y)
    runs = [json.loads(p.read_text()) for p in out.glob("runs/*/config.json")]
    assert runs and all(r["data"]["spec"] == f"npz:{(out / 'data.npz').resolve()}" for r in runs)
    with pytest.raises(BadInput, match="unknown model 'vea'"):   # refused: no --out left behind
        ganvae.compare(["vea"], x, out=tmp_path / "bad", steps=2)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(BadInput, match="holds results of other in-memory images"):
        ganvae.compare(["ae"], 255 - x, out=out, steps=3)


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("data, labels, message", [
    (np.zeros((2, 3, 8, 8, 1), np.uint8), None, r"data: shape \(2, 3, 8, 8, 1\) has 5 dimensions"),
    (np.zeros((8, 16)), None, "has 2 dimensions"),
    (np.zeros((4, 8, 12), np.uint8), None, "images are 8x12.*square.*data_size"),
    (np.zeros((4, 2, 8, 8), np.uint8), None, "1 \\(grey\\) or 3 \\(RGB\\) channels.*found 2 and 8"),
    (np.full((4, 8, 8), 1.5, np.float32), None, r"float values in \[1.5, 1.5\]; floats must be images in \[0, 1\]"),
    (np.full((4, 8, 8), -0.5, np.float32), None, r"\[-1, 1\] images as \(x \+ 1\) / 2"),
    (np.full((4, 8, 8), 200, np.int64), None, "int64 values.*x.astype"),
    (np.zeros((4, 8, 8), np.uint8), np.arange(3), r"labels have shape \(3,\); expected \(4,\), one per image"),
    (np.zeros((4, 8, 8), np.uint8), np.zeros(4, np.float32), "labels must be integers"),
    ((np.zeros((4, 8, 8), np.uint8), np.arange(4)), np.arange(4), "give the labels once"),
    ([np.zeros((8, 8))] * 4, None, "data: a list"),
])
def test_bad_input_is_one_line_and_leaves_nothing(tmp_path, data, labels, message):
    with pytest.raises(BadInput, match=message) as e:
        ganvae.train("vae", data, labels=labels, runs_root=tmp_path, **TINY)
    assert "\n" not in str(e.value)
    assert not any(tmp_path.iterdir())


def test_a_run_that_fails_to_start_leaves_no_directory(tmp_path, shapes):
    x, _ = shapes
    with pytest.raises(BadInput, match="batch"):
        ganvae.train("vae", x, runs_root=tmp_path, **{**TINY, "batch_size": 0})
    assert not any(tmp_path.iterdir())
    with pytest.raises(BadInput, match="labels= go with images in memory"):
        ganvae.train("vae", "shapes", labels=[0, 1], runs_root=tmp_path, **TINY)
    with pytest.raises(BadInput, match="the Dataset's items carry labels"):
        ganvae.train("cvae", torch.utils.data.TensorDataset(torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.long)),
                     labels=np.zeros(4, int), runs_root=tmp_path, **TINY)
