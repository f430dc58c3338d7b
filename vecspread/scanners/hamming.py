"""Hamming distance between the sign bits of the query and each binary code (faiss's binary flat scan)."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from vecspread.scanners.base import ExhaustiveScanner


class HammingScanner(ExhaustiveScanner):
    """D: the Hamming distance (float32) of the query's code to each code; faiss orders equal distances
    by id, so per-block lists merge into the exact (distance, id) order."""

    name = "hamming"
    families = ("binary",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return self.codec.encode(yq)

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        D, I = faiss.knn_hamming(queries, block, kb)
        return D.astype(np.float32), I
