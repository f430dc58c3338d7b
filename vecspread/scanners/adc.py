"""Asymmetric distance computation (ADC) for product-quantizer codes, by faiss's own PQ scanner.

Each block is loaded into the (emptied) faiss index of the codec with ``add_sa_codes`` and searched with
faiss's look-up tables of query-to-centroid distances; D holds squared L2 distances from the query to
the reconstruction of each code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.scanners.base import ExhaustiveScanner


class ADCScanner(ExhaustiveScanner):
    name = "adc"
    families = ("pq",)

    def prepare(self, yq: np.ndarray) -> tuple[Any, np.ndarray]:
        """The codec's faiss index (emptied) and the queries as it reads them (rotated, for OPQ)."""
        return self.codec.adc_index(), self.codec.adc_queries(yq)

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        index, xq = queries
        index.reset()
        try:
            index.add_sa_codes(block)
            return index.search(xq, kb)
        finally:
            index.reset()
