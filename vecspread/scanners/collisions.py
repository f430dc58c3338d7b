"""E2LSH codes ranked by the number of hashes equal to the query's (most collisions first).

D = nhash - collisions (float32, exact), so that smaller is better as elsewhere; equal counts in
increasing id order. The collision counts of a block are one matrix product of one-hot encodings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.scanners.base import ExhaustiveScanner

#: queries scanned together: the (nq, bs) collision-count matrix is the largest temporary
QUERY_CHUNK = 128


class CollisionScanner(ExhaustiveScanner):
    name = "collisions"
    families = ("e2lsh",)

    def prepare(self, yq: np.ndarray) -> np.ndarray:
        return self._one_hot(self.codec.unpack(self.codec.encode(yq)))

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        ob = self._one_hot(self.codec.unpack(block))
        nq = len(queries)
        D = np.empty((nq, kb), np.float32)
        I = np.empty((nq, kb), np.int64)
        for q0 in range(0, nq, QUERY_CHUNK):
            # collisions[q, x] = sum_j [h_j(q) == h_j(x)] = one_hot(q) . one_hot(x): one matrix product
            coll = queries[q0 : q0 + QUERY_CHUNK] @ ob.T
            D[q0 : q0 + QUERY_CHUNK], I[q0 : q0 + QUERY_CHUNK] = topk_by_count(coll, self.codec.nhash_, kb)
        return D, I

    def _one_hot(self, h: np.ndarray) -> np.ndarray:
        """(n, nhash) reduced hashes -> (n, nhash * 2^hash_bits) float32 indicator rows."""
        nhash, width = self.codec.nhash_, 1 << self.codec.hash_bits
        out = np.zeros((len(h), nhash * width), np.float32)
        np.put_along_axis(out, h + width * np.arange(nhash), 1.0, axis=1)
        return out


def topk_by_count(coll: np.ndarray, nhash: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(nq, bs) float32 collision counts -> top-k (D = nhash - count, local ids), ties by id."""
    bs = coll.shape[1]
    # one int64 key per entry, (misses, id) in lexicographic order: exact, no float ties to break
    key = (nhash - coll.astype(np.int64)) * bs + np.arange(bs)
    part = np.argpartition(key, k - 1, axis=1)[:, :k] if k < bs else np.broadcast_to(np.arange(bs), key.shape)
    part_key = np.take_along_axis(key, part, 1)
    order = np.argsort(part_key, axis=1)
    sel = np.take_along_axis(part_key, order, 1)
    return (sel // bs).astype(np.float32), sel % bs
