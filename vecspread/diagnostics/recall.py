"""Recall by id intersection against recall with recomputed true distances (ann-benchmarks' k-recall@k)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.distances import paired

#: ann-benchmarks' absolute tolerance on the k-th true distance
ANN_BENCHMARKS_TOL = 1e-3


def id_recall(I: np.ndarray, gt_I: np.ndarray, k: int) -> float:
    """k-recall@k by id intersection: mean over queries of |I[:, :k] ∩ gt_I[:, :k]| / k."""
    hits = [np.intersect1d(I[q, :k], gt_I[q, :k]).size for q in range(len(I))]
    return float(np.mean(hits) / k) if hits else float("nan")


def true_distances(xq: np.ndarray, I: np.ndarray, xb: Any, distance: str = "euclidean") -> np.ndarray:
    """(nq, k) float64 true distance between each query and each returned id (inf for id -1).

    xq: (nq, d) float32; I: (nq, k) int64 ids; xb: the database, an (n, d) array or a callable mapping
    an int64 id array to the (len(ids), d) float32 rows.
    """
    I = np.asarray(I, dtype=np.int64)
    valid = I >= 0
    ids = I[valid]
    rows = xb(ids) if callable(xb) else np.asarray(xb)[ids]
    out = np.full(I.shape, np.inf)
    out[valid] = paired(np.repeat(xq, I.shape[1], axis=0)[valid.ravel()], rows, distance)
    return out


def tie_aware_recall(
    I: np.ndarray, xq: np.ndarray, xb: Any, gt_D: np.ndarray, k: int, *,
    distance: str = "euclidean", tol: float = ANN_BENCHMARKS_TOL,
) -> float:
    """k-recall@k as ann-benchmarks counts it: the share of the first k results whose recomputed true
    distance is <= the k-th true distance gt_D[:, k - 1] + tol (absolute), averaged over queries.

    I: (nq, >= k) int64 results; xq: (nq, d) float32 queries; xb: database array or row callable (see
    :func:`true_distances`); gt_D: (nq, >= k) exact distances, ascending. A result tied with the k-th
    neighbour counts even when its id differs from the ground truth's.
    """
    D = true_distances(xq, np.asarray(I)[:, :k], xb, distance)
    threshold = np.asarray(gt_D, np.float64)[:, k - 1 : k] + tol
    return float((D <= threshold).sum(axis=1).mean() / k) if len(D) else float("nan")
