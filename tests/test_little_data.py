"""Little data: --limit, D augmentation (DiffAugment, ADA) inside the models, ordinary data
augmentation, and transfer (--init-from, Freeze-D)."""

import json

import numpy as np
import pytest
import torch

from ganvae.data.base import hold_out_val, limit_train
from ganvae.errors import BadInput
from ganvae.trainer import DataConfig, _load_data, build, init_from, train
from tests.conftest import DATA, TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def test_limit_is_stratified_nested_and_leaves_val_test_and_evaluator_data_alone():
    ds = hold_out_val(_load_data(DataConfig(spec=DATA, val_split=0)), 32, seed=0)
    k = ds.num_classes
    small, big = limit_train(ds, 2 * k, seed=3), limit_train(ds, 5 * k, seed=3)
    # stratified: every class gives its share (within one image)
    counts = np.bincount(small.train.y, minlength=k)
    assert counts.sum() == 2 * k and counts.min() >= 1 and counts.max() <= 3
    # nested: the 2k images are among the 5k of the same seed
    as_rows = lambda split: {r.tobytes() for r in split.x.reshape(len(split.x), -1)}  # noqa: E731
    assert as_rows(small.train) <= as_rows(big.train)
    # another seed draws other images
    assert as_rows(limit_train(ds, 2 * k, seed=4).train) != as_rows(small.train)
    # nothing else changes: validation, test, and the data the evaluator is trained on
    assert small.val.x is ds.val.x and small.test.x is ds.test.x
    assert np.array_equal(small.as_loaded().train.x, ds.as_loaded().train.x)
    assert small.info["limit"] == {"n": 2 * k, "of": len(ds.train)}
    assert small.pool.x is ds.train.x          # the floor's images: the whole train split
    assert limit_train(ds, None) is ds


def test_limit_errors_name_the_option():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    with pytest.raises(BadInput, match=r"--limit 100000: .* has only 256 training images"):
        limit_train(ds, 100_000)
    with pytest.raises(BadInput, match="--limit 0"):
        limit_train(ds, 0)


def test_limited_run_records_its_limit_and_eval_rebuilds_the_same_images(tmp_path, run_cli):
    from ganvae.trainer import load_run, run_dataset

    run = tmp_path / "r"
    code, _, err = run_cli("train", "ae", "--data", DATA, "--limit", "20", "--steps", "2", "--out", run,
                           *TINY)
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["limit"] == 20
    ds = run_dataset(load_run(run)[1])
    assert len(ds.train) == 20 and len(ds.test) == 64
    code, _, err = run_cli("train", "--resume", run, "--limit", "30", "--steps", "3")
    assert code == 2 and "--limit" in err and "Traceback" not in err


def test_cli_rejects_a_limit_larger_than_the_data(run_cli, tmp_path):
    code, _, err = run_cli("train", "ae", "--data", DATA, "--limit", "5000", "--steps", "1",
                           "--out", tmp_path / "r", *TINY)
    assert code == 2 and "--limit 5000" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "checkpoints").exists()


def _d_inputs(model):
    """Every batch D is called on during one train_step, captured by a forward pre-hook."""
    seen = []
    model.d.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


def test_diffaug_d_sees_only_augmented_images_in_both_updates():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    torch.manual_seed(0)
    model, _ = build("dcgan", ds, {"width": 8, "latent": 8, "augment": "diffaug", "augment_policy": "cutout"})
    seen = _d_inputs(model)
    x = torch.full((16, *ds.shape), 0.5)        # no real pixel is 0: cutout's zeros are visible
    model.train_step(x, 0)
    assert len(seen) == 3                       # D on reals, on fakes, and in G's update
    side = ds.shape[-1] // 2
    real = seen[0]
    zeros = (real == 0).all(1).flatten(1).sum(1)    # zeroed pixels per image
    assert (zeros > 0).all() and (zeros <= side * side).all()
    assert torch.equal(real[real != 0], torch.full_like(real[real != 0], 0.5))
    for fakes in seen[1:]:                      # the fakes, in D's update and in G's, are cut too
        assert ((fakes == 0).all(1).flatten(1).sum(1) >= 1).all()


def test_diffaug_gradient_reaches_the_generator_through_the_augmentation():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    torch.manual_seed(0)
    model, _ = build("dcgan", ds, {"width": 8, "latent": 8, "augment": "diffaug"})
    before = [p.detach().clone() for p in model.g.parameters()]
    model.train_step(torch.rand(16, *ds.shape) * 2 - 1, 0)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.g.parameters()))


