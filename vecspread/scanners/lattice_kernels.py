"""Compiled (numba) scan of lattice points held as small integers: no decoding at search time.

A lattice code decodes to an integer point z with ||z||^2 = r2; the scanner's distance from a query q
(unit row, float32) to the code is ||q - z/r||^2 = ||q||^2 + 1 - 2 <q, z> / r, r = sqrt(r2). The kernels
compute <q, z> in float64 from q's float32 values and z's integers (each product is exact; the sum of at
most a few hundred of them is correct to ~1e-16), round the distance to float32 once, clamp it at 0,
and keep the k smallest (distance, id) pairs per query: ties in increasing id order, independently of
how the codes are cut into blocks or how many queries share a call. A product of lattices (one unit
direction z_b / r_b per block of coordinates, all divided by sqrt(n_blocks)) is the same scan with a
per-coordinate scale folded into the query.

Search-ready forms (:func:`pack_points`): one int8 per coordinate, or two coordinates per byte (4-bit,
two's complement) when every |z_i| <= 7. Queries are scanned in parallel (``prange``); the codes of a
call are walked in tiles that stay in cache while every query of the call is compared with them.
"""

from __future__ import annotations

import numba
import numpy as np

from vecspread.scanners.heap_kernels import heap_push, sort_heap

#: codes per tile: a tile of 24-d int8 points is 48 kB, compared with every query before the next
TILE = 2048


def use_threads() -> None:
    """Run the kernels on as many threads as faiss is set to (the stage's ``--threads``)."""
    import faiss

    numba.set_num_threads(max(1, min(faiss.omp_get_max_threads(), numba.config.NUMBA_NUM_THREADS)))


def pack_points(z: np.ndarray, bits: int) -> np.ndarray:
    """(n, d) integer points -> search-ready (n, d) int8 (``bits`` 8) or (n, ceil(d/2)) uint8 (``bits``
    4: coordinate 2j in the low nibble of byte j, 2j+1 in the high one, each as 4-bit two's complement)."""
    if bits == 8:
        return np.ascontiguousarray(z, dtype=np.int8)
    n, d = z.shape
    padded = np.zeros((n, d + (d & 1)), np.int16)
    padded[:, :d] = z
    nibbles = (padded & 0xF).astype(np.uint8)
    return np.ascontiguousarray(nibbles[:, 0::2] | (nibbles[:, 1::2] << 4))


def unpack_points(packed: np.ndarray, bits: int, d: int) -> np.ndarray:
    """The inverse of :func:`pack_points`: (n, d) int8 points."""
    if bits == 8:
        return packed.astype(np.int8)
    lo = (packed & 0xF).astype(np.int8)
    hi = (packed >> 4).astype(np.int8)
    both = np.empty((len(packed), 2 * packed.shape[1]), np.int8)
    both[:, 0::2] = np.where(lo > 7, lo - 16, lo)
    both[:, 1::2] = np.where(hi > 7, hi - 16, hi)
    return both[:, :d]


@numba.njit(cache=True, nogil=True)
def _exact_dot(qv: np.ndarray, points: np.ndarray, row: int, nibbles: bool, zint: np.ndarray, local: int) -> float:
    """<q, z> in float64, coordinates in order (every product is exact, so is nearly the sum), z being
    row ``row`` of int8 ``points``, or row ``local`` of the unpacked tile ``zint`` when ``nibbles``."""
    s = 0.0
    if nibbles:
        for j in range(qv.shape[0]):
            s += qv[j] * zint[local, j]
    else:
        for j in range(qv.shape[0]):
            s += qv[j] * points[row, j]
    return s


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _tile_dots(qf: np.ndarray, tile: np.ndarray, t0: int, m: int, out: np.ndarray) -> None:
    """float32 <q, z> of one query with rows t0 .. t0+m of a (n, d) int8 or float32 array (vectorised)."""
    d = qf.shape[0]
    for i in range(m):
        s = np.float32(0.0)
        for j in range(d):
            s += qf[j] * np.float32(tile[t0 + i, j])
        out[i] = s


