"""Seed 000's measures (``vecspread.diagnostics.classes``) against direct computation on small data."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from vecspread.diagnostics.classes import (correct_angles, cross_polytope_buckets, cross_polytope_hash,
                                           hyperplane_buckets, mean_correct_angle, norm_stats, table_balance)
from vecspread.linalg import random_rotation


def test_correct_angles_are_the_direct_angles():
    rng = np.random.default_rng(0)
    reps, w = rng.standard_normal((50, 6)), rng.standard_normal((7, 6))
    labels = rng.integers(0, 7, 50)
    expected = []
    for x, c in zip(reps, labels):
        cos = sum(a * b for a, b in zip(x, w[c])) / math.sqrt(sum(a * a for a in x) * sum(b * b for b in w[c]))
        expected.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    assert np.allclose(correct_angles(reps, w, labels), expected)
    assert mean_correct_angle(reps, w, labels) == pytest.approx(np.mean(expected))
    assert correct_angles(w[[2]] * 3, w, [2])[0] == pytest.approx(0, abs=1e-5)
    assert correct_angles(-w[[2]], w, [2])[0] == pytest.approx(180)
    assert correct_angles(np.zeros((1, 6)), w, [0])[0] == 90


def test_norm_stats_are_the_direct_ones():
    x = np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])
    s = norm_stats(x)
    assert (s["mean"], s["min"], s["max"]) == pytest.approx((16 / 3, 1, 10))
    assert s["std"] == pytest.approx(np.std([5, 1, 10])) and s["relative_std"] == pytest.approx(s["std"] / s["mean"])


def test_hyperplane_buckets_are_the_sign_bits():
    x = np.random.default_rng(1).standard_normal((40, 5))
    ids, n_buckets = hyperplane_buckets(x, 4, np.random.default_rng(9))
    planes = np.random.default_rng(9).standard_normal((5, 4))
    expected = [sum(1 << j for j in range(4) if float(np.dot(p, planes[:, j])) > 0) for p in x]
    assert ids.tolist() == expected and n_buckets == 16


def test_cross_polytope_hash_is_the_nearest_signed_basis_vector():
    rng = np.random.default_rng(2)
    x, rot = rng.standard_normal((30, 4)), random_rotation(4, rng)
    assert np.allclose(rot.T @ rot, np.eye(4))
    h = cross_polytope_hash(x, rot)
    basis = np.vstack([np.eye(4), -np.eye(4)])  # signed basis vectors: i, then m + i for -e_i
    for row, hashed in zip(x @ rot, h):
        assert hashed == int(np.argmax(basis @ (row / np.linalg.norm(row))))
    ids, n_buckets = cross_polytope_buckets(x, 2, np.random.default_rng(3))
    assert n_buckets == 64 and ids.min() == 0 and len(set(ids.tolist())) == ids.max() + 1


def test_table_balance_against_counting():
    buckets = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5])
    counts = Counter(buckets.tolist())
    m = sum(c * c for c in counts.values()) / len(buckets)
    tb = table_balance(buckets, 8)  # 10 points in 8 buckets: the best is 2, 2, 1 x 6
    assert tb["M"] == pytest.approx(m) and tb["M_star"] == pytest.approx((2 * 4 + 6 * 1) / 10)
    assert tb["ratio"] == pytest.approx(m / 1.4) and tb["used"] == 4
    assert table_balance(np.arange(12) % 4, 4)["ratio"] == pytest.approx(1.0)  # perfectly even
    assert table_balance(np.arange(5), 2**40)["M_star"] == 1.0  # more buckets than points
    assert table_balance(np.zeros(6, int), 3)["ratio"] == pytest.approx(6 / 2)  # all in one bucket


def test_spread_points_balance_tables_better_than_clustered_ones():
    """Gaussian (spread) points against one tight cluster: cross-polytope cells are equal by symmetry
    (ratio ~1); hyperplane cells are not (random hyperplanes cut unequal cones: ~2 here), but a cluster
    is far worse in both."""
    rng = np.random.default_rng(4)
    spread = rng.standard_normal((4000, 8))
    clustered = rng.standard_normal((1, 8)) + 0.2 * rng.standard_normal((4000, 8))
    cp = [table_balance(*cross_polytope_buckets(x, 1, np.random.default_rng(5)))["ratio"] for x in (spread, clustered)]
    hp = [table_balance(*hyperplane_buckets(x, 6, np.random.default_rng(5)))["ratio"] for x in (spread, clustered)]
    assert cp[0] < 1.1 and cp[1] > 4 * cp[0]
    assert hp[0] < 3 and hp[1] > 5 * hp[0]