def _ada_p(reals: torch.Tensor, fakes: torch.Tensor, steps: int) -> list[float]:
    """ADA's p over the D updates of a discriminator trained on `reals` against `fakes`, with
    ADA on both: fakes drawn from the real distribution stand in for a generator that has
    caught up, so whether D wins depends only on whether it can memorise its reals."""
    from ganvae.augment import AdaptiveAugment
    from ganvae.models.gan import LOSSES
    from ganvae.nets import Discriminator

    torch.manual_seed(0)
    d = Discriminator(reals.shape[1], reals.shape[-1], width=8, norm="none")
    ada = AdaptiveAugment(speed_images=2000)
    opt = torch.optim.Adam(d.parameters(), 1e-3, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    d_loss = LOSSES["ns"][0]
    p = []
    for _ in range(steps):
        xr = reals[torch.randint(len(reals), (16,), generator=gen)]
        xf = fakes[torch.randint(len(fakes), (16,), generator=gen)]
        logits_real = d(ada(xr))
        loss = d_loss(logits_real, d(ada(xf)))
        ada.update(logits_real)
        opt.zero_grad()
        loss.backward()
        opt.step()
        p.append(float(ada.p))
    return p


def test_ada_p_rises_when_d_overfits_a_tiny_set_and_stays_low_on_a_large_one():
    from ganvae.data import load_dataset, to_float

    x = to_float(torch.from_numpy(load_dataset("shapes:n=4096,n_test=16").train.x))
    reals, fakes = x[:2048], x[2048:]              # one distribution, disjoint images
    p_tiny = _ada_p(reals[:8], fakes, 300)         # D can memorise 8 images: r_t -> 1
    p_large = _ada_p(reals, fakes, 300)            # it cannot tell 2,048 from their twins
    # On the tiny set p rises until the augmentations hold D's real accuracy at the target (a
    # few percent suffice for this small D); on the large one r_t stays below it and p at 0.
    assert np.mean(p_tiny[-150:]) > 0.03 and max(p_tiny) > 0.05, p_tiny[::30]
    assert max(p_large) < 0.01, p_large[::30]


def test_ada_p_is_saved_with_the_model_and_restored(tmp_path):
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    model, cfg = build("dcgan", ds, {"width": 8, "latent": 8, "augment": "ada"})
    model.augment.ada.p.fill_(0.375)
    model.save_pretrained(tmp_path / "m")
    from ganvae.models.base import GenerativeModel

    again = GenerativeModel.from_pretrained(tmp_path / "m")
    assert float(again.augment.ada.p) == 0.375


def test_augment_options_are_checked():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    with pytest.raises(BadInput, match="augment_policy='flip'"):
        build("dcgan", ds, {"augment": "diffaug", "augment_policy": "flip"})
    with pytest.raises(BadInput, match="ada_target=1.5"):
        build("dcgan", ds, {"augment": "ada", "ada_target": 1.5})
    with pytest.raises(BadInput, match="augment"):
        build("dcgan", ds, {"augment": "mixup"})


def test_augment_data_flips_and_warns(tmp_path):
    from ganvae.augment import augment_data

    x = torch.rand(64, 1, 8, 8)
    y = augment_data(x, ("flip",), torch.Generator().manual_seed(0))
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and mirrored.sum() > 10 and same.sum() > 10
    with pytest.warns(UserWarning, match="augment_data=flip"):
        train("ae", DATA, tmp_path / "r", overrides={"width": 8, "latent": 8, "train.augment_data": "flip"},
              steps=2, batch_size=16, progress=False)
    with pytest.raises(BadInput, match="augment_data='rot'"):
        train("ae", DATA, tmp_path / "r2", overrides={"train.augment_data": "rot"}, steps=1, progress=False)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("src") / "dcgan"
    train("dcgan", DATA, run, overrides={"width": 8, "latent": 8}, steps=3, batch_size=16, progress=False)
    return run


def test_init_from_starts_from_the_runs_weights(source_run):
    from ganvae.trainer import load_run

    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    src, _ = load_run(source_run)
    model, _ = build("dcgan", ds, {"width": 8, "latent": 8, "augment": "ada"})
    assert not torch.equal(model.g.net[0].weight, src.g.net[0].weight)
    init_from(model, source_run)
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert float(model.augment.ada.p) == 0.0    # the new run's own augmentation state


def test_init_from_refuses_other_nets_in_one_line(source_run, run_cli, tmp_path, runs):
    code, _, err = run_cli("train", "dcgan", "--data", DATA, "--steps", "1", "--out", tmp_path / "a",
                           "--set", "train.init_from=" + str(source_run), "--set", "width=16", "--quiet")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "--init-from" in err and "g.net.0.weight is 8x32x7x7, here 64x64x7x7" in err
    code, _, err = run_cli("train", "dcgan", "--data", DATA, "--steps", "1", "--out", tmp_path / "b",
                           "--init-from", runs["vae"], *TINY)
    assert code == 2 and "a vae run cannot start a gan" in err
    code, _, err = run_cli("train", "dcgan", "--data", DATA, "--steps", "1", "--out", tmp_path / "c",
                           "--init-from", tmp_path / "nothing", *TINY)
    assert code == 2 and "no trained model" in err


def test_transferred_run_records_its_source_and_trains(source_run, run_cli, tmp_path):
    run = tmp_path / "t"
    code, _, err = run_cli("train", "dcgan", "--data", DATA, "--steps", "2", "--out", run,
                           "--init-from", source_run, "--set", "freeze_d=1", *TINY[:4], "--batch-size", "16",
                           "--quiet")
    assert code == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["init_from"] == str(source_run) and cfg["model"]["freeze_d"] == 1


def test_freeze_d_keeps_the_first_blocks_fixed():
    ds = _load_data(DataConfig(spec=DATA, val_split=0))
    model, _ = build("dcgan", ds, {"width": 8, "latent": 8, "freeze_d": 1})
    before = {n: p.detach().clone() for n, p in model.d.named_parameters()}
    for step in range(2):
        model.train_step(torch.rand(16, *ds.shape) * 2 - 1, step)
    after = dict(model.d.named_parameters())
    first_conv = [n for n in before if n.startswith("body.net.0.")]
    assert first_conv and all(torch.equal(before[n], after[n]) for n in first_conv)
    rest = [n for n in before if n not in first_conv]
    assert all(not torch.equal(before[n], after[n]) for n in rest)
    with pytest.raises(BadInput, match="freeze_d=3: this discriminator has 2 blocks"):
        build("dcgan", ds, {"freeze_d": 3})


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_little_data_variants_report_ada_transfer_and_findings(source_run, tmp_path, run_cli):
    """A --limit comparison of dcgan beside its ADA and transfer variants: the limit said in the
    report, the p(t) plot, the transferred run marked, a finding per variant, a real browser;
    and the augment task on cgan in the same comparison."""
    from tests.browser import open_report

    models = f"dcgan,dcgan:augment=ada:ada_speed_images=500,dcgan:train.init_from={source_run}:freeze_d=1,cgan"
    args = ["--data", DATA, "--limit", 40, "--steps", 6, "--batch-size", 16, "--set", "width=8",
            "--set", "latent=8", "--eval-n", 64, "--curve-n", 64, "--curve-points", 2, "--quiet",
            "--models", models, "--out", tmp_path / "o", "--tasks", "generate,augment",
            "--task-set", "augment.seeds=1", "--task-set", "augment.budget_images=300"]
    code, _, err = run_cli("compare", *args)
    assert code == 0, err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["splits"]["limit"] == {"n": 40, "of": 230}       # of the train split less validation
    rows = {r["model"]: r for r in res["rows"]}
    assert rows[f"dcgan:train.init_from={source_run}:freeze_d=1"]["init_from"] == str(source_run)
    assert rows["dcgan"]["init_from"] is None
    assert set(res["tasks"]["augment"]["results"]) == {"cgan"}       # only the conditional model
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Trained on 40 of the 230 training images" in html
    assert "Adaptive augmentation" in html and "(transfer)" in html
    assert "With 40 training images, <b>dcgan:augment=ada:ada_speed_images=500</b>" in html
    assert 'id="task-augment"' in html and "real + synthetic" in html
    shot = open_report(tmp_path / "o" / "report.html", tmp_path / "shot.png")
    assert shot["broken"] == [] and shot["console_errors"] == []


def test_task_set_checks_its_keys(run_cli, tmp_path):
    base = ["compare", "--data", DATA, "--steps", 1, "--models", "cgan", "--out", tmp_path / "o"]
    code, _, err = run_cli(*base, "--tasks", "generate,augment", "--task-set", "augment.sedes=1")
    assert code == 2 and "unknown key 'sedes'" in err and not (tmp_path / "o").exists()
    code, _, err = run_cli(*base, "--tasks", "generate", "--task-set", "augment.seeds=1")
    assert code == 2 and "TASK.KEY=VALUE for a task in --tasks" in err
    code, _, err = run_cli(*base, "--tasks", "generate,augment", "--task-set", "augment.seeds=0")
    assert code == 2 and "--seeds 0" in err


def test_a_limited_comparison_keeps_the_full_datas_floor(tmp_path, run_cli):
    """The real-data floor of a --limit comparison is drawn from the whole train split: the same
    images, and so the same scores, as without the limit."""
    args = ["--data", DATA, "--steps", 1, "--batch-size", 8, "--set", "width=8", "--set", "latent=8",
            "--eval-n", 48, "--curve-n", 16, "--curve-points", 1, "--quiet", "--models", "ae"]
    for name, extra in (("full", []), ("little", ["--limit", 20])):
        code, _, err = run_cli("compare", *args, *extra, "--out", tmp_path / name)
        assert code == 0, err
    full, little = (json.loads((tmp_path / n / "floor.json").read_text()) for n in ("full", "little"))
    assert little["metrics"] == full["metrics"] and little["n"] == 48
