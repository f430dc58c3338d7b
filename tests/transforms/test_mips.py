"""Tests of the MIPS lifts (vecspread.transforms.mips) and the E2LSH codec (vecspread.codecs.l2lsh).

Every property is checked against plain numpy written here, on small random data whose norms vary
over an order of magnitude (MIPS is only interesting when they do).
"""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

from conftest import fit_method, mips_data
from vecspread.codecs.l2lsh.codec import L2LSHCodec
from vecspread.codecs.sign.codec import SignCodec
from vecspread.errors import ConfigError
from vecspread.io.artifacts import write_artifact
from vecspread.io.components import read_component, write_component
from vecspread.scanners import search
from vecspread.transforms.mips.transforms import L2ALSHTransform, SignALSHTransform, SimpleLSHTransform

LIFTS = {"sign-alsh": SignALSHTransform, "l2-alsh": L2ALSHTransform, "simple-lsh": SimpleLSHTransform}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    xb = mips_data(3000, 16, 0)
    xq = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32) * 3
    return xb, xq


def scaled_norms(t, x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x.astype(np.float64) * t.scale_, axis=1)


def unit(q: np.ndarray) -> np.ndarray:
    q = q.astype(np.float64)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# -- the lifts' identities ---------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_sign_alsh_norm_identity(data, m):
    xb, xq = data
    t = SignALSHTransform(norm_terms=m, max_norm=0.75).fit(xb)
    assert scaled_norms(t, xb).max() == pytest.approx(0.75, rel=1e-6)
    P = t.lift(xb).astype(np.float64)
    s = scaled_norms(t, xb)
    # ||x||^2 + sum_i (1/2 - ||x||^(2^i))^2 telescopes to m/4 + ||x||^(2^(m+1))
    np.testing.assert_allclose((P**2).sum(1), m / 4 + s ** (2 ** (m + 1)), rtol=1e-5, atol=1e-6)
    Q = t.lift_query(xq).astype(np.float64)
    np.testing.assert_allclose(Q[:, 16:], 0)
    np.testing.assert_allclose(Q @ P.T, t.scale_ * unit(xq) @ xb.T.astype(np.float64), rtol=1e-4, atol=1e-5)


def test_sign_alsh_top1_within_stated_bound(data):
    """The item ranked first by cos(P(x), Q(q)) has an inner product within the factor
    sqrt(m/4 / (m/4 + U^(2^(m+1)))) (0.913 for m=2, U=0.75) of the best one, and is the best one
    whenever the best inner product beats the second by more than the inverse factor."""
    xb, xq = data
    m, U = 2, 0.75
    t = SignALSHTransform(norm_terms=m, max_norm=U).fit(xb)
    P = t.lift(xb).astype(np.float64)
    Q = t.lift_query(xq).astype(np.float64)
    cos_top = np.argmax((Q @ P.T) / np.linalg.norm(P, axis=1), axis=1)
    ip = xq.astype(np.float64) @ xb.T.astype(np.float64)
    best = np.sort(ip, axis=1)[:, ::-1]
    factor = math.sqrt((m / 4) / (m / 4 + U ** (2 ** (m + 1))))
    assert best[:, 0].min() > 0  # the bound is stated for positive best inner products
    got = ip[np.arange(len(xq)), cos_top]
    assert np.all(got >= factor * best[:, 0] * (1 - 1e-6))
    clear = best[:, 0] * factor > best[:, 1] * (1 + 1e-6)
    assert clear.mean() > 0.3, "test data too ambiguous to check agreement"
    np.testing.assert_array_equal(cos_top[clear], np.argmax(ip, axis=1)[clear])


def test_simple_lsh_unit_norm_and_exact_ranking(data):
    xb, xq = data
    t = SimpleLSHTransform().fit(xb)
    P = t.lift(xb).astype(np.float64)
    Q = t.lift_query(xq).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(Q, axis=1), 1, rtol=1e-5)
    ip = xq.astype(np.float64) @ xb.T.astype(np.float64)
    PQ = Q @ P.T
    np.testing.assert_allclose(PQ, t.scale_ * ip / np.linalg.norm(xq, axis=1, keepdims=True), rtol=1e-4, atol=1e-6)
    # cos(P, Q) = P.Q: the full ranking is the inner-product ranking (top 20, data has no near ties there)
    np.testing.assert_array_equal(np.argsort(-PQ, axis=1)[:, :20], np.argsort(-ip, axis=1)[:, :20])


