"""Exact L2 from the unquantized query to the decoded code: additive (LSQ) reconstructions.

Each block is decoded once to (bs, d) float32 and compared with every query by faiss's exhaustive L2
search (BLAS + heaps, multi-threaded). Its L2 heaps order equal distances by id, which keeps the
"ties by id" rule exact across blocks (its inner-product heaps do not, hence L2). This is the
distance of faiss's ``ST_decompress`` search at a fraction of its cost: faiss decodes every code once
per query.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from vecspread.scanners.base import ExhaustiveScanner


class DecodedScanner(ExhaustiveScanner):
    """D: squared L2 from the query to the codec's reconstruction of each code."""

    name = "decoded"
    families = ("additive",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return self.codec.check_queries(yq)

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        return faiss.knn(queries, self.codec.decode(block), kb)
