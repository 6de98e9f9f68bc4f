"""`ganvae compare` end to end on tiny shapes, resume, and the report in a real browser."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import DATA

# the tests' shared tiny data: its evaluator is trained once per worker for every test module
ARGS = ["--data", DATA, "--steps", 12, "--batch-size", 32, "--set", "width=8",
        "--set", "latent=8", "--eval-n", 300, "--curve-n", 200, "--curve-points", 3, "--quiet"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    from ganvae.cli import main

    out = tmp_path_factory.mktemp("cmp") / "out"
    code = main(["compare", "--models", "ae,vae,dcgan", "--seeds", "2", "--out", str(out), *map(str, ARGS)])
    assert code == 0
    return out


def test_results_files(compared):
    res = json.loads((compared / "results.json").read_text())
    assert [(r["model"], r["seed"]) for r in res["rows"]] == [
        ("ae", 0), ("vae", 0), ("dcgan", 0), ("ae", 1), ("vae", 1), ("dcgan", 1)]
    for r in res["rows"]:
        assert r["status"] == "ok" and r["steps"] == 12 and r["images_seen"] == 12 * 32
        assert r["params"] > 0 and r["images_per_second"] > 0 and r["train_seconds"] > 0
        assert {"fd", "kid", "precision", "recall", "coverage", "mode_coverage"} <= set(r["final"])
        assert "best" in r and 1 <= r["best_step"] <= 12
        run = compared / "runs" / f"{r['model']}-seed{r['seed']}"
        curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
        assert [p["step"] for p in curve] == [4, 8, 12]  # thirds of the budget
        assert (run / "figures" / "samples.png").exists()
    vae = next(r for r in res["rows"] if r["model"] == "vae")
    assert {"recon_mse", "psnr", "elbo", "nll"} <= set(vae["final"])
    # the likelihood bound was sized once (to --nll-seconds, itself sized to the training time:
    # 5 s, its floor, for 12 steps) and every vae score used that pair
    plan = json.loads((compared / "likelihood.json").read_text())
    assert plan["budget_seconds"] == res["scoring"]["nll_seconds"] == 5.0
    assert plan["auto"] and plan["measured_on"] == "vae" and 1 <= plan["k"] <= 100 and 1 <= plan["images"] <= 200
    for r in res["rows"]:
        if r["model"] == "vae":
            assert (r["likelihood"]["k"], r["likelihood"]["images"]) == (plan["k"], plan["images"])
            assert (r["final"]["nll_k"], r["best"]["nll_k"]) == (plan["k"], plan["k"])
    assert (f"NLL (IWAE, k={plan['k']}) on the first {plan['images']} test images (sized to fit --nll-seconds 5.0 "
            f"per scoring)") in (compared / "report.html").read_text()
    assert set(vae["figures"]) == {"samples", "reconstructions", "interpolations", "traversals", "embedding"}
    ae = next(r for r in res["rows"] if r["model"] == "ae")      # traversed in its codes' own units
    assert set(ae["figures"]) == set(vae["figures"])
    dcgan = next(r for r in res["rows"] if r["model"] == "dcgan")
    assert set(dcgan["figures"]) == {"samples", "interpolations"}
    assert res["floor"]["metrics"]["fd"] < min(r["final"]["fd"] for r in res["rows"])
    assert res["schema"] == "ganvae.results/1" and res["replay"] == []   # a step budget replays as it is
    with open(compared / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and {"fd", "best_fd", "params", "images_per_second", "train_seconds"} <= set(rows[0])
    # every line says what it is: the data, the budget, the evaluator and the numeric precision
    # (dtype; `precision` is only ever the metric)
    ev = res["floor"]["evaluator"]["id"]
    assert all((r["dataset"], r["budget"], r["evaluator"]) == (DATA, "12 steps", ev) for r in rows)
    assert [r["dtype"] for r in rows[:6]] == ["fp32"] * 6
    assert [(r["model"], r["seed"]) for r in rows[:6]] == [(m["model"], str(m["seed"])) for m in res["rows"]]
    assert float(rows[0]["precision"]) == res["rows"][0]["final"]["precision"]
    floor = rows[6]     # the real-data floor's line, beside the models'
    assert (floor["kind"], floor["model"], floor["status"], floor["steps"]) == ("floor", "real-data-floor", "floor", "")
    assert float(floor["fd"]) == res["floor"]["metrics"]["fd"] and floor["best_fd"] == ""
    assert [r["kind"] for r in rows[:6]] == ["run"] * 6
    # docs/results.md's pandas lines, as written there: integer columns stay integers, and the
    # best model is a model's line, never the floor's
    import re

    pd = pytest.importorskip("pandas")
    doc = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1).replace('"cmp/', f'"{compared}/')
    ns: dict = {}
    exec(code, ns)
    table, runs, best = ns["table"], ns["runs"], ns["best"]
    assert all(str(table[c].dtype) == "Int64" for c in ("seed", "params", "steps", "images_seen", "best_step"))
    assert pd.isna(table[table.kind == "floor"].seed.iloc[0]) and len(runs) == 6
    fds = {(r["model"], r["seed"]): r["final"]["fd"] for r in res["rows"]}
    assert (best.model, int(best.seed)) == min(fds, key=fds.get)
    assert table.fd.min() == res["floor"]["metrics"]["fd"] < runs.fd.min()   # what filtering on kind avoids
    # summary.json, metrics.jsonl, curve.jsonl and results.json name the same quantities alike
    run = compared / "runs" / "vae-seed0"
    summary = json.loads((run / "summary.json").read_text())
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    point = json.loads((run / "curve.jsonl").read_text().splitlines()[-1])
    row = next(r for r in res["rows"] if (r["model"], r["seed"]) == ("vae", 0))
    assert summary["steps"] == row["steps"] == line["step"] == point["step"] == 12
    assert summary["images_seen"] == row["images_seen"] == line["images_seen"] == point["images_seen"] == 12 * 32
    assert summary["train_seconds"] == row["train_seconds"] == line["train_seconds"] == point["train_seconds"]
    assert summary["images_per_second"] == row["images_per_second"] and line["images_per_second"] > 0
    assert summary["dtype"] == row["dtype"] == "fp32" and "precision" not in summary
    # the seeds differ: different weights, different scores
    fds = {r["seed"]: r["final"]["fd"] for r in res["rows"] if r["model"] == "dcgan"}
    assert fds[0] != fds[1]


def test_time_split_adds_up(compared):
    """Each run's wall clock comes apart into training and what the comparison spent around it;
    the report shows the split and the share of the budget."""
    res = json.loads((compared / "results.json").read_text())
    for r in res["rows"]:
        t = r["timing"]
        assert t["train"] == pytest.approx(r["train_seconds"], abs=0.01)
        assert all(t[k] >= 0 for k in ("curve", "train_other", "final_scoring", "best_scoring", "figures"))
        assert t["curve"] > 0 and t["final_scoring"] > 0 and t["figures"] > 0
        run = compared / "runs" / f"{r['model']}-seed{r['seed']}"
        curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
        assert t["curve"] == pytest.approx(sum(p["eval_seconds"] for p in curve), abs=0.02)
        wall = json.loads((run / "phase1_seconds.json").read_text())["seconds"]
        assert t["train"] + t["curve"] + t["train_other"] == pytest.approx(wall, abs=0.05)
        # the best checkpoint is scored separately only where it is not the last one
        assert (t["best_scoring"] == 0) == (r["best_step"] == r["steps"])
    shared = res["timing"]
    assert shared["train"] == pytest.approx(sum(r["train_seconds"] for r in res["rows"]), abs=0.1)
    assert shared["wall"] > shared["train"] and shared["outside_training"] == pytest.approx(
        shared["wall"] - shared["train"], abs=0.02)
    html = (compared / "report.html").read_text()
    assert 'id="time-split"' in html and "Where the time went" in html and "around" in html


def test_report_content(compared):
    html = (compared / "report.html").read_text()
    assert "real-data floor" in html and "±" in html  # two seeds: mean ± std
    for model in ("ae", "vae", "dcgan"):
        assert f'id="model-{model}"' in html
    assert "Findings" in html and "Best sample quality (FD)" in html
    assert "src=\"http" not in html and "<script" not in html  # self-contained, no network


def test_rerun_skips_finished_and_resumes_interrupted(compared, run_cli, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(compared, out)
    ae = json.loads((out / "runs" / "ae-seed0" / "result.json").read_text())
    run = out / "runs" / "dcgan-seed1"
    # as if killed after its first checkpoint: no result, no final model
    for name in ("result.json", "summary.json"):
        (run / name).unlink()
    shutil.rmtree(run / "model")
    code, out_text, err = run_cli("compare", "--models", "ae,vae,dcgan", "--seeds", 2, "--out", out, *ARGS)
    assert code == 0, err
    assert "ae-seed0: finished earlier; skipping" in err and "dcgan-seed1: resuming" in err
    assert json.loads((out / "runs" / "ae-seed0" / "result.json").read_text()) == ae
    assert json.loads((run / "result.json").read_text())["steps"] == 12
    # the budget said once (not once per model); the ranking and the report's path at the end
    assert err.count("budget: 12 steps per model (a step is one update of each network") == 1
    lines = out_text.splitlines()
    assert lines[0].startswith("ranking by FD in the evaluator's features (lower is better), on ")
    assert lines[-1] == f"report: {out / 'report.html'}" and lines[-2].lstrip().startswith("real data (floor)")
    results = json.loads((out / "results.json").read_text())
    fds = {m: sum(r["final"]["fd"] for r in results["rows"] if r["model"] == m) / 2 for m in ("ae", "vae", "dcgan")}
    ranked = [ln.split()[1] for ln in lines[2:5]]
    assert ranked == sorted(fds, key=fds.get)                        # best FD first, as the report
    for ln in lines[2:5]:
        assert f"{fds[ln.split()[1]]:.2f} ±" in ln                   # the mean over the 2 seeds, and its spread


def test_other_settings_refused(compared, run_cli, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(compared, out)
    before = (out / "results.json").read_bytes()
    code, _, err = run_cli("compare", "--models", "ae,vae,dcgan", "--seeds", 2, "--out", out, *ARGS,
                           "--batch-size", 16)   # another batch size: the runs cannot be reused
    assert code == 2 and "other settings (batch_size: 32 there, 16 here)" in err
    assert (out / "results.json").read_bytes() == before


def test_a_model_added_to_a_finished_comparison_trains_and_the_others_are_reused(compared, run_cli, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(compared, out)
    ae = json.loads((out / "runs" / "ae-seed0" / "result.json").read_text())
    code, _, err = run_cli("compare", "--models", "ae,aae", "--seeds", 2, "--out", out, *ARGS)
    assert code == 0, err
    assert "ae-seed0: finished earlier; skipping" in err and "aae-seed0: training" in err
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["model"], r["seed"]) for r in rows] == [("ae", 0), ("aae", 0), ("ae", 1), ("aae", 1)]
    assert json.loads((out / "runs" / "ae-seed0" / "result.json").read_text()) == ae
    assert json.loads((out / "compare.json").read_text())["models"] == ["ae", "aae"]


@pytest.mark.parametrize("extra,msg", [
    (["--models", "ae,nope"], "unknown model 'nope'"),
    (["--models", "ae,ae"], "named twice"),
    (["--models", "ae", "--budget", "1m"], "exactly one budget"),
    (["--models", "ae", "--seeds", "0"], "--seeds 0"),
])
def test_bad_options(extra, msg, run_cli, tmp_path):
    code, _, err = run_cli("compare", *extra, "--out", tmp_path / "o", *ARGS)
    assert code == 2 and msg in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_report_command_rebuilds(compared, run_cli, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(compared, out)
    (out / "report.html").unlink()
    code, text, err = run_cli("report", out)
    assert code == 0 and (out / "report.html").exists()
    code, _, err = run_cli("report", tmp_path / "nothing")
    assert code == 2 and "no results.json" in err


def test_report_in_a_real_browser(compared, tmp_path):
    """Headless Chromium opens the file: every image loads, no console errors, a screenshot."""
    from tests.browser import open_report

    result = open_report(compared / "report.html", tmp_path / "shot.png")
    assert result["images"] >= 10
    assert result["broken"] == [], result["broken"]
    assert result["console_errors"] == []
    assert (tmp_path / "shot.png").stat().st_size > 10_000


SMALL = ["--steps", 4, "--batch-size", 16, "--set", "width=8", "--set", "latent=4", "--eval-n", 100,
         "--curve-n", 100, "--curve-points", 2, "--quiet"]


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_on_an_rgb_folder(tmp_path, run_cli):
    """A folder of RGB images in class sub-folders: an evaluator is trained for it on first use."""
    from PIL import Image

    from ganvae.data import load_dataset

    ds = load_dataset("shapes:n=240,n_test=10,classes=3", size=32, channels=3)
    for i, (img, label) in enumerate(zip(ds.train.x, ds.train.y)):
        d = tmp_path / "imgs" / ds.classes[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(d / f"{i}.png")
    code, out, err = run_cli("compare", "--data", f"folder:{tmp_path / 'imgs'}", "--models", "vae,sngan",
                             "--out", tmp_path / "o", *SMALL)
    assert code == 0, err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["floor"]["shape"] == [3, 32, 32] and res["floor"]["classes"] == ["disc", "square", "triangle"]
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"]
    assert (tmp_path / "o" / "report.html").exists()


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_on_fashion_mnist(tmp_path, run_cli):
    code, out, err = run_cli("compare", "--data", "fashion-mnist", "--models", "ae,dcgan", "--out", tmp_path / "o",
                             *SMALL)
    assert code == 0, err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["floor"]["evaluator"]["id"].startswith("fashion-mnist-classifier")
    assert res["floor"]["evaluator"]["accuracy"] >= 0.92


@pytest.mark.parametrize("width", [1400, 900])
def test_report_never_wider_than_the_window(compared, tmp_path, width):
    """The page never scrolls sideways; a table wider than the window scrolls in its own box."""
    from tests.browser import open_report

    result = open_report(compared / "report.html", tmp_path / "shot.png", width=width)
    assert result["doc_scroll_width"] <= width, result
    assert {t["id"] for t in result["tables"]} >= {"ranking"}
    for t in result["tables"]:
        assert t["reachable"], t


def test_hybrid_findings_set_a_hybrid_beside_its_parents():
    from ganvae.report.html import hybrid_findings

    agg = {"vae": {"fd": (22.9, 1.0), "sharpness": (0.13, 0.0)},
           "dcgan": {"fd": (23.5, 1.0), "sharpness": (0.87, 0.0)},
           "vaegan": {"fd": (12.0, 1.0), "sharpness": (0.25, 0.0)},
           "aae": {"fd": (30.0, 1.0)}}                      # its parent ae is absent; dcgan is here
    lines = hybrid_findings(agg)
    assert lines == [
        "<b>vaegan</b> (a hybrid of vae and dcgan) beats vae and dcgan on FD (12 against 22.9 for vae); "
        "sharpness 0.25 against 0.13 (vae), 0.87 (dcgan).",
        "<b>aae</b> (a hybrid of ae and dcgan) does not beat dcgan on FD (30 against 23.5 for dcgan)."]
    assert hybrid_findings({"vae": agg["vae"], "dcgan": agg["dcgan"]}) == []   # no hybrid, no line
    assert hybrid_findings({"vaegan": agg["vaegan"]}) == []                    # no parent to compare with


@pytest.mark.parametrize("extra,msg", [
    (["--models", "vae,dcgan", "--set", "nope=1"], "--set nope: no model of this comparison has that key (vae, dcgan)"),
    (["--models", "vae,dcgan", "--set", "norm=group"], "norm='group': choose one of batch, layer, none"),
    (["--models", "vae,dcgan:loss=square"], "loss='square'"),
    (["--models", "vae", "--set", "train.log_every=0"], "--log-every 0"),
])
def test_a_bad_model_setting_fails_before_the_out_directory_exists(extra, msg, run_cli, tmp_path):
    code, _, err = run_cli("compare", *extra, "--out", tmp_path / "o", *ARGS)
    assert code == 2 and msg in err, err
    assert not (tmp_path / "o").exists()      # not locked, no compare.json: the fixed command just runs


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_seed_and_data_seed_reach_the_runs_and_an_older_compare_json_still_matches(run_cli, tmp_path):
    out = tmp_path / "o"
    code, _, err = run_cli("compare", "--models", "ae", "--seed", 3, "--data-seed", 2, "--out", out, *ARGS)
    assert code == 0, err
    cfg = json.loads((out / "runs" / "ae-seed3" / "config.json").read_text())
    assert cfg["train"]["seed"] == 3 and cfg["data"]["seed"] == 2
    assert json.loads((out / "results.json").read_text())["splits"]["data_seed"] == 2
    # a compare.json from before these settings existed is read with their defaults
    out2 = tmp_path / "o2"
    assert run_cli("compare", "--models", "ae", "--out", out2, *ARGS)[0] == 0
    saved = json.loads((out2 / "compare.json").read_text())
    del saved["seed"], saved["data_seed"]
    (out2 / "compare.json").write_text(json.dumps(saved))
    code, _, err = run_cli("compare", "--models", "ae", "--out", out2, *ARGS)
    assert code == 0 and "other settings" not in err


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_a_wall_clock_comparison_replays_exactly_from_its_replay_config(run_cli, tmp_path):
    """A --budget run records the step each model reached in replay-seedN.json; compare --config
    with it trains every model exactly that many steps and scores the same numbers."""
    args = [a for a in ARGS if a not in ("--steps", 12)]
    out = tmp_path / "o"
    code, _, err = run_cli("compare", "--models", "ae,vae", "--budget", "1s", "--out", out, *args)
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    steps = {r["model"]: r["steps"] for r in res["rows"]}
    assert res["replay"] == [{"seed": 0, "config": "replay-seed0.json", "steps": steps}]
    replay = json.loads((out / "replay-seed0.json").read_text())
    assert replay["budget"] is None and replay["models"] == [f"{m}:train.steps={n}" for m, n in steps.items()]
    html = (out / "report.html").read_text()
    assert f"ganvae compare --config {out}/replay-seed0.json --out {out}-replay" in html
    code, _, err = run_cli("compare", "--config", out / "replay-seed0.json", "--out", tmp_path / "again")
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert [r["steps"] for r in again["rows"]] == list(steps.values())
    assert [r["final"]["fd"] for r in again["rows"]] == [r["final"]["fd"] for r in res["rows"]]
    with open(tmp_path / "again" / "results.csv") as f:
        assert [r["budget"] for r in csv.DictReader(f)][:2] == [f"{n} steps" for n in steps.values()]


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_compare_config_file_with_options_that_win(run_cli, tmp_path):
    """--config takes a comparison's settings from a file (its compare.json, or YAML); an option
    given on the command line replaces the file's value; a bad key names the file."""
    out = tmp_path / "o"
    assert run_cli("compare", "--models", "ae", "--out", out, *ARGS)[0] == 0
    code, _, err = run_cli("compare", "--config", out / "compare.json", "--seed", 1, "--out", tmp_path / "o2")
    assert code == 0, err
    mine, theirs = (json.loads((d / "compare.json").read_text()) for d in (out, tmp_path / "o2"))
    assert theirs == {**mine, "seed": 1} and (tmp_path / "o2" / "runs" / "ae-seed1" / "summary.json").exists()
    # a budget given on the command line replaces the file's budget whole (not two budgets)
    (tmp_path / "c.yaml").write_text(f"data: {DATA}\nmodels: [ae]\nsteps: 4\nbatch_size: 32\n"
                                    "overrides: {width: 8, latent: 8}\neval_n: 300\ncurve_n: 200\n")
    code, _, err = run_cli("compare", "--config", tmp_path / "c.yaml", "--epochs", 0.1, "--out", tmp_path / "o3",
                           "--quiet")
    assert code == 0, err
    saved = json.loads((tmp_path / "o3" / "compare.json").read_text())
    assert (saved["steps"], saved["epochs"], saved["overrides"]) == (None, 0.1, {"width": 8, "latent": 8})
    (tmp_path / "bad.yaml").write_text("data: shapes\nstepz: 4\n")
    code, _, err = run_cli("compare", "--config", tmp_path / "bad.yaml", "--out", tmp_path / "o4")
    assert code == 2 and f"--config {tmp_path / 'bad.yaml'}: unknown key 'stepz'" in err
    assert not (tmp_path / "o4").exists()
    code, _, err = run_cli("compare", "--models", "ae", "--steps", 2, "--out", tmp_path / "o5")
    assert code == 2 and "give --data" in err and "--config" in err