def test_l2_alsh_distance_identity_and_bound(data):
    xb, xq = data
    m, U = 3, 0.83
    t = L2ALSHTransform(norm_terms=m, max_norm=U).fit(xb)
    P = t.lift(xb).astype(np.float64)
    Q = t.lift_query(xq).astype(np.float64)
    np.testing.assert_allclose(Q[:, 16:], 0.5)
    s = scaled_norms(t, xb)
    ip_s = t.scale_ * unit(xq) @ xb.T.astype(np.float64)
    d2 = ((Q[:, None, :] - P[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, 1 + m / 4 - 2 * ip_s + s ** (2 ** (m + 1)), rtol=1e-4, atol=1e-5)
    # nearest by ||Q - P|| loses at most U^(2^(m+1)) / 2 of scaled inner product to the true best
    top = np.argmin(d2, axis=1)
    gap = ip_s.max(1) - ip_s[np.arange(len(xq)), top]
    assert np.all(gap <= U ** (2 ** (m + 1)) / 2 + 1e-6)


@pytest.mark.parametrize("name", list(LIFTS))
def test_database_vectors_beyond_training_bound_are_clipped(data, name):
    xb, _ = data
    t = LIFTS[name]().fit(xb[:100])
    far = xb[100:110] * 50  # far longer than any training vector
    P = t.lift(far).astype(np.float64)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P[:, :16], far * t.scale_, rtol=1e-5)  # the x part keeps its length
    extra = P[:, 16:]
    expected = {"sign-alsh": -0.5, "l2-alsh": 1.0, "simple-lsh": 0.0}[name]
    np.testing.assert_allclose(extra, expected, atol=1e-6)


def test_zero_query_stays_zero(data):
    xb, xq = data
    t = SignALSHTransform().fit(xb)
    q = np.vstack([np.zeros((1, 16), np.float32), xq[:1]])
    Q = t.lift_query(q)
    assert np.all(Q[0] == 0) and np.isfinite(Q).all()


# -- projections and codes ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sign-alsh", "simple-lsh"])
def test_sign_methods_project_and_train_sign_codec(data, name):
    xb, xq = data
    t, codec = fit_method(name, xb, bits=32, seed=3)
    assert t.d_out == 32 and t.projection_.shape == (32, t.d_lift)
    np.testing.assert_allclose(t.apply(xb[:50]), t.lift(xb[:50]) @ t.projection_.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(t.apply_query(xq[:50]), t.lift_query(xq[:50]) @ t.projection_.T, rtol=1e-5, atol=1e-5)
    assert isinstance(codec, SignCodec) and codec.code_bits == 32
    again = LIFTS[name](bits=32, seed=3).fit(xb)
    np.testing.assert_array_equal(again.projection_, t.projection_)
    other = LIFTS[name](bits=32, seed=4).fit(xb)
    assert not np.array_equal(other.projection_, t.projection_)


def test_signed_random_projections_estimate_the_lifted_angle(data):
    """Hamming distance / bits of the sign codes ~ angle(P(x), Q(q)) / pi (Charikar)."""
    xb, xq = data
    t, codec = fit_method("simple-lsh", xb, bits=4096, seed=0)
    cb = np.unpackbits(codec.encode(t.apply(xb[:20])), axis=1)
    cq = np.unpackbits(codec.encode(t.apply_query(xq[:20])), axis=1)
    ham = (cq[:, None, :] != cb[None, :, :]).mean(-1)
    P, Q = t.lift(xb[:20]).astype(np.float64), t.lift_query(xq[:20]).astype(np.float64)
    cos = (Q @ P.T) / np.outer(np.linalg.norm(Q, axis=1), np.linalg.norm(P, axis=1))
    angle = np.arccos(np.clip(cos, -1, 1)) / np.pi
    # binomial standard deviation <= 0.5 / sqrt(4096) = 0.0078; 5 sigma over 400 pairs
    assert np.abs(ham - angle).max() < 0.04


def test_l2_alsh_trains_its_codec(data):
    xb, _ = data
    t, c = fit_method("l2-alsh", xb, norm_terms=3, bits=32, hash_bits=4, r=1.5, seed=7)
    assert t.d_out == 16 + 3
    np.testing.assert_array_equal(t.apply(xb[:5]), t.lift(xb[:5]))
    assert isinstance(c, L2LSHCodec)
    assert (c.d_, c.nhash_, c.code_size, c.r) == (19, 8, 4, 1.5)


@pytest.mark.parametrize("name", list(LIFTS))
def test_from_state_round_trip_through_hdf5(data, tmp_path, name):
    xb, xq = data
    t, c1 = fit_method(name, xb, seed=5)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        write_component(f.create_group("transform"), name, t.get_config(), t.get_weights())
    with h5py.File(path, "r") as f:
        type_name, config, weights = read_component(f["transform"], str(path))
    t2 = LIFTS[type_name].from_state(config, weights)
    np.testing.assert_array_equal(t2.apply(xb[:100]), t.apply(xb[:100]))
    np.testing.assert_array_equal(t2.apply_query(xq[:100]), t.apply_query(xq[:100]))
    c2 = type(c1).from_state(c1.get_config(), c1.get_arrays())
    assert c1.get_config() == c2.get_config()
    for key, arr in c1.get_arrays().items():
        np.testing.assert_array_equal(arr, c2.get_arrays()[key])


@pytest.mark.parametrize(
    "method,options",
    [
        ("sign-alsh", {"bits": 60}),
        ("sign-alsh", {"max_norm": 1.0}),
        ("sign-alsh", {"norm_terms": 0}),
        ("l2-alsh", {"max_norm": 0}),
        ("l2-alsh", {"bits": 60}),
        ("l2-alsh", {"bits": 64, "hash_bits": 3}),
        ("l2-alsh", {"r": 0}),
        ("simple-lsh", {"bits": 0}),
    ],
)
def test_bad_settings_are_config_errors(data, method, options):
    with pytest.raises(ConfigError):
        fit_method(method, data[0], **options)


def test_all_zero_training_set_is_refused():
    with pytest.raises(ConfigError, match="zero"):
        SimpleLSHTransform().fit(np.zeros((10, 4), np.float32))


# -- the E2LSH codec --------------------------------------------------------------------------------


def brute_hashes(y: np.ndarray, a: np.ndarray, b: np.ndarray, r: float, hash_bits: int) -> np.ndarray:
    """Reduced bucket ids, one math.floor at a time."""
    out = np.zeros((len(y), len(a)), np.int64)
    for i in range(len(y)):
        for j in range(len(a)):
            v = math.floor((float(np.dot(y[i].astype(np.float64), a[j])) + b[j]) / r)
            out[i, j] = v % (1 << hash_bits)  # Python's % is the two's complement low bits for 2^k
    return out


@pytest.mark.parametrize("hash_bits,bits", [(4, 16), (2, 32), (8, 64), (1, 8)])
def test_l2lsh_search_equals_brute_force_collision_count(hash_bits, bits):
    rng = np.random.default_rng(hash_bits)
    yb = rng.standard_normal((700, 6)).astype(np.float32)
    yq = rng.standard_normal((25, 6)).astype(np.float32)
    c = L2LSHCodec(bits=bits, hash_bits=hash_bits, r=1.0, seed=2).fit(yb)
    codes = c.encode(yb)
    hb = brute_hashes(yb, c.a_, c.b_, 1.0, hash_bits)
    hq = brute_hashes(yq, c.a_, c.b_, 1.0, hash_bits)
    np.testing.assert_array_equal(c.unpack(codes), hb)
    k = 40
    D, I = search(c, yq, [codes[:250], codes[250:251], codes[251:]], k)
    for q in range(len(yq)):
        count = (hb == hq[q]).sum(1)
        order = sorted(range(len(yb)), key=lambda i: (-count[i], i))[:k]
        np.testing.assert_array_equal(I[q], order)
        np.testing.assert_array_equal(D[q], c.nhash_ - count[order])


def test_l2lsh_pack_layout_is_little_endian_low_bits():
    c = L2LSHCodec(bits=16, hash_bits=4, seed=0).fit(np.zeros((0, 3), np.float32))
    h = np.array([[1, -1, 18, -16]])  # low nibbles 0x1, 0xF, 0x2, 0x0
    np.testing.assert_array_equal(c.pack(h), [[0xF1, 0x02]])
    np.testing.assert_array_equal(c.unpack(c.pack(h)), [[1, 15, 2, 0]])


def test_l2lsh_collision_probability_matches_datar_formula():
    """Frequency of equal hashes for pairs at distance c vs p(c) of Datar et al. (2004)."""
    rng = np.random.default_rng(0)
    d, r = 8, 2.0
    c = L2LSHCodec(bits=8 * 4096, hash_bits=8, r=r, seed=1).fit(np.zeros((0, d), np.float32))
    for dist in (0.5, 1.0, 2.0, 4.0):
        x = rng.standard_normal((1, d))
        u = rng.standard_normal((1, d))
        y = x + dist * u / np.linalg.norm(u)
        same = (c.hash(x.astype(np.float32)) == c.hash(y.astype(np.float32))).mean()
        s = r / dist
        phi = 0.5 * math.erfc(s / math.sqrt(2))  # Phi(-s)
        p = 1 - 2 * phi - 2 / (math.sqrt(2 * math.pi) * s) * (1 - math.exp(-s * s / 2))
        assert abs(same - p) < 5 * math.sqrt(p * (1 - p) / 4096) + 1e-3, (dist, same, p)


def test_l2lsh_from_state_round_trip():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, 5)).astype(np.float32)
    c = L2LSHCodec(bits=24, hash_bits=2, r=0.7, seed=9).fit(y)
    c2 = L2LSHCodec.from_state(c.get_config(), c.get_arrays())
    np.testing.assert_array_equal(c2.encode(y), c.encode(y))
    assert c2.code_size == 3 and c2.code_bits == 24


