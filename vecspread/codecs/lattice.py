"""Spherical-lattice codec: integer points of a fixed squared norm (Sablayrolles et al., ICLR 2019).

The codebook is S_d^r = {z in Z^d : ||z||^2 = r2}. A vector y is quantized to the lattice point
whose direction is nearest to y's direction, and stored as the point's rank in faiss's
enumeration of S_d^r (``faiss.ZnSphereCodec``), truncated to the fewest whole bytes.

The module reads top-down:

1. exact combinatorics with Python integers: ``atoms``, ``count_points`` (plus the independent
   theta-series count ``theta_count``), ``bits_for``, ``r2_for_bits``, ``check_storable``,
   ``describe``;
2. ``LatticeCodec``, which wraps ``ZnSphereCodec.encode_multi`` / ``decode_multi`` only.

Terminology (paper, Appendix B): the *atom* of a lattice point is the tuple of its absolute
values sorted in decreasing order. Every point is a signed permutation of its atom; an atom with
value multiplicities m_0 (zeros), m_1, ... stands for d! / prod(m_v!) * 2^(non-zeros) points.

Facts about faiss's ``ZnSphereCodec`` this module relies on (checked in tests/test_lattice.py):

- ``encode`` sorts |y|, takes the atom with the largest dot product with it and puts the atom's
  values back in y's order with y's signs: the exact maximiser of <y, z> over S_d^r, up to
  float32 rounding of the dot products. The argmax is invariant to positive scaling of y, but
  faiss neither normalises nor guards the degenerate cases: an all-zero row gets a rank that
  depends on ``std::sort``'s tie order, and a NaN row reads outside the atom table. We therefore
  reject non-finite input, scale rows by their max-abs value and give zero rows rank 0;
- ``decode`` returns the integer point itself (norm sqrt(r2)), not a unit vector;
- its atoms are enumerated in the same order as ``atoms()`` and each atom owns a contiguous
  range of ranks, so ranks run over exactly 0 .. count_points - 1;
- its ``nv`` (number of points) is a uint64 that silently wraps past 2^64, hence our own exact
  count in ``check_storable``.
"""

from __future__ import annotations

import math
import operator
from functools import cached_property, lru_cache
from typing import Any, ClassVar, Iterable

import numpy as np

from vecspread.codecs.base import Codec
from vecspread.errors import ConfigError, InputError
from vecspread.knn import merge_topk

#: Largest dimension faiss's ZnSphereCodec supports.
D_MAX = 64
#: Largest squared radius faiss's ZnSphereCodec supports.
R2_MAX = 512
#: Codes are uint64 ranks, so a storable lattice has fewer than this many points.
MAX_POINTS = 1 << 64


# --------------------------------------------------------------------------------------------
# Exact combinatorics (Python integers throughout: counts reach 2^220 for d=64, r2=512)
# --------------------------------------------------------------------------------------------


