"""knn_blocks and merge_topk against numpy brute force (float64, direct formulas)."""

from __future__ import annotations

import numpy as np
import pytest

from vecspread.distances import unit_rows as normalize_rows
from vecspread.knn import knn_blocks, merge_topk


def reference_distances(xq: np.ndarray, xb: np.ndarray, distance: str) -> np.ndarray:
    """(nq, n) float64 distances as the module documents them (smaller is better)."""
    q = xq.astype(np.float64)
    b = xb.astype(np.float64)
    if distance == "euclidean":
        return np.sqrt(((q[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    if distance == "dot":
        return -(q @ b.T)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 1 - qn @ bn.T


def blocks_of(xb: np.ndarray, sizes: list[int]):
    """(start, block) pairs with the given block sizes (the last takes the rest)."""
    out, start = [], 0
    for s in sizes:
        out.append((start, xb[start : start + s]))
        start += s
    if start < len(xb):
        out.append((start, xb[start:]))
    return out


def check_against_reference(D, I, Dref_full, k, rtol=1e-5, atol=1e-4):
    """D/I agree with the full reference distance matrix, allowing any order among exact ties."""
    nq, n = Dref_full.shape
    Dsorted = np.sort(Dref_full, axis=1)[:, :k]
    assert D.shape == (nq, k) and I.shape == (nq, k)
    assert D.dtype == np.float32 and I.dtype == np.int64
    np.testing.assert_allclose(D, Dsorted, rtol=rtol, atol=atol)
    for q in range(nq):
        assert len(set(I[q].tolist())) == k, f"query {q}: duplicate ids {I[q]}"
        assert I[q].min() >= 0 and I[q].max() < n
        # each returned id really is at the reported distance ...
        np.testing.assert_allclose(Dref_full[q, I[q]], D[q], rtol=rtol, atol=atol)
        # ... and everything strictly closer than the k-th distance was returned
        kth = Dsorted[q, -1]
        closer = set(np.flatnonzero(Dref_full[q] < kth - (atol + rtol * abs(kth))).tolist())
        assert closer <= set(I[q].tolist()), f"query {q}: missed {closer - set(I[q].tolist())}"


@pytest.mark.parametrize("distance", ["euclidean", "angular", "dot"])
@pytest.mark.parametrize("nq", [5, 30])  # faiss switches to BLAS at 20 queries
def test_knn_blocks_matches_brute_force(distance, nq):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((257, 12)).astype(np.float32)
    xq = rng.standard_normal((nq, 12)).astype(np.float32)
    k = 40  # larger than several blocks below
    D, I = knn_blocks(xq, blocks_of(xb, [30, 7, 100, 1, 64]), k, distance)
    Dref = reference_distances(xq, xb, distance)
    check_against_reference(D, I, Dref, k)
    # continuous data has no ties: the order is unique
    np.testing.assert_array_equal(I, np.argsort(Dref, axis=1)[:, :k])


@pytest.mark.parametrize("distance", ["euclidean", "dot"])
def test_knn_blocks_ties_integer_data(distance):
    """Small integer vectors: many exactly equal distances, within and across blocks."""
    rng = np.random.default_rng(1)
    xb = rng.integers(0, 3, size=(300, 6)).astype(np.float32)  # many duplicate rows
    xq = rng.integers(0, 3, size=(25, 6)).astype(np.float32)
    k = 60
    D, I = knn_blocks(xq, blocks_of(xb, [50] * 6), k, distance)
    Dref = reference_distances(xq, xb, distance)
    check_against_reference(D, I, Dref, k, rtol=0, atol=1e-5)
    # ties straddle the cut: at least one query must have more candidates at its k-th distance than slots
    kth = np.sort(Dref, axis=1)[:, k - 1 : k]
    assert ((np.abs(Dref - kth) < 1e-6).sum(1) > 1).any()


def test_knn_blocks_angular_ignores_scale():
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((90, 8)).astype(np.float32)
    xq = rng.standard_normal((4, 8)).astype(np.float32)
    scales = rng.uniform(0.1, 50, size=(90, 1)).astype(np.float32)
    D1, I1 = knn_blocks(xq, [(0, xb)], 10, "angular")
    D2, I2 = knn_blocks(xq * 3, [(0, xb * scales)], 10, "angular")
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, atol=1e-5)
    assert (D1 >= -1e-6).all() and (D1 <= 2 + 1e-6).all()


def test_knn_blocks_k_larger_than_database():
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((7, 4)).astype(np.float32)
    xq = rng.standard_normal((3, 4)).astype(np.float32)
    for distance in ("euclidean", "angular", "dot"):
        D, I = knn_blocks(xq, blocks_of(xb, [3, 3]), 10, distance)
        Dref = reference_distances(xq, xb, distance)
        np.testing.assert_array_equal(I[:, :7], np.argsort(Dref, axis=1))
        np.testing.assert_allclose(D[:, :7], np.sort(Dref, axis=1), rtol=1e-5, atol=1e-5)
        assert (I[:, 7:] == -1).all(), distance
        assert np.isinf(D[:, 7:]).all() and (D[:, 7:] > 0).all(), distance


def test_knn_blocks_block_size_does_not_change_result():
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((500, 16)).astype(np.float32)
    xq = rng.standard_normal((9, 16)).astype(np.float32)
    D1, I1 = knn_blocks(xq, [(0, xb)], 25)
    D2, I2 = knn_blocks(xq, blocks_of(xb, [1] * 30 + [13] * 20), 25)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_allclose(D1, D2, rtol=1e-6)


def test_knn_blocks_unknown_distance():
    with pytest.raises(ValueError):
        knn_blocks(np.zeros((1, 2), np.float32), [(0, np.zeros((3, 2), np.float32))], 1, "cosine")


def test_merge_topk_orders_by_distance_then_id_and_puts_missing_last():
    D1 = np.array([[1.0, 2.0, np.inf]], np.float32)
    I1 = np.array([[9, 4, -1]])
    D2 = np.array([[1.0, 2.0, 0.5]], np.float32)
    I2 = np.array([[3, 2, 8]])
    D, I = merge_topk(D1, I1, D2, I2, 5)
    np.testing.assert_array_equal(I, [[8, 3, 9, 2, 4]])
    np.testing.assert_array_equal(D, [[0.5, 1.0, 1.0, 2.0, 2.0]])
    D, I = merge_topk(D1, I1, np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64), 3)
    np.testing.assert_array_equal(I, [[9, 4, -1]])


def test_merge_topk_matches_lexsort_reference():
    rng = np.random.default_rng(5)
    D1 = rng.integers(0, 5, (20, 8)).astype(np.float32)
    D2 = rng.integers(0, 5, (20, 6)).astype(np.float32)
    I1 = rng.permutation(100)[:8][None].repeat(20, 0)
    I2 = 100 + rng.permutation(100)[:6][None].repeat(20, 0)
    D, I = merge_topk(D1, I1, D2, I2, 10)
    for q in range(20):
        pairs = sorted(zip(np.r_[D1[q], D2[q]].tolist(), np.r_[I1[q], I2[q]].tolist()))[:10]
        assert list(zip(D[q].tolist(), I[q].tolist())) == pairs


def test_normalize_rows_keeps_zero_rows():
    x = np.array([[3, 4], [0, 0]], np.float32)
    np.testing.assert_allclose(normalize_rows(x), [[0.6, 0.8], [0, 0]])
