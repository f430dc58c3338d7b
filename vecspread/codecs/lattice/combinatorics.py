"""Exact combinatorics of the spherical lattice S_d^r = {z in Z^d : ||z||^2 = r2}, with Python integers.

Counts reach 2^220 (d = 64, r2 = 512), far past faiss's uint64 point count, which wraps. ``atoms``,
``count_points`` (plus the independent theta-series count ``theta_count``), ``bits_for``,
``r2_for_bits``, ``check_storable``, ``describe``. Only the standard library: ``vecspread atoms``
needs neither numpy nor faiss.

Terminology (paper, Appendix B): the *atom* of a lattice point is the tuple of its absolute values
sorted in decreasing order. Every point is a signed permutation of its atom; an atom with value
multiplicities m_0 (zeros), m_1, ... stands for d! / prod(m_v!) * 2^(non-zeros) points.
"""

from __future__ import annotations

import math
import operator
from functools import lru_cache
from typing import Any

from vecspread.codecs.lattice import D_MAX, LATTICE_MAX_BITS, R2_MAX
from vecspread.errors import ConfigError
from vecspread.limits import ATOMS_MAX_BITS, ATOMS_MAX_DIM, ATOMS_MAX_LISTED, ATOMS_MAX_R2

#: Codes are uint64 ranks, so a storable lattice has fewer than this many points.
MAX_POINTS = 1 << LATTICE_MAX_BITS

def as_int(value: Any, what: str, minimum: int | None) -> int:
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
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", 0)
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
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", 0)
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
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", 0)
    return _theta_series(d, r2)[r2]


def n_atoms(d: int, r2: int) -> int:
    """len(atoms(d, r2)), counted without listing them (same recursion, memoised)."""
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", 0)

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


def bits_of(n_points: int) -> int:
    """ceil(log2(n_points)) for n_points >= 1, exactly (0 bits for a single point)."""
    return (n_points - 1).bit_length()


def bits_for(d: int, r2: int) -> int:
    """ceil(log2(|S_d^r|)): bits needed to store a rank; ConfigError if S_d^r is empty."""
    n_points = count_points(d, r2)
    if n_points == 0:
        raise ConfigError(f"no integer point of Z^{d} has squared norm r2={r2}: choose another --r2")
    return bits_of(n_points)


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
    d = as_int(d, "d", 1)
    bits = as_int(bits, "bits", 1)
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
            f"even r2=1 needs {bits_of(counts[1])} bits in d={d} (--bits {bits}): use a larger --bits"
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
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", None)
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
            f"lattice d={d} r2={r2} has {n_points} points ({bits_of(n_points)} bits) but codes are "
            f"uint64: use --bits 64 (r2={r2_for_bits(d, 64)}) or a smaller --r2"
        )


def describe(d: int, r2: int) -> dict[str, Any]:
    """Summary of S_d^r for ``vecspread atoms``: {"dim", "r2", "n_atoms", "n_points", "bits"}.

    ``n_points`` is an exact Python int (may exceed 2^64); ``bits`` is None when there is no
    point. The atoms themselves come from ``atoms(d, r2)``.
    """
    d = as_int(d, "d", 1)
    r2 = as_int(r2, "r2", 0)
    n_points = count_points(d, r2)
    return {
        "dim": d,
        "r2": r2,
        "n_atoms": n_atoms(d, r2),
        "n_points": n_points,
        "bits": bits_of(n_points) if n_points else None,
    }


def lattice_report(d: int, r2: int | None = None, bits: int | None = None, list_atoms: bool = False,
                   blocks: int | None = None) -> dict[str, Any]:
    """``vecspread atoms``: :func:`describe` of S_d^r for ``r2``, or for the largest r2 that fits ``bits``
    (then ``bits_budget`` too), and the atoms themselves with ``list_atoms``. Past 64 bits, or with
    ``blocks``, the product layout ``encode --codec lattice`` would use (``layout.describe_layout``)."""
    if (r2 is None) == (bits is None):
        raise ConfigError("give exactly one of --r2 or --bits")
    d = _at_most(as_int(d, "--dim", 1), ATOMS_MAX_DIM, "--dim")
    if blocks is not None or (bits is not None and bits > LATTICE_MAX_BITS):
        from vecspread.codecs.lattice.layout import describe_layout, layout_for

        if list_atoms:
            raise ConfigError("--list lists the atoms of one lattice: run `vecspread atoms --dim D --r2 R --list` "
                              "with the D and R of one block")
        info = describe_layout(layout_for(d, bits, r2, blocks))
        return {**info, **({"bits_budget": bits} if bits is not None else {})}
    if r2 is None:
        r2 = r2_for_bits(d, _at_most(as_int(bits, "--bits", 1), ATOMS_MAX_BITS, "--bits"))
    info = describe(d, _at_most(as_int(r2, "--r2", 0), ATOMS_MAX_R2, "--r2"))
    if bits is not None:
        info["bits_budget"] = bits
    if list_atoms:
        if info["n_atoms"] > ATOMS_MAX_LISTED:
            raise ConfigError(f"--list: d={d} r2={r2} has {info['n_atoms']} atoms, more than the {ATOMS_MAX_LISTED} "
                              "`atoms` lists; drop --list for the counts, or choose a smaller --r2")
        info["atoms"] = [list(a) for a in atoms(d, r2)]
    return info


def _at_most(value: int, limit: int, flag: str) -> int:
    if value > limit:
        raise ConfigError(f"{flag} must be at most {limit} for `vecspread atoms` (the codec itself stores d <= {D_MAX}, "
                          f"r2 <= {R2_MAX}), got {value}")
    return value
