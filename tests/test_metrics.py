"""one_recall_at / k_recall_at against values computed by hand, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from vecspread.metrics import k_recall_at, one_recall_at

# one query; ids 5 and 7 are tied for the nearest, 9 is second, 11 third
GT_I = np.array([[5, 7, 9, 11, 13]])
GT_D = np.array([[1.0, 1.0, 2.0, 3.0, 4.0]], np.float32)


@pytest.mark.parametrize(
    "result, k, expected",
    [
        ([5, 0, 0], 1, 1.0),
        ([7, 0, 0], 1, 1.0),  # tied with the listed nearest: a hit
        ([9, 5, 0], 1, 0.0),
        ([9, 5, 0], 2, 1.0),
        ([9, 11, 13], 3, 0.0),
        ([0, 1, 7], 3, 1.0),
        ([0, 1, 7], 2, 0.0),
    ],
)
def test_one_recall_single_query(result, k, expected):
    assert one_recall_at(np.array([result]), GT_I, GT_D, k) == expected


def test_one_recall_averages_over_queries():
    gt_I = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
    gt_D = np.array([[0.0, 1, 2], [1, 2, 3], [5, 5, 5], [1, 1, 2]], np.float32)
    I = np.array(
        [
            [2, 1],  # nearest at rank 2
            [5, 6],  # miss
            [9, 0],  # all three tied: 9 counts at rank 1
            [0, 11],  # 11 tied with 10, at rank 2
        ]
    )
    assert one_recall_at(I, gt_I, gt_D, 1) == pytest.approx(1 / 4)
    assert one_recall_at(I, gt_I, gt_D, 2) == pytest.approx(3 / 4)


def test_one_recall_tie_tolerance_is_tight():
    gt_I = np.array([[1, 2]])
    assert one_recall_at(np.array([[2]]), gt_I, np.array([[100.0, 100.0001]], np.float32), 1) == 1.0
    assert one_recall_at(np.array([[2]]), gt_I, np.array([[100.0, 100.1]], np.float32), 1) == 0.0
    assert one_recall_at(np.array([[2]]), gt_I, np.array([[0.0, 0.0]], np.float32), 1) == 1.0
    assert one_recall_at(np.array([[2]]), gt_I, np.array([[0.0, 0.01]], np.float32), 1) == 0.0


@pytest.mark.parametrize(
    "result, k, expected",
    [
        ([5, 7], 2, 1.0),
        ([7, 5], 2, 1.0),
        ([7, 9], 2, 0.5),
        ([9, 11], 2, 0.0),
        ([5, 9, 7], 3, 1.0),
        ([13, 11, 9], 3, 1 / 3),
        ([5, 7, 9, 11], 4, 1.0),
        ([5, 5, 0, 0], 4, 0.5),
    ],
)
def test_k_recall_single_query(result, k, expected):
    assert k_recall_at(np.array([result]), GT_I, GT_D, k) == pytest.approx(expected)


def test_k_recall_counts_ties_at_the_kth_distance():
    # the 3rd and 4th (and 5th) neighbours are tied: any of 3, 4, 5 fills the 3rd slot
    gt_I = np.array([[1, 2, 3, 4, 5, 6]])
    gt_D = np.array([[0.5, 1.0, 2.0, 2.0, 2.0, 4.0]], np.float32)
    assert k_recall_at(np.array([[1, 2, 4]]), gt_I, gt_D, 3) == pytest.approx(1.0)
    assert k_recall_at(np.array([[5, 2, 1]]), gt_I, gt_D, 3) == pytest.approx(1.0)
    assert k_recall_at(np.array([[1, 4, 6]]), gt_I, gt_D, 3) == pytest.approx(2 / 3)
    assert k_recall_at(np.array([[3, 4, 5]]), gt_I, gt_D, 3) == pytest.approx(1.0)
    # at k=2 the tie at distance 2.0 is beyond the cut
    assert k_recall_at(np.array([[1, 3]]), gt_I, gt_D, 2) == pytest.approx(0.5)


def test_k_recall_averages_and_uses_first_k_only():
    gt_I = np.array([[1, 2, 3], [4, 5, 6]])
    gt_D = np.array([[1.0, 2, 3], [1, 2, 3]], np.float32)
    I = np.array([[2, 9, 1], [4, 5, 6]])
    assert k_recall_at(I, gt_I, gt_D, 2) == pytest.approx((0.5 + 1.0) / 2)
    assert k_recall_at(I, gt_I, gt_D, 3) == pytest.approx((2 / 3 + 1.0) / 2)
    assert k_recall_at(I, gt_I, gt_D, 1) == pytest.approx(0.5)


def test_recall_against_brute_force_definition():
    """Random integer data (many ties): both measures equal a direct definition from the true distances."""
    rng = np.random.default_rng(0)
    xb = rng.integers(0, 3, size=(200, 4)).astype(np.float64)
    xq = rng.integers(0, 3, size=(30, 4)).astype(np.float64)
    Dt = np.sqrt(((xq[:, None] - xb[None]) ** 2).sum(-1))
    order = np.argsort(Dt, axis=1, kind="stable")
    kgt = 200  # the full ranking, so no tie group is cut off by the ground truth's length
    gt_I, gt_D = order[:, :kgt], np.take_along_axis(Dt, order[:, :kgt], 1).astype(np.float32)
    I = rng.permutation(np.arange(200))[None].repeat(30, 0)[:, :20]  # arbitrary "results"
    I = np.where(rng.random(I.shape) < 0.5, order[:, :20], I)
    for k in (1, 5, 10, 20):
        nearest = Dt.min(1, keepdims=True)
        hits1 = (np.take_along_axis(Dt, I[:, :k], 1) <= nearest + 1e-9).any(1).mean()
        assert one_recall_at(I, gt_I, gt_D, k) == pytest.approx(hits1)
        kth = np.sort(Dt, 1)[:, k - 1 : k]
        hitsk = (np.take_along_axis(Dt, I[:, :k], 1) <= kth + 1e-9).sum(1) / k
        assert k_recall_at(I, gt_I, gt_D, k) == pytest.approx(hitsk.mean())


def test_no_queries_is_nan():
    empty = np.zeros((0, 3), np.int64)
    assert np.isnan(one_recall_at(empty, empty, np.zeros((0, 3), np.float32), 1))
    assert np.isnan(k_recall_at(empty, empty, np.zeros((0, 3), np.float32), 1))
