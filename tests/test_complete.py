"""Completion (ganvae.tasks.complete): masks, the three methods on every model family, the
baselines, the latent prior terms, the `complete` command, `eval --tasks` and `compare --tasks`."""

import json
import shutil

import numpy as np
import pytest
import torch

from ganvae.errors import BadInput
from ganvae.registry import MODELS, ensure_loaded, resolve
from ganvae.tasks.complete import (CompleteConfig, complete, context_weights, make_masks, mean_fill, nearest_fill,
                                   parse_mask)

ensure_loaded()
FAMILIES = sorted(k for k, cls in MODELS.items() if not cls.translation)   # translators have no latent space


def tiny(family, **kw):
    cls, cfg = resolve(family)
    cfg.width, cfg.latent = 8, 6
    for k, v in kw.items():
        setattr(cfg, k, v)
    torch.manual_seed(0)
    return cls(cfg).eval()


# ------------------------------------------------------------------------------------- masks

def test_mask_kinds():
    n, size = 5, (28, 28)
    centre = make_masks("center", n, size)
    assert centre.shape == (n, 1, 28, 28) and centre.dtype == np.float32
    assert (centre[:, :, 7:21, 7:21] == 0).all() and centre.sum() == n * (784 - 14 * 14)
    for side, region in (("left", np.s_[:, :14]), ("right", np.s_[:, 14:]), ("top", np.s_[:14, :]),
                         ("bottom", np.s_[14:, :])):
        m = make_masks(f"half:{side}", 1, size)[0, 0]
        assert (m[region] == 0).all() and m.sum() == 392
    assert (make_masks("half", 1, size) == make_masks("half:bottom", 1, size)).all()
    pixels = make_masks("random-pixels", n, size, seed=3)
    assert ((1 - pixels).reshape(n, -1).sum(1) == round(0.6 * 784)).all()       # the share missing, exactly
    assert ((1 - make_masks("random-pixels:0.25", 1, size)).sum()) == 196
    blocks = make_masks("random-blocks:2", n, size, seed=3)
    holes = (1 - blocks).reshape(n, -1).sum(1)
    assert ((holes >= 49) & (holes <= 98)).all()                              # two 7x7 squares, maybe overlapping
    # random kinds: one seed, one set of masks (every model gets the same); another seed, others
    assert (make_masks("random-pixels", n, size, seed=3) == pixels).all()
    assert not (make_masks("random-pixels", n, size, seed=4) == pixels).all()
    assert not (pixels[0] == pixels[1]).all()                                 # each image its own


def test_mask_from_png(tmp_path):
    from PIL import Image

    img = np.full((28, 28), 255, np.uint8)
    img[:10, :] = 0                                                          # black = missing
    Image.fromarray(img).save(tmp_path / "m.png")
    m = make_masks(str(tmp_path / "m.png"), 3, (28, 28))
    assert m.shape == (3, 1, 28, 28) and (m[:, 0, :10] == 0).all() and (m[:, 0, 10:] == 1).all()
    Image.fromarray(img[:20]).save(tmp_path / "small.png")
    with pytest.raises(BadInput, match="draw the mask at the images' size"):
        make_masks(str(tmp_path / "small.png"), 1, (28, 28))
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.raises(BadInput, match="nothing is missing"):
        make_masks(str(tmp_path / "white.png"), 1, (28, 28))
    with pytest.raises(BadInput, match="no such file"):
        make_masks(str(tmp_path / "none.png"), 1, (28, 28))


@pytest.mark.parametrize("spec,msg", [("middle", "choose center"), ("half:up", "one of left"),
                                      ("random-pixels:1.5", "must be in (0, 1)"),
                                      ("random-blocks:0", "whole number"), ("random-blocks:x", "whole number")])
def test_bad_mask_specs(spec, msg):
    with pytest.raises(BadInput, match=msg.replace("(", r"\(").replace(")", r"\)")):
        parse_mask(spec)


def test_context_weights_by_hand():
    """Known pixels weigh 1 + border_weight * (share of hole pixels in their window); holes 0."""
    mask = torch.ones(1, 1, 1, 5)
    mask[..., 2] = 0                                                        # a 1x5 row, hole in the middle
    w = context_weights(mask, window=3, border_weight=2.0)[0, 0, 0]
    # windows are cut at the border (count_include_pad=False): pixel 1 sees 3 pixels, one a hole
    assert w.tolist() == pytest.approx([1.0, 1 + 2 / 3, 0.0, 1 + 2 / 3, 1.0])


