"""Compare's scoring sized to the training time (comparison/scoring.py, issue 32): the sizes follow
their closed form from the measured rates, every model and the floor use the same ones, the
report and the replay say them, given counts are kept, and old comparisons resume as they were."""

import json

import pytest

from ganvae.comparison import scoring
from tests.conftest import DATA

AUTO = ["--data", DATA, "--batch-size", 16, "--set", "width=8", "--set", "latent=4", "--curve-points", 3, "--quiet"]


def _within(value, lo, hi, step):
    n = int(value // step * step)
    return max(lo, n if hi is None else min(hi, n))


@pytest.fixture(scope="module")
def auto_cmp(tmp_path_factory):
    """ae and vae under a 3-second budget, every scoring size left auto (one test uses it: under
    xdist a module fixture shared by several tests is built once per worker)."""
    from ganvae.cli import main

    out = tmp_path_factory.mktemp("auto") / "out"
    assert main(["compare", "--models", "ae,vae", "--budget", "3s", "--out", str(out), *map(str, AUTO)]) == 0
    return out


def test_auto_sizes_follow_their_closed_form_and_every_score_uses_them(auto_cmp):
    sc = json.loads((auto_cmp / "scoring.json").read_text())
    assert sc["auto"] == ["curve_n", "eval_n", "nll_seconds"] and sc["measured_on"] == "ae"
    t, r = sc["train_seconds"], sc["samples_per_second"]
    assert t == 3.0 and r > 0      # a wall-clock budget: its own length, not a projection
    assert sc["eval_n"] == _within(scoring.FINAL_SHARE * t * r, *scoring.EVAL_N, 500)
    assert sc["curve_n"] == _within(scoring.CURVE_SHARE * t * r / 3, *scoring.CURVE_N, 100)
    assert sc["nll_seconds"] == round(min(20.0, max(5.0, scoring.LIKELIHOOD_SHARE * t)), 1) == 5.0
    # the ae's curve prior: sized by its own encoding rate, within [1,000, its prior_images]
    cp = json.loads((auto_cmp / "runs" / "ae-seed0" / "curve_plan.json").read_text())
    assert cp["prior_images"] == min(cp["of"], _within(scoring.PRIOR_SHARE * 3.0 * cp["images_per_second"] / 3,
                                                       scoring.CURVE_PRIOR_IMAGES[0], cp["of"], 100))

    # every model and the floor use the one plan
    res = json.loads((auto_cmp / "results.json").read_text())
    assert res["scoring"] == sc == json.loads((auto_cmp / "scoring.json").read_text())
    assert res["config"]["eval_n"] is None     # the config keeps what was asked: auto
    for model in ("ae", "vae"):
        curve = [json.loads(x) for x in (auto_cmp / "runs" / f"{model}-seed0" / "curve.jsonl").read_text().splitlines()]
        assert curve and all(p["n"] == sc["curve_n"] for p in curve)
    floor = json.loads((auto_cmp / "floor.json").read_text())
    assert floor["n"] == min(sc["eval_n"], floor["train_images"])
    vae = next(r for r in res["rows"] if r["model"] == "vae")
    assert vae["likelihood"]["seconds"] is not None
    lk = json.loads((auto_cmp / "likelihood.json").read_text())
    assert lk["auto"] and lk["budget_seconds"] == sc["nll_seconds"]

    # the best point of an encoder model carries the full prior
    point = json.loads((auto_cmp / "runs" / "ae-seed0" / "best" / "point.json").read_text())
    assert point["prior_refitted"] is True and point["prior_images"] is None
    curve = [json.loads(x) for x in (auto_cmp / "runs" / "ae-seed0" / "curve.jsonl").read_text().splitlines()]
    planned = json.loads((auto_cmp / "runs" / "ae-seed0" / "curve_plan.json").read_text())["prior_images"]
    assert curve and all(p["prior_images"] == planned for p in curve)
    # the vae (prior normal) fits nothing: no prior sized, nothing refitted
    assert not (auto_cmp / "runs" / "vae-seed0" / "curve_plan.json").exists()

    # the report and the replay say the sizes
    html = (auto_cmp / "report.html").read_text()
    assert f"Metrics on {sc['eval_n']} samples against the test split (sized to the training time: " in html
    assert f"--curve-n {sc['curve_n']}" in html and f"{sc['samples_per_second']:.0f} samples/s" in html
    assert f"sized to fit --nll-seconds {sc['nll_seconds']} per scoring" in html
    replay = json.loads((auto_cmp / "replay-seed0.json").read_text())
    assert (replay["eval_n"], replay["curve_n"], replay["nll_seconds"]) == (sc["eval_n"], sc["curve_n"],
                                                                            sc["nll_seconds"])


def test_given_counts_are_kept_and_only_the_rest_sized(tmp_path):
    from ganvae.cli import main

    out = tmp_path / "given"
    args = ["compare", "--models", "ae", "--steps", 6, "--eval-n", 120, "--curve-n", 50, "--out", out, *AUTO]
    assert main([str(a) for a in args]) == 0
    sc = json.loads((out / "scoring.json").read_text())
    assert (sc["eval_n"], sc["curve_n"], sc["auto"]) == (120, 50, ["nll_seconds"])
    assert not (out / "runs" / "ae-seed0" / "curve_plan.json").exists()   # --curve-n given: full prior
    curve = [json.loads(x) for x in (out / "runs" / "ae-seed0" / "curve.jsonl").read_text().splitlines()]
    assert all(p["n"] == 50 and "prior_images" not in p for p in curve)
    assert json.loads((out / "floor.json").read_text())["n"] == 120


def test_a_comparison_begun_with_fixed_sizes_resumes_with_them(tmp_path, run_cli):
    """compare.json of an earlier version holds eval_n 10000 and curve_n 1000: `auto` adopts them
    instead of refusing the --out as one with other settings."""
    out = tmp_path / "old"
    args = ["compare", "--models", "ae", "--steps", 2, "--eval-n", 90, "--curve-n", 40, "--nll-seconds", 3,
            "--out", out, *AUTO, "--curve-points", 1]
    code, _, err = run_cli(*args)
    assert code == 0, err
    (out / "scoring.json").unlink()                 # as a comparison written before sizing existed
    (out / "runs" / "ae-seed0" / "result.json").unlink()
    code, _, err = run_cli("compare", "--models", "ae", "--steps", 2, "--out", out, *AUTO, "--curve-points", 1)
    assert code == 0, err
    assert "other settings" not in err
    sc = json.loads((out / "scoring.json").read_text())
    assert (sc["eval_n"], sc["curve_n"], sc["nll_seconds"], sc["auto"]) == (90, 40, 3.0, [])


def test_bad_sizes_are_refused_in_one_line(tmp_path, run_cli):
    for opt, value, says in (("--eval-n", "lots", "give a whole number or auto"),
                             ("--nll-seconds", "soon", "give a number of seconds or auto"),
                             ("--nll-seconds", "-1", "--nll-seconds -1"),
                             ("--curve-n", "0", "--curve-n 0")):
        code, _, err = run_cli("compare", "--models", "ae", "--steps", 2, opt, value, "--out", tmp_path / "x", *AUTO)
        assert code != 0 and says in err and "Traceback" not in err, (opt, err)
        assert not (tmp_path / "x" / "runs").exists()
