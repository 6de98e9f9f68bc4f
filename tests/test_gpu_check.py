"""benchmarks/gpu_check.sh, the GPU path's one-shot check, run on the CPU at smoke size: it
must train what it names, tabulate img/s, and fail loudly on what does not train."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow   # two real trainings through the CLI (~20 s): keeps the default run under 6 minutes
def test_gpu_check_trains_each_preset_and_reports_failures(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DEVICE": "cpu", "PRESETS": "vae nosuch", "PRECISIONS": "fp32", "DDP": "0",
           "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, "GANVAE": str(bin_dir / "ganvae")}
    p = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path / "out"), "3"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    lines = p.stdout.splitlines()
    assert p.returncode == 1 and lines[-1] == "gpu_check: FAILED (see above)", p.stdout + p.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines if line.startswith("| ")}
    assert float(rows["vae"].replace(",", "")) > 0
    assert rows["nosuch"] == "failed" and any(line.startswith("FAILED: nosuch fp32") for line in lines)
    assert (tmp_path / "out" / "vae-fp32" / "summary.json").exists()