@numba.njit(cache=True, nogil=True)
def _unpack_tile(points: np.ndarray, t0: int, m: int, d: int, tile: np.ndarray, zint: np.ndarray) -> None:
    """Rows t0 .. t0+m of nibble-packed points -> int8 ``zint`` and float32 ``tile`` (m, d)."""
    for i in range(m):
        for j in range(points.shape[1]):
            b = np.int32(points[t0 + i, j])
            zint[i, 2 * j] = (b & 15) - ((b & 8) << 1)
            if 2 * j + 1 < d:
                zint[i, 2 * j + 1] = ((b >> 4) & 15) - ((b >> 3) & 16)
        for j in range(d):
            tile[i, j] = zint[i, j]


@numba.njit(cache=True, parallel=True, nogil=True)
def topk(yq: np.ndarray, points: np.ndarray, nibbles: bool, inv_r: float, k: int, id_offset: int,
         out_d: np.ndarray, out_i: np.ndarray, coord_scale: np.ndarray, dot_bound: float) -> None:
    """The k nearest of (nq, d) float32 unit queries among search-ready points ((n, d) int8, or
    (n, ceil(d/2)) uint8 ``nibbles``); ids are id_offset + row. Writes (nq, k) float32 ``out_d`` and
    int64 ``out_i``.

    The code's unit vector is x_j = inv_r * coord_scale[j] * z_j ((d,) float64 ``coord_scale``: all ones
    for one lattice, r_0 / r_b on block b of a product whose inv_r is 1 / (r_0 sqrt(n_blocks))), so
    D = ||q||^2 + 1 - 2 inv_r <q * coord_scale, z>; ``dot_bound`` >= inv_r * max(coord_scale) * ||z|| (1
    for one lattice) scales the float32 screening margin.

    Threads take groups of queries; each converts the points tile by tile to float32 and compares
    every query of its group with a tile while it is in cache. A float32 dot product (vectorised)
    screens each point: only a point whose float32 distance is within the float32 error bound of the
    current k-th best gets its exact float64 distance, and only exact distances enter the heaps.
    """
    nq, d = yq.shape
    n = points.shape[0]
    group = 8
    n_groups = (nq + group - 1) // group
    # |<q,z>_float32 - <q,z>| <= gamma_d * ||q|| * ||z||; the distance moves by 2 / r times that (times
    # dot_bound for a product of lattices, where ||q * coord_scale|| ||z|| inv_r <= ||q|| dot_bound)
    gamma = 2.0 * d * 2.0 ** -24
    for g in numba.prange(n_groups):
        q0 = g * group
        m = min(nq, q0 + group) - q0
        qv = np.zeros((m, d), np.float64)
        qf = np.zeros((m, d), np.float32)
        base = np.empty(m, np.float64)
        margin = np.empty(m, np.float32)
        for a in range(m):
            qq = 0.0
            for j in range(d):
                qj = np.float64(yq[q0 + a, j])
                qv[a, j] = qj * coord_scale[j]
                qf[a, j] = qv[a, j]
                qq += qj * qj
            base[a] = qq + 1.0
            margin[a] = np.float32(4.0 * gamma * (np.sqrt(qq) * dot_bound + 1.0) + 1e-6)
        heap_d = np.full((m, k), np.inf, np.float32)
        heap_i = np.full((m, k), -1, np.int64)
        tile = np.empty((TILE, d), np.float32)
        zint = np.empty((TILE, d), np.int8)
        dots = np.empty(TILE, np.float32)
        for t0 in range(0, n, TILE):
            mt = min(n, t0 + TILE) - t0
            if nibbles:
                _unpack_tile(points, t0, mt, d, tile, zint)
            for a in range(m):
                if nibbles:
                    _tile_dots(qf[a], tile, 0, mt, dots)
                else:
                    _tile_dots(qf[a], points, t0, mt, dots)
                base32 = np.float32(base[a])
                scale32 = np.float32(2.0 * inv_r)
                worst = heap_d[a, 0]
                for i in range(mt):
                    if base32 - scale32 * dots[i] - margin[a] < worst:
                        s = _exact_dot(qv[a], points, t0 + i, nibbles, zint, i)
                        dist = np.float32(base[a] - 2.0 * inv_r * s)
                        if dist < 0:
                            dist = np.float32(0.0)
                        if dist < worst:
                            heap_push(heap_d[a], heap_i[a], k, dist, id_offset + t0 + i)
                            worst = heap_d[a, 0]
        for a in range(m):
            sort_heap(heap_d[a], heap_i[a], out_d[q0 + a], out_i[q0 + a])
