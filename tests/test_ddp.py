"""Data parallelism through torchrun: real processes on gloo, 2 ranks against 1.

A 2-rank run splits each global batch of B images into two halves and averages the ranks'
gradients; with the noise drawn for the global batch (parallel.py) it computes what one process
computes, so the weights agree to float rounding (dropout included: its masks are drawn for
the global batch too), for nets without batch norm. Batch norm normalises each rank's B/2 rows by their own statistics, a different (equally
valid) training run; SyncBatchNorm, the cure, runs on GPUs only. So every case below trains
nets without batch norm, by config (`norm`, `d_norm`, `g_norm`).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganvae import parallel
from ganvae.checkpoint import load_state
from ganvae.trainer import checkpoints, train

DATA = "shapes:n=256,n_test=64"
# cpu here and in CI; benchmarks/gpu_check.sh sets cuda to run the equality cases on GPUs
DEVICE = os.environ.get("GANVAE_TEST_DEVICE", "cpu")
COMMON = ["--data", DATA, "--batch-size", "16", "--set", "width=8", "--set", "latent=8", "--device", DEVICE,
          "--quiet", "--log-every", "1"]
CASES = {   # preset and the overrides that take batch norm out of its nets
    "dcgan": ("dcgan", {"d_norm": "none", "g_norm": "none", "ema": 0.5}),   # (with an EMA of G)
    "vae": ("vae", {"norm": "none"}),
    "wgan-gp": ("wgan-gp", {"g_norm": "none"}),   # its critic has layer norm already; n_critic 5
    # lazy R1 (its own D update with 0 * D(x)) and ADA, whose p must count every rank's signs
    "r1-ada": ("dcgan", {"d_norm": "none", "g_norm": "none", "reg": "r1", "r1_every": 2, "augment": "ada",
                         "ada_interval": 1, "ada_speed_images": 50}),
    # the latent D is an MLP without norms; the gaussian encoder adds the reparameterization's
    # noise to the prior draws
    "aae": ("aae", {"norm": "none", "encoder": "gaussian", "d_hidden": 32}),
    # D keeps its default per-sample layer norm; diag_every 2: the eval-mode inversion errors
    "bigan": ("bigan", {"norm": "none", "d_dropout": 0.0, "diag_every": 2}),
    # ALI: the gaussian encoder and D's dropout 0.2, whose masks are drawn for the global batch
    "ali": ("ali", {"norm": "none", "diag_every": 2}),
    # the models that average their own gradients (autograd.grad, backward(inputs=...)):
    # vaegan with the equilibrium rule (a decision every rank must take alike) and ADA in D
    "vaegan": ("vaegan", {"norm": "none", "d_norm": "none", "equilibrium": 0.68, "augment": "ada",
                          "ada_interval": 1, "ada_speed_images": 50}),
    # the U-Net's dropout masks drawn for the global batch; CycleGAN's pools of fakes
    "pix2pix": ("pix2pix", {"norm": "none"}),
    "cyclegan": ("cyclegan", {"norm": "none", "pool_size": 20}),
    "unit": ("unit", {"norm": "none"}),
}
STEPS = {"dcgan": 8, "vae": 3, "wgan-gp": 3, "r1-ada": 4, "aae": 3, "bigan": 3, "ali": 3, "vaegan": 4, "pix2pix": 3,
         "cyclegan": 3, "unit": 3}
TRANSLATION = {"pix2pix", "cyclegan", "unit"}


def data_of(name: str) -> str:
    """The translation models' data: the shapes as targets, their 7x7 blow-ups as inputs."""
    return f"task:lowres@{DATA}" if name in TRANSLATION else DATA


def _env():
    # one thread per rank on a 2-core machine; a short collective timeout for the tests
    return {**os.environ, "OMP_NUM_THREADS": "1", "GANVAE_DDP_TIMEOUT": "60"}


def _sets(over: dict) -> list[str]:
    return [a for k, v in over.items() for a in ("--set", f"{k}={v}")]


