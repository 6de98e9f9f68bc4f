"""Evaluators and the evaluation suite, on real data and real runs."""

import json
import math

import numpy as np
import pytest
import torch

from ganvae.data import load_dataset
from ganvae.data.base import ImageDataset, Split
from ganvae.evaluation import EvalConfig, directions, evaluate_samples, score
from ganvae.evaluators import (SHIPPED, Evaluator, Recipe, _holdout_accuracy, _one_rotation, accuracy, evaluator_id,
                               get_evaluator, recipe_for, train_evaluator)
from ganvae.registry import preset_names


@pytest.fixture(scope="module")
def fmnist():
    return load_dataset("fashion-mnist")


@pytest.fixture(scope="module")
def fm_evaluator(fmnist):
    logs = []
    ev = get_evaluator(fmnist, log=logs.append)
    assert not any("training" in m for m in logs), "the shipped evaluator must be used, not retrained"
    return ev


def test_shipped_evaluator_accuracy(fmnist, fm_evaluator):
    meta = fm_evaluator.meta
    assert (SHIPPED / meta["id"] / "model.safetensors").exists()
    assert (SHIPPED / meta["id"] / "model.safetensors").stat().st_size < 2_000_000  # small
    assert meta["command"].startswith("ganvae evaluator train --data fashion-mnist")
    assert meta["recipe"]["seed"] == 0 and meta["kind"] == "classifier"
    acc = accuracy(fm_evaluator.net, fmnist.test.x, fmnist.test.y, "cpu")
    assert acc >= 0.92
    assert acc == pytest.approx(meta["accuracy"], abs=1e-4)  # the recorded figure is the real one


def test_scoring_path_computes_the_evaluator_features(fmnist, fm_evaluator):
    """Batch norm folded and channels-last for speed: the same features and probabilities."""
    x = fmnist.test.x[:300]
    f, p = fm_evaluator.features_and_probs(x, batch=128)
    with torch.no_grad():
        xf = torch.from_numpy(x).float() / 127.5 - 1
        want = fm_evaluator.net.features(xf)
        want_p = torch.softmax(fm_evaluator.net.head(want), 1)
    np.testing.assert_allclose(f, want.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p, want_p.numpy(), atol=1e-5)


@pytest.mark.slow   # two evaluator trainings (~30 s); `make test-all` runs it
def test_evaluator_training_is_deterministic():
    ds = load_dataset("shapes:n=300,n_test=100,classes=4")
    recipe = Recipe(epochs=2, batch_size=32)
    a = train_evaluator(ds, recipe, log=lambda m: None)
    b = train_evaluator(ds, recipe, log=lambda m: None)
    for (k, v), w in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(v, w), k
    assert a.meta["id"] == b.meta["id"] and a.meta["kind"] == "classifier"


@pytest.mark.slow   # trains a rotation evaluator from scratch (~1 min); `make test-all` runs it
def test_unlabelled_data_gets_a_rotation_evaluator_and_cache(isolated_cache):
    d = load_dataset("shapes:n=300,n_test=60,classes=4")
    ds = ImageDataset("npz:unlabelled", Split(d.train.x), Split(d.test.x))
    logs = []
    ev = get_evaluator(ds, log=logs.append, recipe=Recipe(epochs=2, batch_size=32))
    assert ev.meta["kind"] == "rotation" and ev.meta["outputs"] == 4 and 0 <= ev.meta["accuracy"] <= 1
    assert "rotations" in ev.meta["accuracy_of"]
    # what an exact rebuild depends on is recorded with it
    assert ev.meta["threads"] == torch.get_num_threads() and ev.meta["cpu"] and ev.meta["machine"]
    f, p = ev.features_and_probs(ds.test.x)
    assert f.shape == (60, 128) and p is None
    logs2 = []
    again = get_evaluator(ds, log=logs2.append, recipe=Recipe(epochs=2, batch_size=32))
    assert not logs2 and again.meta == ev.meta  # loaded from the cache, not trained
    assert (isolated_cache / "evaluators" / ev.id / "meta.json").exists()


def test_damaged_cached_evaluator_is_retrained(isolated_cache):
    ds = load_dataset("shapes:n=200,n_test=40,classes=3")
    r = Recipe(epochs=1, batch_size=32)
    ev = get_evaluator(ds, log=lambda m: None, recipe=r)
    (isolated_cache / "evaluators" / ev.id / "model.safetensors").write_bytes(b"garbage")
    logs = []
    ev2 = get_evaluator(ds, log=logs.append, recipe=r)
    assert any("damaged evaluator" in m for m in logs)
    assert ev2.id == ev.id


