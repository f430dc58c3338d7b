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
product with |y| sorted in decreasing order (the paper's Appendix B). Here the inner products are
float64 sums in coordinate order (faiss: float32, SIMD order), the sort is stable (ties of |y_i| in
increasing i; faiss's std::sort leaves them in an unspecified order) and the first best atom wins, so
the result is deterministic and exact; it differs from faiss's own encode only where two points are
equally near up to float32 rounding (measured on real data in benchmarks/RESULTS.md). A coordinate
whose value is -0.0 counts as negative, as in faiss.
"""

from __future__ import annotations

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


@numba.njit(cache=True, nogil=True, parallel=True)
def encode_ranks(y: np.ndarray, atoms_t: np.ndarray, c0: np.ndarray, signbits: np.ndarray, values: np.ndarray,
                 counts: np.ndarray, n_values: np.ndarray, comb: np.ndarray, out: np.ndarray) -> None:
    """Ranks of the nearest points of S_d^r to the (n, d) float32 rows of ``y`` into (n,) uint64 ``out``
    (tables: :func:`enumeration_tables`). Rows must be finite; an all-zero row gets the first atom's
    point of its (stable) order, as any other row would; the caller decides what zero rows mean."""
    n, d = y.shape
    na = atoms_t.shape[1]
    atoms32 = atoms_t.astype(np.float32)
    # gamma_d = (d + 1) u for a float32 sum of d rounded products (u = 2^-24), doubled and padded
    margin = 2.5 * (d + 1) * 2.0 ** -24
    chunk = 256
    for c in numba.prange((n + chunk - 1) // chunk):
        xabs = np.empty(d, np.float64)
        order = np.empty(d, np.int64)
        dots32 = np.empty(na, np.float32)
        zabs = np.empty(d, np.int64)
        free = np.empty(d, np.bool_)
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            for j in range(d):  # insertion sort by decreasing |y_j|, stable: ties in increasing j
                v = abs(np.float64(y[i, j]))
                xabs[j] = v
                p = j
                while p > 0 and xabs[order[p - 1]] < v:
                    order[p] = order[p - 1]
                    p -= 1
                order[p] = j
            # float32 screen (vectorised over the atoms), then float64 in coordinate order for the atoms
            # within the float32 error bound of the screen's best: the exact first best atom
            dots32[:] = 0.0
            for j in range(d):
                v32 = np.float32(xabs[order[j]])
                for a in range(na):
                    dots32[a] += v32 * atoms32[j, a]
            top = dots32[0]
            for a in range(1, na):
                if dots32[a] > top:
                    top = dots32[a]
            # every term is >= 0, so |dot32 - dot| <= gamma_d * dot: an atom within 2 gamma_d (1 + gamma_d) top
            # of the screen's best may be the exact best, and no other can
            slack = np.float32(margin * top + 1e-30)
            best = -1
            best_dot = -1.0
            for a in range(na):
                if dots32[a] >= top - slack:
                    s = 0.0
                    for j in range(d):
                        s += xabs[order[j]] * atoms_t[j, a]
                    if s > best_dot:
                        best_dot = s
                        best = a
            for j in range(d):
                zabs[order[j]] = np.int64(atoms_t[j, best])
            signs = np.uint64(0)
            nnz = 0
            for j in range(d):
                if zabs[j] != 0:
                    if np.signbit(y[i, j]):
                        signs |= np.uint64(1) << np.uint64(nnz)
                    nnz += 1
            free[:] = True
            nfree = d
            placement = np.uint64(0)
            shift = np.uint64(1)
            for r in range(n_values[best]):
                val, cnt = values[best, r], counts[best, r]
                rank, occ = 0, 0
                code = np.uint64(0)
                for j in range(d):
                    if free[j]:
                        if zabs[j] == val:
                            code += comb[rank, occ + 1]
                            occ += 1
                            free[j] = False
                            if occ == cnt:
                                break
                        rank += 1
                placement += shift * code
                shift *= comb[nfree, cnt]
                nfree -= cnt
            out[i] = c0[best] + signs + (placement << np.uint64(signbits[best]))
