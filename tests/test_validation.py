"""The validation split: held out of train by the data seed, never trained on, and the only
real data that curves and best-checkpoint selection in `ganvae compare` may look at."""

import json

import numpy as np
import pytest

from tests.conftest import DATA, TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def _numbered(n, labels=None):
    """A dataset whose every training image carries its own index in its pixels."""
    from ganvae.data import ImageDataset, Split

    ids = np.arange(n)
    x = np.stack([ids % 256, ids // 256], axis=1).astype(np.uint8).reshape(n, 1, 1, 2)
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    test = Split(np.zeros((4, 1, 1, 2), np.uint8), None if y is None else np.zeros(4, np.int64))
    return ImageDataset("numbered", Split(x, y), test)


def _ids(split):
    return set((split.x[:, 0, 0, 0].astype(int) + 256 * split.x[:, 0, 0, 1].astype(int)).tolist())


@pytest.mark.parametrize("value,n,expected", [
    ("auto", 256, 26), ("auto", 60_000, 5000), ("auto", 100_000, 5000),
    (0.25, 256, 64), ("0.5", 10, 5), (10, 256, 10), ("1", 256, 1),
])
def test_sizes(value, n, expected):
    from ganvae.data.base import hold_out_val

    ds = hold_out_val(_numbered(n), value, seed=0)
    assert len(ds.val) == expected and len(ds.train) == n - expected


def test_disjoint_and_fixed_by_the_seed():
    from ganvae.data.base import hold_out_val

    full = _numbered(1000)
    a, again, other = (hold_out_val(full, "auto", seed=s) for s in (0, 0, 1))
    assert _ids(a.val).isdisjoint(_ids(a.train)) and _ids(a.val) | _ids(a.train) == set(range(1000))
    assert _ids(a.val) == _ids(again.val)
    assert _ids(a.val) != _ids(other.val)
    assert a.split("val") is a.val
    # everything else is the data as loaded; the evaluator gets that back in one piece
    assert a.test is full.test
    np.testing.assert_array_equal(a.as_loaded().train.x, full.train.x)


def test_zero_holds_out_nothing():
    from ganvae.data.base import hold_out_val
    from ganvae.errors import BadInput

    full = _numbered(100)
    ds = hold_out_val(full, 0, seed=0)
    assert ds.val is None and len(ds.train) == 100
    with pytest.raises(BadInput, match="--val-split 0"):
        ds.split("val")


def test_stratified_by_class():
    from ganvae.data.base import hold_out_val

    labels = [0] * 900 + [1] * 95 + [2] * 5
    ds = hold_out_val(_numbered(1000, labels), 100, seed=3)
    counts = np.bincount(ds.val.y, minlength=3)
    assert abs(counts[0] - 90) <= 1 and abs(counts[1] - 9.5) <= 1 and counts[2] <= 1 and counts.sum() == 100
    ids = _ids(ds.val)
    assert all(labels[i] == y for i, y in zip(sorted(ids), ds.val.y))  # labels travel with their images


def test_the_evaluator_ignores_the_split():
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val
    from ganvae.evaluators import evaluator_id, recipe_for

    full = load_dataset(DATA)
    held = hold_out_val(full, "auto", seed=0).as_loaded()
    assert evaluator_id(held, recipe_for(held)) == evaluator_id(full, recipe_for(full))


# ------------------------------------------------------------------ the command line

BAD = ["-1", "1.5", "256", "999", "abc", "", "nan", "0.001"]


@pytest.mark.parametrize("value", BAD)
def test_train_refuses_bad_values(value, run_cli, tmp_path):
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 1, "--val-split", value,
                           "--out", tmp_path / "r", *TINY)
    assert code == 2 and "--val-split" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("value", ["-0.5", "256", "x"])
def test_compare_refuses_bad_values(value, run_cli, tmp_path):
    code, _, err = run_cli("compare", "--data", DATA, "--models", "ae", "--steps", 1, "--val-split", value,
                           "--out", tmp_path / "o", "--quiet")
    assert code == 2 and "--val-split" in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.fixture
def seen(monkeypatch):
    """Every (train, val) the trainer is given, as hashes of the image bytes."""
    import hashlib

    from ganvae.trainer import Trainer

    calls = []
    fit = Trainer.fit

    def spy(self):
        def h(split):
            return None if split is None else hashlib.sha256(split.x.tobytes()).hexdigest()
        calls.append((h(self.data.train), h(self.data.val), len(self.data.train)))
        return fit(self)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls


def test_train_records_the_split_and_resume_rebuilds_it(run_cli, tmp_path, seen):
    from ganvae.data import load_dataset
    from ganvae.data.base import hold_out_val
    from ganvae.trainer import run_dataset

    common = ["--data", DATA, "--data-seed", 2, "--log-every", 1, *TINY]
    assert run_cli("train", "ae", "--steps", 3, "--val-split", 0.2, "--out", tmp_path / "r", *common)[0] == 0
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data"]["val_split"] == 0.2 and cfg["data"]["seed"] == 2
    code, _, err = run_cli("train", "--resume", tmp_path / "r", "--steps", 5, "--quiet")
    assert code == 0, err
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0][1] is not None
    assert seen[0][2] == 256 - round(0.2 * 256)
    # `ganvae eval RUN` and friends rebuild the very same split from config.json
    ds = run_dataset(cfg)
    expected = hold_out_val(load_dataset(DATA, seed=2), 0.2, seed=2)
    np.testing.assert_array_equal(ds.val.x, expected.val.x)
    np.testing.assert_array_equal(ds.train.x, expected.train.x)
    # a new --val-split cannot be slipped into a resumed run
    code, _, err = run_cli("train", "--resume", tmp_path / "r", "--steps", 6, "--val-split", 0.1, "--quiet")
    assert code == 2 and "--val-split" in err


