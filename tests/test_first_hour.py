"""Issue 34, the user's first hour: what a new user types, run as they type it."""

import subprocess
import sys


def test_documented_names_are_reachable_after_a_plain_import_without_loading_torch():
    """README and docs/api.md write ganvae.models.VAE, ganvae.callbacks.Callback and
    ganvae.trainer.Trainer after `import ganvae`; the subpackages load when first asked for, so
    `import ganvae` itself still loads no torch."""
    code = ("import sys, ganvae; light = 'torch' not in sys.modules; "
            "from ganvae.models import VAE; from ganvae.callbacks import Callback; from ganvae.trainer import Trainer; "
            "ok = ganvae.models.VAE is VAE and ganvae.callbacks.Callback is Callback and ganvae.trainer.Trainer is Trainer; "
            "print(light, ok, 'models' in dir(ganvae))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]
    # a name that is no submodule is the usual AttributeError, not an ImportError
    r = subprocess.run([sys.executable, "-c", "import ganvae; ganvae.nope"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "AttributeError: module 'ganvae' has no attribute 'nope'" in r.stderr


def test_a_write_that_cannot_happen_is_one_line_naming_the_users_path(runs, run_cli, tmp_path):
    """Issue 34, bug 4: exit 2 and the path the user gave (never the hidden temporary file),
    with the reason; the file in the way is left as it was."""
    from tests.conftest import DATA

    code, _, err = run_cli("sample", runs["dcgan"], "-n", 2, "-o", "/proc/x.png")
    assert code == 2 and err.startswith("ganvae: error: /proc/x.png: ") and "check the path" in err
    assert ".x.png." not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    blocker = tmp_path / "some.png"
    blocker.write_bytes(b"not a folder")
    tiny = ["--steps", 1, "--batch-size", 8, "--set", "width=4", "--set", "latent=4", "--quiet"]
    for args in (["sample", runs["dcgan"], "-n", 2, "-o", blocker / "x.png"],
                 ["train", "ae", "--data", DATA, *tiny, "--out", blocker / "run"],
                 ["compare", "--data", DATA, "--models", "ae", *tiny, "--out", blocker / "cmp"]):
        code, _, err = run_cli(*args)
        assert code == 2, (args[0], err)
        assert f"{blocker} is a file, not a folder" in err and "Traceback" not in err, (args[0], err)
        assert blocker.read_bytes() == b"not a folder"


def test_early_stopping_on_a_logged_metric_ends_the_run_as_a_finished_one(tmp_path):
    """Issue 34, bug 5: a callback stops a run cleanly: the step finishes, the final model and
    summary.json are written, and the call returns normally."""
    import json

    import pytest

    import ganvae
    from ganvae.callbacks import EarlyStopping
    from ganvae.errors import BadInput
    from tests.conftest import DATA

    small = dict(batch_size=16, progress=False, overrides={"width": 8, "latent": 4}, log_every=2)
    # the loss falls, so in "max" mode the first logged row stays the best: 2 stale rows later
    # (steps 4 and 6) the run ends at step 6 of its 40
    run, summary = ganvae.train("vae", DATA, tmp_path / "r", steps=40,
                                callbacks=[EarlyStopping("loss/total", patience=2, mode="max")], **small)
    assert summary["steps"] == 6 and "loss/total did not improve for 2 logged rows" in summary["stopped_early"]
    assert json.loads((run / "summary.json").read_text())["stopped_early"] == summary["stopped_early"]
    model = ganvae.load(run)                                  # the final model is there
    assert model.sample(2, seed=0).shape[0] == 2
    with pytest.raises(BadInput, match="metrics.jsonl has no 'loss/nope'; its rows have .*loss/total"):
        ganvae.train("vae", DATA, tmp_path / "r2", steps=4, callbacks=[EarlyStopping("loss/nope")], **small)
    with pytest.raises(BadInput, match="choose min or max"):
        EarlyStopping("loss/total", mode="lowest")


def test_sampling_with_the_wrong_labels_is_one_clear_error():
    """model.sample(4, labels=...) with another count, another shape or a class out of range:
    BadInput naming what to give, not a torch broadcasting error from inside a net."""
    import pytest
    import torch

    from ganvae.data import load_dataset
    from ganvae.errors import BadInput
    from ganvae.trainer import build

    ds = load_dataset("shapes:n=64,n_test=16")
    model, _ = build("cgan", ds, {"width": 8, "latent": 8})
    assert model.sample(4, labels=torch.tensor([0, 1, 2, 3]), seed=0).shape[0] == 4
    for labels, says in ((torch.tensor([1, 2]), r"labels of shape \(2,\) for 4 images"),
                         (torch.ones(4, 3), r"labels of shape \(4, 3\) for 4 images"),
                         (torch.tensor([0, 1, 2, 99]), r"labels 0\.\.99: the classes are 0\.\.")):
        with pytest.raises(BadInput, match=says):
            model.sample(4, labels=labels, seed=0)


def test_freeze_d_without_init_from_is_refused(run_cli, tmp_path):
    """--set freeze_d=K freezes D's first blocks: without --init-from they would be random
    layers fixed for the whole run; refused in one line, nothing written."""
    from tests.conftest import DATA

    code, _, err = run_cli("train", "dcgan", "--data", DATA, "--steps", 1, "--batch-size", 8, "--set", "width=4",
                           "--set", "freeze_d=1", "--quiet", "--out", tmp_path / "r")
    assert code == 2 and "--set freeze_d=1: freezes D's first blocks" in err and "--init-from RUN" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_a_mistyped_name_suggests_the_nearest_valid_one(run_cli, tmp_path):
    """Unknown presets, data names, --set, --tasks and --task-set keys say "did you mean", as
    click does for options; the error stays one line, exit 2, and nothing is written."""
    import pytest

    from tests.conftest import DATA

    cases = [
        (("train", "vea", "--data", DATA), "unknown model 'vea' (did you mean 'vae'?); choose one of: "),
        (("train", "vae", "--data", "fashion_mnist"), "unknown dataset (did you mean 'fashion-mnist'?); use one of "),
        (("train", "pix2pix", "--data", "task:edge2fashion"), "(did you mean 'edges2fashion'"),
        (("train", "vae", "--data", DATA, "--set", "laten=3"),
         "unknown key 'laten' for VAEConfig (did you mean 'latent'?); known keys: "),
        (("compare", "--data", DATA, "--models", "vae,dcgan", "--set", "laten=3"),
         "--set laten: no model of this comparison has that key (vae, dcgan) (did you mean 'latent'?)"),
        (("compare", "--data", DATA, "--models", "vae", "--tasks", "generate,compres"),
         "--tasks compres: unknown task (did you mean 'compress' or 'complete'?)"),
        (("compare", "--data", DATA, "--models", "vae", "--tasks", "compress", "--task-set", "compres.bits=3"),
         "--task-set compres.bits=3: no task 'compres' in --tasks (did you mean 'compress'?); write TASK.KEY=VALUE"),
        (("compare", "--data", DATA, "--models", "vae", "--tasks", "compress", "--task-set", "compress.bitz=3"),
         "--task-set compress: unknown key 'bitz' for CompressConfig (did you mean 'bits'?)"),
        # --sweep follows the --set rule: a key no model has is an error, with the nearest
        (("compare", "--data", DATA, "--models", "ae,dcgan", "--sweep", "bta=1,4"),
         "--sweep bta: no model of this comparison has that key (ae, dcgan)"),
    ]
    for args, said in cases:
        code, _, err = run_cli(*args, "--steps", 1, "--out", tmp_path / "o")
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not (tmp_path / "o").exists()
    # nothing near: no guess
    code, _, err = run_cli("train", "zzzzqq", "--data", DATA, "--steps", 1, "--out", tmp_path / "o")
    assert code == 2 and "did you mean" not in err
    from ganvae.errors import did_you_mean

    assert did_you_mean("dcgn", ["dcgan", "dcgan", "wgan"]) == " (did you mean 'dcgan'?)"   # each once
    assert did_you_mean("wgan-g", ["wgan-gp", "wgan", "dcgan"]) == " (did you mean 'wgan-gp' or 'wgan'?)"
    assert did_you_mean("x", []) == ""


def test_ganvae_models_lists_whole_descriptions_in_aligned_columns(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    lines = out.splitlines()
    vae = next(ln for ln in lines if ln.startswith("vae "))
    assert vae.endswith("Variational autoencoder: Gaussian posterior, N(0, I) prior, discretized, Bernoulli or "
                        "Gaussian pixels.")                          # not cut at the docstring's first line
    # every line's family and description start in the same columns, the longest name included
    assert any(ln.startswith("vaegan-paper ") for ln in lines)
    import re

    cols = [re.match(r"^(\S+)\s+(\S+)\s+(.*)$", ln) for ln in lines]
    assert len({m.start(2) for m in cols}) == 1 and len({m.start(3) for m in cols}) == 1
    descs = {m.group(1): m.group(3) for m in cols}
    cut = [n for n, d in descs.items() if not d or d.endswith((" or", " and", ",", " the", " a", " of"))]
    assert not cut, cut                                              # none stops mid-sentence
    code, js, _ = run_cli("models", "--json")
    import json

    assert {r["name"]: r["description"] for r in json.loads(js)}["vae"].endswith("Gaussian pixels.")


def test_the_mode_coverage_legend_is_short_and_outside_the_axes():
    """Long variant names (a transfer run's init_from path) made the legend cover the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganvae.report.plots import modes_figure, short_label

    long = "dcgan:train.init_from=/home/someone/experiments/runs/0003-dcgan-fashion-mnist:freeze_d=1"
    assert short_label(long) == "dcgan:init_from=0003-dcgan-fa…:freeze_d=1"   # what tells variants apart kept
    assert len(short_label("gan:" + ":".join(f"k{i}=v" for i in range(20)))) == 44
    assert short_label("vae:beta=4") == "vae:beta=4"
    hists = {m: [0.1] * 10 for m in (long, "dcgan", "vae:beta=4", "dcgan:augment=ada")}
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(hists)}
    fig = modes_figure([0.1] * 10, hists, [f"class {i}" for i in range(10)], colours)
    fig.canvas.draw()
    (ax,) = fig.axes
    (legend,) = fig.legends
    r = fig.canvas.get_renderer()
    box, axes_box, fig_box = legend.get_window_extent(r), ax.get_window_extent(r), fig.bbox
    assert box.x0 >= axes_box.x1                                      # right of the axes, covering no bar
    assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1 and box.y0 >= fig_box.y0   # and inside the image
    assert [t.get_text() for t in legend.get_texts()][1] == short_label(long)
    plt.close(fig)