# ------------------------------------------------------------------------------------- methods

@pytest.mark.parametrize("family", FAMILIES)
def test_every_method_keeps_the_known_pixels(family, one_thread):
    model = tiny(family)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    mask = torch.from_numpy(make_masks("random-blocks", 5, (28, 28), 0))
    cfg = CompleteConfig(steps=3, restarts=2, gibbs_steps=2, batch=2)         # 3 batches
    methods = ["latent-opt", "encoder", "gibbs"] if model.has_encoder else ["latent-opt"]
    for method in methods + ["auto"]:
        out = complete(model, x, mask, method, cfg, generator=torch.Generator().manual_seed(0))
        assert out.shape == x.shape and out.dtype == torch.float32
        assert torch.equal(out[mask.expand_as(x) == 1], x[mask.expand_as(x) == 1])
        assert out.abs().max() <= 1
        # the same seed, the same completion
        again = complete(model, x, mask, method, cfg, generator=torch.Generator().manual_seed(0))
        assert torch.equal(out, again)
    if not model.has_encoder:
        with pytest.raises(BadInput, match="needs a model with an encoder"):
            complete(model, x, mask, "gibbs", cfg)


@pytest.mark.parametrize("family", FAMILIES)
def test_decode_is_differentiable_and_prior_terms(family, one_thread):
    """The contract completion relies on: decode passes gradients to z; latent_nll is N(0, I)'s
    ||z||^2 / 2 unless a density was fitted; models with an image discriminator expose its logit."""
    model = tiny(family)
    z = torch.randn(3, model.config.latent, requires_grad=True)   # (6, but a codec's latent map is its own)
    model.decode(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    if family.startswith("codec"):   # its prior is the learnt entropy model: the code length, in nats
        nll = model.latent_nll(z.detach().round())
        assert nll.shape == (3,) and torch.isfinite(nll).all() and (nll > 0).all()
    else:
        assert torch.allclose(model.latent_nll(z), 0.5 * z.detach().pow(2).sum(1))
    has_d = family in ("gan", "vaegan", "bigan", "codec-gan")
    assert hasattr(model, "realism") == has_d
    if has_d:
        x = torch.rand(3, 1, 28, 28) * 2 - 1
        logits = model.realism(x, z.detach())
        assert logits.shape == (3,) and logits.dtype == torch.float32
        d = {"gan": lambda: model.d(x), "vaegan": lambda: model.discriminator(x),
             "bigan": lambda: model.discriminator(x, z.detach()),
             # HiFiC's D sees the image and the latent y_hat = codes + medians, as (B, M, h, w)
             "codec-gan": lambda: model.discriminator(
                 x, z.detach().view(3, *model.latent_shape) + model.offsets().view(1, -1, 1, 1)).mean((1, 2, 3)),
             }[family]
        model.eval()
        assert torch.allclose(logits, d().float())


@pytest.mark.parametrize("prior", ["gaussian", "gmm"])
def test_latent_nll_of_a_fitted_prior(prior, one_thread):
    """Against scipy: the fitted Gaussian's -log density up to its constant, the mixture's exactly."""
    from scipy.stats import multivariate_normal

    model = tiny("ae", prior=prior, gmm_components=3)
    torch.manual_seed(1)
    model.fit_prior(torch.rand(200, 1, 28, 28) * 2 - 1)
    z = model.sample_prior(4, torch.Generator().manual_seed(2)).double()
    ours = model.latent_nll(z.float()).double().numpy()
    if prior == "gaussian":
        cov = (model.prior_chol @ model.prior_chol.T).double().numpy()
        ref = -multivariate_normal(model.prior_mean.double().numpy(), cov).logpdf(z.numpy())
        assert ours - ours[0] == pytest.approx(ref - ref[0], rel=1e-3, abs=1e-3)
    else:
        dens = sum(float(w) * multivariate_normal(m.double().numpy(), (c @ c.T).double().numpy()).pdf(z.numpy())
                   for w, m, c in zip(model.gmm_weights, model.gmm_means, model.gmm_chols))
        assert ours == pytest.approx(-np.log(dens), rel=1e-3, abs=1e-3)


def test_latent_opt_finds_a_code_that_explains_the_known_pixels(one_thread):
    """Images the generator can make exactly: the search recovers their hole far better than its
    own starting codes do."""
    model = tiny("gan")
    with torch.no_grad():
        x = model.decode(torch.randn(8, 6, generator=torch.Generator().manual_seed(5)))
    mask = torch.from_numpy(make_masks("center", 8, (28, 28)))
    hole = (1 - mask).expand_as(x) == 1
    cfg = CompleteConfig(restarts=2, latent_weight=0.0, realism_weight=0.0)
    err = {}
    for steps in (1, 200):
        out = complete(model, x, mask, "latent-opt", CompleteConfig(**{**cfg.__dict__, "steps": steps}),
                       generator=torch.Generator().manual_seed(0))
        err[steps] = float((out - x)[hole].pow(2).mean())
    assert err[200] < 0.2 * err[1], err


def test_baselines_by_hand():
    original = np.array([[[[10, 20], [30, 40]]]], np.uint8)                 # (1, 1, 2, 2)
    mask = np.array([[[[1, 0], [1, 0]]]], np.float32)
    mean_image = np.array([[[1, 2], [3, 4]]], np.uint8)
    assert mean_fill(original, mask, mean_image).tolist() == [[[[10, 2], [30, 4]]]]
    # the nearest training image on the known pixels (left column) is b, though a is nearer overall
    a = np.array([[[0, 20], [0, 40]]], np.uint8)
    b = np.array([[[12, 200], [28, 200]]], np.uint8)
    assert nearest_fill(original, mask, np.stack([a, b])).tolist() == [[[[10, 200], [30, 200]]]]


@pytest.mark.slow   # ~20 s: out of the default run to keep it under 10 minutes (make test-all)
def test_a_trained_model_beats_the_mean_image_on_fashion_mnist(one_thread):
    """An AE trained briefly on Fashion-MNIST fills centre holes of test images better than the
    mean training image does, with each of the three methods."""
    from ganvae.data import load_dataset, to_float, to_uint8
    from ganvae.metrics.inpainting import hole_mse
    from ganvae.trainer import train

    torch.set_num_threads(2)
    try:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            run, _ = train("ae", "fashion-mnist", f"{d}/run", steps=400, batch_size=64, seed=0, progress=False,
                           overrides={"width": 16, "latent": 16}, sample_every=10**9, checkpoint_every=10**9)
            from ganvae import load

            model = load(run)
    finally:
        torch.set_num_threads(1)
    ds = load_dataset("fashion-mnist")
    original = ds.test.x[:200]
    mask = make_masks("center", 200, (28, 28))
    mean_image = np.round(ds.train.x.mean(0)).astype(np.uint8)
    baseline = hole_mse(mean_fill(original, mask, mean_image), original, mask)
    x = to_float(torch.from_numpy(original))
    fill = to_float(torch.from_numpy(mean_image))
    for method in ("encoder", "gibbs", "latent-opt"):
        done = complete(model, x, torch.from_numpy(mask), method, CompleteConfig(steps=50, restarts=2), fill=fill,
                        generator=torch.Generator().manual_seed(0))
        ours = hole_mse(to_uint8(done).numpy(), original, mask)
        assert ours < 0.8 * baseline, (method, ours, baseline)


# ------------------------------------------------------------------------------------- commands

def test_complete_command_png_and_npz(runs, run_cli, tmp_path):
    from ganvae.data import load_dataset

    code, out, err = run_cli("complete", runs["vae"], "--mask", "half:left", "-n", 10, "-o", tmp_path / "c.png",
                             "--opt-steps", 5, "--quiet")
    assert code == 0, err
    assert "hole MSE" in out and "mean-image fill" in out and "ms per image" in out
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "c.png"))
    assert grid.ndim == 3 and grid.shape[2] == 3                          # the hole painted in colour
    masks = np.asarray(Image.open(tmp_path / "c-masks.png"))
    assert masks.max() == 255 and masks.min() == 0
    code, out, err = run_cli("complete", runs["dcgan"], "--mask", "random-pixels:0.5", "-n", 6, "-o",
                             tmp_path / "c.npz", "--opt-steps", 3, "--restarts", 2, "--seed", 1, "--quiet")
    assert code == 0, err
    assert "latent-opt" in out
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        x, mask, original = z["x"], z["mask"], z["original"]
    test = load_dataset("shapes:n=256,n_test=64").test.x[:6]
    assert x.dtype == np.uint8 and x.shape == (6, 1, 28, 28) and (original == test).all()
    assert mask.shape == (6, 1, 28, 28) and ((1 - mask).reshape(6, -1).sum(1) == 392).all()
    known = np.broadcast_to(mask, x.shape).astype(bool)
    assert (x[known] == original[known]).all() and (tmp_path / "c-masks.png").exists()
    assert (mask == make_masks("random-pixels:0.5", 6, (28, 28), seed=1)).all()
    # the command and the comparison's task complete through one function: the same images
    from ganvae.tasks.complete import complete_images, mean_image
    from ganvae.trainer import load_run

    model, _ = load_run(runs["dcgan"])
    ds = load_dataset("shapes:n=256,n_test=64")
    cfg = CompleteConfig(method="latent-opt", steps=3, restarts=2, seed=1)
    again, _ = complete_images(model, original, mask.astype(np.float32), "latent-opt", cfg, mean_image(ds))
    assert np.array_equal(again, x)


