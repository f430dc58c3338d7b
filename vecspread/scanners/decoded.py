"""Exact L2 from the unquantized query to the decoded code: additive (LSQ) reconstructions.

D is the squared L2 distance from the query to the reconstruction x = sum_m C_m[c_m] of each code
(faiss's ``ST_decompress`` distance), computed one of two ways by the number of queries in a call:

- **Few queries** (:func:`use_tables`: up to 128, and below faiss's BLAS threshold): look-up tables,
  ||q||^2 + ||x||^2 - 2 sum_m <q, C_m[c_m]> (``vecspread.scanners.additive_kernels``; faiss's
  ``ST_norm_float`` search). The search-ready form keeps each code's ||x||^2 (4 bytes) beside its M bytes,
  computed once by decoding the block when it is first scanned this way; a query then costs M table reads
  per code, not a decode.
- **Many queries**: each block is decoded once, in slices of :data:`DECODE_ROWS` codes, and compared with
  every query by faiss's exhaustive L2 search (BLAS + heaps, multi-threaded), which is cheaper there than
  M table reads per code and query. Its L2 heaps order equal distances by id, as the tables' scan does.

Both are the same distance up to float32 rounding (measured against a float64 brute force in the tests).
faiss's own ``ST_decompress`` scan decodes every code once per query.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import faiss
import numpy as np

from vecspread.knn import merge_topk
from vecspread.scanners.base import ExhaustiveScanner, Ready

#: queries per call up to which the look-up tables scan the codes whatever faiss would do (see
#: :func:`use_tables`); on 200k LSQ codes (one thread) the tables and a forced BLAS search of the decoded
#: codes cost the same at about 250 queries for 8-byte codes and 80 for 16-byte ones (RESULTS.md)
LUT_MAX_QUERIES = 128

#: codes decoded at once on the many-queries path: DECODE_ROWS * d float32 (32 MiB at d = 128)
DECODE_ROWS = 65536


def use_tables(nq: int, d: int) -> bool:
    """Whether a call of ``nq`` queries of ``d`` dimensions scans by look-up tables: up to
    :data:`LUT_MAX_QUERIES` queries, and wherever faiss's exhaustive search would compare every pair
    directly instead of by BLAS (faiss 1.15: nq * d below ``distance_compute_blas_threshold``, 128,000),
    which on 200k codes of d = 128 costs 8.6-10 ms per query against 1.6-3.8 for the tables. Decoding
    then runs faiss's BLAS search, as faiss's own search of the reconstructions would."""
    return nq <= LUT_MAX_QUERIES or nq * d < faiss.cvar.distance_compute_blas_threshold


@dataclass
class AdditiveQueries:
    """The queries of one call: (nq, d) float32 ``x`` and, when the call scans by look-up tables
    (:func:`use_tables`), their (nq, M, ksub) float64 tables ``lut`` of -2 <q, C_m[j]> and (nq,) float64
    ``base`` = ||q||^2, computed once for all the blocks."""

    x: np.ndarray
    lut: np.ndarray | None = None
    base: np.ndarray | None = None


@dataclass
class AdditiveBlock:
    """A block of additive codes in search-ready form: (n, M) uint8 ``codes`` and, once a look-up-table
    scan has needed them, (n,) float32 ``norms``: ||x||^2 of each code's reconstruction."""

    codes: np.ndarray
    norms: np.ndarray | None = None


class DecodedScanner(ExhaustiveScanner):
    """D: squared L2 from the query to the codec's reconstruction of each code."""

    name = "decoded"
    families = ("additive",)

    def prepare(self, yq: np.ndarray) -> AdditiveQueries:
        x = self.codec.check_queries(yq)
        if not use_tables(len(x), x.shape[1]):
            return AdditiveQueries(x)
        C = self._codebooks64  # (M, ksub, d)
        M, ksub, d = C.shape
        q = x.astype(np.float64)
        lut = np.ascontiguousarray((-2.0 * (q @ C.reshape(M * ksub, d).T)).reshape(len(q), M, ksub))
        return AdditiveQueries(x, lut, (q * q).sum(1))

    def ready(self, block: np.ndarray) -> Ready:
        return Ready(len(block), AdditiveBlock(np.ascontiguousarray(block, dtype=np.uint8)),
                     block.nbytes + 4 * len(block))

    def ready_bytes_per_code(self) -> int | None:
        return self.codec.code_size + 4  # the codes and their norms

    def warm_up(self) -> None:
        """Run the look-up-table kernel once on one code, so that numba compiles or loads it before any timing."""
        queries = self.prepare(np.zeros((1, self.codec.d_), np.float32))
        self.block_topk(queries, AdditiveBlock(np.zeros((1, self.codec.code_size), np.uint8)), 1)

    def block_topk(self, queries: Any, block: Any, kb: int) -> tuple[np.ndarray, np.ndarray]:
        if queries.lut is not None:
            return self._lut_topk(queries, block, kb)
        return self._decoded_topk(queries.x, block.codes, kb)

    def _lut_topk(self, queries: AdditiveQueries, block: AdditiveBlock, kb: int) -> tuple[np.ndarray, np.ndarray]:
        from vecspread.scanners.additive_kernels import lut_topk
        from vecspread.scanners.lattice_kernels import use_threads

        use_threads()
        if block.norms is None:
            block.norms = self._norms(block.codes)
        nq = len(queries.x)
        D = np.empty((nq, kb), np.float32)
        I = np.empty((nq, kb), np.int64)
        if nq:
            lut_topk(queries.lut, queries.base, block.codes, block.norms, kb, D, I)
        return D, I

    def _decoded_topk(self, queries: np.ndarray, codes: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        best_D = best_I = None
        for start in range(0, len(codes), DECODE_ROWS):
            part = codes[start : start + DECODE_ROWS]
            D, I = faiss.knn(queries, self.codec.decode(part), min(kb, len(part)))
            I = I + start
            best_D, best_I = (D, I) if best_D is None else merge_topk(best_D, best_I, D, I, kb)
        return best_D, best_I

    def _norms(self, codes: np.ndarray) -> np.ndarray:
        """(n,) float32 ||x||^2 of the reconstructions of (n, M) uint8 codes, decoded in slices."""
        out = np.empty(len(codes), np.float32)
        for start in range(0, len(codes), DECODE_ROWS):
            x = self.codec.decode(codes[start : start + DECODE_ROWS]).astype(np.float64)
            out[start : start + len(x)] = (x * x).sum(1)
        return out

    @cached_property
    def _codebooks64(self) -> np.ndarray:
        """(M, ksub, d) float64: the codec's codebooks, for the look-up tables."""
        return self.codec.codebooks_.astype(np.float64)
