"""Tests of vecspread.codecs.lattice against independent brute force on small lattices."""

from __future__ import annotations

import itertools
import math

import faiss
import numpy as np
import pytest

from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.codecs.lattice.combinatorics import (
    atom_size,
    atoms,
    bits_for,
    check_storable,
    count_points,
    describe,
    n_atoms,
    r2_for_bits,
    theta_count,
)
from vecspread.errors import ConfigError, InputError
from vecspread.scanners import search

faiss.omp_set_num_threads(1)


# -- brute force, independent of the module ------------------------------------------------------


def product_points(d: int, r2_max: int) -> dict[int, list[tuple[int, ...]]]:
    """All z in Z^d with 1 <= ||z||^2 <= r2_max, grouped by squared norm (itertools.product)."""
    r = math.isqrt(r2_max)
    by_norm: dict[int, list[tuple[int, ...]]] = {}
    for z in itertools.product(range(-r, r + 1), repeat=d):
        n2 = sum(v * v for v in z)
        if 1 <= n2 <= r2_max:
            by_norm.setdefault(n2, []).append(z)
    return by_norm


def sphere_points(d: int, r2: int) -> np.ndarray:
    """All z in Z^d with ||z||^2 == r2, coordinate by coordinate (for d too large for product)."""
    out: list[list[int]] = []
    prefix: list[int] = []

    def rec(i: int, rest: int) -> None:
        if i == d:
            if rest == 0:
                out.append(list(prefix))
            return
        r = math.isqrt(rest)
        for v in range(-r, r + 1):
            prefix.append(v)
            rec(i + 1, rest - v * v)
            prefix.pop()

    rec(0, r2)
    return np.array(out, dtype=np.float64)


def fitted(d: int, r2: int) -> LatticeCodec:
    return LatticeCodec(r2=r2).fit(np.zeros((1, d), dtype=np.float32))


