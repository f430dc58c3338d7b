"""SignCodec: codes as faiss packs them, and Hamming search equal to a brute-force ranking."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from vecspread.codecs import REGISTRY as CODECS
from vecspread.codecs.sign.codec import SignCodec
from vecspread.errors import ConfigError
from vecspread.scanners import search


def hamming_reference(q_codes: np.ndarray, db_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force Hamming top-k ordered by (distance, id)."""
    x = np.unpackbits(q_codes[:, None, :] ^ db_codes[None, :, :], axis=2).sum(2)
    ids = np.broadcast_to(np.arange(db_codes.shape[0]), x.shape)
    order = np.lexsort((ids, x), axis=1)[:, :k]
    return np.take_along_axis(x, order, 1), order


def test_encode_is_packbits_of_positive_signs():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, 24)).astype(np.float32)
    y[0, :5] = 0.0  # zero is not positive
    c = SignCodec().fit(y)
    assert c.code_size == 3 and c.code_bits == 24
    codes = c.encode(y)
    assert codes.dtype == np.uint8 and codes.shape == (50, 3)
    np.testing.assert_array_equal(codes, np.packbits(y > 0, axis=1, bitorder="little"))
    # bit i of the code is in byte i // 8 at position i % 8
    i = 13
    np.testing.assert_array_equal((codes[:, i // 8] >> (i % 8)) & 1, (y[:, i] > 0).astype(np.uint8))


def test_encode_equals_faiss_index_lsh_codes():
    """faiss IndexLSH without rotation or thresholds stores exactly the sign bits of its input."""
    rng = np.random.default_rng(1)
    y = rng.standard_normal((100, 32)).astype(np.float32)
    lsh = faiss.IndexLSH(32, 32, False, False)
    np.testing.assert_array_equal(SignCodec().fit(y).encode(y), lsh.sa_encode(y))


def test_decode_gives_signs():
    y = np.array([[1.0, -2, 0, 3, -1, 1, 1, -1]], np.float32)
    c = SignCodec().fit(y)
    np.testing.assert_array_equal(c.decode(c.encode(y)), [[1, -1, -1, 1, -1, 1, 1, -1]])


@pytest.mark.parametrize("block_sizes", [[1000], [37] * 30, [5, 200, 3, 1000]])
def test_search_equals_brute_force_hamming(block_sizes):
    rng = np.random.default_rng(2)
    # few distinct codes -> many equal Hamming distances, within and across blocks
    protos = rng.standard_normal((30, 16)).astype(np.float32)
    yb = protos[rng.integers(0, 30, 1000)] + 0.3 * rng.standard_normal((1000, 16)).astype(np.float32)
    yq = rng.standard_normal((25, 16)).astype(np.float32)
    c = SignCodec().fit(yb)
    codes = c.encode(yb)
    blocks, start = [], 0
    for s in block_sizes:
        blocks.append(codes[start : start + s])
        start += s
    k = 60  # larger than some blocks
    D, I = search(c, yq, iter(blocks), k)
    Dref, Iref = hamming_reference(c.encode(yq), codes, k)
    assert D.shape == (25, k) and I.dtype == np.int64
    np.testing.assert_array_equal(D, Dref)
    np.testing.assert_array_equal(I, Iref)


def test_search_k_equal_to_database():
    rng = np.random.default_rng(3)
    yb = rng.standard_normal((20, 8)).astype(np.float32)
    c = SignCodec().fit(yb)
    codes = c.encode(yb)
    D, I = search(c, yb[:4], [codes[:6], codes[6:]], 20)
    Dref, Iref = hamming_reference(c.encode(yb[:4]), codes, 20)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_array_equal(D, Dref)
    assert sorted(I[0].tolist()) == list(range(20))


def test_bits_must_match_dimension():
    y = np.zeros((3, 16), np.float32)
    assert SignCodec(bits=16).fit(y).code_bits == 16
    with pytest.raises(ConfigError, match="--bits 32"):
        SignCodec(bits=32).fit(y)


@pytest.mark.parametrize("d", [4, 12, 63])
def test_dimension_must_be_multiple_of_8(d):
    with pytest.raises(ConfigError, match="multiple of 8"):
        SignCodec().fit(np.zeros((2, d), np.float32))


def test_wrong_query_dimension():
    c = SignCodec().fit(np.zeros((2, 16), np.float32))
    with pytest.raises(ConfigError):
        c.encode(np.zeros((2, 8), np.float32))


def test_state_round_trip():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((30, 40)).astype(np.float32)
    c = SignCodec().fit(y)
    cls = CODECS.load("sign")
    u = cls.from_state(c.get_config(), c.get_arrays())
    assert (u.code_size, u.code_bits) == (5, 40)
    np.testing.assert_array_equal(u.encode(y), c.encode(y))
