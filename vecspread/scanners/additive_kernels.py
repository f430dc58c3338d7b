"""Compiled (numba) scan of additive (LSQ) codes by look-up tables: no decoding at search time.

An additive code c (M bytes) reconstructs to x = sum_m C_m[c_m], one (d,) codebook vector per byte, so
the squared L2 distance from a query q is

    ||q - x||^2 = ||q||^2 + ||x||^2 - 2 sum_m <q, C_m[c_m]>

With ``lut[m, j] = -2 <q, C_m[j]>`` (one (M, 256) table per query, a matrix product) and ``||x||^2``
stored once per code (the search-ready form), a code costs M table reads instead of a d-dimensional
decode and dot product: faiss's ``ST_norm_float`` search of an additive index. The tables are float64
(32 kB for M = 16) and the sum is taken in float64, rounded to float32 once and clamped at 0; ties keep
the smaller id, however the codes are cut into blocks or the queries into calls.
"""

from __future__ import annotations

import numba
import numpy as np

from vecspread.scanners.heap_kernels import heap_push, sort_heap

#: codes per tile: 2048 codes of 16 bytes are 32 kB, compared with every query of a group before the next
TILE = 2048

#: queries a thread compares with one tile of codes while it is in cache
GROUP = 8


@numba.njit(cache=True, parallel=True, nogil=True)
def lut_topk(lut: np.ndarray, base: np.ndarray, codes: np.ndarray, norms: np.ndarray, k: int,
             out_d: np.ndarray, out_i: np.ndarray) -> None:
    """The k nearest codes of every query by its look-up table.

    ``lut`` (nq, M, ksub) float64: -2 <q, C_m[j]>; ``base`` (nq,) float64: ||q||^2; ``codes`` (n, M) uint8;
    ``norms`` (n,) float32: ||x||^2 of each code's reconstruction. Writes (nq, k) float32 ``out_d`` (the
    squared distances, ascending) and int64 ``out_i`` (rows of ``codes``; -1 with +inf past n).
    Threads take groups of queries; a group walks the codes tile by tile.
    """
    nq, M = lut.shape[0], lut.shape[1]
    n = codes.shape[0]
    n_groups = (nq + GROUP - 1) // GROUP
    for g in numba.prange(n_groups):
        q0 = g * GROUP
        m = min(nq, q0 + GROUP) - q0
        heap_d = np.full((m, k), np.inf, np.float32)
        heap_i = np.full((m, k), -1, np.int64)
        for t0 in range(0, n, TILE):
            t1 = min(n, t0 + TILE)
            for a in range(m):
                table = lut[q0 + a]
                b = base[q0 + a]
                worst = heap_d[a, 0]
                for i in range(t0, t1):
                    s = b + np.float64(norms[i])
                    for j in range(M):
                        s += table[j, codes[i, j]]
                    dist = np.float32(s)
                    if dist < 0:
                        dist = np.float32(0.0)
                    if dist < worst:
                        heap_push(heap_d[a], heap_i[a], k, dist, np.int64(i))
                        worst = heap_d[a, 0]
        for a in range(m):
            sort_heap(heap_d[a], heap_i[a], out_d[q0 + a], out_i[q0 + a])
