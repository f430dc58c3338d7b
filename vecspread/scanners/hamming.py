"""Hamming distance between the sign bits of the query and each binary code (faiss's binary flat scan).

A block's search-ready form is a faiss ``IndexBinaryFlat`` holding the block's codes (a copy of the code
bytes), searched as faiss searches it (queries in cache-sized batches); equal distances are put in
increasing id order by the scan loop.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from vecspread.scanners.base import ExhaustiveScanner, Ready


class HammingScanner(ExhaustiveScanner):
    """D: the Hamming distance (float32) of the query's code to each code."""

    name = "hamming"
    families = ("binary",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return self.codec.encode(yq)

    def ready(self, block: np.ndarray) -> Ready:
        index = faiss.IndexBinaryFlat(8 * block.shape[1])
        index.add(np.ascontiguousarray(block, dtype=np.uint8))
        return Ready(len(block), index, block.nbytes)

    def block_topk(self, queries: Any, block: Any, kb: int) -> tuple[np.ndarray, np.ndarray]:
        D, I = block.search(queries, kb)
        return D.astype(np.float32), I