def test_new_data_recipe_is_sized_to_the_data_and_old_ids_stand():
    """Fields added to Recipe after an evaluator was built must not change its id (the shipped
    weights are found by it); new data gets the fast recipe, pooled to ~32 pixels."""
    fm = load_dataset("fashion-mnist")
    assert recipe_for(fm.as_loaded()) == Recipe(epochs=15, flip=True)
    assert evaluator_id(fm.as_loaded(), Recipe(epochs=15, flip=True)) in {p.name for p in SHIPPED.iterdir()}
    small = load_dataset("shapes:n=200,n_test=20")
    big = load_dataset("shapes:n=200,n_test=20", size=64, channels=3)
    r28, r64 = recipe_for(small), recipe_for(big)
    assert (r28.input_pool, r64.input_pool) == (1, 2) and r28.precision == "fp32" and r28.holdout > 0
    assert r64.budget_images < r28.budget_images            # 32x32 pooled inputs cost more than 28x28
    assert r28.passes(100) == r28.epochs and r28.passes(10**6) == 1
    # a later field at its default is left out of the identity; set, it changes it
    assert evaluator_id(small, Recipe()) != evaluator_id(small, Recipe(holdout=0.1))


def test_one_rotation_labels_are_the_rotations():
    x = torch.randn(64, 3, 8, 8)
    xs, ys = _one_rotation(x, torch.Generator().manual_seed(0))
    assert set(ys.tolist()) == {0, 1, 2, 3}
    for i in range(64):
        assert torch.equal(xs[i], torch.rot90(x[i], int(ys[i]), dims=(1, 2)))


def test_a_perfect_held_out_pass_ends_training_at_once():
    """Only a higher held-out accuracy replaces the kept pass, so once it is 1.0 the passes the
    patience would wait out are thrown away: training stops there, keeping that pass."""
    ds = load_dataset("shapes:n=400,n_test=80,classes=2", size=32, channels=3)
    recipe = Recipe(epochs=30, batch_size=32, holdout=0.2, patience=5, precision="fp32", input_pool=2)
    logs = []
    ev = train_evaluator(ds, recipe, log=logs.append)
    accs = [float(m.split("held-out accuracy ")[1].split()[0]) for m in logs if m.startswith("evaluator pass")]
    assert accs[-1] == 1.0 and 1.0 not in accs[:-1]               # the first perfect pass is the last
    assert ev.meta["best_pass"] == len(accs) < 30
    assert any("held-out accuracy 1.0000 cannot improve; keeping pass" in m for m in logs)


def test_early_stopping_keeps_the_best_held_out_pass(capfd, tmp_path):
    ds = load_dataset("shapes:n=400,n_test=80,classes=4", size=32, channels=3)
    # shapes are easy: held-out accuracy tops out (a tie is no improvement) long before 30 passes
    recipe = Recipe(epochs=30, batch_size=32, holdout=0.2, patience=2, precision="fp32",
                    input_pool=2, channels_last=True)
    logs = []
    ev = train_evaluator(ds, recipe, log=logs.append, progress=True)
    passes = [m for m in logs if m.startswith("evaluator pass")]
    assert len(passes) < 30 and any("keeping pass" in m for m in logs)
    accs = [float(m.split("held-out accuracy ")[1].split()[0]) for m in passes]
    assert ev.meta["holdout_accuracy"] == pytest.approx(max(accs), abs=1e-4)
    assert ev.meta["best_pass"] == accs.index(max(accs)) + 1 and ev.meta["holdout_images"] == 80
    assert ev.meta["train_images"] == 320
    # the kept weights are the best pass's: scoring them again gives its held-out accuracy
    x = torch.from_numpy(ds.train.x)
    order = np.random.default_rng(recipe.seed).permutation(400)
    hold = np.sort(order[:80])
    pooled = ev.net.pool(((x[hold].float() / 127.5) - 1))
    got = _holdout_accuracy(ev.net, pooled, torch.from_numpy(ds.train.y[hold]), recipe.seed)
    assert got == pytest.approx(max(accs), abs=1e-4)
    assert "evaluator" in capfd.readouterr().err          # the progress bar
    # saved and loaded with its input pooling: the same features
    ev.save(tmp_path / "ev")
    back = Evaluator.load(tmp_path / "ev")
    assert isinstance(back.net.pool, torch.nn.AvgPool2d)
    torch.testing.assert_close(torch.from_numpy(back.features_and_probs(ds.test.x)[0]),
                               torch.from_numpy(ev.features_and_probs(ds.test.x)[0]))