def test_default_is_auto_and_zero_trains_on_everything(run_cli, tmp_path, seen):
    common = ["--data", DATA, "--steps", 1, *TINY]
    assert run_cli("train", "ae", "--out", tmp_path / "a", *common)[0] == 0
    assert run_cli("train", "ae", "--val-split", 0, "--out", tmp_path / "z", *common)[0] == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["data"]["val_split"] == "auto"
    assert json.loads((tmp_path / "z" / "config.json").read_text())["data"]["val_split"] == 0
    assert [n for _, _, n in seen] == [256 - 26, 256]


def test_a_run_from_before_validation_splits_keeps_its_data():
    from ganvae.trainer import run_dataset

    ds = run_dataset({"data": {"spec": DATA, "seed": 0}})  # a config.json without val_split
    assert ds.val is None and len(ds.train) == 256


# ------------------------------------------------------------------ compare

CMP = ["--data", DATA, "--steps", 4, "--batch-size", 16, "--set", "width=8", "--set", "latent=8",
       "--eval-n", 64, "--curve-n", 64, "--curve-points", 2, "--quiet"]


def test_compare_never_looks_at_test_before_every_choice_is_made(run_cli, tmp_path, monkeypatch):
    """Curves and best checkpoints of every model are settled on the validation split; the test
    split's features are first computed after the last model has finished training."""
    import ganvae.evaluation
    from ganvae.comparison import runner as cmp
    from ganvae.data import load_dataset
    from ganvae.evaluators import Evaluator
    from ganvae.trainer import Trainer

    ds = load_dataset(DATA)
    test_images = {x.tobytes() for x in ds.test.x}
    events = []

    def kind(x):
        x = np.asarray(x)
        return "test" if any(img.tobytes() in test_images for img in x) else "other"

    features = Evaluator.features_and_probs
    monkeypatch.setattr(Evaluator, "features_and_probs",
                        lambda self, x, *a, **k: (events.append(("features", kind(x))), features(self, x, *a, **k))[1])
    real = ganvae.evaluation.real_features

    def real_spy(ev, x, what, *a, **k):
        events.append(("real", kind(x), what))
        return real(ev, x, what, *a, **k)

    monkeypatch.setattr(ganvae.evaluation, "real_features", real_spy)
    monkeypatch.setattr(cmp, "real_features", real_spy)
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self: (events.append(("fit",)), fit(self))[1])
    record = cmp.CurveRecorder.record
    monkeypatch.setattr(cmp.CurveRecorder, "record", lambda self, t: (events.append(("curve",)), record(self, t))[1])

    code, _, err = run_cli("compare", "--models", "ae,dcgan", "--seeds", 2, "--out", tmp_path / "o", *CMP)
    assert code == 0, err
    test_at = [i for i, e in enumerate(events) if e[1:2] == ("test",)]
    choices_at = [i for i, e in enumerate(events) if e[0] in ("fit", "curve")]
    assert test_at and len([e for e in events if e[0] == "fit"]) == 4
    assert min(test_at) > max(choices_at), events
    assert ("real", "other", "val") in events  # the curves were measured against val
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["splits"] == {"curve": "val", "best_selection": "val", "final": "test", "best": "test",
                             "val_images": 26, "curve_images": 26, "test_images": 64, "train_images": 230,
                             "data_seed": 0}
    assert res["floor"]["train_images"] == 230
    for r in res["rows"]:
        assert r["status"] == "ok" and "best" in r
        run = tmp_path / "o" / "runs" / f"{r['model']}-seed{r['seed']}"
        curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
        assert curve and all(p["split"] == "val" for p in curve)
        assert json.loads((run / "config.json").read_text())["data"]["val_split"] == "auto"
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Curves and best-checkpoint selection: validation split (26 images held out of train, seed 0); " \
           "every score in this table: test split (64 images)" in html
    assert "Quick FD (val)" in html


def test_compare_without_val_picks_no_best(run_cli, tmp_path):
    code, _, err = run_cli("compare", "--models", "dcgan", "--val-split", 0, "--out", tmp_path / "o", *CMP)
    assert code == 0, err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["splits"]["curve"] == "train" and res["splits"]["best_selection"] is None
    assert res["splits"]["val_images"] == 0 and res["splits"]["train_images"] == 256
    (row,) = res["rows"]
    assert row["status"] == "ok" and "best" not in row and "final" in row
    run = tmp_path / "o" / "runs" / "dcgan-seed0"
    assert not (run / "best").exists()
    assert all(json.loads(x)["split"] == "train" for x in (run / "curve.jsonl").read_text().splitlines())
    html = (tmp_path / "o" / "report.html").read_text()
    assert "no best checkpoint is picked" in html and "test split (64 images)" in html
