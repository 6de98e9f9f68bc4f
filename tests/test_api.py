"""The Python API (ganvae.train / evaluate / compare / list_models / to_pil / save_grid,
ganvae.models, model.sample(n, seed=...)), each point tested by calling it on tiny shapes."""

import inspect
import json
import types

import numpy as np
import pytest
import torch
from PIL import Image

import ganvae
from ganvae.errors import BadInput

DATA = "shapes:n=512,n_test=128"
TINY = {"width": 8, "latent": 8}
N = 200                                        # samples per evaluation: seconds, not minutes
CHEAP = dict(nll_k=8, nll_images=16)           # the VAE's IWAE bound, on a few images


@pytest.fixture(scope="module", autouse=True)
def quick_evaluator():
    """A one-pass evaluator for the tiny data (its id says so; the test cache holds it): these
    tests check that the API passes the right images to the right scorer, not the evaluator,
    and the default recipe would spend half a minute training it."""
    from ganvae import evaluators

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(evaluators, "recipe_for", lambda ds: evaluators.Recipe(epochs=1, batch_size=64, precision="fp32"))
        yield


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, one_thread):
    return ganvae.train("vae", DATA, tmp_path_factory.mktemp("api") / "vae", steps=8, batch_size=32, overrides=TINY)


@pytest.fixture(scope="module")
def vae(vae_run):
    return ganvae.load(vae_run[0])


# ------------------------------------------------------------------------------- signatures

