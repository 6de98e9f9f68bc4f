"""Translation models through the trainer and the CLI: pix2pix's losses by hand, the batches the
trainer hands them, resume, user folders, `ganvae translate`, and pix2pix beating the identity
map on lowres2fashion after a short run."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganvae.errors import BadInput
from ganvae.models.pix2pix import Pix2Pix, Pix2PixConfig
from ganvae.models.translation import d_loss, g_loss

from tests.conftest import TDATA, TINY


def test_gan_losses_by_hand():
    r, f = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, -1.0]])
    # ls: 1/2 [mean (r - 1)^2 + mean f^2] = 1/2 [(1 + 1)/2 + (1 + 1)/2] = 1
    assert float(d_loss("ls", r, f)) == pytest.approx(1.0)
    assert float(g_loss("ls", f)) == pytest.approx((0 + 4) / 2)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus
    assert float(d_loss("ns", r, f)) == pytest.approx(0.5 * ((sp(-2) + sp(0)) / 2 + (sp(1) + sp(-1)) / 2))
    assert float(g_loss("ns", f)) == pytest.approx((sp(-1) + sp(1)) / 2)


def _tiny(**kw):
    return Pix2Pix(Pix2PixConfig(channels=1, channels_a=1, size=16, width=8, **kw))


def test_unet_l1_loss_is_100_times_the_mean_absolute_error():
    torch.manual_seed(0)
    m = _tiny(adv_weight=0.0, dropout_layers=0)
    assert m.d is None and set(m.optimizers()) == {"g"} and m.updates_per_step() == {"g": 1.0}
    a, b = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = 100 * (m.g(a) - b).abs().mean()           # train mode, as the step's forward
    out = m.train_step((a, b), 0)
    assert float(out["loss/g"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(out["loss/l1"]) == pytest.approx(float(expected) / 100, rel=1e-5)


def test_pix2pix_d_sees_input_and_output_and_g_loss_adds_up():
    torch.manual_seed(0)
    m = Pix2Pix(Pix2PixConfig(channels=3, channels_a=1, size=16, width=8))
    first = next(mod for mod in m.d.modules() if isinstance(mod, torch.nn.Conv2d))
    assert first.in_channels == 1 + 3                          # D judges (a, b) side by side
    a, b = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 3, 16, 16) * 2 - 1
    out = m.train_step((a, b), 0)
    assert float(out["loss/g"]) == pytest.approx(float(out["loss/adv"]) + 100 * float(out["loss/l1"]), rel=1e-5)
    assert m.translate(a).shape == (4, 3, 16, 16)
    with pytest.raises(BadInput, match="translates a2b"):
        m.translate(a, "b2a")
    with pytest.raises(BadInput, match=r"from \(1, 16, 16\) images"):
        m.translate(b)


def test_config_refusals():
    for kw in ({"reg": "r1"}, {"d_layers": 3}, {"l1_weight": 0.0, "adv_weight": 0.0}, {"norm": "group"}):
        with pytest.raises(BadInput):
            _tiny(**kw)
    _tiny(reg="r1", norm="instance")                            # per-image norm: the penalty is fine


def test_trainer_hands_aligned_pairs_to_paired_models_and_independent_draws_to_unpaired():
    from ganvae.trainer import RunConfig, Trainer, _load_data, build
    from ganvae.config import replace

    for preset, aligned in (("pix2pix", True), ("cyclegan", False)):
        cfg = replace(RunConfig(preset=preset), {"data": {"spec": TDATA}, "train": {"steps": 1, "batch_size": 32}})
        ds = _load_data(cfg.data)
        model, _ = build(preset, ds, {"width": 8})
        tr = Trainer(model, ds, cfg, "/nonexistent", progress=False)
        tr.memory_format = torch.contiguous_format
        a, b = tr._batch(torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.a))
        # find each b in the training set and compare a with its own input
        x8 = ((b + 1) * 127.5).round().to(torch.uint8).numpy()
        a8 = ((a + 1) * 127.5).round().to(torch.uint8).numpy()
        idx = [int(np.flatnonzero((ds.train.x == xi).all((1, 2, 3)))[0]) for xi in x8]
        same = [(ds.train.a[i] == ai).all() for i, ai in zip(idx, a8)]
        assert all(same) if aligned else sum(same) < len(same) // 2, preset


def test_wrong_data_is_a_one_line_error(tmp_path, run_cli):
    code, _, err = run_cli("train", "pix2pix", "--data", "shapes:n=64,n_test=16", "--steps", 1,
                           "--out", tmp_path / "r", *TINY)
    assert code == 2 and "has only one domain" in err and "task:NAME" in err and "Traceback" not in err
    for side, shade in (("A", 40), ("B", 200)):
        (tmp_path / side).mkdir()
        for i in range(20):
            Image.fromarray(np.full((16, 16), shade + i, np.uint8)).save(tmp_path / side / f"{i}.png")
    code, _, err = run_cli("train", "pix2pix", "--data", f"unpaired:{tmp_path / 'A'},{tmp_path / 'B'}",
                           "--steps", 1, "--out", tmp_path / "r", *TINY)
    assert code == 2 and "aligned pairs" in err and "cyclegan or unit" in err
    assert not (tmp_path / "r").exists()


def _folder(root, n, shade, names=None):
    root.mkdir(parents=True)
    for i in range(n):
        img = np.full((20, 20), shade, np.uint8)
        img[4 + i % 8:10 + i % 8, 5:12] = 255 - shade
        Image.fromarray(img).save(root / f"{(names or {}).get(i, f'im{i:02d}')}.png")
    return root


def test_user_folders_train_and_translate(tmp_path, run_cli):
    """cyclegan on two unpaired folders of the user's, then `ganvae translate` both ways, into a
    folder (names kept, a broken file skipped), an .npz and a .png grid; refusals leave no file."""
    a = _folder(tmp_path / "a", 24, 30)
    b = _folder(tmp_path / "b", 20, 220)
    code, _, err = run_cli("train", "cyclegan", "--data", f"unpaired:{a},{b}", "--steps", 3, "--size", 16,
                           "--out", tmp_path / "run", *TINY)
    assert code == 0, err
    inp = _folder(tmp_path / "in", 3, 30, names={0: "shoe", 1: "bag", 2: "coat"})
    (inp / "sub").mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(inp / "sub" / "deep.png")
    (inp / "broken.png").write_bytes(b"not a png")
    code, out, err = run_cli("translate", tmp_path / "run", inp, "-o", tmp_path / "out")
    assert code == 0, err
    assert "skipped 1 file" in err
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["bag.png", "coat.png", "shoe.png", "sub/deep.png"]
    assert Image.open(tmp_path / "out" / "bag.png").size == (16, 16)
    before = (tmp_path / "out" / "bag.png").read_bytes()
    code, _, err = run_cli("translate", tmp_path / "run", inp, "-o", tmp_path / "out")
    assert code == 2 and "already holds" in err                 # nothing overwritten
    assert (tmp_path / "out" / "bag.png").read_bytes() == before
    np.savez(tmp_path / "x.npz", x=np.zeros((5, 1, 16, 16), np.uint8))
    code, _, err = run_cli("translate", tmp_path / "run", tmp_path / "x.npz", "-o", tmp_path / "y.npz",
                           "--direction", "b2a")
    assert code == 0, err
    assert np.load(tmp_path / "y.npz")["x"].shape == (5, 1, 16, 16)
    code, out, err = run_cli("translate", tmp_path / "run", "-o", tmp_path / "g.png", "-n", 8)
    assert code == 0 and "L1" not in out                       # unpaired: no true targets to score
    assert Image.open(tmp_path / "g.png").size[1] > Image.open(tmp_path / "g.png").size[0] / 8


def test_translate_refuses_a_generative_model(runs, run_cli, tmp_path):
    code, _, err = run_cli("translate", runs["vae"], "-o", tmp_path / "t.png")
    assert code == 2 and "does not translate" in err and "Traceback" not in err
    assert not (tmp_path / "t.png").exists()
    code, _, err = run_cli("translate", runs["pix2pix"], "-o", tmp_path / "t.png", "--direction", "b2a")
    assert code == 2 and "translates a2b only" in err


@pytest.mark.slow   # ~20 s: out of the default run to keep it under 10 minutes (make test-all)
def test_pix2pix_beats_the_identity_map_on_lowres2fashion(tmp_path, run_cli):
    """The issue's check: after a short run on real Fashion-MNIST, pix2pix's translations of the
    7x7 inputs are closer (L1) to the true 28x28 images than the inputs themselves."""
    code, _, err = run_cli("train", "pix2pix", "--data", "task:lowres2fashion", "--steps", 200, "--batch-size", 32,
                           "--set", "width=16", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    code, out, err = run_cli("translate", tmp_path / "r", "-n", 1000, "-o", tmp_path / "t.npz")
    assert code == 0, err
    from ganvae.data import load_dataset

    ds = load_dataset("task:lowres2fashion")
    y = np.load(tmp_path / "t.npz")["x"].astype(float)
    l1_model = np.abs(y - ds.test.x[:1000]).mean()
    l1_identity = np.abs(ds.test.a[:1000].astype(float) - ds.test.x[:1000]).mean()
    assert l1_model < 0.9 * l1_identity, (l1_model, l1_identity)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["updates"] == {"g": 200, "d": 200}


def test_translate_task_scores_against_the_targets_the_identity_and_the_floor(runs, run_cli, monkeypatch):
    """`ganvae eval RUN --tasks translate`: the model's numbers, the identity map's by hand, the
    targets' own as the floor; cyclegan also gets its cycle error; generative runs are refused."""
    from ganvae.data import load_dataset
    from ganvae.metrics.inpainting import ssim

    monkeypatch.setenv("GANVAE_PROGRESS", "1")   # bars forced on (stderr is no terminal here)
    for preset in ("pix2pix", "cyclegan"):
        code, out, err = run_cli("eval", runs[preset], "--tasks", "translate")
        assert code == 0, err
        assert "translate: a2b" in err and ("translate: b2a" in err) == (preset == "cyclegan")   # the bars
        task = json.loads((runs[preset] / "eval.json").read_text())["tasks"]["translate"]
        res = task["result"]
        for key in ("l1", "psnr", "ssim", "fd", "accuracy", "sharpness", "ms_per_image"):
            assert math.isfinite(res[key]), key
        assert ("cycle" in res) == (preset == "cyclegan")
        rows = {r["name"]: r for r in task["tables"][0]["rows"]}
        assert rows[preset]["l1"] == res["l1"] and rows["targets"]["ssim"] == pytest.approx(1.0)
        assert "identity [baseline]" in out
    ds = load_dataset(TDATA)
    a, b = ds.test.a.astype(float), ds.test.x.astype(float)
    assert rows["identity"]["l1"] == pytest.approx(np.abs(a - b).mean() / 127.5)
    assert rows["identity"]["ssim"] == pytest.approx(ssim(ds.test.a, ds.test.x))
    code, _, err = run_cli("eval", runs["vae"], "--tasks", "translate")
    assert code == 2 and "does not apply" in err


def test_compare_translators_with_the_translate_task(tmp_path, run_cli):
    """pix2pix beside the L1-only U-Net in a comparison: the Translation section in the report,
    findings that set the GAN beside the U-Net, a translation grid per model, a real browser."""
    from tests.browser import open_report

    args = ["--data", TDATA, "--steps", 4, "--batch-size", 16, "--set", "width=8", "--eval-n", 64,
            "--curve-n", 64, "--curve-points", 2, "--quiet", "--models", "pix2pix,unet-l1",
            "--out", tmp_path / "o", "--tasks", "generate,translate"]
    code, _, err = run_cli("compare", *args)
    assert code == 0, err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    task = res["tasks"]["translate"]
    assert set(task["results"]) == {"pix2pix", "unet-l1"}
    assert any("beside the L1-only U-Net" in line for line in task["findings"])
    assert (tmp_path / "o" / "runs" / "pix2pix-seed0" / "figures" / "translation.png").exists()
    html = (tmp_path / "o" / "report.html").read_text()
    assert 'id="task-translate"' in html and "identity" in html
    shot = open_report(tmp_path / "o" / "report.html", tmp_path / "shot.png")
    assert shot["broken"] == [] and shot["console_errors"] == []
