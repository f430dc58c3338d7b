"""Tests for vecspread.diagnostics (report, spread, codes, recall, plots): every statistic against a direct numpy computation
on small data, hand-made extremes (a uniform circle, collapsed sets, perfectly balanced and identical codes,
constructed angles and ties), and ``inspect`` end to end on the shared synthetic pipeline."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, brute_force_knn, l2_distances
from vecspread import distances
from vecspread.diagnostics import codes as dg_codes, recall as dg_recall, report as dg_report, spread as dg_spread
from vecspread.codecs.sign.codec import SignCodec
from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.codecs.lattice.combinatorics import atoms
from vecspread.errors import ConfigError, InputError
from vecspread.knn import knn_blocks
from vecspread.models import open_model


def uniformity_bruteforce(d1: np.ndarray, dk: np.ndarray) -> float:
    """The definition, O(n^2): mean over ordered pairs i != j of [d1_i > dk_j]."""
    greater = np.asarray(d1, np.float64)[:, None] > np.asarray(dk, np.float64)[None, :]
    np.fill_diagonal(greater, False)
    n = len(d1)
    return greater.sum() / (n * (n - 1))


# --- uniformity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_uniformity_matches_quadratic_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    # small integers: many exact ties between d1 and dk values, and some d1_i > dk_i on the diagonal
    d1 = rng.integers(0, 20, n).astype(np.float32)
    dk = d1 + rng.integers(-3, 15, n)
    assert (d1 > dk).any() or n < 30
    assert dg_spread.uniformity(d1, dk) == pytest.approx(uniformity_bruteforce(d1, dk), abs=1e-12)


def test_uniformity_random_floats_match_definition() -> None:
    rng = np.random.default_rng(7)
    d1 = rng.gamma(2.0, size=257)
    dk = d1 + rng.gamma(3.0, size=257)
    assert dg_spread.uniformity(d1, dk) == pytest.approx(uniformity_bruteforce(d1, dk), abs=1e-12)


def test_uniformity_is_zero_on_an_evenly_spread_circle() -> None:
    # database: n equally spaced angles; queries: the midpoints between them. Every query sees the same
    # neighbour distances, so no query's 1st neighbour is farther than another's k-th.
    n, k = 360, 10
    a = 2 * np.pi * np.arange(n) / n
    xb = np.stack([np.cos(a), np.sin(a)], 1).astype(np.float32)
    xq = np.stack([np.cos(a + np.pi / n), np.sin(a + np.pi / n)], 1).astype(np.float32)
    D, _ = knn_blocks(xq, [(0, xb)], k)
    assert dg_spread.uniformity(D[:, 0], D[:, k - 1]) == 0.0


def test_uniformity_is_one_half_for_a_collapsed_database() -> None:
    # all database vectors identical: each query's 1st and k-th neighbour distances are equal, so
    # d1_i > dk_j exactly when query i is farther from the point than query j: half of the pairs.
    rng = np.random.default_rng(0)
    xb = np.ones((50, 4), np.float32)
    xq = rng.standard_normal((200, 4)).astype(np.float32)
    D, _ = knn_blocks(xq, [(0, xb)], 20)
    assert dg_spread.uniformity(D[:, 0], D[:, -1]) == pytest.approx(0.5, abs=1e-12)


def test_uniformity_is_high_for_clusters_of_very_different_density() -> None:
    # 20 clusters whose scales span 6 orders of magnitude, one query in each: a sparse cluster's 1st
    # neighbour is far beyond a dense cluster's 100th
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((20, 8)) * 1e4
    scales = 10.0 ** np.linspace(-3, 3, 20)
    xb = np.concatenate([c + s * rng.standard_normal((150, 8)) for c, s in zip(centres, scales)]).astype(np.float32)
    xq = (centres + scales[:, None] * rng.standard_normal((20, 8))).astype(np.float32)
    D, _ = knn_blocks(xq, [(0, xb)], 100)
    p = dg_spread.uniformity(D[:, 0], D[:, 99])
    assert p > 0.4
    assert p == pytest.approx(uniformity_bruteforce(D[:, 0], D[:, 99]))


def test_uniformity_edge_cases() -> None:
    assert math.isnan(dg_spread.uniformity(np.array([1.0]), np.array([2.0])))
    with pytest.raises(ValueError):
        dg_spread.uniformity(np.ones(3), np.ones(4))


# --- range search / ε curve ------------------------------------------------------------------------


def pairwise_reference(xq: np.ndarray, xb: np.ndarray, distance: str) -> np.ndarray:
    q, b = np.asarray(xq, np.float64), np.asarray(xb, np.float64)
    if distance == "euclidean":
        return l2_distances(q, b)
    if distance == "angular":
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        return 1 - qn @ bn.T
    return -(q @ b.T)


@pytest.mark.parametrize("distance", ["euclidean", "angular", "dot"])
def test_range_counts_match_direct_counts(distance: str) -> None:
    rng = np.random.default_rng(3)
    xq = rng.standard_normal((23, 6)).astype(np.float32)
    xb = rng.standard_normal((301, 6)).astype(np.float32)
    ref = pairwise_reference(xq, xb, distance)
    # radii halfway between consecutive sorted distances: no distance lies within float32 rounding of one
    values = np.sort(ref.ravel())
    picks = np.linspace(0, len(values) - 2, 17).astype(int)
    radii = ((values[picks] + values[picks + 1]) / 2).astype(np.float32)
    blocks = [xb[s : s + 64] for s in range(0, len(xb), 64)]
    got = dg_spread.range_counts(xq, blocks, radii, distance)
    expected = (ref[:, :, None] <= radii.astype(np.float64)[None, None, :]).sum(axis=1)
    np.testing.assert_array_equal(got, expected)


def test_range_counts_count_boundary_as_within() -> None:
    xq = np.zeros((1, 2), np.float32)
    xb = np.array([[3, 4], [6, 8], [0, 1]], np.float32)  # distances 5, 10, 1
    got = dg_spread.range_counts(xq, [xb], np.array([0.5, 1, 5, 9.99, 10], np.float32))
    np.testing.assert_array_equal(got, [[0, 1, 2, 2, 3]])


def test_epsilon_curve_on_a_hand_made_case() -> None:
    counts = np.array([[0, 2, 10], [1, 4, 20]])
    target = np.array([0.5, 2.5])
    curve = dg_spread.epsilon_curve(counts, target, np.array([1.0, 2.0, 3.0]))
    assert curve == {"radius": [1.0, 2.0, 3.0], "results_per_query": [0.5, 3.0, 15.0], "recall": [0.5, 0.5, 1.0]}


def test_epsilon_grid_spans_targets_and_neighbour_distances() -> None:
    rng = np.random.default_rng(0)
    D = np.sort(rng.gamma(4, size=(50, 10)), axis=1)
    target = D[:, 0] * 1.5
    radii = dg_spread.epsilon_grid(D, target, 20)
    assert radii.dtype == np.float32 and len(radii) <= 20
    assert np.all(np.diff(radii) > 0)
    lo, hi = min(D.min(), target.min()), max(D.max(), target.max())
    assert lo * (1 - 1e-6) <= radii[0] and radii[-1] == pytest.approx(hi, rel=1e-6)
    # the target quantiles make the recall rise in even steps from 1/nq to 1
    recall = (target[:, None] <= radii[None, :] * (1 + 1e-6)).mean(0)
    for level in np.linspace(0, 1, 10)[1:]:
        assert np.any(np.abs(recall - level) <= 1 / len(target) + 1e-9), level
    # geometric levels: several radii below the 5% quantile of the neighbour distances
    assert (radii < np.quantile(D, 0.05)).sum() >= 4


# --- angles ---------------------------------------------------------------------------------------


def test_angles_of_constructed_pairs() -> None:
    rng = np.random.default_rng(5)
    d, n = 9, 40
    theta = rng.uniform(0, 180, n)
    a = np.empty((n, d))
    b = np.empty((n, d))
    for i in range(n):
        # an orthonormal pair (u, v) spanning a random plane; b is a rotated by theta[i] in that plane
        u, v = np.linalg.qr(rng.standard_normal((d, 2)))[0].T
        a[i] = rng.uniform(0.1, 10) * u
        t = np.radians(theta[i])
        b[i] = rng.uniform(0.1, 10) * (np.cos(t) * u + np.sin(t) * v)
    np.testing.assert_allclose(distances.angles_deg(a.astype(np.float32), b.astype(np.float32)), theta, atol=1e-3)
    got = distances.angles_deg(np.array([[1.0, 0], [0, 0], [1, 1]]), np.array([[1.0, 0], [1, 0], [-1, -1]]))
    assert got[0] == 0 and math.isnan(got[1]) and got[2] == pytest.approx(180)


# --- table balance --------------------------------------------------------------------------------


def test_bucket_ids_follow_the_sign_codec_bit_order() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (100, 4), dtype=np.uint8)
    for b in (1, 7, 8, 13, 24, 32):
        bits = [(codes[:, i // 8].astype(np.int64) >> (i % 8)) & 1 for i in range(b)]
        expected = sum(bit << i for i, bit in enumerate(bits))
        np.testing.assert_array_equal(dg_codes.bucket_ids(codes, b), expected)
    y = rng.standard_normal((100, 16)).astype(np.float32)
    codes = SignCodec().fit(y).encode(y)
    expected = ((y[:, :12] > 0).astype(np.int64) << np.arange(12)).sum(axis=1)
    np.testing.assert_array_equal(dg_codes.bucket_ids(codes, 12), expected)
    with pytest.raises(ValueError):
        dg_codes.bucket_ids(codes, 17)


def pack(bits: np.ndarray) -> np.ndarray:
    return np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")


def test_table_balance_extremes() -> None:
    # every 10-bit pattern exactly 3 times: perfectly balanced for every b <= 10
    patterns = np.array(list(itertools.product([0, 1], repeat=10)))
    codes = pack(np.tile(patterns, (3, 1)))
    ratios = dg_codes.table_balance(codes, range(1, 11))
    for b, r in ratios.items():
        assert r == pytest.approx(1.0), b
    # all codes identical: one full bucket, ratio 2^b
    same = np.repeat(codes[:1], 500, axis=0)
    for b, r in dg_codes.table_balance(same, range(1, 17)).items():
        assert r == pytest.approx(2.0**b)


def test_table_balance_matches_direct_definition() -> None:
    rng = np.random.default_rng(4)
    bits = rng.random((3000, 24)) < np.linspace(0.1, 0.5, 24)  # biased bits: unbalanced tables
    codes = pack(bits)
    got = dg_codes.table_balance(codes, dg_codes.BALANCE_BITS)
    for b in dg_codes.BALANCE_BITS:
        ids = (bits[:, :b].astype(np.int64) << np.arange(b)).sum(axis=1)
        sizes = np.bincount(ids).astype(np.float64)
        M = (sizes**2).sum() / len(codes)
        assert got[b] == pytest.approx(M / (len(codes) / 2**b), rel=1e-12)


def test_uniform_balance_is_the_expectation_for_random_codes() -> None:
    rng = np.random.default_rng(6)
    n, b = 400, 8
    ratios = [dg_codes.table_balance(rng.integers(0, 256, (n, 1), dtype=np.uint8), [b])[b] for _ in range(300)]
    assert np.mean(ratios) == pytest.approx(dg_codes.uniform_balance(n, b), rel=0.02)
    assert dg_codes.uniform_balance(1, 5) == 32


# --- code usage -------------------------------------------------------------------------------------


def test_sign_code_usage_matches_numpy(monkeypatch) -> None:
    monkeypatch.setattr(dg_codes, "_CODE_CHUNK", 333)  # several chunks, the last one partial
    rng = np.random.default_rng(8)
    z = rng.standard_normal((2000, 16))
    z[:, 1] = z[:, 0] + 0.3 * z[:, 1]  # correlated bits 0 and 1
    z[:, 5] = 1.0  # constant bit
    bits = z > np.linspace(-1, 1, 16)
    usage = dg_codes.sign_code_usage(pack(bits), 16)
    np.testing.assert_allclose(usage["ones_fraction"], bits.mean(0))
    live = bits.std(0) > 0
    ref = np.corrcoef(bits[:, live].T.astype(np.float64))
    np.testing.assert_allclose(usage["corr"][np.ix_(live, live)], ref, atol=1e-10)
    assert np.isnan(usage["corr"][5]).all() and np.isnan(usage["corr"][:, 5]).all()
    assert usage["constant_bits"] == 1
    off = np.abs(ref[~np.eye(live.sum(), dtype=bool)])
    assert usage["mean_abs_corr"] == pytest.approx(off.mean())
    assert usage["max_abs_corr"] == pytest.approx(off.max())
    p = bits.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.nan_to_num(-(p * np.log2(p) + (1 - p) * np.log2(1 - p)))
    assert usage["mean_bit_entropy"] == pytest.approx(h.mean())


def test_sign_code_usage_of_all_patterns_is_ideal() -> None:
    bits = np.array(list(itertools.product([0, 1], repeat=8)))
    usage = dg_codes.sign_code_usage(pack(bits), 8)
    np.testing.assert_allclose(usage["ones_fraction"], 0.5)
    assert usage["mean_abs_corr"] == pytest.approx(0, abs=1e-12)
    assert usage["mean_bit_entropy"] == pytest.approx(1)
    assert dg_codes.distinct_share(pack(bits)) == 1.0


def test_lattice_code_usage_counts_atoms(monkeypatch) -> None:
    monkeypatch.setattr(dg_codes, "_CODE_CHUNK", 3)
    rng = np.random.default_rng(9)
    d, r2 = 8, 10
    codec = LatticeCodec(r2=r2).fit(np.zeros((1, d), np.float32))
    table = atoms(d, r2)
    wanted = [5, 0, 3][: len(table)] + [0] * (len(table) - 3)
    points = []
    for atom, count in zip(table, wanted):
        for _ in range(count):  # a random signed permutation of the atom is a point of that atom
            points.append(rng.permutation(np.array(atom)) * rng.choice([-1, 1], d))
    points.append(points[0])  # one repeated code
    codes = codec.encode(np.array(points, np.float32))
    usage = dg_codes.lattice_code_usage(codes, codec)
    expected = np.array(wanted)
    expected[0] += 1
    np.testing.assert_array_equal(usage["atom_counts"], expected)
    assert usage["n_atoms"] == len(table) and usage["atoms_used"] == int((expected > 0).sum())
    n_distinct = len({tuple(p) for p in np.array(points).tolist()})
    assert usage["n_distinct"] == n_distinct
    assert usage["distinct_share"] == pytest.approx(n_distinct / len(points))


def test_distinct_share() -> None:
    codes = np.array([[1, 2], [1, 2], [2, 1], [0, 0]], np.uint8)
    assert dg_codes.distinct_share(codes) == 0.75
    assert math.isnan(dg_codes.distinct_share(np.zeros((0, 2), np.uint8)))


# --- recall -----------------------------------------------------------------------------------------


def test_tie_aware_recall_counts_tied_ids_and_respects_the_tolerance() -> None:
    xb = np.array([[1, 0], [1, 0], [2, 0], [2, 0], [2.0005, 0], [3, 0]], np.float32)
    xq = np.zeros((2, 2), np.float32)
    D, gt_I = brute_force_knn(xq, xb, 6)  # ids 0, 1, 2, 3, 4, 5 for both queries
    I = np.array([[1, 3, 0], [4, 5, -1]])
    # query 0: ids {1, 0} of gt {0, 1, 2}; true distances 1, 2, 1 are all <= 2 (the 3rd true distance)
    # query 1: 2.0005 is within 1e-3 of 2 but not within 1e-4; 3 and the missing result never count
    assert dg_recall.id_recall(I, gt_I, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert dg_recall.tie_aware_recall(I, xq, xb, D, 3) == pytest.approx((1 + 1 / 3) / 2)
    assert dg_recall.tie_aware_recall(I, xq, xb, D, 3, tol=1e-4) == pytest.approx((1 + 0) / 2)
    # k = 1: returning the duplicate id 1 instead of id 0 is a hit only for the tie-aware measure
    assert dg_recall.id_recall(I[:1], gt_I[:1], 1) == 0
    assert dg_recall.tie_aware_recall(I[:1], xq[:1], xb, D[:1], 1) == 1
    # a row callable gives the same as the array
    calls = []
    rows = lambda ids: (calls.append(len(ids)), xb[ids])[1]  # noqa: E731
    assert dg_recall.tie_aware_recall(I, xq, rows, D, 3) == dg_recall.tie_aware_recall(I, xq, xb, D, 3)
    assert calls == [5]  # the -1 result is not looked up


@pytest.mark.parametrize("distance", ["euclidean", "angular", "dot"])
def test_true_distances_match_reference(distance: str) -> None:
    rng = np.random.default_rng(11)
    xq = rng.standard_normal((7, 5)).astype(np.float32)
    xb = rng.standard_normal((40, 5)).astype(np.float32)
    I = rng.integers(0, 40, (7, 6))
    ref = np.take_along_axis(pairwise_reference(xq, xb, distance), I, 1)
    np.testing.assert_allclose(dg_recall.true_distances(xq, I, xb, distance), ref, rtol=1e-6, atol=1e-6)


# --- inspect end to end -------------------------------------------------------------------------------


def check_space(
    report: dict, space: str, xq: np.ndarray, xb: np.ndarray, k: int, target_ids: np.ndarray, nn_ids: np.ndarray
) -> None:
    """The report's uniformity, ε curve and NN angle for one space against brute force.

    target_ids: the database row whose distance decides the ε recall of each query; nn_ids: the row whose
    angle to the query is measured (both the input-space nearest neighbour, up to ties)."""
    D, _ = brute_force_knn(xq, xb, k)
    u = report["uniformity"][space]
    np.testing.assert_allclose(u["d1"], D[:, 0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(u["dk"], D[:, k - 1], rtol=1e-5, atol=1e-4)
    assert u["p"] == pytest.approx(uniformity_bruteforce(D[:, 0], D[:, k - 1]), abs=1e-3)
    e = report["epsilon"][space]
    radii = np.asarray(e["radius"], np.float64)
    full = l2_distances(xq, xb)
    # radii are observed float32 distances: a row exactly at a radius may fall either side of it after
    # rounding, so the report must lie between the counts just inside and just outside every radius
    lo, hi = radii[None, None, :] * (1 - 1e-5), radii[None, None, :] * (1 + 1e-5)
    got = np.asarray(e["results_per_query"])
    assert np.all((full[:, :, None] < lo).sum(1).mean(0) <= got + 1e-9)
    assert np.all(got <= (full[:, :, None] <= hi).sum(1).mean(0) + 1e-9)
    target = full[np.arange(len(xq)), target_ids][:, None]
    rec = np.asarray(e["recall"])
    assert np.all((target < lo[0]).mean(0) <= rec + 1e-9) and np.all(rec <= (target <= hi[0]).mean(0) + 1e-9)
    assert rec[-1] == 1.0
    angle = distances.angles_deg(xq, xb[nn_ids])
    assert report["angle"][space]["mean_deg"] == pytest.approx(np.nanmean(angle), rel=1e-4)


def test_inspect_codes_against_brute_force(pipeline) -> None:
    data = pipeline.data
    k = 20
    report = dg_report.inspect(str(pipeline.sign_codes), str(data.h5), nq=30, sample=None, k=k, block_size=128)
    json.dumps(report, allow_nan=False)  # strict JSON
    assert report["kind"] == "codes" and report["n_sample"] == len(data.xb) and report["nq"] == 30
    xq = data.xq[:30]
    _, I_in = brute_force_knn(xq, data.xb, 1)
    nn = I_in[:, 0]
    check_space(report, "input", xq, data.xb, k, nn, nn)
    # transformed space: the stored rotation applied by us, the target is still the input-space neighbour;
    # the target distance is the nearest over input-space ties, so compare with the minimum over ties
    from vecspread.models import open_codes

    art, transform, codec = open_codes(str(pipeline.sign_codes))
    with art:
        codes = art.file["codes"][()]
    yq, yb = transform.apply_query(xq), transform.apply(data.xb)
    full_in = l2_distances(xq, data.xb)
    tied = full_in <= full_in.min(1, keepdims=True) * (1 + 1e-5) + 1e-6
    full_y = l2_distances(yq, yb)
    best_tied = np.where(tied, full_y, np.inf).argmin(1)
    check_space(report, "transformed", yq, yb, k, best_tied, nn)

    c = report["codes"]
    assert c["codec"] == "sign" and c["n"] == len(codes) and c["bits"] == 32
    ratios = dg_codes.table_balance(codes, dg_codes.BALANCE_BITS)
    assert {int(b): v["ratio"] for b, v in c["table_balance"].items()} == pytest.approx(ratios)
    assert c["distinct_share"] == dg_codes.distinct_share(codes)
    np.testing.assert_allclose(c["bit_usage"]["ones_fraction"], dg_codes.sign_code_usage(codes, 32)["ones_fraction"])

    # recall: an independent Hamming scan, ids vs recomputed true distances, exact ground truth
    r = report["recall"]
    assert r["groundtruth"] == "computed" and r["k"] == [1, 10, 100]
    qbits = np.unpackbits(codec.encode(yq), axis=1, bitorder="little")
    dbits = np.unpackbits(codes, axis=1, bitorder="little")
    ham = (qbits[:, None, :] != dbits[None, :, :]).sum(-1)
    I = np.lexsort((np.broadcast_to(np.arange(len(codes)), ham.shape), ham), axis=1)[:, :100]
    gt_D, gt_I = brute_force_knn(xq, data.xb, 100)
    for kk in (1, 10, 100):
        assert r["ids"][str(kk)] == pytest.approx(dg_recall.id_recall(I, gt_I, kk))
        got = np.take_along_axis(full_in, I[:, :kk], 1)
        assert r["tie_aware"][str(kk)] == pytest.approx(((got <= gt_D[:, kk - 1 : kk] + 1e-3).sum(1) / kk).mean())


def test_inspect_model_on_a_sample(pipeline) -> None:
    data = pipeline.data
    report = dg_report.inspect(str(pipeline.identity), str(data.h5), nq=25, sample=200, k=10, seed=3, block_size=64)
    assert report["kind"] == "model" and report["n_sample"] == 200 and "codes" not in report and "recall" not in report
    sel = np.sort(np.random.default_rng(3).choice(len(data.xb), 200, replace=False))
    xq, xb = data.xq[:25], data.xb[sel]
    _, I = brute_force_knn(xq, xb, 1)
    check_space(report, "input", xq, xb, 10, I[:, 0], I[:, 0])
    # identity: the transformed space is the input space
    for key in ("uniformity", "epsilon", "angle"):
        assert report[key]["transformed"] == report[key]["input"]
    summary = dg_report.summarize(report)
    assert summary["uniformity input (P[d1 > d10'])"] == round(report["uniformity"]["input"]["p"], 4)


def test_inspect_takes_the_nearest_of_tied_neighbours_in_the_transformed_space(tmp_path) -> None:
    # each query q has two input-space nearest neighbours at distance 3: q + 3 e0 (lower id, kept by a
    # PCA to the two wide dimensions 0, 1) and q + 3 e2 (dropped by it). A tie must not count as a miss,
    # so the transformed-space target is the second one, at distance ~0.
    import h5py

    from vecspread.stages.train import train_model

    rng = np.random.default_rng(12)
    nq = 15
    background = np.zeros((300, 4))
    background[:, :2] = rng.uniform(-1000, 1000, (300, 2))
    xq = np.zeros((nq, 4))
    xq[:, :2] = rng.uniform(-1000, 1000, (nq, 2)).round()
    a, b = xq + [3, 0, 0, 0], xq + [0, 0, 3, 0]
    xb = np.concatenate([a, b, background]).astype(np.float32)
    assert np.all(np.sort(l2_distances(xq, xb), axis=1)[:, 2] > 3)  # exactly two neighbours at distance 3
    path = tmp_path / "ties.h5"
    with h5py.File(path, "w") as f:
        f["train"], f["test"] = xb, xq.astype(np.float32)
        f.attrs["distance"] = "euclidean"
    train_model(str(path), str(tmp_path / "pca2.h5"), "pca", {"dout": 2})
    report = dg_report.inspect(str(tmp_path / "pca2.h5"), str(path), k=5)
    art, transform = open_model(str(tmp_path / "pca2.h5"))
    with art:
        yq, yb = transform.apply_query(xq.astype(np.float32)), transform.apply(xb)
    target = np.minimum(l2_distances(yq, yb[:nq]).diagonal(), l2_distances(yq, yb[nq : 2 * nq]).diagonal())
    assert target.max() < 0.1
    e = report["epsilon"]["transformed"]
    small = np.asarray(e["radius"]) < 1
    assert np.asarray(e["recall"])[small].max() == 1.0  # first-ranked targets (~3 away) would give 0
    # the angle is measured to the first-ranked neighbour, q + 3 e0, in both spaces
    assert report["angle"]["input"]["mean_deg"] == pytest.approx(np.mean(distances.angles_deg(xq, a)), rel=1e-5)


def test_inspect_lattice_codes_report_atoms_of_the_sample(pipeline) -> None:
    report = dg_report.inspect(str(pipeline.lattice_codes), str(pipeline.data.h5), nq=10, k=10, recall_at=(1, 10),
                        sample=250, seed=5)
    from vecspread.models import open_codes

    art, _, codec = open_codes(str(pipeline.lattice_codes))
    with art:
        codes = art.file["codes"][()]
    sel = np.sort(np.random.default_rng(5).choice(len(codes), 250, replace=False))
    usage = dg_codes.lattice_code_usage(codes[sel], codec)
    assert report["codes"]["atom_usage"]["atom_counts"] == usage["atom_counts"].tolist()
    assert report["codes"]["distinct_share"] == dg_codes.distinct_share(codes[sel])
    assert report["codes"]["n"] == 250 and "table_balance" not in report["codes"]
    # recall is measured over all codes, not the sample
    assert set(report["recall"]["ids"]) == {"1", "10"}


def test_inspect_model_with_a_trained_codec_encodes_the_sample(pipeline, tmp_path) -> None:
    import shutil

    import h5py

    from vecspread.io import fingerprints
    from vecspread.io.components import write_component

    model = tmp_path / "rot32_sign.h5"
    shutil.copy(pipeline.rot32, model)
    with h5py.File(model, "a") as f:  # as `train` stores a codec fitted with the transform (e.g. ITQ's bits)
        write_component(f.create_group("codec"), "sign", {"d": 32, "bits": 32, "code_size": 4}, {})
        fingerprints.record(f)  # and records the fingerprint of what it wrote
    report = dg_report.inspect(str(model), str(pipeline.data.h5), nq=10, k=10, sample=300, seed=2)
    art, transform = open_model(str(model))
    with art:
        sel = np.sort(np.random.default_rng(2).choice(len(pipeline.data.xb), 300, replace=False))
        codes = SignCodec().fit(np.zeros((1, 32), np.float32)).encode(transform.apply(pipeline.data.xb[sel]))
    c = report["codes"]
    assert c["source"] == "model codec" and c["n"] == 300 and "recall" not in report
    assert {int(b): v["ratio"] for b, v in c["table_balance"].items()} == pytest.approx(dg_codes.table_balance(codes))
    assert c["bit_usage"]["mean_abs_corr"] == pytest.approx(dg_codes.sign_code_usage(codes, 32)["mean_abs_corr"])


def test_inspect_refuses_bad_requests(pipeline, syn_other) -> None:
    data = pipeline.data
    with pytest.raises(ConfigError, match="k=700"):
        dg_report.inspect(str(pipeline.identity), str(data.h5), k=700)
    with pytest.raises(ConfigError, match="radii"):
        dg_report.inspect(str(pipeline.identity), str(data.h5), n_radii=1)
    with pytest.raises(InputError, match="expected a model or codes"):
        dg_report.inspect(str(data.h5), str(data.h5))
    with pytest.raises(Exception, match="encoded from"):
        dg_report.inspect(str(pipeline.sign_codes), str(syn_other.h5))


# --- figures ------------------------------------------------------------------------------------------


def test_write_figures(pipeline, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from vecspread.diagnostics.plots import write_figures

    report = dg_report.inspect(str(pipeline.pca24), str(pipeline.data.h5), nq=20, k=10)
    paths = write_figures(report, tmp_path / "figs")
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["epsilon.png", "uniformity.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in (tmp_path / "figs").iterdir()) == ["epsilon.png", "uniformity.png"]


def test_figures_without_matplotlib_raise_a_config_error() -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import vecspread.diagnostics.report, vecspread.diagnostics.plots\n"
        "from vecspread.errors import ConfigError\n"
        "try:\n    vecspread.diagnostics.plots.write_figures({}, 'unused')\n"
        "except ConfigError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "vecspread[plot]" in out.stdout
