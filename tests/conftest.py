import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganvae.cli import main


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Evaluators and statistics trained or cached by tests go to a temporary cache."""
    import os

    old = os.environ.get("GANVAE_CACHE")
    os.environ["GANVAE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield Path(os.environ["GANVAE_CACHE"])
    if old is None:
        os.environ.pop("GANVAE_CACHE", None)
    else:
        os.environ["GANVAE_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def threads_per_worker():
    """Under pytest-xdist (`-n N`), each worker gets its share of the cores, and so do the
    processes it starts (OMP_NUM_THREADS): N workers of all-core torch on the same cores spin
    against each other and run slower than one."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        share = max(1, (os.cpu_count() or 1) // workers)
        torch.set_num_threads(share)
        os.environ["OMP_NUM_THREADS"] = str(share)
    yield


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for modules of tiny nets: a second OpenMP thread buys nothing there,
    and on a shared 2-core machine it stalls whenever the other core is busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


DATA = "shapes:n=256,n_test=64"
# translation models: the same images as targets, their 7x7 blow-ups as inputs (one evaluator)
TDATA = "task:lowres@" + DATA
TINY = ["--set", "width=8", "--set", "latent=8", "--batch-size", "16", "--quiet"]


def data_for(preset: str) -> str:
    """The tiny data a preset's tests train on: DATA, or TDATA for translation models."""
    from ganvae.registry import resolve

    return TDATA if resolve(preset)[0].translation else DATA


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Each preset trained for 4 steps on tiny shapes; returns {preset: run dir}."""
    from ganvae.registry import preset_names

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for preset in preset_names():
        run = root / preset
        code = main(["train", preset, "--data", data_for(preset), "--steps", "4", "--out", str(run),
                     "--log-every", "2", "--sample-every", "2", "--checkpoint-every", "2", *TINY])
        assert code == 0, preset
        out[preset] = run
    return out


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def run_subprocess(*args, **kw):
    """Run `python -m ganvae.cli ...` as a real process (real exit codes and streams)."""
    return subprocess.run([sys.executable, "-m", "ganvae.cli", *map(str, args)],
                          capture_output=True, text=True, **kw)


@pytest.fixture
def tiny_idx_dir(tmp_path: Path) -> Path:
    """A directory with the four MNIST-format files of a tiny dataset (gzip-compressed)."""
    from ganvae.data.idx import write_idx

    rng = np.random.default_rng(0)
    d = tmp_path / "idx"
    d.mkdir()
    for stem, n in (("train", 30), ("t10k", 10)):
        write_idx(d / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(d / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return d
