"""The compiled lattice scan and the long-lived searcher (issue 15): against a float64 brute force written
here, identical across blocks, batches and memory modes, its memory stated, and on real SIFT the results
of the decode-every-search scan it replaced (up to its float32 ties)."""

from __future__ import annotations

import json
import math

import faiss
import h5py
import numpy as np
import pytest

from conftest import ProgressRecorder, cli_ok, run_cli
from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.codecs.sign.codec import SignCodec
from vecspread.distances import unit_rows
from vecspread.scanners import choose
from vecspread.scanners.base import block_rows
from vecspread.scanners.lattice import MAX_READY_RATIO, point_form
from vecspread.scanners.lattice_kernels import pack_points, unpack_points
from vecspread.searcher import Searcher, latency_percentiles
from vecspread.transforms.linear.transforms import IdentityTransform

faiss.omp_set_num_threads(1)


def brute_lattice(yq: np.ndarray, z: np.ndarray, r2: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The scanner's distance by its definition: unit query q (float32, ``unit_rows``), s = <q, z> summed over the
    coordinates in order in float64, D = float32(||q||^2 + 1 - (2 / r) s) clamped at 0; sorted by (D, id)."""
    q = unit_rows(yq).astype(np.float64)  # the queries' unit rows, float32, as every scanner takes them
    s = np.zeros((len(q), len(z)))
    qq = np.zeros((len(q), 1))
    for j in range(q.shape[1]):  # in order, as the definition says
        s += q[:, j : j + 1] * z[:, j].astype(np.float64)
        qq += q[:, j : j + 1] * q[:, j : j + 1]
    D = np.maximum(((qq + 1.0) - (2.0 * (1.0 / math.sqrt(r2))) * s).astype(np.float32), 0)
    I = np.array([np.lexsort((np.arange(len(z)), row))[:k] for row in D])
    return np.take_along_axis(D, I, 1), I


def fitted_lattice(d: int, bits: int) -> LatticeCodec:
    return LatticeCodec(bits=bits).fit(np.zeros((1, d), np.float32))


def lattice_codes(codec: LatticeCodec, n: int, seed: int, duplicates: int = 0) -> np.ndarray:
    y = np.random.default_rng(seed).standard_normal((n, codec.d_)).astype(np.float32)
    codes = codec.encode(y)
    if duplicates:
        codes[-duplicates:] = codes[:duplicates]  # equal codes: equal distances, ordered by id
    return codes


@pytest.mark.parametrize("d,bits", [(24, 64), (32, 64), (16, 32), (8, 16)])
def test_pack_round_trip_and_form(d, bits):
    codec = fitted_lattice(d, bits)
    z = np.rint(codec.decode(lattice_codes(codec, 500, 0)) * math.sqrt(codec.r2_)).astype(np.int8)
    form = point_form(d, codec.r2_)
    assert form == (4 if np.abs(z).max() <= 7 and math.isqrt(codec.r2_) <= 7 else 8) or form == 8
    packed = pack_points(z, form)
    assert (unpack_points(packed, form, d) == z).all()
    assert packed.shape[1] == (d if form == 8 else (d + 1) // 2)


@pytest.mark.parametrize("d,bits", [(24, 64), (32, 64), (12, 32), (7, 24)])
def test_lattice_scan_equals_float64_brute_force(d, bits):
    codec = fitted_lattice(d, bits)
    codes = lattice_codes(codec, 3000, 1, duplicates=50)
    rng = np.random.default_rng(2)
    yq = rng.standard_normal((13, d)).astype(np.float32) * rng.uniform(0.1, 10, (13, 1)).astype(np.float32)
    yq[3] = 0  # no direction: distance 1 to every code
    yq[5] = codec.decode(codes[7:8])[0] * 3  # on a lattice point: distance ~0
    z = np.rint(codec.decode(codes) * math.sqrt(codec.r2_)).astype(np.int64)
    ref_D, ref_I = brute_lattice(yq, z, codec.r2_, 40)
    scanner = choose(codec, {})
    for blocks in (codes.shape[0], 700, 1):
        res = scanner.search(yq, (codes[s : s + blocks] for s in range(0, len(codes), blocks)), 40)
        assert (res.I == ref_I).all(), blocks
        np.testing.assert_array_equal(res.D, ref_D)
    assert (res.D[3] == 1).all() and res.I[3].tolist() == list(range(40))  # ||0 - z/r||^2, ties by id
    assert res.D[5, 0] < 1e-6 and res.I[5, 0] == 7


def test_fewer_codes_than_k_pad_with_minus_one():
    codec = fitted_lattice(24, 64)
    codes = lattice_codes(codec, 5, 3)
    res = choose(codec, {}).search(np.ones((2, 24), np.float32), [codes], 8)
    assert (res.I[:, 5:] == -1).all() and np.isinf(res.D[:, 5:]).all()
    assert sorted(res.I[0, :5]) == list(range(5))


def test_searcher_resident_streaming_blocks_and_batches_agree():
    codec = fitted_lattice(24, 64)
    codes = lattice_codes(codec, 5000, 4, duplicates=200)
    yq = np.random.default_rng(5).standard_normal((30, 24)).astype(np.float32)
    identity = IdentityTransform().fit(yq)
    resident = Searcher(identity, codec, codes)
    assert resident.mode == "resident" and resident.resident_bytes == 5000 * 24  # int8 points: r2 79, |z_i| <= 8
    assert resident.resident_bytes <= MAX_READY_RATIO * codes.nbytes
    streaming = Searcher(identity, codec, codes, memory_bytes=0, block_size=333)
    assert streaming.mode == "streaming" and streaming.resident_bytes == 0
    whole = resident.search(yq, 50)
    for other in (streaming.search(yq, 50), Searcher(identity, codec, codes, block_size=777).search(yq, 50)):
        assert (other.I == whole.I).all() and (other.D == whole.D).all()
    one_by_one = [resident.search(yq[i : i + 1], 50) for i in range(len(yq))]
    assert (np.vstack([r.I for r in one_by_one]) == whole.I).all()


def test_many_dimensions_for_few_bits_are_streamed_and_said():
    codec = fitted_lattice(64, 16)  # 64 coordinates for a 2-byte code: any point form is > 3x
    codes = lattice_codes(codec, 300, 6)
    rec = ProgressRecorder()
    searcher = Searcher(IdentityTransform().fit(np.zeros((1, 64), np.float32)), codec, codes, progress=rec)
    assert searcher.mode == "streaming" and any("3x the code bytes" in m for m in rec.lines)
    yq = np.random.default_rng(7).standard_normal((4, 64)).astype(np.float32)
    z = np.rint(codec.decode(codes) * math.sqrt(codec.r2_)).astype(np.int64)
    assert (searcher.search(yq, 10).I == brute_lattice(yq, z, codec.r2_, 10)[1]).all()


def test_sign_codes_are_one_block_and_match_binary_flat():
    rng = np.random.default_rng(8)
    codec = SignCodec().fit(np.zeros((1, 64), np.float32))
    codes = rng.integers(0, 256, (20000, 8), dtype=np.uint8)
    assert block_rows(8) >= 1_000_000  # a million 64-bit codes are one faiss call
    yq = rng.standard_normal((9, 64)).astype(np.float32)
    res = Searcher(IdentityTransform().fit(yq), codec, codes).search(yq, 25)
    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    D, I = flat.search(codec.encode(yq), 25)
    assert (res.D == D).all()
    key = np.lexsort((I, D), axis=1)  # faiss's ties by id, as ours
    assert (res.I == np.take_along_axis(I, key, 1)).all()


def test_latency_percentiles():
    assert latency_percentiles([]) == {}
    p = latency_percentiles([0.001] * 98 + [0.010, 0.020])
    assert p["latency_ms_p50"] == pytest.approx(1.0) and p["latency_ms_p99"] > p["latency_ms_p95"] >= 1.0


def test_search_query_batch_records_latency(pipeline, tmp_path):
    out = tmp_path / "b.res.h5"
    summary = json.loads(cli_ok("search", pipeline.lattice_codes, pipeline.data.h5, "-k", 100, "--query-batch", 7,
                                "-o", out, "--json"))
    for key in ("latency_ms_p50", "latency_ms_p95", "latency_ms_p99"):
        assert summary[key] > 0
    assert summary["query_batch"] == 7 and summary["scan_mode"] == "resident" and summary["resident_bytes"] > 0
    with h5py.File(out, "r") as f, h5py.File(pipeline.lattice_results, "r") as g:
        assert f.attrs["query_batch"] == 7 and f.attrs["latency_ms_p99"] >= f.attrs["latency_ms_p50"]
        assert (f["neighbors"][:] == g["neighbors"][:]).all()  # batches and blocks do not change results
    rc, out_json, err = run_cli("search", pipeline.lattice_codes, pipeline.data.h5, "-k", 100, "--memory-mb", 0,
                                "-o", tmp_path / "s.res.h5", "--json")
    assert rc == 0 and json.loads(out_json)["scan_mode"] == "streaming" and "streaming the codes" in err, err


# --------------------------------------------------------------------------------------------
# real SIFT: every codec's results as the scan before the compiled lattice kernels gave them


def decoded_reference(codec: LatticeCodec, yq: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The scan this one replaced: decode each 65536-code block, faiss.knn of the unit queries (float32)."""
    from vecspread.knn import merge_topk

    q = unit_rows(yq)
    D = np.full((len(q), 0), np.inf, np.float32)
    I = np.zeros((len(q), 0), np.int64)
    for s in range(0, len(codes), 65536):
        d, i = faiss.knn(q, codec.decode(codes[s : s + 65536]), k)
        D, I = merge_topk(D, I, np.maximum(d, 0), i + s, k)
    return D, I


def test_real_sift_results_match_the_previous_scan(shared_data, tmp_path):
    data = shared_data / "debsift200k.h5"
    cli_ok("train", data, "--method", "pca", "--dout", 24, "-o", tmp_path / "pca.h5", "--threads", 1)
    cli_ok("encode", tmp_path / "pca.h5", data, "--codec", "lattice", "--bits", 64, "-o", tmp_path / "c.h5")
    cli_ok("search", tmp_path / "c.h5", data, "-k", 100, "-o", tmp_path / "r.h5", "--threads", 1)
    from vecspread.io.datasets import Dataset
    from vecspread.models import open_codes

    art, transform, codec = open_codes(str(tmp_path / "c.h5"))
    with art, Dataset(str(data)) as ds:
        codes = art.read("codes")
        yq = transform.apply_query(ds.read("test"))
    with h5py.File(tmp_path / "r.h5", "r") as f:
        I, D = f["neighbors"][:], f["distances"][:]
    old_D, old_I = decoded_reference(codec, yq, codes, 100)
    np.testing.assert_allclose(D, old_D, atol=1e-6)  # distances as before, up to float32 rounding
    # the order differs only between codes whose distances agree to 1e-6 (the old float32 arithmetic
    # tied or swapped them; the exact one orders them): each moved id sits at an old slot of the same
    # distance, or at the old list's end when it replaced a boundary tie
    moved = 0
    for q in np.nonzero((I != old_I).any(1))[0]:
        old_slot = {int(i): j for j, i in enumerate(old_I[q])}
        for j in np.nonzero(I[q] != old_I[q])[0]:
            moved += 1
            was = old_slot.get(int(I[q, j]))
            ref = old_D[q, was] if was is not None else old_D[q, -1]
            assert abs(float(ref) - float(old_D[q, j])) <= 1e-6, (q, j)
    assert moved <= 0.001 * I.size, moved


def test_searcher_open_answers_like_the_search_stage(pipeline):
    from vecspread.io.datasets import Dataset

    with Dataset(str(pipeline.data.h5)) as ds:
        xq = ds.read("test")
    with Searcher.open(str(pipeline.lattice_codes)) as searcher, h5py.File(pipeline.lattice_results, "r") as f:
        assert searcher.mode == "resident" and "lattice" in repr(searcher)
        first = searcher.search(xq[:5], 100)
        # the ids as the stage's; distances to float32 rounding (a 5-query matmul of the query transform
        # may round its last bits unlike the stage's whole batch: BLAS blocks by batch size)
        assert (first.I == f["neighbors"][:5]).all()
        np.testing.assert_allclose(first.D, f["distances"][:5], rtol=1e-6, atol=1e-6)
        again = searcher.search(xq, 100)  # the same loaded codes answer the next request
        assert (again.I == f["neighbors"][:]).all()
