"""Progress bars for work that takes more than a few seconds, drawn one way everywhere: tqdm
on stderr, redrawn twice a second on a terminal and every 15 s in a log file, gone when done.

Bars are on when stderr is a terminal, or GANVAE_PROGRESS=1 (a log file that should show
them; 0 turns them off); a command's --quiet (or `quiet()` around library calls) turns them off
for everything inside, so no function needs a progress argument threaded through it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from contextvars import ContextVar
from typing import Iterator

# None: follow the terminal; False: off (--quiet); True: on even into a log file
_ENABLED: ContextVar[bool | None] = ContextVar("ganvae_progress", default=None)


@contextlib.contextmanager
def quiet(on: bool = True) -> Iterator[None]:
    """No bars inside the block when `on` (a command's --quiet); otherwise unchanged."""
    token = _ENABLED.set(False) if on else None
    try:
        yield
    finally:
        if token is not None:
            _ENABLED.reset(token)


def enabled() -> bool:
    on = _ENABLED.get()
    if on is not None:
        return on
    env = os.environ.get("GANVAE_PROGRESS", "").strip()
    return env == "1" if env in ("0", "1") else sys.stderr.isatty()


def bar(total: int, desc: str, unit: str = "img"):
    """A tqdm bar of `total` units (update it with bar.update(n)); a no-op one when disabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr,
                mininterval=0.5 if sys.stderr.isatty() else 15.0, disable=not enabled())