@pytest.mark.parametrize("args,msg", [
    (["--mask", "middle"], "--mask middle"),
    (["--method", "gibbs"], "needs a model with an encoder"),
    (["--mask", "nope.png"], "no such file"),
    (["-o", "x.jpg"], "write a .png grid or an .npz"),
])
def test_complete_command_errors(args, msg, runs, run_cli, tmp_path):
    argv = ["complete", runs["dcgan"], "-o", tmp_path / "c.png", "--quiet"]
    if "-o" in args:
        argv = ["complete", runs["dcgan"], "--quiet"]
    code, out, err = run_cli(*argv, *args)
    assert code == 2 and msg in err and "Traceback" not in err
    assert err.count("\n") == 1 and not (tmp_path / "c.png").exists()


def test_eval_with_the_completion_task(runs, run_cli, tmp_path):
    code, out, err = run_cli("eval", runs["ae"], "--tasks", "complete", "--masks", "center,random-pixels",
                             "--complete-n", 20, "--device", "cpu", "--quiet")
    assert code == 0, err
    res = json.loads((runs["ae"] / "eval.json").read_text())
    assert "metrics" not in res                                             # generate was not asked for
    task = res["tasks"]["complete"]
    assert [t["mask"] for t in task["tables"]] == ["center", "random-pixels:0.6"]
    rows = {r["name"]: r for r in task["tables"][0]["rows"]}
    assert set(rows) == {"ae", "mean image", "nearest neighbour", "originals"}
    assert {"hole_mse", "hole_psnr", "ssim", "fd", "accuracy", "ms_per_image"} <= set(rows["ae"])
    assert rows["originals"]["ssim"] == pytest.approx(1.0) and "hole_mse" not in rows["originals"]
    assert rows["ae"]["method"] == task["result"]["method"]
    assert "mask center (20 test images)" in out and "nearest neighbour [baseline]" in out
    code, _, err = run_cli("eval", runs["ae"], "--tasks", "complete,draw", "--device", "cpu")
    assert code == 2 and "unknown task" in err


