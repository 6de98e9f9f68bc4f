"""Crash safety, divergence, signals, full disks, hostile files (issue 6)."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.conftest import DATA, TINY


def _all_finite(run: Path) -> bool:
    for f in (run / "checkpoints").glob("*.safetensors"):
        for k, v in load_file(f).items():
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                return False
    return True


def test_divergence_stops_at_the_step_with_names(tmp_path, run_cli):
    run = tmp_path / "r"
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 50, "--checkpoint-every", 1, "--out", run,
                           "--set", "lr=1e12", *TINY)
    assert code == 1 and "training diverged at step" in err and "loss/recon" in err, err
    step = int(err.split("at step ")[1].split(":")[0])
    assert step < 50 and "Traceback" not in err
    # every checkpoint on disk is finite, and none is at or after the divergent step
    stems = sorted((run / "checkpoints").glob("*.json"))
    assert stems and all(int(p.stem.split("_")[1]) < step for p in stems)
    assert _all_finite(run)


def test_rollback_halves_the_learning_rate_then_gives_up(tmp_path, run_cli):
    run = tmp_path / "r"
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 50, "--checkpoint-every", 1, "--out", run,
                           "--set", "lr=1e12", "--set", "train.on_nan=rollback", "--set", "train.max_rollbacks=2",
                           *TINY)
    assert code == 1 and "after 2 rollbacks" in err, err
    assert err.count("rolled back to step") == 2 and "x0.5" in err and "x0.25" in err
    assert _all_finite(run)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # rolled-back steps were not logged twice


def test_damaged_newest_checkpoint_falls_back(tmp_path, run_cli):
    common = ["--data", DATA, "--log-every", 1, "--checkpoint-every", 2, *TINY]
    assert run_cli("train", "dcgan", "--steps", 6, "--out", tmp_path / "a", *common)[0] == 0
    assert run_cli("train", "dcgan", "--steps", 4, "--out", tmp_path / "b", *common)[0] == 0
    newest = tmp_path / "b" / "checkpoints" / "step_00000004.safetensors"
    raw = bytearray(newest.read_bytes())
    raw[-10] ^= 0xFF
    newest.write_bytes(bytes(raw))
    code, _, err = run_cli("train", "--resume", tmp_path / "b", "--steps", 6, "--quiet")
    assert code == 0, err
    assert "checksum mismatch" in err and "falling back to the previous checkpoint" in err
    a, b = load_file(tmp_path / "a" / "model" / "model.safetensors"), load_file(tmp_path / "b" / "model" / "model.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, run_cli, monkeypatch):
    import errno

    import ganvae.checkpoint as ck

    real_save = ck.save_file
    calls = {"n": 0}

    def failing(tensors, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, path)

    monkeypatch.setattr(ck, "save_file", failing)
    run = tmp_path / "r"
    code, _, err = run_cli("train", "vae", "--data", DATA, "--steps", 6, "--checkpoint-every", 2, "--out", run, *TINY)
    assert code == 1 and "no space left on device" in err and "earlier checkpoints are intact" in err
    stems = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert stems == ["step_00000002.json", "step_00000002.safetensors"]  # no partial file left
    monkeypatch.setattr(ck, "save_file", real_save)
    from ganvae.checkpoint import load_state

    assert load_state(run / "checkpoints" / "step_00000002")["trainer"]["step"] == 2


def _wait_for(path: Path, predicate, timeout=60.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and predicate(path):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig,code", [pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow), (signal.SIGINT, 130)])
def test_signals_stop_cleanly(tmp_path, sig, code):
    run = tmp_path / "r"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "ganvae.cli", "train", "dcgan", "--data", DATA, "--steps", "100000",
                          "--log-every", "1", "--checkpoint-every", "100000", "--out", str(run), *map(str, TINY)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert _wait_for(run / "metrics.jsonl", lambda f: len(f.read_text().splitlines()) >= 3)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == code, err
    assert f"ganvae: stopped: {signal.Signals(sig).name} at step" in err and "--resume" in err
    assert "Traceback" not in err
    step = int(err.split("at step ")[1].split(":")[0])
    assert (run / "checkpoints" / f"step_{step:08d}.json").exists()
    from ganvae.checkpoint import load_state

    assert load_state(run / "checkpoints" / f"step_{step:08d}")["trainer"]["step"] == step


def test_malicious_pickle_is_refused(tmp_path, runs, run_cli):
    """A pickle planted where weights or state belong is never unpickled."""
    import shutil

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Evil())
    run = tmp_path / "run"
    shutil.copytree(runs["vae"], run)
    (run / "model" / "model.safetensors").write_bytes(payload)
    code, _, err = run_cli("sample", run, "-n", 2, "-o", tmp_path / "s.png")
    assert code == 1 and "damaged weights" in err
    ck = sorted((run / "checkpoints").glob("*.safetensors"))
    for f in ck:
        f.write_bytes(payload)
    code, _, err = run_cli("train", "--resume", run, "--steps", 8, "--quiet")
    assert code == 0 and err.count("falling back to the previous checkpoint") == len(ck)
    np.savez(tmp_path / "x.npz", x=np.array([Evil()], dtype=object))
    code, _, err = run_cli("eval", "--samples", tmp_path / "x.npz", "--data", DATA)
    assert code == 2
    assert not marker.exists()


# ------------------------------------------------------------------ SIGKILL at many points

KILL_POINTS = [
    ("step", 7),          # inside the 7th training step
    ("tensors", 2),       # writing the 2nd checkpoint's tensors, before the rename
    ("json", 2),          # between the 2nd checkpoint's tensors and its JSON
    # (the rest in the slow suite, for the default suite's 6 minutes)
    pytest.param("metrics", 9, marks=pytest.mark.slow),   # half-way through writing the 9th metrics line
    pytest.param("final", 1, marks=pytest.mark.slow),     # saving the final model after the last checkpoint
    pytest.param("samples", 1, marks=pytest.mark.slow),   # writing the first sample grid
]

def _train_args(run):
    return ["train", "vae", "--data", DATA, "--steps", "12", "--log-every", "1", "--checkpoint-every", "4",
            "--sample-every", "6", "--out", str(run), *map(str, TINY)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from ganvae.cli import main

    run = tmp_path_factory.mktemp("ref") / "r"
    assert main(_train_args(run)) == 0
    return load_file(run / "model" / "model.safetensors")


@pytest.mark.parametrize("point,n", KILL_POINTS)
def test_sigkill_then_resume_is_bit_identical(tmp_path, reference, run_cli, point, n):
    run = tmp_path / "r"
    killer = Path(__file__).parent / "killer.py"
    p = subprocess.run([sys.executable, str(killer), point, str(n), *_train_args(run)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert not (run / "model" / "model.safetensors").exists() or point == "final"
    code, _, err = run_cli("train", "--resume", run, "--quiet")
    assert code == 0, err
    got = load_file(run / "model" / "model.safetensors")
    assert got.keys() == reference.keys()
    for k in got:
        np.testing.assert_array_equal(got[k], reference[k], err_msg=k)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13)), steps  # nothing missing, nothing twice
    left = {p.name for p in (run / "checkpoints").iterdir()}
    assert not [n for n in left if n.endswith(".tmp")]
    assert {n.rsplit(".", 1)[0] for n in left if n.endswith(".safetensors")} == \
        {n.rsplit(".", 1)[0] for n in left if n.endswith(".json")}  # no tensors without their JSON


# ------------------------------------------------------------------ paths stay inside a run


def test_report_never_inlines_files_from_outside(tmp_path, run_cli):
    import shutil

    from tests.test_compare import ARGS

    out = tmp_path / "o"
    code, _, err = run_cli("compare", "--models", "ae", "--out", out, *[a if a != 12 else 2 for a in ARGS])
    assert code == 0, err
    secret = tmp_path / "secret.png"
    shutil.copy(out / "runs" / "ae-seed0" / "figures" / "samples.png", secret)
    res = json.loads((out / "results.json").read_text())
    res["rows"][0]["figures"] = {"samples": "../../../../secret.png", "embedding": str(secret)}
    (out / "results.json").write_text(json.dumps(res))
    (out / "runs" / "ae-seed0" / "figures" / "reconstructions.png").unlink()
    (out / "runs" / "ae-seed0" / "figures" / "reconstructions.png").symlink_to(secret)
    res["rows"][0]["figures"]["reconstructions"] = "reconstructions.png"
    (out / "results.json").write_text(json.dumps(res))
    assert run_cli("report", out)[0] == 0
    html = (out / "report.html").read_text()
    assert 'alt="ae samples"' not in html and 'alt="ae embedding"' not in html
    assert 'alt="ae reconstructions"' not in html


def test_model_symlinked_outside_is_refused(tmp_path, runs, run_cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["vae"], run, symlinks=True)
    shutil.rmtree(run / "model")
    (run / "model").symlink_to(runs["ae"] / "model")
    code, _, err = run_cli("sample", run, "-n", 2, "-o", tmp_path / "s.png")
    assert code == 2 and "outside the run directory" in err


def test_checkpoint_symlinked_outside_is_ignored(tmp_path, runs):
    import shutil

    from ganvae.trainer import checkpoints

    run = tmp_path / "run"
    shutil.copytree(runs["vae"], run)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(run / "checkpoints" / f"step_00000004{suffix}", outside / f"step_00000009{suffix}")
        (run / "checkpoints" / f"step_00000009{suffix}").symlink_to(outside / f"step_00000009{suffix}")
    assert [s.name for s in checkpoints(run)] == ["step_00000002", "step_00000004"]


def test_only_the_last_k_checkpoints_are_kept(tmp_path, run_cli):
    run = tmp_path / "r"
    code, _, err = run_cli("train", "ae", "--data", DATA, "--steps", 6, "--checkpoint-every", 1, "--out", run,
                           "--set", "train.keep_checkpoints=2", *TINY)
    assert code == 0, err
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_00000005.json", "step_00000005.safetensors", "step_00000006.json", "step_00000006.safetensors"]


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_ctrl_c_during_compare_says_to_run_the_same_compare_again(tmp_path):
    """Not `train --resume RUN`: that would resume one run outside the comparison."""
    out = tmp_path / "c"
    args = ["compare", "--data", DATA, "--models", "vae,dcgan", "--steps", "100000",
            "--eval-n", "64", "--curve-points", "1", "--curve-n", "32", "--out", str(out), *map(str, TINY)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "ganvae.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        assert _wait_for(out / "runs" / "vae-seed0" / "metrics.jsonl", lambda f: len(f.read_text().splitlines()) >= 1,
                         timeout=120)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130, err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("ganvae: stopped:")]
    assert line.startswith("ganvae: stopped: vae-seed0: SIGINT at step ")
    assert line.endswith(f"Continue with the same ganvae compare command (--out {out}): it resumes this model "
                         "from the checkpoint and skips the finished ones")
    assert "train --resume" not in err and "Traceback" not in err
