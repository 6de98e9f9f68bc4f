import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganvae.cli import main


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
