"""The LSQ (additive) scan: look-up tables for few queries, decode + BLAS for many, against a float64
brute force over the reconstructions."""

from __future__ import annotations

import numpy as np
import pytest

from vecspread.codecs.pq.codecs import LSQCodec
from vecspread.scanners import decoded, search
from vecspread.scanners.decoded import DecodedScanner
from vecspread.searcher import Searcher
from vecspread.transforms.linear.transforms import IdentityTransform

D = 16


@pytest.fixture(scope="module")
def case() -> tuple[LSQCodec, np.ndarray, np.ndarray]:
    """An LSQ codec of 4 codebooks on (., 16) vectors, 600 codes (the last 100 repeat earlier ones:
    exact ties), and 12 queries, one of them a reconstruction (distance 0) and one the zero vector."""
    rng = np.random.default_rng(3)
    codec = LSQCodec(bits=32, train_iters=1, encode_ils_iters=1).fit(rng.standard_normal((800, D)).astype(np.float32))
    codes = codec.encode(rng.standard_normal((500, D)).astype(np.float32))
    codes = np.vstack([codes, codes[rng.integers(0, 500, 100)]])
    yq = rng.standard_normal((12, D)).astype(np.float32)
    yq[0] = codec.decode(codes[7:8])[0]
    yq[1] = 0
    return codec, codes, yq


def exact(codec: LSQCodec, codes: np.ndarray, yq: np.ndarray) -> np.ndarray:
    """(nq, n) float64 squared L2 from each query to each reconstruction, C_m summed in float64."""
    C = codec.codebooks_.astype(np.float64)
    recon = sum(C[m][codes[:, m]] for m in range(codes.shape[1]))
    return ((yq.astype(np.float64)[:, None, :] - recon[None]) ** 2).sum(-1)


def check_against_exact(dist: np.ndarray, D_: np.ndarray, I: np.ndarray, k: int) -> None:
    """D is the exact distance of I to float32 rounding, ascending; I are k nearest by (distance, id),
    near-ties (within rounding) in either order."""
    order = np.lexsort((np.broadcast_to(np.arange(dist.shape[1]), dist.shape), dist), axis=1)[:, :k]
    ref = np.take_along_axis(dist, order, 1)
    tol = 1e-5 * (1 + ref)
    assert (np.diff(D_, axis=1) >= 0).all()
    np.testing.assert_allclose(D_, np.take_along_axis(dist, I, 1), rtol=1e-5, atol=1e-5)
    assert (np.take_along_axis(dist, I, 1) - ref <= tol).all()
    clear = np.abs(np.diff(ref, axis=1)) > 1e-4 * (1 + ref[:, 1:])  # no near-tie around this slot
    same = (I == order)
    assert same[:, 0][clear[:, 0]].all() and same[:, 1:][clear].all()


@pytest.mark.parametrize("tables", [True, False], ids=["tables", "decoded"])
def test_both_paths_rank_as_brute_force(case, monkeypatch, tables):
    codec, codes, yq = case
    monkeypatch.setattr(decoded, "use_tables", lambda nq, d: tables)
    dist = exact(codec, codes, yq)
    results = [search(codec, yq, np.array_split(codes, split), 40) for split in (1, 3, 7)]
    D_, I = results[0]
    assert D_.dtype == np.float32 and I.dtype == np.int64 and D_.shape == (12, 40)
    check_against_exact(dist, D_, I, 40)
    assert I[0, 0] in (7, *np.flatnonzero((codes == codes[7]).all(1))) and D_[0, 0] <= 1e-5
    for D2, I2 in results[1:]:  # the blocks do not change the result
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_array_equal(D2, D_)
    # duplicated codes: equal distances, the smaller id first
    for row_D, row_I in zip(D_, I):
        for j in range(39):
            if row_D[j] == row_D[j + 1]:
                assert row_I[j] < row_I[j + 1]


def test_tables_answer_one_query_as_a_batch_does(case):
    """Below the switch the result of a query does not depend on the queries beside it, nor on whether
    the codes are resident or streamed."""
    codec, codes, yq = case
    assert decoded.use_tables(len(yq), D)
    identity = IdentityTransform().fit(yq)
    resident = Searcher(identity, codec, codes)
    assert resident.mode == "resident"
    batch = resident.search(yq, 25)
    streaming = Searcher(identity, codec, codes, memory_bytes=0, block_size=111).search(yq, 25)
    np.testing.assert_array_equal(streaming.I, batch.I)
    np.testing.assert_array_equal(streaming.D, batch.D)
    for i in range(len(yq)):
        one = resident.search(yq[i : i + 1], 25)
        np.testing.assert_array_equal(one.I[0], batch.I[i])
        np.testing.assert_array_equal(one.D[0], batch.D[i])


def test_the_switch_between_paths(case, monkeypatch):
    """Few queries use the tables, many decode; both give the same distances to float32 rounding."""
    codec, codes, yq = case
    assert decoded.use_tables(decoded.LUT_MAX_QUERIES, 10**6)
    assert not decoded.use_tables(decoded.LUT_MAX_QUERIES + 1, 10**6)
    threshold = decoded.faiss.cvar.distance_compute_blas_threshold  # faiss compares pairs directly below it
    assert decoded.use_tables(max(decoded.LUT_MAX_QUERIES + 1, threshold // D - 1), D) == (threshold > 0)
    scanner = DecodedScanner(codec)
    calls = []
    monkeypatch.setattr(DecodedScanner, "_decoded_topk", lambda self, q, c, kb: calls.append(len(q)) or
                        (np.zeros((len(q), kb), np.float32), np.zeros((len(q), kb), np.int64)))
    monkeypatch.setattr(decoded, "use_tables", lambda nq, d: nq <= 5)
    scanner.search(yq[:5], [codes], 3)
    assert calls == []
    scanner.search(yq[:6], [codes], 3)
    assert calls == [6]
    monkeypatch.undo()
    D_t, _ = search(codec, yq, [codes], 30)
    monkeypatch.setattr(decoded, "use_tables", lambda nq, d: False)
    D_d, _ = search(codec, yq, [codes], 30)
    np.testing.assert_allclose(D_t, D_d, rtol=1e-5, atol=1e-5)


def test_ready_form_keeps_the_norms(case):
    codec, codes, yq = case
    scanner = DecodedScanner(codec)
    assert scanner.ready_bytes_per_code() == codec.code_size + 4
    ready = scanner.ready(codes)
    assert ready.nbytes == codes.size + 4 * len(codes) and ready.data.norms is None
    scanner.search_ready(yq[:2], [ready], 5)
    recon = codec.decode(codes).astype(np.float64)
    np.testing.assert_allclose(ready.data.norms, (recon ** 2).sum(1), rtol=1e-6)
    assert ready.data.norms.dtype == np.float32
