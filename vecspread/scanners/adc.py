"""Asymmetric distance computation (ADC) for product-quantizer codes, by faiss's own PQ scanner.

A block's search-ready form is a copy of the codec's faiss index holding the block's codes
(``add_sa_codes``: the code bytes, nothing more); it is searched with faiss's look-up tables of
query-to-centroid distances. D holds squared L2 distances from the query to the reconstruction of
each code.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from vecspread.scanners.base import ExhaustiveScanner, Ready


class ADCScanner(ExhaustiveScanner):
    name = "adc"
    families = ("pq",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        """The queries as the codec's faiss index reads them (rotated, for OPQ)."""
        return self.codec.adc_queries(yq)

    def ready(self, block: np.ndarray) -> Ready:
        index = faiss.clone_index(self.codec.adc_index())
        index.reset()
        index.add_sa_codes(block)
        return Ready(len(block), index, block.nbytes)

    def block_topk(self, queries: Any, block: Any, kb: int) -> tuple[np.ndarray, np.ndarray]:
        return block.search(queries, kb)