@pytest.mark.parametrize("fn, keywords", [
    (ganvae.train, ["steps", "epochs", "budget", "batch_size", "seed", "precision", "device", "overrides",
                    "callbacks", "nets", "progress"]),
    (ganvae.evaluate, ["n", "seed", "k", "device", "progress", "json_out"]),
    (ganvae.compare, ["out", "steps", "budget", "epochs", "seeds", "tasks", "device", "progress"]),
])
def test_typed_signatures_with_keyword_only_settings_and_an_example(fn, keywords):
    sig = inspect.signature(fn)
    for name in keywords:
        p = sig.parameters[name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert p.annotation is not inspect.Parameter.empty, name
    assert sig.return_annotation is not inspect.Signature.empty
    assert "Example:" in fn.__doc__ and f"ganvae.{fn.__name__}(" in fn.__doc__.split("Example:")[1]
    for other in (ganvae.list_models, ganvae.to_pil, ganvae.save_grid):
        assert "Example:" in other.__doc__


def test_evaluate_is_the_function_and_the_evaluation_code_its_own_module():
    """ganvae.evaluate is the typed function; the code behind it is ganvae.evaluation, a module
    of another name, so importing it never takes the function's place."""
    import ganvae.evaluation

    assert isinstance(ganvae.evaluate, types.FunctionType) and hasattr(ganvae.evaluation, "evaluate_run")
    assert "model_or_samples" in inspect.signature(ganvae.evaluate).parameters
    assert set(ganvae.__all__) >= {"train", "evaluate", "compare", "list_models", "to_pil", "save_grid", "load"}


def test_import_ganvae_stays_light():
    import subprocess
    import sys

    code = "import sys, ganvae; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------------ train

def test_train_returns_the_run_and_its_summary(vae_run):
    run, summary = vae_run
    assert (run / "config.json").is_file() and (run / "model" / "config.json").is_file()
    assert summary["steps"] == 8 and summary["images_seen"] == 8 * 32
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "vae" and saved["model"]["latent"] == 8 and saved["train"]["batch_size"] == 32


def test_train_refuses_unknown_options_and_bad_budgets(tmp_path):
    with pytest.raises(BadInput, match="unknown option 'stepz'.*steps"):
        ganvae.train("vae", DATA, tmp_path / "a", stepz=3)
    with pytest.raises(BadInput, match="--budget"):
        ganvae.train("vae", DATA, tmp_path / "b", budget=-1.0, overrides=TINY)


def test_train_takes_a_budget_in_seconds(tmp_path):
    run, summary = ganvae.train("ae", DATA, tmp_path / "r", budget=0.5, batch_size=32, overrides=TINY)
    assert json.loads((run / "config.json").read_text())["train"]["budget"] == "0.5"
    assert summary["steps"] >= 1


# ------------------------------------------------------------------------------- evaluate

@pytest.fixture(scope="module")
def run_scores(vae_run):
    return ganvae.evaluate(vae_run[0], n=N, **CHEAP)


def test_evaluate_a_run_is_what_ganvae_eval_writes(vae_run, run_scores, tmp_path):
    from ganvae.cli import main

    assert run_scores["data"] == DATA and run_scores["model"] == "vae" and run_scores["n"] == N
    assert {"fd", "kid", "precision", "recall", "recon_mse", "elbo", "nll"} <= set(run_scores["metrics"])
    assert main(["eval", str(vae_run[0]), "--n", str(N), "--nll-k", "8", "--nll-images", "16",
                 "--json", str(tmp_path / "eval.json")]) == 0
    cli = json.loads((tmp_path / "eval.json").read_text())
    assert set(cli) == set(run_scores)
    assert cli["metrics"] == run_scores["metrics"]
    # checkpoint=: the kept step 8 is the final model; a run compare did not make has no best
    step8 = ganvae.evaluate(vae_run[0], n=N, checkpoint=8, **CHEAP)
    assert step8["checkpoint"] == "8" and step8["metrics"] == run_scores["metrics"]
    with pytest.raises(BadInput, match="has no best checkpoint"):
        ganvae.evaluate(vae_run[0], n=N, checkpoint="best", **CHEAP)


def test_evaluate_a_model_its_samples_and_their_files_alike(vae, run_scores, tmp_path):
    """The same images score the same FD however they arrive: generated from the model,
    a float tensor of model.sample with the seed generate uses, uint8 arrays and tensors,
    grey (N, H, W) arrays, and an .npz file of them."""
    of_model = ganvae.evaluate(vae, DATA, n=N, seed=0, **CHEAP)
    assert of_model["model"] == "vae" and "recon_mse" in of_model["metrics"]
    assert of_model["metrics"]["fd"] == run_scores["metrics"]["fd"]   # the run's model, on its data
    run_on_data = ganvae.evaluate(run_scores["source"], DATA, n=N, **CHEAP)   # a run, on data named
    assert run_on_data["source"] == run_scores["source"] and run_on_data["metrics"] == of_model["metrics"]

    x = vae.sample(N, seed=0)                                       # float (N, 1, 28, 28) in [-1, 1]
    of_tensor = ganvae.evaluate(x, DATA)
    assert of_tensor["metrics"]["fd"] == of_model["metrics"]["fd"]
    u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    of_array = ganvae.evaluate(u8, DATA)
    assert of_array["metrics"] == ganvae.evaluate(torch.from_numpy(u8), DATA)["metrics"]
    assert of_array["metrics"] == of_tensor["metrics"] and of_array["floor"] == of_tensor["floor"]
    assert ganvae.evaluate(u8[:, 0], DATA)["metrics"]["fd"] == of_array["metrics"]["fd"]

    np.savez(tmp_path / "s.npz", x=u8)
    of_file = ganvae.evaluate(tmp_path / "s.npz", DATA, json_out=tmp_path / "out.json")
    assert of_file["metrics"] == of_array["metrics"] and of_file["source"] == str(tmp_path / "s.npz")
    assert json.loads((tmp_path / "out.json").read_text())["metrics"]["fd"] == of_file["metrics"]["fd"]


def test_evaluate_says_what_is_wrong_with_its_input(vae, tmp_path):
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    cases = [
        (x * 3, r"model_or_samples: float values in \[.*floats must be in \[-1, 1\]"),
        (x.to(torch.int64), "model_or_samples: a tensor of torch.int64; give uint8"),
        (x.numpy().astype(np.int32), "model_or_samples: a numpy array of int32"),
        (x[None], r"model_or_samples: shape \(1, 8, 1, 28, 28\)"),
        (x.permute(0, 2, 3, 1).expand(8, 28, 28, 3).contiguous(), "channels last"),
        (x[:0], "non-empty batch"),
        (torch.full((2, 1, 28, 28), float("nan")), "NaN"),
        ([1, 2, 3], "model_or_samples is a list"),
        (tmp_path / "missing", "no such run directory, .npz file or folder"),
    ]
    for bad, message in cases:
        with pytest.raises(BadInput, match=message):
            ganvae.evaluate(bad, DATA)
    with pytest.raises(BadInput, match="give data"):
        ganvae.evaluate(vae)
    with pytest.raises(BadInput, match="model directory.*give data"):
        ganvae.evaluate(vae.save_pretrained(tmp_path / "m"))
    with pytest.raises(BadInput, match="samples are 3x28x28 images but"):
        ganvae.evaluate(np.zeros((4, 3, 28, 28), np.uint8), DATA)
    with pytest.raises(BadInput, match="--n 0"):
        ganvae.evaluate(vae, DATA, n=0)


# -------------------------------------------------------------------------------- compare

def test_compare_trains_scores_and_returns_the_results(tmp_path):
    res = ganvae.compare(["ae"], DATA, out=tmp_path / "cmp", steps=4, batch_size=32, overrides=TINY,
                         eval_n=N, curve_n=100, curve_points=2)
    assert [(r["model"], r["seed"], r["status"], r["steps"]) for r in res["rows"]] == [("ae", 0, "ok", 4)]
    assert "fd" in res["rows"][0]["final"] and res["config"]["eval_n"] == N
    assert json.loads(json.dumps(res)) == json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert (tmp_path / "cmp" / "report.html").exists()


def test_compare_refuses_unknown_settings_and_models(tmp_path):
    with pytest.raises(BadInput, match="unknown setting 'eval_samples'.*eval_n"):
        ganvae.compare("ae,vae", DATA, out=tmp_path / "a", steps=2, eval_samples=10)
    with pytest.raises(BadInput, match="unknown model 'vea'"):
        ganvae.compare(["vea"], DATA, out=tmp_path / "b", steps=2)
    with pytest.raises(BadInput, match="exactly one budget"):
        ganvae.compare(["vae"], DATA, out=tmp_path / "c")
    with pytest.raises(BadInput, match="--tasks bogus: unknown task"):   # split at commas, not into letters
        ganvae.compare(["vae"], DATA, out=tmp_path / "d", steps=2, tasks="probe,bogus")
    assert not any(tmp_path.iterdir())    # nothing written for a refused comparison


# ------------------------------------------------------------------------ models and names

def test_list_models_is_the_registry_and_ganvae_models_json(capsys):
    from ganvae.cli import main
    from ganvae.registry import MODELS, preset_names

    rows = ganvae.list_models()
    assert [r["name"] for r in rows] == preset_names()
    assert all(MODELS[r["family"]].name == r["family"] and r["description"] for r in rows)
    assert {"name": "beta-vae", "family": "vae"}.items() <= next(r for r in rows if r["name"] == "beta-vae").items()
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == rows


def test_every_family_class_is_importable_from_ganvae_models(vae):
    import ganvae.models as M
    from ganvae.registry import MODELS

    assert type(vae) is M.VAE and isinstance(vae.config, M.VAEConfig)
    exported = {getattr(M, name) for name in M.__all__}
    assert set(MODELS.values()) <= exported
    for cls in MODELS.values():
        assert getattr(M, cls.__name__) is cls and getattr(M, cls.__name__ + "Config") is cls.Config
    assert M.Autoencoder is M.AE and M.GAN.name == "gan" and M.UNIT.name == "unit"


# --------------------------------------------------------------------------- sample(seed=)

def tiny(cls, **fields):
    torch.manual_seed(0)
    return cls(cls.Config(channels=1, size=28, **TINY, **fields)).eval()


@pytest.mark.parametrize("make", [
    pytest.param(lambda: tiny(ganvae.models.GAN), id="gan"),
    pytest.param(lambda: tiny(ganvae.models.VAE), id="vae"),
    pytest.param(lambda: tiny(ganvae.models.GAN, conditional=True, num_classes=3), id="cgan"),
    pytest.param(lambda: tiny(ganvae.models.VAE, conditional=True, num_classes=3), id="cvae"),
    pytest.param(lambda: tiny(ganvae.models.AE), id="ae"),
])
def test_sample_with_a_seed_repeats_itself(make):
    model = make()
    a, b = model.sample(6, seed=3), model.sample(6, seed=3)
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)
    assert not torch.equal(a, model.sample(6, seed=4))
    # the seed is a CPU generator's, as ganvae.evaluate draws its samples
    assert torch.equal(a, model.sample(6, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(BadInput, match="either seed or generator"):
        model.sample(2, generator=torch.Generator(), seed=1)
    if model.conditional:    # labels pick the classes; the seed still fixes the noise
        labels = torch.tensor([0, 1, 2, 0, 1, 2])
        assert torch.equal(model.sample(6, labels=labels, seed=3), model.sample(6, labels=labels, seed=3))


def test_every_family_takes_a_seed():
    from ganvae.registry import MODELS

    for cls in MODELS.values():
        assert inspect.signature(cls.sample).parameters["seed"].kind is inspect.Parameter.KEYWORD_ONLY, cls


# ------------------------------------------------------------------------------------ images

def test_to_pil_modes_sizes_and_pixels(vae):
    grey = ganvae.to_pil(vae.sample(3, seed=0))
    assert [(im.mode, im.size) for im in grey] == [("L", (28, 28))] * 3
    u8 = np.random.default_rng(0).integers(0, 256, (2, 3, 10, 12), dtype=np.uint8)
    rgb = ganvae.to_pil(u8)
    assert [(im.mode, im.size) for im in rgb] == [("RGB", (12, 10))] * 2       # PIL sizes are (W, H)
    assert np.array_equal(np.asarray(rgb[1]), u8[1].transpose(1, 2, 0))
    assert ganvae.to_pil(torch.from_numpy(u8[:, :1]))[0].mode == "L"
    assert np.array_equal(np.asarray(ganvae.to_pil(u8[:, 0])[0]), u8[0, 0])     # (N, H, W): grey
    with pytest.raises(BadInput, match=r"x: float values in \["):
        ganvae.to_pil(u8.astype(np.float32))


def test_save_grid_writes_the_grid_make_grid_tiles(vae, tmp_path):
    from ganvae.images import make_grid

    x = vae.sample(10, seed=0)
    path = ganvae.save_grid(x, tmp_path / "grid.png", nrow=4)
    want = make_grid(((x + 1) * 127.5).round().to(torch.uint8).numpy(), 4)      # (rows, cols, 1)
    with Image.open(path) as im:
        assert path == tmp_path / "grid.png" and im.size == (want.shape[1], want.shape[0]) and im.mode == "L"
        assert np.array_equal(np.asarray(im), want[:, :, 0])
    rgb = np.zeros((5, 3, 8, 8), np.uint8)
    with Image.open(ganvae.save_grid(rgb, tmp_path / "rgb.png")) as im:
        assert im.mode == "RGB" and im.size == make_grid(rgb).shape[1::-1]
    with pytest.raises(BadInput, match="ending in .png"):
        ganvae.save_grid(x, tmp_path / "grid.jpg")
    with pytest.raises(BadInput, match="nrow=0"):
        ganvae.save_grid(x, tmp_path / "g.png", nrow=0)


# ------------------------------------------------------------------------------ docs/api.md

# the page's examples with their budgets cut: a few steps, a few hundred samples, tiny data
DOC_CUTS = {r'"shapes"': repr(DATA), r"steps=300": "steps=4", r"\bn=2000": f"n={N}, nll_k=8, nll_images=16",
            r"sample\(2000": f"sample({N}",
            r"eval_n=2000": f"eval_n={N}, curve_n=100, curve_points=2, nll_k=8, nll_images=16"}


def test_the_api_page_runs_as_written(tmp_path, monkeypatch, one_thread):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    from ganvae.registry import PRESETS

    for name, (family, overrides) in list(PRESETS.items()):   # tiny nets, unless an example says otherwise
        monkeypatch.setitem(PRESETS, name, (family, {**overrides, **TINY}))
    for block in blocks:
        for pattern, repl in DOC_CUTS.items():
            block = re.sub(pattern, repl, block)
        exec(compile(block, "docs/api.md", "exec"), {})
    assert (tmp_path / "samples.png").exists() and (tmp_path / "cmp" / "report.html").exists()