# ------------------------------------------------------------------ metrics on real data


@pytest.fixture(scope="module")
def small_cfg():
    # 1,000 samples: the broken sets below score 100x the floor or more, far beyond the FD's bias
    return EvalConfig(n=1000, kid_subsets=20, kid_subset_size=500)


def _fd(x, fmnist, ev, cfg):
    return score(x, fmnist, ev, cfg, log=lambda m: None, with_floor=False)["metrics"]


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_fd_floor_far_below_broken_samples(fmnist, fm_evaluator, small_cfg):
    rng = np.random.default_rng(0)
    n = small_cfg.n
    real = score(fmnist.train.x[:n], fmnist, fm_evaluator, small_cfg, log=lambda m: None)
    floor_fd = real["floor"]["fd"]
    assert real["metrics"]["fd"] == pytest.approx(floor_fd, rel=0.5)  # train images ARE the floor
    noise = rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8)
    x = torch.from_numpy(fmnist.train.x[n:2 * n]).float()
    blurred = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2).round().to(torch.uint8).numpy()
    repeated = np.repeat(fmnist.train.x[:1], n, axis=0)
    scored = {name: _fd(bad, fmnist, fm_evaluator, small_cfg)
              for name, bad in (("noise", noise), ("blurred", blurred), ("repeated", repeated))}
    for name, m in scored.items():
        assert m["fd"] > 10 * floor_fd, (name, m["fd"], floor_fd)
    assert real["metrics"]["sharpness"] == pytest.approx(1.0, abs=0.1)
    assert scored["blurred"]["sharpness"] < 0.3
    # the single repeated image covers one mode and has no recall
    m = scored["repeated"]
    assert m["mode_coverage"] <= 2 and m["recall"] < 0.05 and m["classifier_score"] < 1.5
    assert real["floor"]["mode_coverage"] == 10 and real["floor"]["classifier_score"] > 8


# ------------------------------------------------------------------ the CLI

EVAL = ["-n", 200, "--nll-k", 8, "--nll-images", 16]


@pytest.mark.parametrize("preset", preset_names())
def test_eval_every_preset(runs, preset, run_cli):
    code, out, err = run_cli("eval", runs[preset], *EVAL)
    assert code == 0, err
    res = json.loads((runs[preset] / "eval.json").read_text())
    m = res["metrics"]
    for name in ("fd", "kid", "precision", "recall", "density", "coverage", "classifier_score", "mode_coverage"):
        assert math.isfinite(m[name]) and name in res["floor"], name
        assert res["higher_is_better"][name] == directions()[name]
    from ganvae.registry import resolve

    cls, _ = resolve(preset)
    n = 64 if cls.translation else 200   # a translation model translates the 64 test inputs there are
    assert res["n"] == n and res["floor_images"] == n and res["evaluator"]["kind"] == "classifier"
    assert 0 <= res["evaluator"]["accuracy"] <= 1
    assert ("recon_mse" in m) == cls.has_encoder and ("nll" in m) == cls.has_likelihood
    if cls.has_likelihood:
        # the IWAE bound is at least the ELBO on the same images (tests/test_likelihood.py
        # checks the bits/dim conversion against a uniform decoder's exact 8)
        assert m["nll"] <= -m["elbo"] + 1.0
        assert 0 < m["nll_bpd"] <= 8 and res["likelihood"]["space"] == "8-bit"
        assert "likelihood (discretized-logistic): a probability of the 8-bit pixels" in out
    # the table: one row per metric with the floor beside it
    header = next(line for line in out.splitlines() if line.startswith("metric"))
    assert "FD[shapes-classifier]" in out and "floor" in header


def test_eval_samples_npz_and_folder(runs, run_cli, tmp_path):
    from PIL import Image

    code, _, err = run_cli("sample", runs["dcgan"], "-n", 50, "-o", tmp_path / "s.npz")
    assert code == 0, err
    code, out, err = run_cli("eval", "--samples", tmp_path / "s.npz", "--data", "shapes:n=256,n_test=64",
                             "--json", tmp_path / "r.json")
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["n"] == 50 and res["model"] is None and res["metrics"]["fd"] > 0
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(np.load(tmp_path / "s.npz")["x"][:20]):
        Image.fromarray(img[0]).save(folder / f"{i}.png")
    code, out, err = run_cli("eval", "--samples", folder, "--data", "shapes:n=256,n_test=64")
    assert code == 0 and "20 samples" in out, err