def _as_int(value: Any, what: str, minimum: int | None) -> int:
    """``value`` as a Python int >= minimum, or ConfigError (bools and floats are refused)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    try:
        ivalue = operator.index(value)
    except TypeError:
        raise ConfigError(f"{what} must be an integer, got {value!r}") from None
    if minimum is not None and ivalue < minimum:
        raise ConfigError(f"{what} must be >= {minimum}, got {ivalue}")
    return ivalue


def atoms(d: int, r2: int) -> list[tuple[int, ...]]:
    """All atoms of S_d^r: non-increasing length-d tuples of ints >= 0 with squared norm r2.

    Order: decreasing lexicographic (largest leading value first, e.g. for d=8, r2=10:
    (3, 1, 0, ...), (2, 2, 1, 1, 0, ...), (2, 1, 1, 1, 1, 1, 1, 0)). This is also the order in
    which faiss's ZnSphereCodec assigns rank ranges to atoms.

    Recursion over the largest remaining part v with k free coordinates and remaining norm s;
    a branch is cut as soon as k * v^2 < s (even k copies of v cannot reach s), so the work is
    proportional to the output (at most min(d, r2) non-zero parts per atom).
    """
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", 0)
    out: list[tuple[int, ...]] = []
    parts: list[int] = []

    def place(k: int, s: int, vmax: int) -> None:
        if s == 0:
            out.append(tuple(parts) + (0,) * k)
            return
        v = min(vmax, math.isqrt(s))
        while v > 0 and k * v * v >= s:
            parts.append(v)
            place(k - 1, s - v * v, v)
            parts.pop()
            v -= 1

    place(d, r2, math.isqrt(r2))
    return out


def atom_size(atom: tuple[int, ...]) -> int:
    """Number of lattice points whose atom is ``atom``: d! / prod(m_v!) * 2^(non-zeros)."""
    size = math.factorial(len(atom))
    for value in set(atom):
        size //= math.factorial(atom.count(value))
    return size << sum(1 for value in atom if value)


def _fill(k: int, s: int, vmax: int, memo: dict[tuple[int, int, int], int]) -> int:
    """Weighted number of ways to put values in 1..vmax on k free coordinates summing to s.

    This is the sum over atoms of ``atom_size`` with common suffixes shared: choosing the m
    positions of the largest value v among the k free ones (comb(k, m)) and its signs (2^m),
    then recursing on the rest, multiplies out to the multinomial times 2^(non-zeros).
    """
    if s == 0:
        return 1  # the remaining coordinates are zeros: one way
    key = (k, s, vmax)
    if key in memo:
        return memo[key]
    total = 0
    v = min(vmax, math.isqrt(s))
    while v > 0 and k * v * v >= s:
        sq = v * v
        for m in range(1, min(k, s // sq) + 1):
            total += (math.comb(k, m) << m) * _fill(k - m, s - m * sq, v - 1, memo)
        v -= 1
    memo[key] = total
    return total


def count_points(d: int, r2: int) -> int:
    """Exact |S_d^r| = sum over atoms of d!/prod(m_v!) * 2^(non-zeros), as a Python int."""
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", 0)
    return _fill(d, r2, math.isqrt(r2), {})


@lru_cache(maxsize=64)
def _theta_series(d: int, n: int) -> tuple[int, ...]:
    """Coefficients of q^0 .. q^n in theta(q)^d, theta(q) = 1 + 2 * sum_{m>=1} q^(m^2)."""
    # theta is sparse (isqrt(n) + 1 terms), so d sparse-by-dense products beat squaring.
    theta = [(0, 1)] + [(m * m, 2) for m in range(1, math.isqrt(n) + 1)]
    poly = [1] + [0] * n
    for _ in range(d):
        new = [0] * (n + 1)
        for shift, coef in theta:
            for j in range(n + 1 - shift):
                if poly[j]:
                    new[shift + j] += coef * poly[j]
        poly = new
    return tuple(poly)


def theta_count(d: int, r2: int) -> int:
    """|S_d^r| as the coefficient of q^r2 in theta(q)^d: independent of ``atoms``/``count_points``."""
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", 0)
    return _theta_series(d, r2)[r2]


def n_atoms(d: int, r2: int) -> int:
    """len(atoms(d, r2)), counted without listing them (same recursion, memoised)."""
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", 0)

    @lru_cache(maxsize=None)
    def count(k: int, s: int, vmax: int) -> int:
        if s == 0:
            return 1
        total = 0
        v = min(vmax, math.isqrt(s))
        while v > 0 and k * v * v >= s:
            total += count(k - 1, s - v * v, v)
            v -= 1
        return total

    return count(d, r2, math.isqrt(r2))


def _bits_of(n_points: int) -> int:
    """ceil(log2(n_points)) for n_points >= 1, exactly (0 bits for a single point)."""
    return (n_points - 1).bit_length()


def bits_for(d: int, r2: int) -> int:
    """ceil(log2(|S_d^r|)): bits needed to store a rank; ConfigError if S_d^r is empty."""
    n_points = count_points(d, r2)
    if n_points == 0:
        raise ConfigError(f"no integer point of Z^{d} has squared norm r2={r2}: choose another --r2")
    return _bits_of(n_points)


def r2_for_bits(d: int, bits: int) -> int:
    """The largest r2 (<= R2_MAX) whose lattice has 0 < |S_d^r| <= 2**bits.

    Counts are not monotone in r2 (for d <= 3 many r2 have no point; for d = 4 the count of
    r2 = 2^j stays 24), so the scan goes upward from r2 = 1, skips empty radii, and stops at
    the FIRST r2 whose count exceeds 2**bits: a larger radius that happens to have few points
    again would be a much coarser codebook than the radii just below the stop. For d >= 4 every
    r2 >= 1 has points (Lagrange) and counts grow steeply, so this is simply the last r2 that
    fits. The scan never goes past R2_MAX (faiss's limit), which is where it ends for tiny d.
    One theta-series power gives the exact counts of all r2 <= R2_MAX at once.
    """
    d = _as_int(d, "d", 1)
    bits = _as_int(bits, "bits", 1)
    limit = 1 << bits
    counts = _theta_series(d, R2_MAX)
    best = 0
    for r2 in range(1, R2_MAX + 1):
        if counts[r2] > limit:
            break
        if counts[r2] > 0:
            best = r2
    if best == 0:
        raise ConfigError(
            f"even r2=1 needs {_bits_of(counts[1])} bits in d={d} (--bits {bits}): use a larger --bits"
        )
    return best


def _nearest_nonempty_r2(d: int, r2: int) -> list[int]:
    """The closest radii below and above r2 (within 1..R2_MAX) that have lattice points."""
    counts = _theta_series(d, R2_MAX)
    below = [r for r in range(min(r2, R2_MAX + 1) - 1, 0, -1) if counts[r] > 0][:1]
    above = [r for r in range(r2 + 1, R2_MAX + 1) if counts[r] > 0][:1]
    return below + above


def check_storable(d: int, r2: int) -> None:
    """Raise ConfigError (one line: reason and fix) unless the faiss codec can store S_d^r.

    Refused: d > 64 or r2 > 512 (faiss limits), r2 < 1, an empty S_d^r, and |S_d^r| >= 2^64
    (ranks are uint64; faiss's own ``nv`` wraps silently there, so the exact count is used).
    """
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", None)
    if d > D_MAX:
        raise ConfigError(
            f"lattice codec supports at most d={D_MAX} dimensions (faiss ZnSphereCodec), got d={d}: "
            f"use a transform with at most {D_MAX} output dimensions"
        )
    if r2 < 1:
        raise ConfigError(f"lattice r2 must be >= 1, got r2={r2}: use e.g. --bits 64")
    if r2 > R2_MAX:
        raise ConfigError(
            f"lattice r2={r2} exceeds {R2_MAX} (faiss ZnSphereCodec limit): use a smaller --r2 or --bits"
        )
    n_points = count_points(d, r2)
    if n_points == 0:
        alternatives = " or ".join(f"--r2 {r}" for r in _nearest_nonempty_r2(d, r2))
        raise ConfigError(
            f"no integer point of Z^{d} has squared norm r2={r2}: use {alternatives or '--bits'}"
        )
    if n_points >= MAX_POINTS:
        raise ConfigError(
            f"lattice d={d} r2={r2} has {n_points} points ({_bits_of(n_points)} bits) but codes are "
            f"uint64: use --bits 64 (r2={r2_for_bits(d, 64)}) or a smaller --r2"
        )


def describe(d: int, r2: int) -> dict[str, Any]:
    """Summary of S_d^r for ``vecspread atoms``: {"dim", "r2", "n_atoms", "n_points", "bits"}.

    ``n_points`` is an exact Python int (may exceed 2^64); ``bits`` is None when there is no
    point. The atoms themselves come from ``atoms(d, r2)``.
    """
    d = _as_int(d, "d", 1)
    r2 = _as_int(r2, "r2", 0)
    n_points = count_points(d, r2)
    return {
        "dim": d,
        "r2": r2,
        "n_atoms": n_atoms(d, r2),
        "n_points": n_points,
        "bits": _bits_of(n_points) if n_points else None,
    }


# --------------------------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------------------------

class LatticeCodec(Codec):
    """Quantize directions onto S_d^r and store each point's uint64 rank in ceil(bits/8) bytes.

    Give exactly one of ``r2`` (the squared radius) or ``bits`` (the code budget: r2 becomes
    ``r2_for_bits(d, bits)`` once ``fit`` knows d). Only the dimension of the training data is
    used. Learned state: ``d_`` and ``r2_``; the faiss codec is rebuilt on demand.
    """

    name: ClassVar[str] = "lattice"
    summary: ClassVar[str] = "spherical lattice S_d^r: integer points of squared norm r2 (--r2 or --bits)"

    r2_: int

    def __init__(self, r2: int | None = None, bits: int | None = None) -> None:
        if (r2 is None) == (bits is None):
            raise ConfigError("lattice codec needs exactly one of --r2 and --bits (e.g. --bits 64)")
        self.r2 = None if r2 is None else _as_int(r2, "r2", 1)
        # not ``self.bits``: that name is the Codec property "information bits per code"
        self.target_bits = None if bits is None else _as_int(bits, "bits", 1)

    # -- fitting and state ---------------------------------------------------------------------

    def fit(self, yt: np.ndarray) -> "LatticeCodec":
        """Record d from (n, d) training vectors, resolve r2 and check the lattice is storable."""
        if not isinstance(yt, np.ndarray) or yt.ndim != 2:
            raise InputError(f"lattice codec expects (n, d) training vectors, got {_shape_of(yt)}")
        d = int(yt.shape[1])
        r2 = self.r2 if self.r2 is not None else r2_for_bits(d, self.target_bits)
        self._set_lattice(d, r2)
        return self

    def _set_lattice(self, d: int, r2: int) -> None:
        check_storable(d, r2)
        self.d_ = d
        self.r2_ = r2
        self.n_points_ = count_points(d, r2)
        self.__dict__.pop("_faiss_codec", None)  # a refit must not reuse another lattice

    def _require_fitted(self) -> None:
        if not hasattr(self, "r2_"):
            raise RuntimeError("LatticeCodec is not fitted: call fit() or from_state() first")

    @cached_property
    def _faiss_codec(self) -> Any:
        """faiss.ZnSphereCodec(d, r2), built on first use (cheap: it only lists the atoms)."""
        import faiss  # imported lazily: the combinatorics above do not need it

        self._require_fitted()
        return faiss.ZnSphereCodec(self.d_, self.r2_)

    @property
    def bits(self) -> int:
        """Information bits per code: ceil(log2 |S_d^r|)."""
        self._require_fitted()
        return _bits_of(self.n_points_)

    @property
    def code_size(self) -> int:
        """Bytes per code: ceil(bits / 8)."""
        return (self.bits + 7) // 8

    def get_config(self) -> dict[str, Any]:
        self._require_fitted()
        return {"r2": self.r2_, "d": self.d_, "bits": self.bits, "code_size": self.code_size}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "LatticeCodec":
        """Rebuild from ``get_config()``; InputError if its bits/code_size disagree with (d, r2)."""
        try:
            d, r2 = config["d"], config["r2"]
        except (KeyError, TypeError):
            raise InputError(f"lattice codec state lacks 'd' or 'r2': {config!r}") from None
        codec = cls(r2=r2)
        codec._set_lattice(_as_int(d, "d", 1), codec.r2)
        for key in ("bits", "code_size"):
            if key in config and config[key] != getattr(codec, key):
                raise InputError(
                    f"lattice codec state says {key}={config[key]} but d={d}, r2={r2} gives "
                    f"{getattr(codec, key)}: the model file is inconsistent"
                )
        return codec

    # -- quantization --------------------------------------------------------------------------

    def _check_vectors(self, y: Any, what: str) -> np.ndarray:
        """(n, d) real array -> C-contiguous float32, refusing wrong shapes and non-finite values."""
        self._require_fitted()
        if not isinstance(y, np.ndarray) or y.ndim != 2 or y.shape[1] != self.d_:
            raise InputError(f"lattice codec expects (n, {self.d_}) {what}, got {_shape_of(y)}")
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise InputError(f"lattice codec expects real-valued {what}, got dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=np.float32)
        if not np.isfinite(y).all():
            # faiss would index outside its atom table for NaN rows
            raise InputError(f"{what} contain NaN or infinite values")
        return y

    def _ranks(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 finite -> (n,) uint64 ranks of the nearest lattice directions.

        Rows are divided by their max-abs value first: the argmax is scale-free, and this keeps
        faiss's float32 dot products away from overflow and underflow (an L2 norm of 1e20 would
        overflow float32). All-zero rows have no direction; they get rank 0, which decodes to
        ``atoms(d, r2)[0]`` as is (non-negative, in the leading coordinates).
        """
        import faiss

        n = y.shape[0]
        scale = np.abs(y).max(axis=1)
        zero = scale == 0
        scale[zero] = 1
        y_scaled = np.ascontiguousarray(y / scale[:, None], dtype=np.float32)
        ranks = np.empty(n, dtype=np.uint64)
        if n:
            self._faiss_codec.encode_multi(n, faiss.swig_ptr(y_scaled), faiss.swig_ptr(ranks))
        ranks[zero] = 0
        return ranks

    def _unit_points(self, ranks: np.ndarray) -> np.ndarray:
        """(n,) uint64 valid ranks -> (n, d) float32 lattice points scaled to unit norm."""
        import faiss

        ranks = np.ascontiguousarray(ranks, dtype=np.uint64)
        n = ranks.shape[0]
        points = np.empty((n, self.d_), dtype=np.float32)
        if n:
            self._faiss_codec.decode_multi(n, faiss.swig_ptr(ranks), faiss.swig_ptr(points))
        points *= np.float32(1.0 / math.sqrt(self.r2_))  # faiss returns the integer point
        return points

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d) float32 unit-norm nearest lattice direction.

        Equal to ``decode(encode(y))`` bit for bit, without packing the ranks into bytes.
        """
        return self._unit_points(self._ranks(self._check_vectors(y, "vectors")))

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8: little-endian bytes of the uint64 rank."""
        ranks = self._ranks(self._check_vectors(y, "vectors"))
        as_bytes = ranks.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
        return np.ascontiguousarray(as_bytes[:, : self.code_size])

    def _codes_to_ranks(self, codes: Any) -> np.ndarray:
        """(n, code_size) uint8 -> (n,) uint64, refusing codes that are not ranks of S_d^r."""
        self._require_fitted()
        if (
            not isinstance(codes, np.ndarray)
            or codes.dtype != np.uint8
            or codes.ndim != 2
            or codes.shape[1] != self.code_size
        ):
            raise InputError(
                f"lattice codes must be (n, {self.code_size}) uint8, got {_shape_of(codes)}"
                + (f" {codes.dtype}" if isinstance(codes, np.ndarray) else "")
            )
        padded = np.zeros((codes.shape[0], 8), dtype=np.uint8)
        padded[:, : self.code_size] = codes
        ranks = padded.view("<u8").ravel().astype(np.uint64, copy=False)
        if ranks.size and ranks.max() >= np.uint64(self.n_points_):
            raise InputError(
                f"lattice codes hold ranks >= {self.n_points_} (the number of points for "
                f"d={self.d_}, r2={self.r2_}): they come from another codec"
            )
        return ranks

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) float32 unit-norm lattice points (integer point / sqrt(r2))."""
        return self._unit_points(self._codes_to_ranks(codes))

    # -- search --------------------------------------------------------------------------------

    def search(
        self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Asymmetric k-NN: unquantized unit queries against decoded unit lattice points.

        yq: (nq, d) float32 (normalised here; an all-zero query is at distance 2 from every
        code). code_blocks: iterable of (bs, code_size) uint8. Returns D (nq, k) float32, the
        squared L2 distances ||q/||q|| - c||^2 = 2 - 2 <q/||q||, c>, ascending, and I (nq, k)
        int64 ids counted across blocks; ties are ordered by id. ConfigError if fewer than k
        codes were given in all.
        """
        k = _as_int(k, "k", 1)
        queries = _unit_rows(self._check_vectors(yq, "queries"))
        nq = queries.shape[0]
        best_d = np.empty((nq, 0), dtype=np.float32)
        best_i = np.empty((nq, 0), dtype=np.int64)
        n_seen = 0
        for block in code_blocks:
            points = self.decode(block)  # (bs, d): one decode per block, shared by all queries
            bs = points.shape[0]
            if bs and nq:
                block_d, block_i = _block_topk(queries, points, k)
                best_d, best_i = merge_topk(best_d, best_i, block_d, block_i + n_seen, k)
            n_seen += bs
        if n_seen < k:
            raise ConfigError(f"k={k} exceeds the number of codes searched ({n_seen}): use a smaller --k")
        return best_d, best_i


