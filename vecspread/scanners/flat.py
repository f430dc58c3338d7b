"""Exact search of flat (float32) codes: squared L2 or the negated inner product, by faiss's flat scan.

A block's search-ready form is its (bs, d) float32 vectors (a view of the code bytes, no copy). Each
block's top kb comes from ``faiss.knn`` (BLAS + heaps, multi-threaded); the rows are then put in
(distance, id) order, so that equal distances list the lower id first. (Which of several vectors tied
at the k-th distance make the list follows faiss's heaps.)
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from vecspread.scanners.base import ExhaustiveScanner, Ready


def exact_topk(queries: np.ndarray, xb: np.ndarray, kb: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The kb best of (nb, d) float32 ``xb`` for (nq, d) float32 queries: D (nq, kb) float32 (squared L2,
    or -q.x for "dot"), I (nq, kb) int64, ascending by (distance, id); -1 where nb < kb."""
    if metric == "dot":
        S, I = faiss.knn(queries, xb, kb, metric=faiss.METRIC_INNER_PRODUCT)
        D = np.where(I >= 0, -S, np.inf).astype(np.float32)
    else:
        D, I = faiss.knn(queries, xb, kb)
        D = np.where(I >= 0, D, np.inf).astype(np.float32)
    order = np.lexsort((np.where(I < 0, np.iinfo(np.int64).max, I), D), axis=1)
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


class FlatScanner(ExhaustiveScanner):
    """D: the codec's metric, exact (squared L2, or -q.x for dot)."""

    name = "flat"
    families = ("float",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return self.codec.check_queries(yq)

    def ready(self, block: np.ndarray) -> Ready:
        return Ready(len(block), self.codec.decode(block), block.nbytes)

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_topk(queries, block, kb, self.codec.metric_)