@pytest.mark.parametrize("args,msg", [
    (["--samples", "/no/such.npz", "--data", "shapes:n=256,n_test=64"], "no such file"),
    (["--samples", "x.npz"], "needs --data"),
    ([], "give a RUN directory"),
    (["/no/such/run"], "no such run directory"),
])
def test_eval_bad_input(args, msg, run_cli):
    code, _, err = run_cli("eval", *args)
    assert code == 2 and msg in err and "Traceback" not in err


def test_eval_samples_wrong_shape(run_cli, tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((10, 3, 32, 32), np.uint8))
    code, _, err = run_cli("eval", "--samples", tmp_path / "s.npz", "--data", "shapes:n=256,n_test=64")
    assert code == 2 and "3x32x32" in err and "1x28x28" in err


def test_evaluate_samples_api(fmnist, fm_evaluator, small_cfg, tmp_path):
    np.savez(tmp_path / "s.npz", x=fmnist.train.x[:500])
    res = evaluate_samples(tmp_path / "s.npz", fmnist, small_cfg, log=lambda m: None)
    assert res["evaluator"]["id"] == fm_evaluator.id and res["n"] == 500
    assert isinstance(Evaluator.load(SHIPPED / fm_evaluator.id), Evaluator)


def test_real_statistics_are_cached_and_damage_recomputed(isolated_cache):
    from ganvae.evaluation import real_features

    ds = load_dataset("shapes:n=200,n_test=50,classes=3")
    ev = get_evaluator(ds, log=lambda m: None, recipe=Recipe(epochs=1, batch_size=32))
    f1, p1 = real_features(ev, ds.test.x, "test")
    files = list((isolated_cache / "stats").glob("*.npz"))
    path = max(files, key=lambda p: p.stat().st_mtime)
    stamp = path.stat().st_mtime_ns
    f2, p2 = real_features(ev, ds.test.x, "test")
    assert path.stat().st_mtime_ns == stamp and np.array_equal(f1, f2) and np.array_equal(p1, p2)
    path.write_bytes(b"damaged")
    logs = []
    f3, _ = real_features(ev, ds.test.x, "test", log=logs.append)
    assert any("damaged statistics cache" in m for m in logs) and np.array_equal(f1, f3)
    # another count of images is another cache entry
    real_features(ev, ds.test.x[:20], "test")
    assert len(list((isolated_cache / "stats").glob("*.npz"))) == len(files) + 1


# ------------------------------------------------------------------ too little data, folder samples


