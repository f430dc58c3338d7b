"""Compiled (numba) lattice encoding: the nearest point of S_d^r to each row and its rank in faiss's
``ZnSphereCodec`` enumeration, so that faiss decodes the codes (the format does not change).

Written from the enumeration's definition (a file-format fact; checked against faiss in
tests/codecs/test_lattice_encode.py):

- the atoms (``combinatorics.atoms``, decreasing lexicographic order) own consecutive rank ranges; atom a
  starts at c0[a] and holds count(a) << signbits(a) ranks, count(a) being the multinomial number of
  placements of its values and signbits(a) its number of non-zero values;
- a point z with atom a has rank c0[a] + signs + (placement << signbits(a)): bit j of ``signs`` is set
  when the j-th non-zero coordinate of z (in coordinate order) is negative; ``placement`` ranks where
  each distinct value of the atom sits, values in the atom's order (decreasing), each ranked among
  the positions the earlier values left free by the combinatorial number system (sum over its
  occurrences, in increasing position, of comb(rank among the free positions, occurrence number)),
  mixed-radix over the values with radices comb(free positions, multiplicity).

The nearest point of a direction y is the signed permutation of the atom with the largest inner
product with |y| sorted in decreasing order (the paper's Appendix B). Here all the inner products of a
block of rows are first screened in float32 by one BLAS matrix product (rows x atoms), and the atoms
within the float32 error bound of each row's best are compared again as float64 sums in sorted order
(faiss: float32, SIMD order, and no second pass); the sort is stable (ties of |y_i| in
increasing i; faiss's std::sort leaves them in an unspecified order) and the first best atom wins, so
the result is deterministic and exact; it differs from faiss's own encode only where two points are
equally near up to float32 rounding (measured on real data in benchmarks/RESULTS.md). A coordinate
whose value is -0.0 counts as negative, as in faiss.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from vecspread.codecs.lattice.combinatorics import atom_size, atoms

#: binomial coefficients up to comb(64, k), exact in uint64
_COMB_MAX = 65


def comb_table() -> np.ndarray:
    """(65, 65) uint64 Pascal triangle: comb(n, k), 0 for k > n."""
    tab = np.zeros((_COMB_MAX, _COMB_MAX), np.uint64)
    for n in range(_COMB_MAX):
        tab[n, 0] = 1
        for k in range(1, n + 1):
            tab[n, k] = tab[n - 1, k] + tab[n - 1, k - 1]
    return tab


def enumeration_tables(d: int, r2: int) -> tuple[np.ndarray, ...]:
    """The tables of the kernel for S_d^r: atoms transposed (d, n_atoms) float64, c0 (n_atoms,) uint64,
    signbits (n_atoms,) int64, the values (n_atoms, d) int64 and multiplicities (n_atoms, d) int64 of
    each atom's distinct values in the atom's order, their number (n_atoms,) int64, and comb_table()."""
    table = atoms(d, r2)
    na = len(table)
    c0 = np.zeros(na, np.uint64)
    signbits = np.zeros(na, np.int64)
    values = np.zeros((na, d), np.int64)
    counts = np.zeros((na, d), np.int64)
    n_values = np.zeros(na, np.int64)
    start = 0
    for a, atom in enumerate(table):
        c0[a] = start
        nnz = sum(1 for v in atom if v)
        signbits[a] = nnz
        distinct = sorted(set(atom), reverse=True)
        n_values[a] = len(distinct)
        for j, v in enumerate(distinct):
            values[a, j], counts[a, j] = v, atom.count(v)
        start += atom_size(atom)  # multinomial << nnz: the atom's ranks
    return (np.ascontiguousarray(np.array(table, np.float64).T), c0, signbits, values, counts, n_values, comb_table())


#: rows per screening block: its (rows, atoms) float32 inner products stay in cache (4096 x 256 x 4 = 4 MiB)
SCREEN_ROWS = 4096


def encode_ranks(y: np.ndarray, atoms_t: np.ndarray, c0: np.ndarray, signbits: np.ndarray, values: np.ndarray,
                 counts: np.ndarray, n_values: np.ndarray, comb: np.ndarray, out: np.ndarray) -> None:
    """Ranks of the nearest points of S_d^r to the directions of the (n, d) float32 rows of ``y`` (any
    strides: a block of columns of a wider array will do) into (n,) uint64 ``out`` (tables:
    :func:`enumeration_tables`). Rows must be finite; an all-zero row has no direction and gets rank 0.

    Each row is divided by its max-abs value (float32, as numpy divides): the nearest point is
    scale-free, and this keeps the float32 screen away from overflow and underflow. Per block of
    :data:`SCREEN_ROWS` rows: the sorted |y| (compiled, a sorting network), their float32 inner products
    with every atom (one BLAS matrix product) and each row's largest (numpy), then the exact choice among
    the atoms the screen cannot rule out and the rank (compiled).
    """
    n, d = y.shape
    if d != atoms_t.shape[0]:
        raise ValueError(f"rows of {d} coordinates for a lattice of dimension {atoms_t.shape[0]}")
    atoms32 = np.ascontiguousarray(atoms_t, dtype=np.float32)  # (d, n_atoms)
    network = sorting_network(d)
    rows = min(n, SCREEN_ROWS)
    xs = np.empty((rows, d), np.float32)
    order = np.empty((rows, d), np.int32)
    dots = np.empty((rows, atoms32.shape[1]), np.float32)
    for s in range(0, n, SCREEN_ROWS):
        e = min(n, s + SCREEN_ROWS)
        m = e - s
        _sorted_abs(y[s:e], network, xs[:m], order[:m])
        np.matmul(xs[:m], atoms32, out=dots[:m])
        best32 = dots[:m].argmax(axis=1)
        _choose_and_rank(y[s:e], xs[:m], order[:m], dots[:m], best32, atoms_t, c0, signbits, values, counts,
                         n_values, comb, out[s:e])


@functools.lru_cache(maxsize=None)
def sorting_network(d: int) -> np.ndarray:
    """(n_comparators, 2) int64 comparators (i < j) that sort d values: Batcher's odd-even merge sort on
    the next power of two, less the comparators that touch a position >= d (padding with values no real
    one is below never moves, so those are no-ops). Applied in order, each puts the larger at i."""
    size = 1
    while size < d:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < d:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, np.int64).reshape(-1, 2)


@numba.njit(cache=True, nogil=True, parallel=True)
def _sorted_abs(y: np.ndarray, network: np.ndarray, xs: np.ndarray, order: np.ndarray) -> None:
    """Per row of (n, d) ``y``: |y_j| / max_j |y_j| (float32 division) in decreasing order into ``xs``
    (n, d) float32, stable (ties in increasing j), the coordinates of that order into ``order`` (n, d)
    int32; an all-zero row gives zeros in the order 0..d-1.

    The sort is branch-free: each value becomes one uint64 key, its float32 bits (monotone for values >=
    0) above 255 - j, and ``network`` (:func:`sorting_network`) sorts the keys in decreasing order."""
    n, d = y.shape
    chunk = 256
    for c in numba.prange((n + chunk - 1) // chunk):
        vs = np.empty(d, np.float32)
        bits = vs.view(np.uint32)
        keys = np.empty(d, np.uint64)
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            m = 0.0
            for j in range(d):
                m = max(m, abs(np.float64(y[i, j])))
            if m == 0.0:
                m = 1.0
            for j in range(d):
                # float64 division rounded once to float32 is the correctly rounded float32 quotient
                vs[j] = np.float32(abs(np.float64(y[i, j])) / m)
            for j in range(d):
                keys[j] = (np.uint64(bits[j]) << np.uint64(8)) | np.uint64(255 - j)
            for t in range(network.shape[0]):
                p, q = network[t, 0], network[t, 1]
                a, b = keys[p], keys[q]
                keys[p] = max(a, b)
                keys[q] = min(a, b)
            for j in range(d):
                o = 255 - np.int64(keys[j] & np.uint64(255))
                order[i, j] = o
                xs[i, j] = vs[o]


_M1, _M2 = np.uint64(0x5555555555555555), np.uint64(0x3333333333333333)
_M4, _H01 = np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101)


@numba.njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    """The number of set bits of a uint64 (branch-free)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@numba.njit(cache=True, nogil=True, parallel=True)
def _choose_and_rank(y: np.ndarray, xs: np.ndarray, order: np.ndarray, dots32: np.ndarray, best32: np.ndarray,
                     atoms_t: np.ndarray, c0: np.ndarray, signbits: np.ndarray, values: np.ndarray,
                     counts: np.ndarray, n_values: np.ndarray, comb: np.ndarray, out: np.ndarray) -> None:
    """The exact first best atom of each row from its float32 screen ``dots32`` (n, n_atoms) and the
    screen's first largest ``best32`` (n,), then the rank of its signed permutation (module docstring)
    into ``out`` (n,) uint64; zero rows get 0.

    Positions are bits of a uint64 (d <= 64): a value's positions are its bits, and a position's rank
    among the free positions is the number of free positions below it."""
    n, d = y.shape
    na = atoms_t.shape[1]
    # gamma_d = (d + 1) u bounds a float32 sum of d rounded products (u = 2^-24) in any order, FMA or
    # not; doubled and padded
    margin = 2.5 * (d + 1) * 2.0 ** -24
    one = np.uint64(1)
    all_positions = ~np.uint64(0) if d == 64 else (one << np.uint64(d)) - one
    for i in numba.prange(n):
        if xs[i, 0] == 0.0:
            out[i] = 0
            continue
        top = dots32[i, best32[i]]
        # every term is >= 0, so |dot32 - dot| <= gamma_d * dot: an atom within 2 gamma_d (1 + gamma_d) top
        # of the screen's best may be the exact best, and no other can
        threshold = top - np.float32(margin * top + 1e-30)
        near = 0
        for a in range(na):
            near += dots32[i, a] >= threshold
        best = best32[i]
        if near > 1:  # float64 sums in sorted order decide; the first best atom wins
            best_dot = -1.0
            for a in range(na):
                if dots32[i, a] >= threshold:
                    s = 0.0
                    for j in range(d):
                        s += np.float64(xs[i, j]) * atoms_t[j, a]
                    if s > best_dot:
                        best_dot = s
                        best = a
        # placement: value r of the atom sits at the positions order[i, start_r : start_r + count_r]
        taken = np.uint64(0)
        placement = np.uint64(0)
        shift = np.uint64(1)
        nfree = d
        start = 0
        nv = n_values[best]
        for r in range(nv - 1):  # the last value fills the positions left: its code is 0
            cnt = counts[best, r]
            positions = np.uint64(0)
            for j in range(start, start + cnt):
                positions |= one << np.uint64(order[i, j])
            start += cnt
            free = ~taken
            code = np.uint64(0)
            rest = positions
            occ = 1
            while rest:  # its positions in increasing order
                low = rest & (~rest + one)
                code += comb[_popcount((low - one) & free), occ]
                occ += 1
                rest ^= low
            taken |= positions
            placement += shift * code
            shift *= comb[nfree, cnt]
            nfree -= cnt
        nonzero = taken if values[best, nv - 1] == 0 else all_positions
        signs = np.uint64(0)
        k = np.uint64(0)
        for p in range(d):  # bit k of signs: the k-th non-zero coordinate is negative
            b = (nonzero >> np.uint64(p)) & one
            negative = one if np.signbit(y[i, p]) else np.uint64(0)
            signs |= (negative & b) << k
            k += b
        out[i] = c0[best] + signs + (placement << np.uint64(signbits[best]))
