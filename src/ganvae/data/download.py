"""`ganvae datasets download NAME`: fetch a named dataset's files and verify them.

Each `.gz` file is streamed to a temporary file beside its destination, decompressed and
checked (IDX header and SHA-256 of the decompressed bytes) and only then renamed into place,
so a failed or tampered download never leaves a file the loader would pick up.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from ..errors import BadInput, GanvaeError
from .idx import read_idx
from .named import NAMED, cache_dir

CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 512 * 1024**2


def _sha256_of_gzip_content(path: Path) -> str:
    h = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as out:
            total = 0
            while chunk := r.read(CHUNK):
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise GanvaeError(f"{url}: download larger than {MAX_DOWNLOAD_BYTES} bytes; refusing it")
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise GanvaeError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise GanvaeError(f"{url}: download failed ({reason})") from None


def download(name: str, dest: str | Path | None = None, mirror: str | None = None,
             timeout: float = 60.0, log=print) -> Path:
    """Download and verify the four files of a named dataset.

    Args:
        name: a key of `NAMED` (`fashion-mnist`, `mnist`).
        dest: target directory (default `$GANVAE_CACHE/<name>`, else `~/.cache/ganvae/<name>`; the loader searches it).
        mirror: base URL to use instead of the official one (same file names).
        timeout: seconds per connection.

    Returns:
        The directory that now holds the verified files.
    """
    if name not in NAMED:
        raise BadInput(f"unknown dataset '{name}' for download; choose one of: {', '.join(NAMED)}")
    spec = NAMED[name]
    dest = Path(dest) if dest else cache_dir(name)
    dest.mkdir(parents=True, exist_ok=True)
    base = (mirror or spec.url).rstrip("/")
    for stem, expected in spec.sha256.items():
        final = dest / f"{stem}.gz"
        if final.exists() and _verified(final, expected):
            log(f"{final}: already present and verified")
            continue
        url = f"{base}/{stem}.gz"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part.gz", dir=dest)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            log(f"downloading {url}")
            _fetch(url, tmp, timeout)
            try:
                got = _sha256_of_gzip_content(tmp)
            except (gzip.BadGzipFile, zlib.error, EOFError) as e:
                raise GanvaeError(f"{url}: not a valid gzip file ({e}); nothing was kept") from None
            if got != expected:
                raise GanvaeError(f"{url}: SHA-256 mismatch (expected {expected}, got {got}); nothing was kept")
            read_idx(tmp)  # the header and size must agree too
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        log(f"{final}: verified")
    return dest


def _verified(path: Path, expected: str) -> bool:
    try:
        return _sha256_of_gzip_content(path) == expected
    except (OSError, EOFError, zlib.error):
        return False
