"""FALCONN-style LSH tables: the hash families, multi-probe order, and the search against brute force."""

import itertools

import numpy as np
import pytest

from vecspread.codecs import REGISTRY as CODECS
from vecspread.errors import ConfigError
from vecspread.scanners import choose
from vecspread.scanners.lsh.families import CrossPolytope, Hyperplane, default_hashes
from vecspread.scanners.lsh.index import LSHIndex
from vecspread.searcher import Searcher


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((600, 8)).astype(np.float32)
    xq = rng.standard_normal((40, 8)).astype(np.float32)
    return xb, xq


def brute(xq, xb, k, metric="dot"):
    q, b = xq.astype(np.float64), xb.astype(np.float64)
    ref = -(q @ b.T) if metric == "dot" else ((q[:, None] - b[None]) ** 2).sum(-1)
    return ref, np.lexsort((np.broadcast_to(np.arange(len(xb)), ref.shape), ref), axis=1)[:, :k]


def test_hyperplane_keys_are_the_sign_bits(data):
    xb, _ = data
    fam = Hyperplane(8, 3, 5, seed=0)
    proj = xb.astype(np.float64) @ fam.planes_.T.astype(np.float64)
    bits = (proj.reshape(len(xb), 3, 5) > 0).astype(np.int64)
    np.testing.assert_array_equal(fam.keys(xb), (bits * (1 << np.arange(5))).sum(2))


def test_crosspolytope_keys_are_the_closest_signed_axis_after_rotation(data):
    xb, _ = data
    fam = CrossPolytope(8, 2, 2, seed=0)
    R = fam.rotations_.reshape(4, 8, 8).astype(np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(8), (4, 8, 8)), atol=1e-5)
    signed_axes = np.vstack([np.eye(8), -np.eye(8)])  # value v: +e_v, then -e_(v-8)
    values = np.stack([(xb @ R[i].T) @ signed_axes.T for i in range(4)], 1).argmax(2).reshape(len(xb), 2, 2)
    np.testing.assert_array_equal(fam.keys(xb), values[:, :, 0] + 16 * values[:, :, 1])