def test_one_set_reaches_each_model_that_has_the_key(run_cli, tmp_path):
    """A mixed comparison shares one --set: each model takes the keys it has (norm for the VAE,
    d_norm for the GAN, lr and train.* for all)."""
    out = tmp_path / "o"
    code, _, err = run_cli("compare", "--models", "vae,dcgan", "--set", "norm=none", "--set", "d_norm=layer",
                           "--set", "lr=0.0005", "--out", out, *ARGS, "--curve-points", 1)
    assert code == 0, err
    vae = json.loads((out / "runs" / "vae-seed0" / "config.json").read_text())["model"]
    gan = json.loads((out / "runs" / "dcgan-seed0" / "config.json").read_text())["model"]
    assert vae["norm"] == "none" and "d_norm" not in vae and vae["lr"] == 0.0005
    assert gan["d_norm"] == "layer" and "norm" not in gan and gan["lr_g"] == gan["lr_d"] == 0.0005


def test_a_comparison_written_before_the_shared_field_names_still_reports(compared, run_cli, tmp_path):
    """Runs and comparisons written with the old names (summary.json step / images / precision,
    curve.jsonl time / images, no schema or replay in results.json) are still read."""
    from ganvae.trainer import read_summary

    out = tmp_path / "old"
    shutil.copytree(compared, out)
    old_names = {"steps": "step", "images_seen": "images", "dtype": "precision"}
    for run in (out / "runs").iterdir():
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({old_names.get(k, k): v for k, v in summary.items()}))
        assert read_summary(run) == summary
        curve = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
        renamed = [{{"images_seen": "images", "train_seconds": "time"}.get(k, k): v for k, v in r.items()} for r in curve]
        (run / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in renamed))
    res = json.loads((out / "results.json").read_text())
    del res["schema"], res["replay"]
    (out / "results.json").write_text(json.dumps(res))
    (out / "report.html").unlink()
    code, _, err = run_cli("report", out)
    assert code == 0, err
    assert "against training time and images seen" in (out / "report.html").read_text()   # the curves' plot