# -- through the pipeline: train -> encode -> search uses Q for the queries ----------------------


def test_registries_resolve_the_lifts():
    from vecspread.codecs import REGISTRY as CODECS
    from vecspread.transforms import REGISTRY as METHODS

    assert METHODS.load("sign-alsh") is SignALSHTransform
    assert METHODS.load("simple-lsh") is SimpleLSHTransform
    assert METHODS.load("l2-alsh") is L2ALSHTransform
    assert CODECS.load("l2lsh") is L2LSHCodec and METHODS["l2-alsh"].codec == "l2lsh"


@pytest.mark.parametrize("method", ["simple-lsh", "l2-alsh"])
def test_pipeline_searches_with_the_query_lift(tmp_path, data, method):
    from vecspread.stages.encode import encode_dataset
    from vecspread.stages.train import train_model
    from vecspread.stages.search import search_codes

    xb, xq = data
    ds = tmp_path / "ip.h5"
    with write_artifact(ds, "dataset", attrs={"distance": "dot"}) as f:
        f.create_dataset("train", data=xb[:1000])
        f.create_dataset("learn", data=xb[1000:])
        f.create_dataset("test", data=xq[:20])
    train_model(str(ds), str(tmp_path / "m.h5"), method, {"bits": 32, "seed": 1})
    encode_dataset(str(tmp_path / "m.h5"), str(ds), str(tmp_path / "c.h5"), None, {})
    search_codes(str(tmp_path / "c.h5"), str(ds), str(tmp_path / "r.h5"), k=10)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        I = f["neighbors"][:]
    t, c = fit_method(method, xb[1000:], bits=32, seed=1)
    if method == "simple-lsh":
        cb = np.unpackbits(np.packbits(t.apply(xb[:1000]) > 0, axis=1), axis=1)
        cq = np.unpackbits(np.packbits(t.apply_query(xq[:20]) > 0, axis=1), axis=1)
        score = (cq[:, None, :] != cb[None, :, :]).sum(-1)  # Hamming distance
    else:
        score = -(c.hash(t.apply_query(xq[:20]))[:, None, :] % 16 == c.hash(t.apply(xb[:1000]))[None] % 16).sum(-1)
    for q in range(20):
        expected = sorted(range(1000), key=lambda i: (score[q, i], i))[:10]
        np.testing.assert_array_equal(I[q], expected)