def _square_pngs(root, n: int, seed: int = 0):
    """n grey 28x28 PNGs of centred squares of n sizes and brightnesses: learnable, cheap."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = np.zeros((28, 28), np.uint8)
        r = 4 + i % 8
        a[14 - r:14 + r, 14 - r:14 + r] = int(rng.integers(128, 256))
        Image.fromarray(a).save(root / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def tiny_folder_run(tmp_path_factory):
    """A 70-image folder (7 test images) and a VAE with 16-dim codes trained 2 steps on it; its
    rotation evaluator (~2 s) is trained by the first eval and cached for the session."""
    from ganvae.cli import main

    root = _square_pngs(tmp_path_factory.mktemp("tiny") / "imgs", 70)
    run = root.parent / "run"
    code = main(["train", "vae", "--data", f"folder:{root}", "--steps", "2", "--out", str(run),
                 "--set", "width=8", "--set", "latent=16", "--batch-size", "16", "--quiet"])
    assert code == 0
    return root, run


def test_eval_of_a_tiny_folder_run_skips_what_it_cannot_compute_and_keeps_the_rest(tiny_folder_run, run_cli):
    """7 test codes cannot give a 16-dim covariance (latent_tc), nor 8-NN balls (--k 8): those are
    noted in one line and in eval.json's `skipped`; every other score is written, exit 0."""
    _, run = tiny_folder_run
    # an older evaluation's notes are replaced, not merged into this one's
    (run / "eval.json").write_text(json.dumps({"metrics": {"fd": 1.0}, "skipped": {"kid": "old"}}))
    code, out, err = run_cli("eval", run, "-n", 20, "--nll-k", 2, "--nll-images", 4, "--quiet")
    assert code == 0, err
    res = json.loads((run / "eval.json").read_text())
    assert res["test_images"] == 7 and res["skipped"] == {
        "latent_tc": "codes: 7 rows cannot estimate a 16-dim covariance; give more rows than dims"}
    m = res["metrics"]
    assert "latent_tc" not in m
    for name in ("fd", "kid", "precision", "recall", "density", "coverage", "sharpness", "recon_mse", "psnr",
                 "rate_bits", "elbo", "nll"):
        assert math.isfinite(m[name]), name
    assert math.isfinite(res["floor"]["fd"]) and math.isfinite(res["floor"]["precision"])
    notes = [line for line in err.splitlines() if "not computed" in line]
    assert notes == ["warning: not computed from this little data: latent_tc (codes: 7 rows cannot estimate "
                     "a 16-dim covariance; give more rows than dims)"]
    assert "latent_tc" not in out   # (the table lists what was computed)
    # --k 8 needs 9 test images: the k-NN family is left out too, named together on the line
    code, out, err = run_cli("eval", run, "-n", 20, "--nll-k", 2, "--nll-images", 4, "--k", 8, "--quiet")
    assert code == 0, err
    res = json.loads((run / "eval.json").read_text())
    prdc_names = {"precision", "recall", "density", "coverage"}
    assert set(res["skipped"]) == {"latent_tc"} | prdc_names and not (set(res["metrics"]) & prdc_names)
    assert "k=8" in res["skipped"]["precision"] and "real 7" in res["skipped"]["precision"]
    assert math.isfinite(res["metrics"]["fd"]) and math.isfinite(res["metrics"]["recon_mse"])
    notes = [line for line in err.splitlines() if "not computed" in line]
    assert len(notes) == 1 and "precision, recall, density, coverage (prdc: k=8" in notes[0]


def test_eval_samples_folder_says_what_was_converted_resized_and_skipped(tiny_folder_run, run_cli, tmp_path):
    """Samples in a folder are fitted to the data's 1x28x28 as train fits a data folder, and the
    one warning line counts what that did: colour -> grey, resized (from which sizes), skipped."""
    from PIL import Image

    data, _ = tiny_folder_run
    samples = tmp_path / "samples"
    _square_pngs(samples, 20, seed=1)                            # already 1x28x28: not mentioned
    rng = np.random.default_rng(2)
    for i in range(12):                                          # RGB, 40 wide and 30 high
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(samples / f"rgb{i}.png")
    for i in range(18):                                          # grey but 64x64
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(samples / f"big{i}.png")
    (samples / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, out, err = run_cli("eval", "--samples", samples, "--data", f"folder:{data}", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert (f"ganvae: warning: --samples {samples}: 12 colour images converted to grey; 30 images resized from "
            "64x64 / 40x30 to 28x28 (non-square ones centre-cropped); skipped 1 file(s) that are not readable "
            "images (broken.png)") in err.splitlines()
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["n"] == 50 and res["skipped"] == {} and "50 samples" in out
    assert all(math.isfinite(res["metrics"][k]) for k in ("fd", "kid", "precision", "coverage"))


def test_only_too_few_rows_is_skipped_never_bad_features():
    """sample_metrics leaves out a family the rows cannot support when asked to (and raises
    TooFewRows when not); NaN features are a bug upstream and raise either way."""
    from ganvae.errors import BadInput
    from ganvae.metrics import TooFewRows, sample_metrics

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(4, 3)), rng.normal(size=(30, 3))
    skipped = {}
    m = sample_metrics(real, fake, k=5, kid_subsets=2, kid_subset_size=4, skipped=skipped)
    assert set(skipped) == {"precision", "recall", "density", "coverage"} and "fd" in m and "kid" in m
    with pytest.raises(TooFewRows, match="k=5"):
        sample_metrics(real, fake, k=5, kid_subsets=2, kid_subset_size=4)
    skipped = {}
    one = sample_metrics(real[:1], fake, k=5, kid_subsets=2, kid_subset_size=4, skipped=skipped)
    assert {"fd", "kid", "kid_std", "precision"} <= set(skipped) and "fd" not in one
    bad = fake.copy()
    bad[0, 0] = np.nan
    with pytest.raises(BadInput, match="NaN") as e:
        sample_metrics(real, bad, k=2, kid_subsets=2, kid_subset_size=4, skipped={})
    assert not isinstance(e.value, TooFewRows)
