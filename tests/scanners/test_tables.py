"""Tests of the hash-table scanner (vecspread.scanners.tables) against brute force written with Python integers."""

from __future__ import annotations

import itertools

import faiss
import numpy as np
import pytest

from vecspread.codecs.sign.codec import SignCodec
from vecspread.errors import ConfigError
from vecspread.scanners import REGISTRY, choose, search
from vecspread.scanners.tables.hashtables import HashTables, bucket_keys, probe_masks, probes_within, table_positions

faiss.omp_set_num_threads(1)


def random_codes(n: int, code_size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, code_size), dtype=np.uint8)


def code_bit(code: np.ndarray, i: int) -> int:
    return (int(code[i // 8]) >> (i % 8)) & 1


def brute_key(code: np.ndarray, positions: list[int]) -> int:
    return sum(code_bit(code, p) << j for j, p in enumerate(positions))


def brute_masks(nbits: int, nprobe: int) -> list[int]:
    return sorted(range(1 << nbits), key=lambda m: (bin(m).count("1"), m))[: nprobe + 1]


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b))


# -- probing order ------------------------------------------------------------------------------


@pytest.mark.parametrize("nbits,nprobe", [(1, 0), (1, 1), (4, 15), (4, 5), (10, 55), (10, 1023), (17, 0), (17, 17),
                                          (17, 153), (17, 154), (17, 900), (18, 5000)])
def test_probe_masks_in_increasing_hamming_weight_then_value(nbits, nprobe):
    np.testing.assert_array_equal(probe_masks(nbits, nprobe), brute_masks(nbits, nprobe))


@pytest.mark.parametrize("nbits,radius", [(6, 0), (6, 1), (6, 2), (20, 2), (30, 1)])
def test_probes_within_radius_is_the_hamming_ball(nbits, radius):
    masks = probe_masks(nbits, probes_within(nbits, radius))
    weights = [bin(int(m)).count("1") for m in masks]
    assert max(weights) == radius
    assert len(set(masks.tolist())) == len(masks) == sum(1 for w in range(radius + 1) for _ in
                                                         itertools.combinations(range(nbits), w))


def test_probe_masks_refuses_too_many():
    with pytest.raises(ConfigError):
        probe_masks(4, 16)
    with pytest.raises(ConfigError):
        probe_masks(4, -1)


# -- keys and layouts ---------------------------------------------------------------------------


def test_bucket_keys_follow_faiss_bit_order():
    codes = random_codes(50, 4, 0)
    pos = table_positions(32, 7, 5, "random", seed=3)
    keys = bucket_keys(codes, pos)
    for i in range(50):
        for t in range(5):
            assert keys[i, t] == brute_key(codes[i], pos[t].tolist())


def test_layouts():
    s = table_positions(64, 16, 4, "slices")
    np.testing.assert_array_equal(s, np.arange(64).reshape(4, 16))
    r = table_positions(64, 16, 8, "random", seed=1)
    assert r.shape == (8, 16) and all(len(set(row)) == 16 for row in r.tolist()) and r.min() >= 0 and r.max() < 64
    np.testing.assert_array_equal(r, table_positions(64, 16, 8, "random", seed=1))
    assert not np.array_equal(r, table_positions(64, 16, 8, "random", seed=2))


@pytest.mark.parametrize("args", [(64, 16, 5, "slices"), (64, 65, 1, "random"), (64, 8, 0, "random"),
                                  (64, 8, 2, "diagonal")])
def test_bad_layouts_are_config_errors(args):
    with pytest.raises(ConfigError):
        table_positions(*args)


# -- candidates and ranking ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["random", "slices"])
@pytest.mark.parametrize("nprobe", [0, 3, 6, 21, 63])
@pytest.mark.parametrize("K", [6, 8])  # 8: 3 x 256 buckets for 400 codes, many probes hit empty ones
def test_candidates_equal_brute_force_bucket_membership(layout, nprobe, K):
    L = 3
    xb = random_codes(400, 3, 1)
    xq = random_codes(15, 3, 2)
    ht = HashTables(K, L, layout=layout, seed=4).build([xb[:150], xb[150:]])
    pos = table_positions(24, K, L, layout, seed=4).tolist()
    masks = set(brute_masks(K, nprobe))
    qidx, ids = ht.candidates(xq, nprobe)
    D, I, ncand = ht.search(xq, 10, nprobe)
    for q in range(len(xq)):
        qkeys = [brute_key(xq[q], p) for p in pos]
        members = [i for i in range(len(xb))
                   if any((brute_key(xb[i], pos[t]) ^ qkeys[t]) in masks for t in range(L))]
        np.testing.assert_array_equal(ids[qidx == q], members)
        assert ncand[q] == len(members)
        ranked = sorted(members, key=lambda i: (hamming(xq[q], xb[i]), i))[:10]
        expected_I = ranked + [-1] * (10 - len(ranked))
        expected_D = [hamming(xq[q], xb[i]) for i in ranked] + [np.inf] * (10 - len(ranked))
        np.testing.assert_array_equal(I[q], expected_I)
        np.testing.assert_array_equal(D[q], expected_D)
    if nprobe == (1 << K) - 1:
        assert (ncand == len(xb)).all()


@pytest.mark.parametrize("layout", ["random", "slices"])
def test_probing_all_buckets_equals_exhaustive_sign_codec_search(layout):
    """With 2^K buckets probed every code is a candidate: the exact Hamming ranking, ties by id."""
    K, L, k = 8, 2, 30
    xb = random_codes(1500, 4, 5)  # 32-bit codes, 1500 of them: many equal distances
    xq = random_codes(40, 4, 6)
    ht = HashTables(K, L, layout=layout, seed=0).build([xb[:1000], xb[1000:]])
    D, I, ncand = ht.search(xq, k, nprobe=(1 << K) - 1, query_block=16)
    assert (ncand == len(xb)).all()
    sign = SignCodec().fit(np.zeros((0, 32), np.float32))
    yq = np.unpackbits(xq, axis=1, bitorder="little").astype(np.float32) * 2 - 1  # signs give back xq
    D_ref, I_ref = search(sign, yq, [xb[:700], xb[700:]], k)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(D, D_ref)


def test_fewer_than_k_candidates_are_padded():
    xb = np.zeros((5, 1), np.uint8)
    xb[:, 0] = [0, 1, 2, 3, 0]
    ht = HashTables(2, 1, layout="slices").build([xb])
    D, I, ncand = ht.search(np.array([[0]], np.uint8), 4, nprobe=0)
    np.testing.assert_array_equal(I, [[0, 4, -1, -1]])
    np.testing.assert_array_equal(D, [[0, 0, np.inf, np.inf]])
    assert ncand.tolist() == [2]


def test_search_is_independent_of_query_blocking():
    xb, xq = random_codes(800, 8, 7), random_codes(50, 8, 8)
    ht = HashTables(10, 4, seed=2).build([xb])
    a = ht.search(xq, 20, nprobe=10, query_block=7)
    b = ht.search(xq, 20, nprobe=10, query_block=64)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_sort_deduplication_equals_bitmap(monkeypatch):
    """Above BITMAP_LIMIT candidates are deduplicated by sorting: same pairs, same results."""
    import vecspread.scanners.tables.hashtables as hashtables

    xb, xq = random_codes(600, 3, 11), random_codes(20, 3, 12)
    ht = HashTables(7, 3, seed=1).build([xb])
    a = ht.candidates(xq, 8), ht.search(xq, 15, 8)
    monkeypatch.setattr(hashtables, "BITMAP_LIMIT", 0)
    b = ht.candidates(xq, 8), ht.search(xq, 15, 8)
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(x, y)


def test_query_code_size_must_match():
    ht = HashTables(4, 1).build([random_codes(10, 2, 0)])
    with pytest.raises(ConfigError):
        ht.search(random_codes(2, 3, 0), 5)


@pytest.mark.parametrize("K,L,radius", [(8, 4, 0), (8, 4, 1), (12, 2, 2)])
def test_slices_layout_matches_faiss_multihash(K, L, radius):
    """faiss IndexBinaryMultiHash(d, L, K) with nflip = r computes distances for exactly our
    candidates (its ndis statistic) and returns the same distances; only its order among equal
    distances differs (not by id)."""
    xb, xq = random_codes(5000, 8, 9), random_codes(30, 8, 10)
    index = faiss.IndexBinaryMultiHash(64, L, K)
    index.nflip = radius
    index.add(xb)
    stats = faiss.cvar.indexBinaryHash_stats
    stats.reset()
    Df, If = index.search(xq, 10)
    ndis = stats.ndis
    D, I, ncand = HashTables(K, L, layout="slices").build([xb]).search(xq, 10, probes_within(K, radius))
    assert ndis == ncand.sum()
    found = np.isfinite(D)
    np.testing.assert_array_equal(Df[found], D[found])
    for q in range(len(xq)):
        strict = D[q] < D[q][found[q]].max()  # results before the last distance are the same set
        assert set(If[q][strict]) == set(I[q][strict])


def test_the_tables_scanner_is_chosen_by_its_options_and_equals_the_hash_tables():
    """search --tables ...: ``choose`` picks the scanner from the options, and it returns HashTables' results."""
    xb = random_codes(1000, 4, 13)
    xq = random_codes(25, 4, 14)
    sign = SignCodec().fit(np.zeros((0, 32), np.float32))
    yq = np.unpackbits(xq, axis=1, bitorder="little").astype(np.float32) * 2 - 1
    assert choose(sign, {}).name == "hamming"
    scanner = choose(sign, {"tables": 3, "bits_per_table": 8, "probes": 5, "table_layout": None})
    assert scanner.name == "tables" and (scanner.table_layout, scanner.table_seed) == ("random", 0)
    result = scanner.search(yq, [xb[:600], xb[600:]], 20)
    D, I, ncand = HashTables(8, 3).build([xb]).search(xq, 20, 5)
    np.testing.assert_array_equal(result.I, I)
    np.testing.assert_array_equal(result.D, D)
    assert result.stats["mean_candidates"] == pytest.approx(ncand.mean())


@pytest.mark.parametrize("options,needle", [
    ({"tables": 3}, "needs --bits-per-table"),
    ({"probes": 2}, "needs --tables"),
    ({"tables": 2, "bits_per_table": 40}, "exceeds the 32 bits"),
    ({"tables": 2, "bits_per_table": 8, "table_layout": "spiral"}, "spiral"),
])
def test_tables_options_are_checked(options, needle):
    sign = SignCodec().fit(np.zeros((0, 32), np.float32))
    with pytest.raises(ConfigError, match=needle):
        choose(sign, options)


def test_the_tables_scanner_refuses_codes_that_are_not_binary():
    from vecspread.codecs.lattice.codec import LatticeCodec

    lattice = LatticeCodec(bits=16).fit(np.zeros((0, 8), np.float32))
    with pytest.raises(ConfigError, match="binary"):
        REGISTRY.create("tables", {"tables": 2, "bits_per_table": 8}, lattice)