def ganvae(*args, check=True, **kw):
    p = subprocess.run([sys.executable, "-m", "ganvae", *map(str, args)], capture_output=True, text=True,
                       env=_env(), timeout=300, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr[-2000:]}")
    return p


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each case trained by 1 process (in this one) with 1 and with 2 threads, and by 2
    processes (one torchrun job, tests/ddp_job.py)."""
    root = tmp_path_factory.mktemp("ddp")
    before = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
    try:
        # the second run rounds differently: 2 threads on a CPU; on a GPU, convolutions in full
        # fp32 instead of TF32 (cuDNN's default, which the other runs use)
        for threads, suffix in ((1, "1"), (2, "1-threads")):
            torch.set_num_threads(threads)
            torch.backends.cudnn.allow_tf32 = suffix == "1" or DEVICE == "cpu"
            for name, (preset, over) in CASES.items():
                train(preset, data_of(name), root / f"{name}-{suffix}", overrides={**over, "width": 8, "latent": 8},
                      steps=STEPS[name], batch_size=16, device=DEVICE, progress=False, log_every=1)
    finally:
        torch.set_num_threads(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]
    # the 2-process runs: one torchrun job (tests/ddp_job.py) trains them all, through the API
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "tests.ddp_job", str(root)], capture_output=True, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return root


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_train_the_weights_one_process_does(runs, name):
    # "Float tolerance": Adam divides each gradient by its running RMS, so a rounding difference
    # in a gradient near zero becomes a difference of up to the learning rate in one step. The
    # yardstick is therefore what rounding alone does: the same run on 2 threads instead of 1
    # (another summation order); 2 processes may differ from 1 by no more than a few times that.
    one = weights(runs / f"{name}-1")
    rounding = max_diff(one, weights(runs / f"{name}-1-threads"))
    assert max_diff(one, weights(runs / f"{name}-2")) <= max(1e-5, 4 * rounding)
    if name in ("r1-ada", "vaegan"):   # p moved, and moved alike
        p1, p2 = one["augment.ada.p"], weights(runs / f"{name}-2")["augment.ada.p"]
        assert float(p1) > 0 and torch.equal(p1, p2)
    # ... and the logged losses, averaged over the ranks, are the global batch's
    rows1 = [json.loads(line) for line in (runs / f"{name}-1" / "metrics.jsonl").read_text().splitlines()]
    rows2 = [json.loads(line) for line in (runs / f"{name}-2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows1] == [r["step"] for r in rows2] == list(range(1, STEPS[name] + 1))
    assert [r["images_seen"] for r in rows2] == [r["images_seen"] for r in rows1]   # global images, not per rank
    for r1, r2 in zip(rows1, rows2):
        for k in r1:
            if k.startswith("loss/"):
                assert r2[k] == pytest.approx(r1[k], rel=1e-3, abs=1e-4), k


def test_the_two_process_runs_differ_from_an_untrained_model(runs):
    # the comparison above would pass trivially if neither run had trained
    from ganvae.trainer import build
    from ganvae.data import load_dataset

    torch.manual_seed(0)
    model, _ = build("dcgan", load_dataset(DATA), {**CASES["dcgan"][1], "width": 8, "latent": 8})
    assert max_diff({k: v for k, v in model.state_dict().items()}, weights(runs / "dcgan-2")) > 1e-3


def test_only_rank_zero_writes(runs):
    run = runs / "dcgan-2"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == STEPS["dcgan"]                         # one line per step, not one per rank
    assert len(list((run / "tb").iterdir())) == 1               # one TensorBoard event file
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        f"step_{s:08d}.{ext}" for s in (4, 8) for ext in ("json", "safetensors")]
    assert json.loads((run / "summary.json").read_text())["processes"] == 2


def _rank_pid(rank: int) -> int | None:
    """The pid of this test's torchrun worker with RANK=rank (found by its environment)."""
    for entry in Path("/proc").iterdir():
        try:
            env = (entry / "environ").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"GANVAE_KILL_TEST=1" in env:
            return int(entry.name)
    return None