@pytest.mark.slow   # ~20 s: out of the default run to keep it under 10 minutes (make test-all)
def test_compare_adds_the_completion_task_to_a_finished_comparison(runs, run_cli, tmp_path):
    """A comparison run with --tasks generate,complete: training is reused, completion runs for
    every model, and the report gets a Completion section that a real browser renders."""
    from tests.browser import open_report

    args = ["--data", "shapes:n=256,n_test=64", "--steps", 4, "--batch-size", 16, "--set", "width=8",
            "--set", "latent=4", "--eval-n", 64, "--curve-n", 64, "--curve-points", 2, "--quiet",
            "--models", "ae,dcgan", "--out", tmp_path / "o"]
    code, _, err = run_cli("compare", *args)
    assert code == 0, err
    trained = (tmp_path / "o" / "runs" / "ae-seed0" / "result.json").read_bytes()
    code, _, err = run_cli("compare", *args, "--tasks", "generate,complete", "--masks", "center,half:top",
                           "--complete-n", 16, "--complete-method", "auto")
    assert code == 0, err
    assert "ae-seed0: finished earlier; skipping" in err and "ae-seed0: complete" in err
    assert (tmp_path / "o" / "runs" / "ae-seed0" / "result.json").read_bytes() == trained
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    task = res["tasks"]["complete"]
    assert set(task["results"]) == {"ae", "dcgan"} and len(task["tables"]) == 2
    assert task["results"]["dcgan"][0]["method"] == "latent-opt"
    assert task["findings"] and "completes best" in task["findings"][0]
    assert (tmp_path / "o" / "runs" / "dcgan-seed0" / "figures" / "completion.png").exists()
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="task-complete"' in html and "mask half:top" in html and "nearest neighbour" in html
    shot = open_report(tmp_path / "o" / "report.html", tmp_path / "shot.png")
    assert shot["broken"] == [] and shot["console_errors"] == []
    # run again: nothing is recomputed (the task's results are kept with their config)
    before = (tmp_path / "o" / "runs" / "dcgan-seed0" / "tasks" / "complete.json").read_bytes()
    code, _, err = run_cli("compare", *args, "--tasks", "generate,complete", "--masks", "center,half:top",
                           "--complete-n", 16)
    assert code == 0 and ": complete" not in err
    assert (tmp_path / "o" / "runs" / "dcgan-seed0" / "tasks" / "complete.json").read_bytes() == before