def random_directions(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Random vectors with widely varying norms (the codec must only look at directions)."""
    y = rng.standard_normal((n, d))
    y *= 10.0 ** rng.uniform(-3, 3, size=(n, 1))
    return y.astype(np.float32)


# -- combinatorics -------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
def test_counts_and_atoms_match_brute_force(d: int) -> None:
    by_norm = product_points(d, 12)
    for r2 in range(1, 13):
        points = by_norm.get(r2, [])
        expected_atoms = {tuple(sorted((abs(v) for v in z), reverse=True)) for z in points}
        listed = atoms(d, r2)
        assert set(listed) == expected_atoms
        assert len(listed) == len(expected_atoms) == n_atoms(d, r2)
        assert listed == sorted(listed, reverse=True)  # documented order: decreasing lexicographic
        assert count_points(d, r2) == len(points)
        assert theta_count(d, r2) == len(points)
        assert sum(atom_size(a) for a in listed) == len(points)


def test_paper_example_d8_r2_10() -> None:
    assert atoms(8, 10) == [(3, 1, 0, 0, 0, 0, 0, 0), (2, 2, 1, 1, 0, 0, 0, 0), (2, 1, 1, 1, 1, 1, 1, 0)]
    # 8!/(2!2!4!) = 420 arrangements (the paper's text says 240, a slip) times 2^4 signs
    assert atom_size((2, 2, 1, 1, 0, 0, 0, 0)) == 420 * 2**4
    assert [atom_size(a) for a in atoms(8, 10)] == [56 * 4, 420 * 16, 56 * 128]
    assert count_points(8, 10) == len(sphere_points(8, 10)) == 14112
    assert describe(8, 10) == {"dim": 8, "r2": 10, "n_atoms": 3, "n_points": 14112, "bits": 14}


@pytest.mark.parametrize("d, r2", [(24, 300), (64, 100), (40, 24)])
def test_large_counts_agree_with_theta_series(d: int, r2: int) -> None:
    listed = atoms(d, r2)
    assert len(listed) == n_atoms(d, r2)
    assert count_points(d, r2) == theta_count(d, r2) == sum(atom_size(a) for a in listed)


def test_acceptance_values() -> None:
    assert r2_for_bits(24, 64) == 79
    assert len(atoms(24, 79)) == 256
    assert count_points(24, 79) == theta_count(24, 79) == 17319684851070915840
    assert bits_for(24, 79) == 64
    assert count_points(24, 80) > 2**64  # so 79 is the largest that fits
    assert r2_for_bits(32, 64) == 36
    assert r2_for_bits(40, 64) == 24


def test_r2_for_bits_is_last_fit_before_first_overflow() -> None:
    for d, bits in [(4, 8), (8, 20), (16, 40), (3, 8)]:
        r2 = r2_for_bits(d, bits)
        counts = [theta_count(d, r) for r in range(1, r2 + 2)]
        assert 0 < counts[r2 - 1] <= 2**bits
        assert all(c <= 2**bits for c in counts[:r2])
        assert counts[r2] > 2**bits or (counts[r2] == 0 and d <= 3)
    assert r2_for_bits(1, 8) == 484  # 1-d counts never exceed 2: capped at faiss's r2 <= 512
    with pytest.raises(ConfigError):
        r2_for_bits(24, 5)  # r2=1 already has 48 points


def test_atoms_order_matches_faiss_rank_ranges() -> None:
    for d, r2 in [(8, 10), (24, 79)]:
        codec = faiss.ZnSphereCodec(d, r2)
        voc = faiss.vector_to_array(codec.voc).reshape(-1, d)
        assert [tuple(int(v) for v in row) for row in voc] == atoms(d, r2)


@pytest.mark.parametrize(
    "d, r2, needle",
    [(65, 10, "d=64"), (24, 513, "512"), (24, 0, ">= 1"), (3, 7, "--r2 6 or --r2 8"), (64, 100, "--bits 64")],
)
def test_check_storable_refusals(d: int, r2: int, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        check_storable(d, r2)
    assert "\n" not in str(info.value)


def test_check_storable_accepts_and_uses_exact_count() -> None:
    check_storable(24, 79)
    check_storable(64, r2_for_bits(64, 64))
    assert count_points(64, 100) >= 2**64  # refused above although faiss's nv wraps to < 2^64
    assert faiss.ZnSphereCodec(64, 100).nv < 2**64


# -- encode / decode -----------------------------------------------------------------------------


@pytest.mark.parametrize("d, r2", [(4, 6), (8, 10)])
def test_encode_finds_nearest_lattice_direction(d: int, r2: int) -> None:
    codec = fitted(d, r2)
    points = sphere_points(d, r2) / math.sqrt(r2)
    y = random_directions(np.random.default_rng(d), 300, d)
    unit = y.astype(np.float64) / np.linalg.norm(y.astype(np.float64), axis=1, keepdims=True)
    best = (unit @ points.T).max(axis=1)
    got = codec.decode(codec.encode(y)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose((unit * got).sum(axis=1), best, atol=1e-5)  # ties may pick either


@pytest.mark.parametrize("d, r2", [(24, 79), (64, 15), (40, 24)])
def test_encode_is_optimal_over_atoms_in_high_dimension(d: int, r2: int) -> None:
    # rearrangement inequality: max_z <y, z> = max over atoms of <sorted |y|, atom>
    codec = fitted(d, r2)
    y = random_directions(np.random.default_rng(1), 200, d)
    unit = y.astype(np.float64) / np.linalg.norm(y.astype(np.float64), axis=1, keepdims=True)
    table = np.array(atoms(d, r2), dtype=np.float64) / math.sqrt(r2)
    best = (-np.sort(-np.abs(unit), axis=1) @ table.T).max(axis=1)
    got = codec.quantize(y).astype(np.float64)
    np.testing.assert_allclose((unit * got).sum(axis=1), best, atol=1e-5)
    assert np.allclose(np.round(got * math.sqrt(r2)), got * math.sqrt(r2), atol=1e-4)


@pytest.mark.parametrize("d, r2", [(4, 6), (8, 10)])
def test_all_points_round_trip_to_distinct_ranks(d: int, r2: int) -> None:
    codec = fitted(d, r2)
    points = sphere_points(d, r2)
    codes = codec.encode(points.astype(np.float32))
    assert codes.dtype == np.uint8 and codes.shape == (len(points), codec.code_size)
    ranks = np.zeros((len(points), 8), dtype=np.uint8)
    ranks[:, : codec.code_size] = codes
    ranks = ranks.view("<u8").ravel()
    assert sorted(ranks.tolist()) == list(range(count_points(d, r2)))  # a bijection onto 0..N-1
    scaled = codec.decode(codes).astype(np.float64) * math.sqrt(r2)
    np.testing.assert_allclose(scaled, points, atol=1e-5)
    np.testing.assert_array_equal(np.rint(scaled), points)


def test_quantize_equals_decode_encode_and_is_idempotent_and_scale_free() -> None:
    codec = fitted(24, 79)
    y = random_directions(np.random.default_rng(2), 500, 24)
    q = codec.quantize(y)
    np.testing.assert_array_equal(q, codec.decode(codec.encode(y)))
    np.testing.assert_array_equal(codec.quantize(q), q)
    np.testing.assert_array_equal(codec.encode(q), codec.encode(y))
    for scale in (1e-30, 1e-3, 1e3, 1e30):
        np.testing.assert_array_equal(codec.encode(y * np.float32(scale)), codec.encode(y))
    assert q.dtype == np.float32 and q.shape == y.shape


def test_code_layout_and_state_round_trip() -> None:
    codec = LatticeCodec(bits=64).fit(np.zeros((3, 24), dtype=np.float32))
    assert (codec.r2_, codec.code_bits, codec.code_size) == (79, 64, 8)
    assert fitted(8, 10).code_size == 2 and fitted(8, 10).code_bits == 14
    config = codec.get_config()
    assert config == {"r2": 79, "d": 24, "bits": 64, "code_size": 8}
    clone = LatticeCodec.from_state(config, codec.get_arrays())
    y = random_directions(np.random.default_rng(3), 50, 24)
    np.testing.assert_array_equal(clone.encode(y), codec.encode(y))
    with pytest.raises(InputError):
        LatticeCodec.from_state({**config, "bits": 63}, {})


def test_zero_rows_encode_to_rank_zero_without_nan() -> None:
    codec = fitted(24, 79)
    y = np.zeros((3, 24), dtype=np.float32)
    y[1] = np.random.default_rng(4).standard_normal(24)
    codes = codec.encode(y)
    assert not codes[[0, 2]].any()
    out = codec.decode(codes)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0] * math.sqrt(79), atoms(24, 79)[0], atol=1e-5)


def test_bad_inputs_and_parameters() -> None:
    codec = fitted(8, 10)
    with pytest.raises(InputError):
        codec.encode(np.full((2, 8), np.nan, dtype=np.float32))
    with pytest.raises(InputError):
        codec.encode(np.zeros((2, 7), dtype=np.float32))
    with pytest.raises(InputError):
        codec.decode(np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(InputError):  # 0xffff >= 14112: not a rank of this lattice
        codec.decode(np.full((1, 2), 255, dtype=np.uint8))
    for kwargs in ({}, {"r2": 10, "bits": 14}):
        with pytest.raises(ConfigError):
            LatticeCodec(**kwargs)
    with pytest.raises(ConfigError):
        LatticeCodec(r2=7).fit(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ConfigError):
        LatticeCodec(bits=64, blocks=1).fit(np.zeros((1, 65), dtype=np.float32))  # 65 > 64 dimensions


# -- search --------------------------------------------------------------------------------------


def test_search_matches_brute_force_over_blocks() -> None:
    rng = np.random.default_rng(5)
    codec = fitted(8, 10)
    codes = codec.encode(random_directions(rng, 1000, 8))
    blocks = [codes[:300], codes[300:307], codes[307:307], codes[307:760], codes[760:]]
    yq = random_directions(rng, 15, 8)
    k = 40  # larger than the 7-code block
    D, I = search(codec, yq, iter(blocks), k)
    assert D.shape == I.shape == (15, k) and D.dtype == np.float32 and I.dtype == np.int64

    points = codec.decode(codes).astype(np.float64)
    unit = yq.astype(np.float64) / np.linalg.norm(yq.astype(np.float64), axis=1, keepdims=True)
    brute = ((unit[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(1000), brute.shape), brute), axis=1)[:, :k]
    np.testing.assert_allclose(D, np.take_along_axis(brute, order, axis=1), atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(brute, I, axis=1), D, atol=1e-5)
    near_tie = np.abs(np.take_along_axis(brute, I, axis=1) - np.take_along_axis(brute, order, axis=1))
    assert (I == order)[near_tie == 0].mean() > 0.99  # same ids wherever no float-level tie
    for row_d, row_i in zip(D, I):  # exact ties (duplicate codes) are ordered by id
        assert len(set(row_i.tolist())) == k
        same = row_d[1:] == row_d[:-1]
        assert (row_i[1:][same] > row_i[:-1][same]).all()


def test_search_ties_are_ordered_by_id_across_blocks() -> None:
    codec = fitted(8, 10)
    y = random_directions(np.random.default_rng(6), 3, 8)
    codes = codec.encode(y[[0, 1, 0, 2, 0, 0, 1, 0]])  # code of y[0] at ids 0, 2, 4, 5, 7
    D, I = search(codec, y[:1], [codes[:3], codes[3:5], codes[5:]], 4)
    assert I[0].tolist() == [0, 2, 4, 5]
    assert (D[0] == D[0, 0]).all()


def test_search_beyond_the_number_of_codes_pads_as_every_scanner_does() -> None:
    codec = fitted(8, 10)
    codes = codec.encode(random_directions(np.random.default_rng(7), 10, 8))
    yq = random_directions(np.random.default_rng(8), 2, 8)
    D, I = search(codec, yq, [codes[:4], codes[4:]], 10)
    assert sorted(I[0].tolist()) == list(range(10))
    D11, I11 = search(codec, yq, [codes[:4], codes[4:]], 11)
    np.testing.assert_array_equal(I11[:, :10], I)
    assert (I11[:, 10] == -1).all() and np.isinf(D11[:, 10]).all()
