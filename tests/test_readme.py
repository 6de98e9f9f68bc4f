"""The README's quick start, run as written (with budgets cut to a few steps): every command and
option it shows exists and works."""

import re
import shlex
from pathlib import Path

import pytest

from ganvae.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = {   # budgets and sizes made tiny; the spellings stay the README's
    r"--epochs \d+": "--steps 2", r"--budget \S+": "--steps 2", r"--steps 2000": "--steps 2",
    r"--data fashion-mnist": "--data shapes:n=256,n_test=64",
    r"--checkpoint 1000": "--checkpoint 2", r"-n 64": "-n 8",
}


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("ganvae ")]


def test_the_quick_start_has_commands():
    cmds = quick_start_commands()
    assert len(cmds) >= 10 and any(c.startswith("ganvae train") for c in cmds)


@pytest.mark.usefixtures("one_thread")
def test_the_quick_start_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for cmd in quick_start_commands():
        for pattern, repl in SMALL.items():
            cmd = re.sub(pattern, repl, cmd)
        args = shlex.split(cmd)[1:]
        if args[0] == "train" and "--resume" not in args:
            args += ["--set", "width=4", "--set", "latent=4", "--batch-size", "16", "--checkpoint-every", "1",
                     "--quiet"]
        assert main(args) == 0, cmd
    assert (tmp_path / "samples.png").exists() and (tmp_path / "done.png").exists()