def _presets():
    from ganvae.registry import preset_names, resolve

    return [p for p in preset_names() if not resolve(p)[0].translation]   # they have no latent space


@pytest.mark.parametrize("preset", _presets())
def test_every_preset_completes_every_mask_kind(preset, runs, one_thread, tmp_path):
    """Every trained preset, every mask kind, every method that applies (a few steps each)."""
    from PIL import Image

    from ganvae import load
    from ganvae.tasks.complete import METHODS

    model = load(runs[preset])
    png = np.full((28, 28), 255, np.uint8)
    png[5:12, 3:25] = 0
    Image.fromarray(png).save(tmp_path / "m.png")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    cfg = CompleteConfig(steps=2, restarts=1, gibbs_steps=2)
    methods = [m for m, (_, applies, _, _) in METHODS.items() if applies(model)]
    assert ("encoder" in methods) == model.has_encoder
    for spec in ("center", "half:right", "random-blocks", "random-pixels:0.3", str(tmp_path / "m.png")):
        mask = torch.from_numpy(make_masks(spec, 4, (28, 28), seed=0))
        for method in methods:
            out = complete(model, x, mask, method, cfg, generator=torch.Generator().manual_seed(0))
            known = mask.expand_as(x) == 1
            assert torch.equal(out[known], x[known]) and torch.isfinite(out).all(), (spec, method)


def test_bf16_completion_keeps_known_pixels_and_follows_fp32(one_thread):
    """precision=bf16 autocasts the network forwards only: the known pixels are still exact,
    and a one-pass encoder completion stays within bf16's rounding of the fp32 one."""
    model = tiny("vae")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    mask = torch.from_numpy(make_masks("center", 4, (28, 28)))
    out = {p: complete(model, x, mask, "encoder", CompleteConfig(precision=p)) for p in ("fp32", "bf16")}
    known = mask.expand_as(x) == 1
    assert torch.equal(out["bf16"][known], x[known])
    assert (out["bf16"] - out["fp32"]).abs().max() < 0.05
    lo = complete(model, x, mask, "latent-opt", CompleteConfig(precision="bf16", steps=3, restarts=2))
    assert lo.dtype == torch.float32 and torch.equal(lo[known], x[known])
    with pytest.raises(BadInput, match="choose fp32 or bf16"):
        CompleteConfig(precision="fp16").validate()


def test_eval_tasks_keep_what_eval_json_held(runs, run_cli, tmp_path):
    """Scoring only a task leaves the samples' scores in eval.json; scoring samples again keeps
    the task's results."""
    run = tmp_path / "run"
    shutil.copytree(runs["vae"], run)
    code, _, err = run_cli("eval", run, "-n", 64, "--nll-k", 2, "--nll-images", 4, "--device", "cpu")
    assert code == 0, err
    fd = json.loads((run / "eval.json").read_text())["metrics"]["fd"]
    code, _, err = run_cli("eval", run, "--tasks", "complete", "--masks", "center", "--complete-n", 8,
                           "--complete-method", "encoder", "--device", "cpu", "--quiet")
    assert code == 0, err
    res = json.loads((run / "eval.json").read_text())
    assert res["metrics"]["fd"] == fd and res["tasks"]["complete"]["result"]["method"] == "encoder"
    code, _, err = run_cli("eval", run, "-n", 64, "--nll-k", 2, "--nll-images", 4, "--device", "cpu", "--seed", 1)
    assert code == 0, err
    res = json.loads((run / "eval.json").read_text())
    assert res["metrics"]["fd"] != fd and "complete" in res["tasks"]


def test_translation_models_are_refused_in_one_line(runs, run_cli, tmp_path):
    from ganvae.tasks import get_task

    code, _, err = run_cli("complete", runs["pix2pix"], "-n", 4, "-o", tmp_path / "c.png")
    assert code == 2 and "no latent space to complete from" in err and "Traceback" not in err
    assert not (tmp_path / "c.png").exists()
    assert not get_task("complete").applies(__import__("ganvae").load(runs["pix2pix"]))
