"""Issue 31's tools: early stopping on a rising validation FD (compare --stop-on-rise, the
trainer's request_stop), the class filter of the named datasets, and the reproduction scripts'
table writer."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ganvae
from ganvae.callbacks import Callback
from ganvae.errors import BadInput
from ganvae.comparison import curves
from ganvae.comparison.curves import risen
from tests.conftest import DATA

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]
REPRO = REPO / "benchmarks" / "reproduce"


@pytest.mark.parametrize("fds, rise, expected", [
    ([10, 8, 9, 9.5], 0.1, True),          # 9 and 9.5 both >= 8.8
    ([10, 8, 9, 8.7], 0.1, False),         # the last is within 10% of the best
    ([10, 8, 8.9], 0.1, False),            # one point up is a wobble, not a turn
    ([10, 8, 20], 0.1, False),
    ([8, 9], 0.1, False),                  # nothing before the two to compare with
    ([12, 10, 11.5, 11.6, 9.9, 11.0, 11.2], 0.1, True),   # the best before them counts, not the first
    ([float("nan"), 12, 13], 0.01, False),
])
def test_risen(fds, rise, expected):
    assert risen(fds, rise) is expected


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step(self, trainer):
        if trainer.step == self.step:
            trainer.request_stop(f"asked at {self.step}")


def test_request_stop_ends_a_run_as_finished(tmp_path):
    run, summary = ganvae.train("ae", DATA, tmp_path / "r", steps=50, batch_size=16, overrides={"width": 8, "latent": 8},
                                callbacks=[StopAt(7)], checkpoint_every=5, sample_every=1000, device="cpu")
    assert summary["steps"] == 7 and summary["stopped_early"] == "asked at 7"
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk["steps"] == 7 and on_disk["stopped_early"] == "asked at 7"
    assert (run / "model" / "config.json").exists() and (run / "checkpoints").is_dir()
    # the steps since the last log line are logged at the stop (log_every 50 never came)
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [7] and any(k.startswith("loss/") for k in logged[0])
    model = ganvae.load(run)
    assert model.sample(4, seed=0).shape == (4, 1, 28, 28)


def test_compare_stops_a_model_whose_val_fd_turned_up_and_keeps_it_stopped(tmp_path, monkeypatch):
    # the FDs the curve will see, point by point: best 8 at the 2nd point, then two points >= 8.8
    script = iter([10.0, 8.0, 9.0, 9.5, 3.0, 3.0, 3.0, 3.0])
    monkeypatch.setattr(curves, "fd_from_features", lambda real, fake: next(script))
    settings = dict(data=DATA, steps=40, curve_points=8, curve_n=32, eval_n=64, batch_size=16,
                    overrides={"width": 8, "latent": 8}, stop_on_rise=0.1, device="cpu")
    res = ganvae.compare(["dcgan"], out=tmp_path / "c", **settings)
    row = res["rows"][0]
    run = tmp_path / "c" / "runs" / "dcgan-seed0"
    points = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points] == [5, 10, 15, 20] and [p["fd"] for p in points] == [10, 8, 9, 9.5]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == row["steps"] == 20
    assert "validation FD 9.50 stood 10% or more above its best 8.00 for 2 points" in summary["stopped_early"]
    assert row["best_step"] == 10 and json.loads((run / "best" / "point.json").read_text())["step"] == 10
    # D's realism on training and held-out images is recorded beside the FD (a GAN's D)
    assert all(isinstance(p["d_real_train"], float) and isinstance(p["d_real_val"], float) for p in points)
    # the row and the report say so
    assert row["stopped_early"] == summary["stopped_early"]
    html = (tmp_path / "c" / "report.html").read_text()
    assert "stopped early at step 20: validation FD 9.50 stood 10% or more above its best 8.00" in html
    assert "<h2>Discriminator overfitting</h2>" in html
    # the same command again: the run is finished, not trained on
    res = ganvae.compare(["dcgan"], out=tmp_path / "c", **settings)
    assert res["rows"][0]["steps"] == 20 and len((run / "curve.jsonl").read_text().splitlines()) == 4


def test_stop_on_rise_is_checked(run_cli, tmp_path):
    common = ["compare", "--data", DATA, "--models", "ae", "--steps", 4, "--out", tmp_path / "x"]
    code, _, err = run_cli(*common, "--stop-on-rise", 0)
    assert code == 2 and "--stop-on-rise 0.0: give a fraction above the best FD" in err and "Traceback" not in err
    code, _, err = run_cli(*common, "--stop-on-rise", 0.1, "--curve-points", 3)
    assert code == 2 and "--stop-on-rise needs a curve to watch: give --curve-points 4 or more" in err
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------ the class filter

def test_class_filter_keeps_those_classes_relabelled():
    from ganvae.data import load_dataset

    full = load_dataset("fashion-mnist")
    ds = load_dataset("fashion-mnist:classes=5-9")
    assert ds.classes == full.classes[5:] == ["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    for part, whole in ((ds.train, full.train), (ds.test, full.test)):
        keep = whole.y >= 5
        assert np.array_equal(part.x, whole.x[keep]) and np.array_equal(part.y, whole.y[keep] - 5)
    odd = load_dataset("fashion-mnist:classes=1,3,8-9")
    assert odd.classes == [full.classes[i] for i in (1, 3, 8, 9)]
    assert np.array_equal(np.bincount(odd.test.y), [1000] * 4)
    assert ds.name != full.name   # its own evaluator and floor


@pytest.mark.parametrize("spec, message", [
    ("fashion-mnist:classes=7-12", "'7-12' is outside the classes; give class indices in 0..9"),
    ("fashion-mnist:classes=x", "'x' is not a class index or range"),
    ("fashion-mnist:classes=", "no classes named"),
    ("fashion-mnist:shoes", "'fashion-mnist' takes one option, classes=, as in fashion-mnist:classes=0-4"),
])
def test_class_filter_errors(spec, message, run_cli, tmp_path):
    code, _, err = run_cli("train", "ae", "--data", spec, "--steps", 1, "--out", tmp_path / "r", "--quiet")
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_class_filtered_run_rebuilds_its_data(tmp_path):
    from ganvae.trainer import load_run, run_dataset

    run, _ = ganvae.train("ae", "fashion-mnist:classes=0-1", tmp_path / "r", steps=2, batch_size=16,
                          overrides={"width": 8, "latent": 8}, data_limit=40, device="cpu")
    ds = run_dataset(load_run(run)[1])
    assert ds.classes == ["T-shirt/top", "Trouser"] and len(ds.train) == 40 and set(ds.test.y) == {0, 1}


# ------------------------------------------------------------------------ the table writer

def _claim(n, shown, **kw):
    return {"claim": n, "title": f"title {n}", "paper": "A et al. 2020", "setup": "a | b", "budget": {"100": "9 steps"},
            "criterion": "x < y", "numbers": {}, "shown": shown, "verdict": f"verdict {n}", "investigation": None,
            "command": f"python benchmarks/reproduce/c{n}.py", "machine": "cpu", "torch": "2", "threads": 1,
            "quick": False, "finished": "today", **kw}


def test_table_writes_one_section_and_replaces_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "01_a.json").write_text(json.dumps(_claim(1, True)))
    (results / "06_b.json").write_text(json.dumps(_claim(6, False)))
    (results / "02_q.json").write_text(json.dumps(_claim(2, True, quick=True)))   # a smoke run: not a result
    (results / "04_p.json").write_text(json.dumps(_claim(4, None, investigation="half run")))   # not settled
    notes = tmp_path / "notes.json"
    bench = tmp_path / "B.md"
    bench.write_text("# Benchmarks\n\nMachine.\n\n## Throughput\n\nrows\n")
    notes.write_text(json.dumps({"6": "checked"}))     # the repo's own investigations play no part
    run = lambda: subprocess.run([sys.executable, str(REPRO / "table.py"), "--results", str(results),  # noqa: E731
                                  "--file", str(bench), "--investigations", str(notes)],
                                 capture_output=True, text=True, check=True)
    run()
    text = bench.read_text()
    assert text.startswith("# Benchmarks\n\nMachine.\n\n<!-- reproductions:start -->\n## Reproductions")
    assert text.endswith("## Throughput\n\nrows\n")
    assert "**1 of 13 shown**; 1 in progress, 10 not run yet." in text
    assert "| verdict 4 | *in progress* |" in text and "*Investigation:* half run" in text
    assert "| 1 | title 1 | A et al. 2020 | a \\| b | N=100: 9 steps | verdict 1 | **shown** |" in text
    assert "| 6 | title 6 |" in text and "**not shown** |" in text and "*Investigation:* checked" in text
    assert text.count("*not run yet*") == 10
    before = bench.read_text()
    run()
    assert bench.read_text() == before   # replaced, not added again


def test_the_reproduction_scripts_cover_every_claim():
    sys.path.insert(0, str(REPRO))
    try:
        import table
    finally:
        sys.path.remove(str(REPRO))
    assert sorted(table.CLAIMS) == list(range(1, 14))
    for _, _, script in table.CLAIMS.values():
        path = REPRO / script
        assert path.exists(), script
        assert "--quick" in path.read_text() or "parse_args" in path.read_text()


@pytest.mark.slow   # each script at smoke size: tiny nets, a few dozen steps (about 15 minutes in all)
@pytest.mark.parametrize("script", sorted(p.name for p in REPRO.glob("claim*.py")))
def test_every_reproduction_script_runs_at_smoke_size(script, tmp_path):
    p = subprocess.run([sys.executable, str(REPRO / script), "--out", str(tmp_path), "--quick"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    (result,) = list(tmp_path.glob("[0-9][0-9]_*.json"))
    d = json.loads(result.read_text())
    assert d["quick"] is True and d["shown"] in (True, False) and d["verdict"] and d["numbers"]
    assert f"claim {d['claim']}: " in p.stdout and d["command"].startswith(f"python benchmarks/reproduce/{script}")
    assert "--out" not in d["command"]


@pytest.mark.slow   # two smoke-sized bigan runs
def test_claim11_records_the_ali_setting_beside_plain_bigan_and_judges_plain(tmp_path):
    script = str(REPRO / "claim11_bigan_probe.py")
    run = lambda *a: subprocess.run([sys.executable, script, "--out", str(tmp_path), "--quick", *a],
                                    capture_output=True, text=True, cwd=tmp_path, timeout=1800)
    p = run("--model", "ali")
    # the ALI run is kept; the claim is judged on plain bigan, so no JSON until that has run
    assert p.returncode == 0 and "run this script without --model first" in p.stdout
    assert not (tmp_path / "11_bigan_features.json").exists() and (tmp_path / "ali-100-seeds1").is_dir()
    assert run().returncode == 0
    d = json.loads((tmp_path / "11_bigan_features.json").read_text())
    assert [s["model"] for s in d["numbers"]["settings"]] == ["ali", "bigan"]
    ali = d["numbers"]["settings"][0]
    assert 0 < ali["latent_mse_last_quarter"] and 0 <= ali["d_acc_real_last_quarter"] <= 1
    assert d["numbers"]["judged"] == {"steps": 100, "seeds": 1} and "also ali" in d["verdict"]


@pytest.mark.slow   # four smoke-sized runs, in two parts
def test_claim09_runs_one_prior_at_a_time_and_keeps_the_other(tmp_path):
    """A session (whose runs die with its machine) may run one prior; the next runs the other,
    and the claim is settled only when both are measured."""
    script = str(REPRO / "claim09_vaegan_sharp.py")
    run = lambda *a: subprocess.run([sys.executable, script, "--quick", *a], capture_output=True, text=True,
                                    cwd=tmp_path, timeout=1800)
    assert run("--out", str(tmp_path / "one"), "--results", str(tmp_path), "--prior", "normal").returncode == 0
    d = json.loads((tmp_path / "09_vaegan_sharper.json").read_text())
    assert list(d["numbers"]) == ["normal"] and d["shown"] is None and "settled" not in d["verdict"]
    # the other prior on a machine without the first one's runs (another --out)
    assert run("--out", str(tmp_path / "two"), "--results", str(tmp_path), "--prior", "gmm").returncode == 0
    e = json.loads((tmp_path / "09_vaegan_sharper.json").read_text())
    assert list(e["numbers"]) == ["normal", "gmm"] and e["numbers"]["normal"] == d["numbers"]["normal"]
    assert e["shown"] in (True, False) and e["verdict"].startswith("prior normal: ") and "prior gmm: " in e["verdict"]
    assert not (tmp_path / "two" / "vaegan" / "runs" / "vae_prior=normal-seed0").exists()


def test_a_claim_run_in_parts_reads_its_last_result_from_results_then_the_committed_one(tmp_path):
    sys.path.insert(0, str(REPRO))
    try:
        import common
    finally:
        sys.path.remove(str(REPRO))
    args = argparse.Namespace(results=tmp_path, quick=False)
    committed = common.earlier(args, 1, "diffaugment")                     # none under --results yet
    assert committed == json.loads((REPO / "benchmarks/results/reproduce/01_diffaugment.json").read_text())
    (tmp_path / "01_diffaugment.json").write_text(json.dumps({"claim": 1, "numbers": {"100": {}}}))
    assert common.earlier(args, 1, "diffaugment")["numbers"] == {"100": {}}
    assert common.earlier(argparse.Namespace(results=tmp_path / "x", quick=True), 1, "diffaugment") == {}
