"""LSH tables over (n, d) float32 vectors: build once, query many times (multi-probe, exact re-ranking).

Memory: the vectors (n d float32, for re-ranking), and per table the ids sorted by key (n int64) with
its distinct keys and their bucket bounds; it grows with n and L, never with the number of possible keys.
"""

from __future__ import annotations

import numpy as np

from vecspread.errors import ConfigError
from vecspread.scanners.lsh import kernels
from vecspread.scanners.lsh.families import FAMILY_CLASSES, Family, default_hashes

#: queries hashed together (bounds the alternatives: QUERY_BLOCK x L x K x 2 d for cross-polytope)
QUERY_BLOCK = 256
#: database vectors hashed together
BUILD_BLOCK = 1 << 16


class LSHIndex:
    """``family`` ("hyperplane" or "crosspolytope") tables: ``ntables`` (L) keys of ``nhashes`` (K; None:
    :func:`default_hashes`) functions each, drawn from ``seed``; ``metric`` "dot" or "euclidean"."""

    def __init__(self, family: str, ntables: int, nhashes: int | None, seed: int, metric: str) -> None:
        if family not in FAMILY_CLASSES:
            raise ConfigError(f"unknown LSH family {family!r}; expected one of {', '.join(FAMILY_CLASSES)}")
        self.family_name, self.ntables, self.nhashes, self.seed, self.metric = family, ntables, nhashes, seed, metric

    def build(self, xb: np.ndarray) -> "LSHIndex":
        """Hash the (n, d) float32 database ``xb`` (kept for re-ranking) into the tables."""
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        n, d = xb.shape
        if n == 0:
            raise ConfigError("no vectors to index")
        K = self.nhashes if self.nhashes is not None else default_hashes(self.family_name, n, d)
        self.family_: Family = FAMILY_CLASSES[self.family_name](d, self.ntables, K, self.seed)
        keys = np.concatenate([self.family_.keys(xb[s : s + BUILD_BLOCK]) for s in range(0, n, BUILD_BLOCK)])
        uniq, lo, hi, ids = [], [], [], []
        for t in range(self.ntables):
            order = np.argsort(keys[:, t], kind="stable")  # within a bucket, ids increase
            sorted_keys = keys[order, t]
            u, first = np.unique(sorted_keys, return_index=True)
            uniq.append(u)
            lo.append(t * n + first)
            hi.append(t * n + np.append(first[1:], n))
            ids.append(order)
        self.uniq_ = np.concatenate(uniq).astype(np.int64)
        self.uniq_off_ = np.concatenate([[0], np.cumsum([len(u) for u in uniq])]).astype(np.int64)
        self.lo_ = np.concatenate(lo).astype(np.int64)
        self.hi_ = np.concatenate(hi).astype(np.int64)
        self.ids_ = np.concatenate(ids).astype(np.int64)
        self.xb_ = xb
        return self

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.uniq_, self.uniq_off_, self.lo_, self.hi_, self.ids_, self.xb_)))

    def bucket_sizes(self) -> np.ndarray:
        """(distinct buckets,) int64: the number of ids in each non-empty bucket of every table."""
        return self.hi_ - self.lo_

    def search(self, xq: np.ndarray, k: int, nprobes: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k of (nq, d) float32 queries among their candidates: D (nq, k) float32 (-q.x or squared
        L2), I (nq, k) int64 (best first, ties by id; inf / -1 past the candidates), and ncand (nq,)
        int64 distinct candidates compared. ``nprobes``: buckets probed per query (default L)."""
        xq = np.ascontiguousarray(xq, dtype=np.float32)
        if xq.ndim != 2 or xq.shape[1] != self.xb_.shape[1]:
            raise ConfigError(f"LSH index built for dimension {self.xb_.shape[1]}, got queries of shape {xq.shape}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        nprobes = self.ntables if nprobes is None else int(nprobes)
        nq = len(xq)
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        ncand = np.zeros(nq, np.int64)
        for s in range(0, nq, QUERY_BLOCK):
            block = xq[s : s + QUERY_BLOCK]
            qkeys, cost, delta = self.family_.alternatives(block, nprobes - self.ntables + 1)
            kernels.search(np.ascontiguousarray(qkeys), cost, delta, nprobes, self.uniq_, self.uniq_off_, self.lo_, self.hi_,
                           self.ids_, self.xb_, block, self.metric == "dot", k, D[s : s + len(block)],
                           I[s : s + len(block)], ncand[s : s + len(block)])
        return D, I, ncand
