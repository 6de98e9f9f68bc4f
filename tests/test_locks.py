"""One writer per run directory and per comparison (issue 16, faults at scale): a second
command pointed at a directory in use is refused with one line, and a killed holder never
leaves the directory locked."""

import signal
import subprocess
import sys

from tests.conftest import DATA, TINY

HOLD = ("import sys, time; from ganvae.files import dir_lock; "
        "lock = dir_lock(sys.argv[1], 'test'); lock.__enter__(); print('held', flush=True); time.sleep(120)")


def _holder(path):
    """A real process that takes the directory's lock and sleeps (killed by the test)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_train_on_a_run_dir_in_use_is_refused_until_the_holder_dies(tmp_path, run_cli):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        code, _, err = run_cli("train", "vae", "--data", DATA, "--steps", 2, "--out", run, *TINY)
        assert code == 2 and f"--out {run}: in use by pid {holder.pid}" in err, err
        assert len(err.strip().splitlines()) == 1 and not (run / "config.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)   # the kernel drops a killed process's lock
        holder.wait()
    code, _, err = run_cli("train", "vae", "--data", DATA, "--steps", 2, "--out", run, *TINY)
    assert code == 0, err
    # and while the run exists, --resume is locked the same way
    holder = _holder(run)
    try:
        code, _, err = run_cli("train", "--resume", run, "--steps", 4, "--quiet")
        assert code == 2 and f"--resume {run}: in use by pid {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_compare_on_an_out_in_use_is_refused(tmp_path, run_cli):
    out = tmp_path / "cmp"
    holder = _holder(out)
    try:
        code, _, err = run_cli("compare", "--data", DATA, "--models", "ae", "--steps", 2, "--out", out, *TINY)
        assert code == 2 and f"--out {out}: in use by pid {holder.pid}" in err, err
        assert not (out / "compare.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
