"""Entropy coding of integer codes with learned discrete distributions: real bitstreams whose
length is the rate (issue 35).

Model-agnostic: a caller gives integer values, and for each value the row of a `PmfTable` (one
discrete distribution per row) it is coded with; this module knows nothing of images or nets.
The learned codec (models/codec.py) codes its latents with it; any model whose integer codes
come with a pmf can reuse it.

The coder is rANS (Duda 2013, "Asymmetric numeral systems") from the `constriction` package
(Bamler 2022, "Understanding entropy coding with asymmetric numeral systems (ANS): a
statistician's perspective"): a stack of 32-bit words, so what is pushed last is popped first.
Why constriction and not CompressAI's coder: CompressAI 1.2.8's wheel requires torchvision
(which this project cannot use), torch-geometric and numpy < 2, while constriction is one
compiled wheel whose only dependency is numpy; and its speed is no bottleneck here: coding the 392 latents of each of
10,000 28x28 images takes ~0.1 s to encode and ~0.03 s to decode on one AVX2 core, against
~3 s for the codec's transforms (benchmarks/codec_speed.py).
Its cost for a value of probability p is -log2 p bits (to the fixed-point quantisation of the
probabilities, 24 bits, and a few words of ANS state per stream), so a stream is within about
32-64 bits of the ideal code length of everything in it.

Finite supports and escapes. Each row k codes the integers lo_k..hi_k directly and lumps the
mass outside them into two escape symbols, "below" and "above" (so every row's pmf is
[P(< lo), P(lo), ..., P(hi), P(> hi)] and sums to one: nothing is clamped, every integer
round-trips exactly). An escaped value costs -log2 of its tail mass plus an Elias-gamma code
(Elias 1975) of its distance d >= 0 beyond the support: 5 bits for n = bit length of d + 1,
then the n low bits of d + 1, with uniform models. With supports cut where the tails hold
1e-6 of the mass, escapes are rare, and they cost little when they happen.

Symbols are coded grouped by row (all values of row 0 in their order, then row 1, ...), so each
row's categorical model is built once per stream, not once per value; the decoder, which knows
the rows, regroups them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import constriction
import numpy as np

from .errors import GanvaeError

# Escapes: the bit length n of (distance + 1) is sent uniformly over 0..MAX_BITS-1, then its n
# low bits in chunks of at most CHUNK bits (constriction's uniform model takes < 2**24 values).
MAX_BITS = 32
CHUNK = 16


@dataclass(frozen=True)
class PmfTable:
    """K discrete distributions over the integers, one per row.

    Attributes:
        lo: (K,) int64, the smallest integer each row codes directly.
        pmfs: K float64 arrays; row k is [P(< lo_k), P(lo_k), ..., P(hi_k), P(> hi_k)], so its
            support lo_k..hi_k has len(pmfs[k]) - 2 integers. Rows need not sum exactly to 1
            (the coder normalises), and zero entries still get the smallest representable
            probability, so every value can be coded.
    """

    lo: np.ndarray
    pmfs: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.lo) != len(self.pmfs):
            raise ValueError(f"PmfTable: {len(self.lo)} supports for {len(self.pmfs)} pmfs")
        for k, p in enumerate(self.pmfs):
            if p.ndim != 1 or len(p) < 3 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
                raise ValueError(f"PmfTable: row {k} is not a pmf over a support and two tails")

    @property
    def hi(self) -> np.ndarray:
        """(K,) the largest integer each row codes directly."""
        return self.lo + np.array([len(p) - 3 for p in self.pmfs], dtype=np.int64)

    def ideal_bits(self, values: np.ndarray, rows: np.ndarray) -> float:
        """The code length in bits that an ideal coder spends on `values` with their `rows`
        (escapes included), for checking how close the real stream comes."""
        rows = _check_rows(rows, self)
        symbols, dist, _ = _split(np.asarray(values, np.int64).reshape(-1), rows, self)
        # the coder gives no symbol less than 2**-24 (its fixed-point precision)
        p = np.array([max(self.pmfs[r][s] / self.pmfs[r].sum(), 2.0**-24) for r, s in zip(rows, symbols)])
        return float(-np.log2(p).sum() + (np.log2(MAX_BITS) + _bit_lengths(dist + 1)).sum())


def _bit_lengths(e: np.ndarray) -> np.ndarray:
    """floor(log2 e) for positive int64 e, exactly (no floating point)."""
    n = np.zeros(e.shape, np.int64)
    e = e.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = e >= (1 << shift)
        n[big] += shift
        e[big] >>= shift
    return n


def _split(values: np.ndarray, rows: np.ndarray, table: PmfTable):
    """values (n,) and rows (n,) -> the categorical symbols (n,) (0 = below, 1.. = the support,
    last = above), the escaped values' distances beyond the support (E,), and their positions."""
    lo, hi = table.lo[rows], table.hi[rows]
    # (np.minimum / np.maximum: np.clip with array bounds is several times slower)
    symbols = np.minimum(np.maximum(values, lo - 1), hi + 1) - lo + 1
    esc = np.flatnonzero((values < lo) | (values > hi))
    v, l, h = values[esc], lo[esc], hi[esc]                       # the escapes alone: rare
    return symbols, np.where(v < l, l - 1 - v, v - h - 1), esc