def _shape_of(a: Any) -> str:
    return f"shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def _unit_rows(y: np.ndarray) -> np.ndarray:
    """(n, d) float32 finite -> rows of unit L2 norm (zero rows stay zero), float32.

    Max-abs scaling first so the squared norm cannot overflow float32.
    """
    scale = np.abs(y).max(axis=1, keepdims=True)
    scale[scale == 0] = 1
    y = y / scale
    norm = np.sqrt(np.einsum("ij,ij->i", y, y))[:, None]
    norm[norm == 0] = 1
    return np.ascontiguousarray(y / norm, dtype=np.float32)


def _block_topk(queries: np.ndarray, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-min(k, bs) of one block for all queries: (nq, kb) float32 distances, int64 columns.

    Queries and points are unit-norm, so the squared L2 distance equals 2 - 2 <q, c> and faiss's
    exhaustive L2 search (BLAS + heaps, multi-threaded) gives the top-k directly. Its L2 heaps order
    equal distances by id, which keeps the "ties by id" rule exact across blocks (its
    inner-product heaps do not, hence L2).
    """
    import faiss

    kb = min(k, points.shape[0])
    dist, cols = faiss.knn(queries, points, kb)
    np.maximum(dist, 0, out=dist)  # rounding can give -1e-7 for a query on a lattice point
    return dist, cols


