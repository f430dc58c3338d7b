"""Recall as the field measures it, with ties in true distance never counted as misses.

Given a search result I (nq, >=k) and the exact ground truth (gt_I, gt_D) (nq, kgt) ascending:

- 1-recall@k: share of queries whose true nearest neighbour is among the first k results. Any
  database vector whose true distance equals the nearest one's (within ``tol``) counts as "the"
  nearest neighbour, so an arbitrary order among exact ties is not a miss.
- k-recall@k: mean over queries of |first k results ∩ T_k| / k, with T_k the ids whose true
  distance is at most the k-th true distance (+ tol), as ann-benchmarks counts it.
"""

from __future__ import annotations

import numpy as np

#: relative tolerance for "equal" true distances (float32 distances of integer SIFT data are exact)
TIE_RTOL = 1e-5
TIE_ATOL = 1e-6


def tie_threshold(d: np.ndarray) -> np.ndarray:
    """Largest distance still tied with ``d`` (elementwise)."""
    return d + TIE_RTOL * np.abs(d) + TIE_ATOL


def one_recall_at(I: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray, k: int) -> float:
    """1-recall@k of results I (nq, >=k) int64 against ground truth (nq, kgt) ids and distances."""
    nq = I.shape[0]
    if nq == 0:
        return float("nan")
    tied = gt_D <= tie_threshold(gt_D[:, :1])  # (nq, kgt): ids tied with the nearest neighbour
    hits = 0
    for q in range(nq):
        targets = gt_I[q, tied[q]]
        hits += bool(np.isin(I[q, :k], targets).any())
    return hits / nq


def k_recall_at(I: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray, k: int) -> float:
    """k-recall@k (intersection measure) with ties at the k-th true distance counted as correct."""
    nq = I.shape[0]
    if nq == 0:
        return float("nan")
    within = gt_D <= tie_threshold(gt_D[:, k - 1 : k])
    total = 0.0
    for q in range(nq):
        found = np.isin(I[q, :k], gt_I[q, within[q]])
        total += min(int(found.sum()), k) / k
    return total / nq