def _payload(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Escape distances d (E,) -> bit lengths n (E,) and the uniform chunks (symbols, sizes) of
    the n low bits of d + 1, in escape order (low chunk first, then the high one)."""
    e = dist + 1
    n = _bit_lengths(e)
    rest = e - (np.int64(1) << n)                                  # the n bits below the leading one
    low_bits = np.minimum(n, CHUNK)
    high_bits = n - low_bits
    syms, sizes = [], []
    for i in range(len(e)):                                        # escapes are rare: a loop is fine
        if low_bits[i]:
            syms.append(rest[i] & ((1 << CHUNK) - 1))
            sizes.append(1 << low_bits[i])
        if high_bits[i]:
            syms.append(rest[i] >> CHUNK)
            sizes.append(1 << high_bits[i])
    return n, np.array(syms, np.int32), np.array(sizes, np.int32)


def _check_rows(rows: np.ndarray, table: PmfTable) -> np.ndarray:
    rows = np.asarray(rows, np.int64).reshape(-1)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(table.lo)):
        raise ValueError(f"rows must index the table's {len(table.lo)} rows")
    return rows


def _groups(rows: np.ndarray, k: int) -> list[tuple[int, np.ndarray]]:
    """[(row, the positions (in order) of the values coded with it)] for each row used, in row
    order. The sort is numpy's stable radix sort where the rows fit 16 bits (a table of < 65,536
    rows: always, in practice), several times faster than a comparison sort of int64 on the
    ~10^5-10^6 codes of a few thousand images."""
    order = np.argsort(rows.astype(np.uint16) if k <= 1 << 16 else rows, kind="stable")
    counts = np.bincount(rows, minlength=k)
    used = np.flatnonzero(counts)
    return list(zip(used.tolist(), np.split(order, np.cumsum(counts[used])[:-1])))


def encode(segments: Sequence[tuple[np.ndarray, np.ndarray, PmfTable]]) -> bytes:
    """Code every segment (values, rows, table) into one stream; `Decoder` gets the segments
    back in this order. values and rows are integer arrays of one length (any shape, read
    flat); values[i] is coded with table row rows[i].

    Returns:
        the stream, 32-bit little-endian words (its length is a multiple of 4).
    """
    ops: list[tuple] = []          # (symbols, model, model params or None), in decoding order
    for values, rows, table in segments:
        rows = _check_rows(rows, table)
        values = np.asarray(values, np.int64).reshape(-1)
        if len(values) != len(rows):
            raise ValueError(f"{len(values)} values with {len(rows)} rows")
        symbols, dist, _ = _split(values, rows, table)
        if len(dist) and dist.max() >= (1 << (MAX_BITS - 1)) - 1:
            raise GanvaeError("a code value is too large to entropy-code (beyond 2^31): did training diverge?")
        for k, group in _groups(rows, len(table.lo)):
            model = constriction.stream.model.Categorical(table.pmfs[k], perfect=False)
            ops.append((symbols[group].astype(np.int32), model, None))
        n, chunk_syms, chunk_sizes = _payload(dist)
        if len(n):
            ops.append((n.astype(np.int32), constriction.stream.model.Uniform(MAX_BITS), None))
        if len(chunk_syms):
            ops.append((chunk_syms, constriction.stream.model.Uniform(), chunk_sizes))
    coder = constriction.stream.stack.AnsCoder()
    for symbols, model, params in reversed(ops):                  # a stack: last pushed, first popped
        if params is None:
            coder.encode_reverse(symbols, model)
        else:
            coder.encode_reverse(symbols, model, params)
    return coder.get_compressed().astype("<u4").tobytes()


class Decoder:
    """Pops the segments of a stream written by `encode`, in order: `decode(rows, table)` for
    each segment with the rows it was coded with; `finish()` checks that nothing is left."""

    def __init__(self, data: bytes):
        if len(data) % 4:
            raise GanvaeError(f"damaged stream: {len(data)} bytes is not a whole number of 32-bit words")
        words = np.frombuffer(data, "<u4").astype(np.uint32)
        self.coder = constriction.stream.stack.AnsCoder(words)

    def decode(self, rows: np.ndarray, table: PmfTable) -> np.ndarray:
        """The values (n,) int64 of the next segment, coded with `rows` (n,) of `table`."""
        rows = _check_rows(rows, table)
        symbols = np.empty(len(rows), np.int64)
        try:
            for k, group in _groups(rows, len(table.lo)):
                model = constriction.stream.model.Categorical(table.pmfs[k], perfect=False)
                symbols[group] = self.coder.decode(model, len(group))
            lo, last = table.lo[rows], np.array([len(p) - 1 for p in table.pmfs], np.int64)[rows]
            values = symbols + lo - 1                                  # the support's symbols
            esc = np.flatnonzero((symbols == 0) | (symbols == last))
            if len(esc):
                n = self.coder.decode(constriction.stream.model.Uniform(MAX_BITS), len(esc)).astype(np.int64)
                low_bits = np.minimum(n, CHUNK)
                high_bits = n - low_bits
                sizes = [s for lb, hb in zip(low_bits, high_bits) for s in ((1 << lb,) if lb else ())
                         + ((1 << hb,) if hb else ())]
                chunks = iter(self.coder.decode(constriction.stream.model.Uniform(), np.array(sizes, np.int32))
                              if sizes else ())
                for j, i in enumerate(esc):
                    rest = int(next(chunks)) if low_bits[j] else 0
                    if high_bits[j]:
                        rest |= int(next(chunks)) << CHUNK
                    d = (1 << int(n[j])) + rest - 1
                    values[i] = lo[i] - 1 - d if symbols[i] == 0 else table.hi[rows[i]] + 1 + d
        except (ValueError, RuntimeError) as e:    # constriction's complaint about a bad stream
            raise GanvaeError(f"damaged stream: {e}") from None
        return values

    def finish(self) -> None:
        """Check that every word was consumed. This catches many damaged streams, not all: ANS
        has no redundancy, and in a test about 1 in 6 random bit flips (or appended words) still
        decoded to the end, into wrong values. Streams that must be trusted need an outer
        checksum."""
        if not self.coder.is_empty():
            raise GanvaeError("damaged stream: words left over after decoding (a different model or a corrupted file)")


def gaussian_table(scales: np.ndarray, tail: float = 1e-6) -> PmfTable:
    """One row per scale s: the zero-mean Gaussian N(0, s^2) convolved with U(-1/2, 1/2) at the
    integers (Ballé et al. 2018, "Variational image compression with a scale hyperprior", eq. 11),
    P(k) = Phi((k + 1/2) / s) - Phi((k - 1/2) / s), on the support -K..K where each tail holds
    at most `tail` of the mass. A fixed table that a model indexes, rather than a pmf computed
    from each value's own float scale, is what lets encoder and decoder build identical models
    (a scale recomputed in another batch may differ in its last bits).

    Args:
        scales: (K,) positive standard deviations. tail: the mass each tail may hold.
    """
    from scipy.special import ndtr, ndtri

    rows = []
    z = -ndtri(tail)                                     # Phi(-z) = tail
    half = np.maximum(np.ceil(np.asarray(scales, np.float64) * z - 0.5), 1).astype(np.int64)
    for s, k in zip(np.asarray(scales, np.float64), half):
        v = np.abs(np.arange(-k, k + 1, dtype=np.float64))
        # by symmetry, both ends on the lower side of the Gaussian, where ndtr keeps its precision
        pmf = ndtr((0.5 - v) / s) - ndtr((-0.5 - v) / s)
        t = ndtr((-k - 0.5) / s)
        rows.append(np.concatenate([[t], pmf, [t]]))
    return PmfTable(lo=-half, pmfs=tuple(rows))
