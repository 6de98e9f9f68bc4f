"""Reader for the IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed.

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
`0x00 0x00 <type> <ndim>`, then `ndim` big-endian uint32 dimensions, then the data in C order.
Every way a file can be wrong becomes a `BadInput` that names the file.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import BadInput
from .base import MAX_SIDE

# type byte -> numpy dtype (big-endian where it matters)
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# No real IDX file is bigger than this; a header that claims more is corrupt or hostile.
MAX_IDX_BYTES = 8 * 1024**3
MAX_IDX_ITEMS = 100_000_000


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _read_exact(f, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BadInput(f"{path}: truncated IDX file: expected {n} bytes of {what}, found {len(data)}")
    return data


def _header(f, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = f.read(4)
    if len(magic) < 4:
        raise BadInput(f"{path}: not an IDX file (only {len(magic)} bytes)")
    zero1, zero2, type_byte, ndim = magic
    if zero1 != 0 or zero2 != 0 or type_byte not in IDX_TYPES or not 1 <= ndim <= 4:
        raise BadInput(
            f"{path}: not an IDX file (magic number 0x{int.from_bytes(magic, 'big'):08x}; "
            "expected 0x000008NN for uint8 data with NN dimensions)"
        )
    dims = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "header"))
    dtype = IDX_TYPES[type_byte]
    if dims[0] > MAX_IDX_ITEMS or any(d > MAX_SIDE or d == 0 for d in dims[1:]):
        raise BadInput(f"{path}: absurd IDX dimensions {'x'.join(map(str, dims))}; the file is corrupt")
    if int(np.prod(dims, dtype=np.int64)) * dtype.itemsize > MAX_IDX_BYTES:
        raise BadInput(f"{path}: IDX dimensions {'x'.join(map(str, dims))} exceed {MAX_IDX_BYTES} bytes")
    return dtype, tuple(dims)


def _wrap_gzip_errors(path: Path, fn):
    try:
        return fn()
    except (gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise BadInput(f"{path}: corrupt or truncated gzip data ({e})") from None
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, expected an IDX file") from None
    except PermissionError:
        raise BadInput(f"{path}: permission denied") from None


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, reading only its header."""
    path = Path(path)

    def go():
        with _open(path) as f:
            return _header(f, path)

    return _wrap_gzip_errors(path, go)


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read a whole IDX file.

    Args:
        path: the file; a `.gz` suffix means gzip-compressed.
        ndim: the number of dimensions the caller needs (3 for images, 1 for labels).

    Returns:
        An array of the declared shape, in native byte order.
    """
    path = Path(path)

    def go():
        with _open(path) as f:
            dtype, dims = _header(f, path)
            if ndim is not None and len(dims) != ndim:
                raise BadInput(f"{path}: expected {ndim}-dimensional IDX data, found shape {dims}")
            n = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            data = _read_exact(f, n, path, "data")
            if f.read(1):
                raise BadInput(f"{path}: trailing bytes after the {'x'.join(map(str, dims))} IDX data; the file is corrupt")
        # a writable native-order copy: torch refuses to share read-only buffers
        return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=True)

    return _wrap_gzip_errors(path, go)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzip when the name ends in .gz). Used by tests and tools."""
    path = Path(path)
    inverse = {v.newbyteorder(">") if v.itemsize > 1 else v: k for k, v in IDX_TYPES.items()}
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, inverse[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    with _open_write(path) as f:
        f.write(payload)


def _open_write(path: Path):
    return gzip.open(path, "wb") if path.name.endswith(".gz") else open(path, "wb")
