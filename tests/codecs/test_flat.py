"""Flat codes: the float32 bytes themselves, exact search by squared L2 or the negated inner product."""

import numpy as np
import pytest

from vecspread.codecs import REGISTRY as CODECS
from vecspread.codecs.flat.codec import FlatCodec
from vecspread.errors import ConfigError
from vecspread.scanners import choose


@pytest.fixture(scope="module")
def y() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal((300, 12)) * rng.uniform(0.2, 3, (300, 1))).astype(np.float32)


def test_codes_are_the_float32_bytes_and_decode_exactly(y):
    codec = CODECS.create("flat", {}).fit(y)
    codes = codec.encode(y)
    assert codes.dtype == np.uint8 and codes.shape == (300, 48) and codec.code_size == 48 == codec.code_bits // 8
    assert codes.tobytes() == y.astype("<f4").tobytes()
    np.testing.assert_array_equal(codec.decode(codes), y)
    rebuilt = FlatCodec.from_state(codec.get_config(), {})
    np.testing.assert_array_equal(rebuilt.decode(codes), y)


@pytest.mark.parametrize("metric", ["euclidean", "dot"])
def test_scan_is_the_brute_force_ranking(y, metric):
    codec = CODECS.create("flat", {"metric": metric}).fit(y)
    codes = codec.encode(y[:200])
    xq = y[200:230].astype(np.float64)
    xb = y[:200].astype(np.float64)
    ref = -(xq @ xb.T) if metric == "dot" else ((xq[:, None] - xb[None]) ** 2).sum(-1)
    I_ref = np.lexsort((np.broadcast_to(np.arange(200), ref.shape), ref), axis=1)[:, :10]
    result = choose(codec, {}).search(y[200:230], [codes[:70], codes[70:]], 10)
    np.testing.assert_array_equal(result.I, I_ref)
    np.testing.assert_allclose(result.D, np.take_along_axis(ref, I_ref, 1), rtol=1e-4, atol=1e-4)


def test_auto_metric_is_dot_for_class_vectors_else_euclidean(y):
    assert CODECS.create("flat", {}).fit(y).metric_ == "euclidean"
    assert CODECS.create("flat", {}).fit_class_vectors(y).metric_ == "dot"
    assert CODECS.create("flat", {"metric": "euclidean"}).fit_class_vectors(y).metric_ == "euclidean"


def test_refusals(y):
    codec = CODECS.create("flat", {}).fit(y)
    with pytest.raises(ConfigError, match="dimension 12"):
        codec.encode(y[:, :5])
    with pytest.raises(ConfigError, match="48 bytes"):
        codec.decode(np.zeros((2, 47), np.uint8))
    with pytest.raises(ConfigError, match="not one of"):
        CODECS.create("flat", {"metric": "cosine"})
