"""What every reproduction script shares: running a comparison (resumable), reading its
curves and logs, and writing the claim's result JSON under benchmarks/results/reproduce/.

Each script in this folder tests one published claim on this machine, with criteria of ours
(the papers' setups are far larger), and writes one JSON file:

    {"claim": 1, "title", "paper", "setup", "budget", "criterion", "numbers": {...},
     "shown": true | false | null, "verdict": one line, "investigation": text or null,
     "command", "machine", "torch", "finished"}

`shown` is null while the claim is not settled (a run unfinished, or only some of its settings run). `table.py` turns the files into the
"Reproductions" table at the top of BENCHMARKS.md. Re-running a script resumes its runs
(compare skips finished models and resumes an interrupted one from its last checkpoint).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "reproduce"


def parse_args(doc: str, argv=None, **extra) -> argparse.Namespace:
    """--out (the runs' root, default runs/reproduce), --quick (a smoke-sized run: minutes, not
    hours, writing its JSON under OUT instead of benchmarks/results), --results DIR."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="where the runs go")
    p.add_argument("--quick", action="store_true", help="tiny budgets: check the script works, not the claim")
    p.add_argument("--results", type=Path, default=None, help="where the JSON goes (default: benchmarks/results/"
                   "reproduce, or OUT with --quick)")
    for flag, kw in extra.items():
        p.add_argument(f"--{flag.replace('_', '-')}", **kw)
    args = p.parse_args(argv)
    if args.results is None:
        args.results = args.out if args.quick else RESULTS
    return args


def compare(out: Path, models: list[str], **settings) -> dict:
    """ganvae.compare, quietly, resumable; returns results.json's content."""
    import ganvae

    settings.setdefault("device", "cpu")
    return ganvae.compare(models, out=out, progress=False, **settings)


def rows(res: dict, model: str) -> list[dict]:
    """A comparison's result rows of one model spec, one per seed."""
    return [r for r in res["rows"] if r["model"] == model]


def run_dir(out: Path, model: str, seed: int = 0) -> Path:
    from ganvae.comparison import run_name

    return Path(out) / "runs" / run_name(model, seed)


def curve(out: Path, model: str, seed: int = 0) -> list[dict]:
    from ganvae.files import read_jsonl

    return read_jsonl(run_dir(out, model, seed) / "curve.jsonl")


def summary(out: Path, model: str, seed: int = 0) -> dict:
    return json.loads((run_dir(out, model, seed) / "summary.json").read_text())


def last_logged(out: Path, model: str, key: str, seed: int = 0):
    """The last value of `key` in a run's metrics.jsonl (e.g. ADA's aug/p), or None."""
    from ganvae.files import read_jsonl

    vals = [r[key] for r in read_jsonl(run_dir(out, model, seed) / "metrics.jsonl") if key in r]
    return vals[-1] if vals else None


def earlier(args: argparse.Namespace, claim: int, slug: str) -> dict:
    """The claim's last written result ({} if none): under --results, else the committed one.
    A claim run in parts (claim 1's N, claim 9's priors; each part a session's work, since a
    machine's runs do not outlive it) keeps the parts it does not run from here."""
    for folder in (args.results,) if args.quick else (args.results, RESULTS):   # (--quick: its own only)
        path = Path(folder) / f"{claim:02d}_{slug}.json"
        if path.exists():
            return json.loads(path.read_text())
    return {}


def machine() -> str:
    """The CPU model and core count (numbers from different machines are not comparable)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def write_result(args: argparse.Namespace, claim: int, slug: str, **fields) -> Path:
    """Write the claim's JSON (see the module docstring); returns its path."""
    import torch

    # the command as a reader reruns it: where the runs and the JSON went is left out
    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a in ("--out", "--results"):
            skip = True
        elif not a.startswith(("--out=", "--results=")):
            argv.append(a)
    payload = {"claim": claim, **fields,
               "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + argv),
               "machine": machine(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "quick": bool(args.quick),
               "finished": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{claim:02d}_{slug}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    state = {True: "shown", False: "NOT shown", None: "not settled yet"}[payload.get("shown")]
    print(f"claim {claim}: {state}: {payload.get('verdict', '')}")
    print(f"wrote {path}")
    return path


def fmt(x, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