@pytest.mark.parametrize("family", ["hyperplane", "crosspolytope"])
def test_alternatives_shift_the_key_to_the_perturbed_bucket(family, data):
    """Each alternative's delta gives the key of the vector whose one hash takes that value."""
    _, xq = data
    fam = (Hyperplane(8, 2, 4, 0) if family == "hyperplane" else CrossPolytope(8, 2, 2, 0))
    keys, cost, delta = fam.alternatives(xq, 1000)
    assert (np.diff(cost, axis=3) >= 0).all() and (cost >= 0).all()
    base = 2 if family == "hyperplane" else 16
    nq, L, K, A = cost.shape

    def digits(key):
        return [(int(key) // base**f) % base for f in range(K)]

    for qi, t in itertools.product(range(nq), range(L)):
        own = digits(keys[qi, t])
        seen = set()
        for f, a in itertools.product(range(K), range(A)):
            new = digits(keys[qi, t] + delta[qi, t, f, a])
            assert [g for g in range(K) if new[g] != own[g]] == [f]  # only hash f changes
            seen.add(tuple(new))
        assert len(seen) == K * A  # every alternative is another bucket
    few = fam.alternatives(xq, 3)
    assert few[1].shape[3] == min(3, A)
    np.testing.assert_array_equal(few[1], cost[..., : min(3, A)])  # the cheapest, in the same order


@pytest.mark.parametrize("family", ["hyperplane", "crosspolytope"])
@pytest.mark.parametrize("metric", ["dot", "euclidean"])
def test_probing_every_bucket_is_the_exact_search(family, metric, data):
    xb, xq = data
    index = LSHIndex(family, 3, 2, seed=5, metric=metric).build(xb)
    ref, I_ref = brute(xq, xb, 10, metric)
    D, I, ncand = index.search(xq, 10, nprobes=3 * 16**2)
    assert (ncand == len(xb)).all()
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_allclose(D, np.take_along_axis(ref, I_ref, 1), rtol=1e-5, atol=1e-5)


def test_candidates_are_the_union_of_the_probed_buckets_in_score_order(data):
    """With P probes, the candidates are the ids of the P cheapest buckets over all tables (brute force
    over every rank vector of every table), and their exact top k."""
    xb, xq = data
    index = LSHIndex("hyperplane", 2, 3, seed=2, metric="dot").build(xb)
    keys_b = index.family_.keys(xb)
    qkeys, cost, delta = index.family_.alternatives(xq, 1000)
    ref, _ = brute(xq, xb, len(xb))
    for P in (1, 2, 5, 9, 16):
        D, I, ncand = index.search(xq, 5, nprobes=P)
        for qi in range(len(xq)):
            probes = []
            for t in range(2):
                for ranks in itertools.product(range(2), repeat=3):
                    score = sum(cost[qi, t, f, r - 1] for f, r in enumerate(ranks) if r)
                    key = qkeys[qi, t] + sum(delta[qi, t, f, r - 1] for f, r in enumerate(ranks) if r)
                    probes.append((score, t, key))
            probes.sort(key=lambda p: p[0])
            cut = probes[P - 1][0] if P <= len(probes) else np.inf
            sure = {(t, key) for score, t, key in probes if score < cut}  # ties at the cut may go either way
            maybe = {(t, key) for score, t, key in probes if score <= cut}
            lo = set(np.flatnonzero(np.isin(np.arange(len(xb)), [i for t, key in sure for i in np.flatnonzero(keys_b[:, t] == key)])))
            hi = set(i for t, key in maybe for i in np.flatnonzero(keys_b[:, t] == key))
            assert len(lo) <= ncand[qi] <= len(hi)
            found = I[qi][I[qi] >= 0]
            assert set(found) <= hi
            expect = sorted(hi, key=lambda i: (ref[qi, i], i))[:5] if len(lo) == len(hi) else None
            if expect is not None:
                assert list(found) == expect


def test_more_probes_find_more(data):
    xb, xq = data
    index = LSHIndex("crosspolytope", 4, 2, seed=0, metric="dot").build(xb)
    _, I_ref = brute(xq, xb, 1)
    last_c, last_r = -1.0, -1.0
    for P in (4, 16, 64, 256, 1024):
        _, I, ncand = index.search(xq, 1, P)
        recall = float((I[:, 0] == I_ref[:, 0]).mean())
        assert ncand.mean() >= last_c and recall >= last_r - 0.05
        last_c, last_r = ncand.mean(), recall
    assert last_r == 1.0


def test_scanner_over_flat_codes_and_searcher_builds_the_index_once(data, monkeypatch):
    xb, xq = data
    codec = CODECS.create("flat", {"metric": "dot"}).fit(xb)
    codes = codec.encode(xb)
    options = {"lsh": "hyperplane", "lsh_tables": 6, "lsh_probes": 40, "lsh_seed": 3}
    scanner = choose(codec, options)
    assert scanner.name == "lsh"
    one = scanner.search(xq, [codes[:100], codes[100:]], 5)
    assert one.stats["mean_candidates"] > 0 and "index_build_seconds" in one.stats
    builds = []
    real_build = type(scanner).build
    monkeypatch.setattr(type(scanner), "build", lambda self, blocks: builds.append(1) or real_build(self, blocks))

    class Identity:
        def apply_query(self, x):
            return x

    with Searcher(Identity(), codec, codes, options=options, block_size=128) as searcher:
        assert searcher.mode == "resident"
        a = searcher.search(xq[:20], 5)
        b = searcher.search(xq[20:], 5)
    assert builds == [1]
    np.testing.assert_array_equal(np.vstack([a.I, b.I]), one.I)


def test_refusals(data):
    xb, _ = data
    codec = CODECS.create("flat", {}).fit(xb)
    with pytest.raises(ConfigError, match="fewer than --lsh-tables"):
        choose(codec, {"lsh": "hyperplane", "lsh_tables": 8, "lsh_probes": 3})
    with pytest.raises(ConfigError, match="not one of"):
        choose(codec, {"lsh": "simhash"})
    with pytest.raises(ConfigError, match="64 bits .* use at most 15"):
        LSHIndex("crosspolytope", 2, 16, 0, "dot").build(xb)  # 16 hashes of log2(16) = 4 bits
    sign = CODECS.create("sign", {}).fit(np.zeros((1, 8), np.float32))
    with pytest.raises(ConfigError, match="reads float codes.*encode with --codec flat"):
        choose(sign, {"lsh": "hyperplane"})


def test_default_hashes_follow_falconn_rule():
    assert default_hashes("hyperplane", 10_000, 64) == 13
    assert default_hashes("crosspolytope", 10_000, 64) == 2
    assert default_hashes("crosspolytope", 2, 64) == 1


@pytest.mark.parametrize("family", ["hyperplane", "crosspolytope"])
def test_keeping_p_minus_l_plus_1_alternatives_probes_the_same_buckets(family, data):
    xb, xq = data
    index = LSHIndex(family, 3, 2, seed=7, metric="dot").build(xb)
    for P in (3, 4, 7, 20, 60):
        D, I, ncand = index.search(xq, 5, P)
        full = index.family_.alternatives
        index.family_.alternatives = lambda yq, most: full(yq, 10**6)
        try:
            D2, I2, ncand2 = index.search(xq, 5, P)
        finally:
            del index.family_.alternatives
        np.testing.assert_array_equal(ncand, ncand2)
        np.testing.assert_array_equal(I, I2)