# ~20 s of two torchrun jobs: the slow suite's (make test-all), keeping the quick suite under 6
# minutes; one process killed and resumed bit for bit is test_reliability's, in the quick suite
@pytest.mark.slow
def test_a_killed_rank_stops_the_job_and_it_resumes(runs, tmp_path):
    run = tmp_path / "killed"
    args = [sys.executable, "-m", "ganvae", "train", "dcgan", *COMMON, *_sets(CASES["dcgan"][1]),
            "--steps", 5000, "--checkpoint-every", 2, "--sample-every", 1, "--out", run, "--nproc", 2]
    launcher = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**_env(), "GANVAE_KILL_TEST": "1"})
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step_00000002.json").exists():
        assert launcher.poll() is None, launcher.communicate()[1]
        assert time.time() < deadline, "no checkpoint after 120 s"
        time.sleep(0.02)
    pid = _rank_pid(1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    t0 = time.time()
    _, err = launcher.communicate(timeout=60)
    assert time.time() - t0 < 30                                  # the other rank stopped, not hung
    assert launcher.returncode != 0
    assert "process 1 of 2" in err and "killed by SIGKILL" in err and "--resume" in err
    assert "Traceback" not in err
    # every checkpoint left behind is complete and loads
    stems = checkpoints(run)
    assert stems and int(stems[-1].name[5:]) < STEPS["dcgan"]   # killed before the reference run's end
    for stem in stems:
        load_state(stem)
    assert not list((run / "checkpoints").glob(".*.tmp"))
    assert not (run / "model").exists()
    # resumed with 2 processes: bit for bit the uninterrupted 2-process run
    ganvae("train", "--resume", run, "--steps", STEPS["dcgan"], "--quiet", "--nproc", 2)
    assert max_diff(weights(run), weights(runs / "dcgan-2")) == 0


def test_resume_under_another_number_of_processes(runs):
    # 2 processes for 4 steps (in the job), then 1 process to 8: the 8-step run of either
    run = runs / "switch"
    assert json.loads((run / "summary.json").read_text())["steps"] == STEPS["dcgan"] // 2
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train("", run_dir=run, resume=True, steps=STEPS["dcgan"], progress=False)
    finally:
        torch.set_num_threads(before)
    one = weights(runs / "dcgan-1")
    assert max_diff(weights(run), one) <= max(1e-5, 4 * max_diff(one, weights(runs / "dcgan-1-threads")))


@pytest.mark.slow   # (the default suite's 6 minutes; make test-all runs it)
def test_bad_settings_fail_once_with_one_line(tmp_path):
    p = ganvae("train", "dcgan", *COMMON, "--batch-size", "15", "--steps", 2, "--out", tmp_path / "odd",
               "--nproc", 2, check=False)
    assert p.returncode == 2
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert lines == ["ganvae: error: --batch-size 15: the global batch is split evenly over the 2 processes; "
                     "give a multiple of 2"]
    assert not (tmp_path / "odd").exists()
    p = ganvae("train", "dcgan", *COMMON, "--steps", 2, "--nproc", 0, check=False)
    assert p.returncode == 2 and p.stderr.strip() == "ganvae: error: --nproc 0: give at least 1 process"


@pytest.mark.slow
def test_settings_ddp_cannot_run_are_refused(tmp_path):
    p = ganvae("train", "dcgan", *COMMON, "--set", "sync_bn=true", "--steps", 2, "--out", tmp_path / "bn",
               "--nproc", 2, check=False)
    assert p.returncode == 2 and "SyncBatchNorm runs on GPUs only" in p.stderr
    assert p.stderr.count("ganvae: error") == 1


def test_compare_trains_each_model_with_two_processes_and_scores_once(tmp_path):
    # the command: vaegan beside dcgan (it averages its own gradients over the ranks)
    out = tmp_path / "cmp"
    p = ganvae("compare", "--data", DATA, "--models", "dcgan:d_norm=none:g_norm=none,vaegan", "--steps", 6,
               "--batch-size", 16, "--set", "width=8", "--set", "latent=8", "--eval-n", 100, "--curve-points", 2,
               "--curve-n", 50,
               "--out", out, "--nproc", 2, "--device", "cpu", "--quiet")
    lines = p.stdout.splitlines()                                              # said once, by rank 0
    assert lines[0].startswith("ranking by FD") and lines[-1] == f"report: {out / 'report.html'}"
    assert sum(ln.startswith("ranking by FD") for ln in lines) == 1 and len(lines) == 6   # head, 2 models, floor
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["rows"]] == ["dcgan:d_norm=none:g_norm=none", "vaegan"]
    for run in (out / "runs").iterdir():
        assert json.loads((run / "summary.json").read_text())["processes"] == 2
        curve = (run / "curve.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in curve] == [3, 6]          # rank 0's curve points
    assert (out / "report.html").stat().st_size > 0


def test_compare_checks_every_model_for_several_processes_before_training(tmp_path, monkeypatch):
    """A model that cannot train under --nproc (a class of one's own without ddp_ready) or a
    batch the processes cannot split is refused before the first model trains."""
    from ganvae.comparison import runner
    from ganvae.comparison.config import CompareConfig
    from ganvae.data import load_dataset
    from ganvae.errors import BadInput
    from ganvae.models.vaegan import VAEGAN

    ds = load_dataset(DATA)
    monkeypatch.setattr(parallel, "world", lambda: parallel.World(0, 2))
    runner._check_models(CompareConfig(models=["dcgan", "vaegan"], data=DATA), ds)   # both DDP-ready
    with pytest.raises(BadInput, match=r"^--batch-size 15: the global batch is split evenly over the 2 processes"):
        runner._check_models(CompareConfig(models=["dcgan", "vae"], data=DATA, batch_size=15), ds)
    monkeypatch.setattr(VAEGAN, "ddp_ready", False)
    with pytest.raises(BadInput, match="^vaegan: not trainable with several processes .* without --nproc$"):
        runner._check_models(CompareConfig(models=["dcgan", "vaegan"], data=DATA), ds)
    monkeypatch.undo()
    # the CLI: a batch the processes cannot split fails in one line; nothing is trained or written
    p = ganvae("compare", "--data", DATA, "--models", "dcgan,vae", "--steps", 2, "--batch-size", 15, "--out",
               tmp_path / "c", "--nproc", 2, "--device", "cpu", "--quiet", check=False)
    assert p.returncode == 2
    assert [ln for ln in p.stderr.splitlines() if ln.strip()] == [
        "ganvae: error: --batch-size 15: the global batch is split evenly over the 2 processes; give a multiple of 2"]
    assert not (tmp_path / "c").exists()


def test_an_early_stop_on_rank_zero_stops_every_rank(runs):
    # rank 0's callback asked at step 5 of 12; rank 1 (no callbacks) stopped there too, or the
    # job would hang on the next collective
    summary = json.loads((runs / "stopped" / "summary.json").read_text())
    assert summary["steps"] == 5 and summary["stopped_early"] == "asked at 5" and summary["processes"] == 2
    assert (runs / "stopped" / "model" / "config.json").exists()


def test_one_process_helpers_are_the_identity():
    assert parallel.world() == parallel.World(0, 1, 0)
    torch.manual_seed(3)
    a = parallel.randn(5, 2)
    torch.manual_seed(3)
    assert torch.equal(a, torch.randn(5, 2))
    assert parallel.rows(8) == slice(0, 8)
    assert parallel.all_mean({"x": 2.0}) == {"x": 2.0}
    assert parallel.broadcast("run") == "run"
    parallel.agree(None)
    from ganvae.errors import BadInput

    with pytest.raises(BadInput, match="bad"):
        parallel.agree(BadInput("bad"))


@pytest.mark.slow
def test_ctrl_c_stops_every_process_at_one_step_with_a_checkpoint(tmp_path):
    run = tmp_path / "int"
    args = [sys.executable, "-m", "ganvae", "train", "dcgan", *COMMON, *_sets(CASES["dcgan"][1]),
            "--steps", 100000, "--checkpoint-every", 100000, "--out", run, "--nproc", 2]
    job = subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=_env(), start_new_session=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert job.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.killpg(job.pid, signal.SIGINT)            # what Ctrl-C does: the launcher and both processes
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ganvae: stopped: SIGINT at step ")   # said once
    step = int(lines[0].split("at step ")[1].split(":")[0])
    assert [s.name for s in checkpoints(run)] == [f"step_{step:08d}"]


def test_the_backend_can_be_named_and_a_wrong_one_is_refused(monkeypatch):
    from ganvae.errors import BadInput

    monkeypatch.delenv("GANVAE_DDP_BACKEND", raising=False)
    assert (parallel._backend(False), parallel._backend(True)) == ("gloo", "nccl")
    monkeypatch.setenv("GANVAE_DDP_BACKEND", "gloo")   # processes sharing one GPU
    assert parallel._backend(True) == "gloo"
    monkeypatch.setenv("GANVAE_DDP_BACKEND", "nccl")
    with pytest.raises(BadInput, match="NCCL needs CUDA"):
        parallel._backend(False)
    monkeypatch.setenv("GANVAE_DDP_BACKEND", "mpi")
    with pytest.raises(BadInput, match="choose nccl or gloo"):
        parallel._backend(True)
