"""Atomic file writing: the ground floor that models, evaluators, the report and the CLI share.

It lives apart from checkpoint.py (which needs torch and safetensors for nested training state)
so that a model saving its weights does not pull in the checkpoint machinery, and nothing that
only writes a file depends on anything above it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _as_users(e: OSError, path: Path) -> OSError:
    """The same error (type, errno, reason) naming the file the user asked for, not the hidden
    temporary one or its folder: the CLI prints it as one line with exit code 2, and callers
    that handle a full disk (checkpoints) still see an OSError with its errno."""
    if e.errno is None:
        return e
    return type(e)(e.errno, e.strerror, str(path))


def a_file_in_the_way(path) -> Path | None:
    """The first of `path`'s parents that exists as a file (`--out some.png/run`), else None."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call write(tmp_path), fsync it, then rename onto `path`: readers see old or new, never half.

    Args:
        path: the file to create or replace; its directory is created if missing.
        write: writes the whole content to the temporary path it is given. If it raises, the
            temporary file is removed and `path` is left as it was.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:   # (a read-only place, a file where a folder should be)
        raise _as_users(e, path) from None
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600), and so does a writer that renames its own
        # temporary onto `tmp` (safetensors' save_file does): give the result the usual mode of
        # a new file, after the write, so that nothing the writer does can undo it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:   # (the temporary file is removed below)
        raise _as_users(e, path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write(Path(path), lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file; [] if it is missing. A line that does not parse (the tail
    of a write a kill cut short) is skipped, not fatal."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


LOCK_NAME = ".ganvae.lock"


@contextlib.contextmanager
def dir_lock(directory: str | Path, option: str):
    """Hold `directory` for this process: a second ganvae command pointed at the same run
    directory or comparison is refused with one line, instead of two writers interleaving.

    The lock is an advisory `flock` on `directory/.ganvae.lock`, which the kernel drops when
    its process ends in any way (SIGKILL included): a killed run never leaves it stuck. The file
    itself stays, holding the last holder's pid and command for the message. On systems without
    fcntl (Windows) nothing is locked.

    Args:
        directory: created if missing.
        option: how the user named it (`--out runs/x`, `--out cmp`), for the message.
    """
    import sys

    from .errors import BadInput

    try:
        import fcntl
    except ImportError:   # pragma: no cover (not POSIX)
        yield
        return
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    f = open(d / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise BadInput(f"{option}: in use by {holder}; wait for it to finish or choose another directory") \
                from None
        f.seek(0)
        f.truncate()
        import time

        cmd = " ".join(["ganvae", *sys.argv[1:3]]) if sys.argv else "ganvae"
        f.write(f"pid {os.getpid()} ({cmd}, since {time.strftime('%H:%M:%S')})")
        f.flush()
        yield
    finally:
        f.close()   # closing the descriptor releases the lock


def check_npz(path: Path, what: str = "", hint: str = "write one with numpy.savez(path, x=images)") -> None:
    """Refuse a file that is not an .npz archive before numpy reads it: numpy takes anything
    else for a pickle and says so, which is not what went wrong. An .npz is a zip file (it
    starts with PK); `what` prefixes the message (the option, e.g. "--samples ")."""
    from .errors import BadInput

    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":
        kind = "a .npy array (numpy.save)" if head[:1] == b"\x93" else "not a zip archive"
        raise BadInput(f"{what}{path}: not an .npz file ({kind}); {hint}")


def within(base: Path, path: Path) -> bool:
    """True when `path`, with every symlink resolved, lies inside `base`: files named inside a run
    directory (figures, checkpoints, the model) are never read from outside it."""
    try:
        return Path(path).resolve().is_relative_to(Path(base).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


# Field names written before the result files shared one vocabulary (docs/results.md), and
# their names now: read_summary / legacy_row map an old run's files onto today's.
LEGACY_FIELDS = {"step": "steps", "images": "images_seen", "time": "train_seconds", "img_per_s": "images_per_second",
                 "precision": "dtype"}


def legacy_row(row: dict, total: bool = False) -> dict:
    """A metrics.jsonl / curve.jsonl line (total=False: `step` stays) or a summary (total=True)
    with its old field names renamed."""
    renames = {k: v for k, v in LEGACY_FIELDS.items() if total or k != "step"}
    return {renames.get(k, k) if k in renames and renames[k] not in row else k: v for k, v in row.items()}
