"""The compiled lattice encoder against faiss's ZnSphereCodec (same enumeration) and against brute force."""

from __future__ import annotations

import faiss
import numba
import numpy as np
import pytest

from vecspread.codecs.lattice.combinatorics import atoms
from vecspread.codecs.lattice.encode_kernels import comb_table, encode_ranks, enumeration_tables

faiss.omp_set_num_threads(1)


def ours(y: np.ndarray, d: int, r2: int) -> np.ndarray:
    out = np.empty(len(y), np.uint64)
    encode_ranks(np.ascontiguousarray(y, dtype=np.float32), *enumeration_tables(d, r2), out)
    return out


def faiss_ranks(y: np.ndarray, d: int, r2: int) -> np.ndarray:
    out = np.empty(len(y), np.uint64)
    faiss.ZnSphereCodec(d, r2).encode_multi(len(y), faiss.swig_ptr(np.ascontiguousarray(y, np.float32)),
                                            faiss.swig_ptr(out))
    return out


def decode(ranks: np.ndarray, d: int, r2: int) -> np.ndarray:
    z = np.empty((len(ranks), d), np.float32)
    faiss.ZnSphereCodec(d, r2).decode_multi(len(ranks), faiss.swig_ptr(ranks), faiss.swig_ptr(z))
    return z.astype(np.float64)


@pytest.mark.parametrize("d,r2", [(24, 79), (8, 10), (18, 66), (64, 15), (3, 6), (16, 30)])
def test_ranks_are_faiss_ranks_of_points_at_least_as_near(d, r2):
    """Same enumeration: faiss decodes our ranks. Where the ranks differ (near ties of float32 dot
    products), our point is at least as near, in float64, as faiss's."""
    y = np.random.default_rng(d).standard_normal((20000, d)).astype(np.float32)
    y /= np.abs(y).max(axis=1, keepdims=True)
    mine, theirs = ours(y, d, r2), faiss_ranks(y, d, r2)
    assert (mine == theirs).mean() > 0.999
    z_mine, z_theirs = decode(mine, d, r2), decode(theirs, d, r2)
    assert ((z_mine ** 2).sum(axis=1) == r2).all()
    y64 = y.astype(np.float64)
    assert ((y64 * z_mine).sum(1) >= (y64 * z_theirs).sum(1) - 1e-12).all()


@pytest.mark.parametrize("d,r2", [(4, 6), (8, 10), (24, 79)])
def test_integer_points_encode_to_themselves_and_ties_are_deterministic(d, r2):
    """Lattice points (many tied |y_i|) are their own nearest point; the rank of a point is faiss's."""
    table = np.array(atoms(d, r2), np.float32)
    rng = np.random.default_rng(0)
    rows = table[rng.integers(len(table), size=3000)]
    for row in rows:  # a random signed permutation of each atom
        rng.shuffle(row)
    rows *= rng.choice([-1, 1], size=rows.shape).astype(np.float32)
    mine = ours(rows, d, r2)
    np.testing.assert_array_equal(decode(mine, d, r2), rows)
    assert (mine == faiss_ranks(rows, d, r2)).all()
    again = ours(rows[::-1].copy(), d, r2)[::-1]
    assert (again == mine).all()  # per row, independent of the other rows


def test_threads_do_not_change_ranks():
    y = np.random.default_rng(1).standard_normal((5000, 24)).astype(np.float32)
    numba.set_num_threads(1)
    one = ours(y, 24, 79)
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    assert (ours(y, 24, 79) == one).all()


def test_comb_table_is_pascals_triangle():
    from math import comb

    tab = comb_table()
    assert all(int(tab[n, k]) == comb(n, k) for n in range(65) for k in range(65))


@pytest.mark.parametrize("d", [1, 2, 3, 7, 16, 18, 24, 31, 33, 48, 64])
def test_sorting_network_sorts_every_input_in_decreasing_order(d):
    """The encoder's branch-free sort: random inputs with many ties, and the 0-1 inputs that exercise
    every comparator (the 0-1 principle: a network sorting all of them sorts everything; all for d <= 16)."""
    from vecspread.codecs.lattice.encode_kernels import sorting_network

    net = sorting_network(d)
    assert net.shape[1] == 2 and (net[:, 0] < net[:, 1]).all() and (net < d).all()
    rng = np.random.default_rng(d)
    inputs = rng.integers(0, 4, (3000, d))
    if d <= 16:
        inputs = np.concatenate([inputs, (np.arange(2 ** d)[:, None] >> np.arange(d)) & 1])
    x = inputs.copy()
    for i, j in net:  # each comparator puts the larger value at i
        hi, lo = np.maximum(x[:, i], x[:, j]), np.minimum(x[:, i], x[:, j])
        x[:, i], x[:, j] = hi, lo
    np.testing.assert_array_equal(x, -np.sort(-inputs, axis=1))


def test_a_block_of_columns_of_a_wider_array_encodes_as_a_copy_would():
    """The codec hands the kernel strided column blocks; zero and -0.0 rows get rank 0."""
    y = np.random.default_rng(3).standard_normal((5000, 48)).astype(np.float32)
    y[10], y[11] = 0.0, -0.0
    tables = enumeration_tables(24, 79)
    strided, copied = np.empty(len(y), np.uint64), np.empty(len(y), np.uint64)
    encode_ranks(y[:, 24:], *tables, strided)
    encode_ranks(np.ascontiguousarray(y[:, 24:]), *tables, copied)
    np.testing.assert_array_equal(strided, copied)
    assert strided[10] == strided[11] == 0
