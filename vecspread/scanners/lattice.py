"""Asymmetric lattice search without decoding at search time: the points as small integers.

D = ||q/||q|| - z/r||^2 for the lattice point z (||z||^2 = r2) of each code, clamped at 0; an all-zero
query has no direction and is at distance 1 from every code. A product code's unit vector is its blocks'
z_b / r_b side by side divided by sqrt(n_blocks); its points are scanned the same way, the blocks' scales
folded into the query (``LatticeScanner._scales``). A block's search-ready form holds each
point's integer coordinates, one int8 each, or two per byte when every |z_i| <= 7
(``lattice_kernels.pack_points``), decoded once with faiss's ``ZnSphereCodec``; the compiled kernels of
``lattice_kernels`` scan them with float64 dot products summed in coordinate order, so that the order
of (distance, id) depends neither on blocks nor on batches.

A :class:`vecspread.searcher.Searcher` keeps the form in memory when it is at most
:data:`MAX_READY_RATIO` times the code bytes; otherwise (many dimensions for few bits) the codes are
streamed and decoded block by block at each search.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from vecspread.distances import unit_rows
from vecspread.scanners.base import ExhaustiveScanner, Ready

#: the search-ready form is kept in memory only up to this many times the code bytes
MAX_READY_RATIO = 3


def point_form(d: int, r2: int) -> int:
    """Bits per coordinate of the search-ready points of S_d^r: 4 when every |z_i| <= 7, else 8."""
    return 4 if math.isqrt(r2) <= 7 else 8


def layout_form(layout: Any) -> int:
    """Bits per coordinate of the search-ready points of a product layout: 4 when every block's are."""
    return max(point_form(b.dim, b.r2) for b in layout)


def pack_points_lazy(z: np.ndarray, bits: int) -> np.ndarray:
    from vecspread.scanners.lattice_kernels import pack_points

    return pack_points(z, bits)


class LatticeScanner(ExhaustiveScanner):
    """Unit queries against the lattice points, by compiled kernels over their integer coordinates."""

    name = "lattice"
    families = ("lattice",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return unit_rows(self.codec.check_queries(yq))

    @property
    def _bits(self) -> int:
        return layout_form(self.codec.layout_)

    def _row_bytes(self, bits: int) -> int:
        return self.codec.d_ if bits == 8 else (self.codec.d_ + 1) // 2

    def ready(self, block: np.ndarray) -> Ready:
        bits = self._bits
        points = pack_points_lazy(self.codec.integer_points(block), bits)
        return Ready(len(block), (bits, points), points.nbytes)

    def warm_up(self) -> None:
        """Run the kernel once on one point, so that numba compiles it (first time on a machine, about
        10 s per point form; cached in ``__pycache__`` afterwards) or loads it, before any timing."""
        bits = self._bits
        z = np.zeros((1, self.codec.d_), np.int8)
        self.block_topk(np.zeros((1, self.codec.d_), np.float32), (bits, pack_points_lazy(z, bits)), 1)

    def ready_bytes_per_code(self) -> int | None:
        row = self._row_bytes(self._bits)
        return row if row <= MAX_READY_RATIO * self.codec.code_size else None

    def block_topk(self, queries: Any, block: Any, kb: int) -> tuple[np.ndarray, np.ndarray]:
        from vecspread.scanners.lattice_kernels import topk, use_threads

        use_threads()
        bits, points = block
        nq = len(queries)
        D = np.empty((nq, kb), np.float32)
        I = np.empty((nq, kb), np.int64)
        if nq:
            inv_r, coord_scale, dot_bound = self._scales
            topk(queries, points, bits == 4, inv_r, kb, 0, D, I, coord_scale, dot_bound)
        return D, I

    @cached_property
    def _scales(self) -> tuple[float, np.ndarray, float]:
        """The kernel's (inv_r, coord_scale, dot_bound) (``lattice_kernels.topk``): 1 / r, ones and 1 for one
        lattice; for a product, 1 / (r_0 sqrt(n_blocks)), r_0 / r_b on block b, and the matching bound."""
        layout = self.codec.layout_
        r0 = math.sqrt(layout[0].r2)
        inv_r = 1.0 / r0 if len(layout) == 1 else 1.0 / (r0 * math.sqrt(len(layout)))
        coord_scale = np.concatenate([np.full(b.dim, r0 / math.sqrt(b.r2)) for b in layout])
        dot_bound = inv_r * float(coord_scale.max()) * math.sqrt(sum(b.r2 for b in layout))
        return inv_r, coord_scale, max(dot_bound, 1.0)
