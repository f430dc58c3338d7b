"""How evenly a transform spreads the data: uniformity (§3.3) and range search against k-NN (Appendix C).

- :func:`uniformity` — Sablayrolles et al. (ICLR 2019) §3.3: the probability that a query's distance to
  its nearest neighbour exceeds *another* query's distance to its k-th (100th) neighbour. About 50% in a
  badly imbalanced space, towards 0% in a uniform one (paper, Deep1M: 20.8% input, 5.0% after the catalyzer).
- :func:`range_counts` + :func:`epsilon_curve` — Appendix C / Figure 7: for a sweep of radii ε, the average
  number of database vectors within ε of a query and the share of queries whose true (input-space) nearest
  neighbour is within ε.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from vecspread.distances import pairwise
from vecspread.diagnostics.floats import floats

#: largest (queries x database rows) distance block held at once (float32 items, 16 MiB)
_PAIR_CHUNK = 1 << 22


def uniformity(d1: np.ndarray, dk: np.ndarray) -> float:
    """P[d1_i > dk_j] over ordered pairs of distinct queries i != j, exactly, in O(n log n).

    d1: (n,) distance of each query to its nearest neighbour; dk: (n,) to its k-th (e.g. 100th) neighbour.
    ~0.5 when the space is badly imbalanced (one query's nearest neighbour is farther than another's 100th),
    -> 0 when it is uniform. Returns nan for fewer than 2 queries.
    """
    d1 = np.asarray(d1, dtype=np.float64).ravel()
    dk = np.asarray(dk, dtype=np.float64).ravel()
    if d1.shape != dk.shape:
        raise ValueError(f"d1 and dk must have the same length, got {d1.size} and {dk.size}")
    n = d1.size
    if n < 2:
        return float("nan")
    # for each i, the number of j (including i) with dk_j < d1_i; then drop the pairs i == j
    below = int(np.searchsorted(np.sort(dk), d1, side="left").sum())
    below -= int(np.count_nonzero(dk < d1))
    return below / (n * (n - 1))


def range_counts(
    xq: np.ndarray, xb_blocks: Iterable[np.ndarray], radii: np.ndarray, distance: str = "euclidean"
) -> np.ndarray:
    """Number of database vectors within each radius of each query: (nq, n_radii) int64.

    xq: (nq, d) float32; xb_blocks: iterable of (bs, d) float32 database blocks; radii: (n_radii,) ascending,
    at most 255 values. A vector counts for radius r when its distance (``distance`` as in vecspread.knn)
    is <= r. Memory is bounded by the block size, not by the database size.
    """
    radii = np.asarray(radii, dtype=np.float32)
    if not 1 <= len(radii) <= 255:
        raise ValueError(f"between 1 and 255 radii are supported, got {len(radii)}")
    counts = np.zeros((len(xq), len(radii)), np.int64)
    for xb in xb_blocks:
        counts += count_within(xq, xb, radii, distance)
    return counts


def epsilon_grid(D: np.ndarray, target: np.ndarray, n_radii: int = 40) -> np.ndarray:
    """(<= n_radii,) ascending float32 radii for the ε sweep.

    Half are quantiles, evenly spaced in probability from 0 to 1, of ``target`` (nq,), the distances to
    the true nearest neighbours: the recall of the curve then rises in even steps up to 1. The other half
    are quantiles of the 1st..k-th neighbour distances D (nq, k) at geometrically spaced probabilities
    (from one value in the pool to all of it), which resolve the region of less than one to a few results
    per query that even quantiles skip over. Repeated values are merged.
    """
    target = np.asarray(target, np.float64).ravel()
    pool = np.asarray(D, np.float64).ravel()
    target, pool = target[np.isfinite(target)], pool[np.isfinite(pool)]
    if target.size == 0 and pool.size == 0:
        raise ValueError("no finite distance to build radii from")
    parts = []
    if target.size:
        parts.append(np.quantile(target, np.linspace(0, 1, n_radii - n_radii // 2)))
    if pool.size:
        parts.append(np.quantile(pool, np.geomspace(1 / pool.size, 1, n_radii // 2)))
    return np.unique(np.concatenate(parts).astype(np.float32))


def epsilon_curve(counts: np.ndarray, target: np.ndarray, radii: np.ndarray) -> dict[str, list[float]]:
    """Figure 7's curve: per radius, the mean number of results per query and the share of queries whose
    true nearest neighbour is within the radius.

    counts: (nq, n_radii) from :func:`range_counts`; target: (nq,) distance of each query to its true
    (input-space) nearest neighbour, measured in the same space as ``counts``; radii: (n_radii,).
    """
    radii = np.asarray(radii, dtype=np.float32)
    within = np.asarray(target, np.float32)[:, None] <= radii[None, :]
    return {
        "radius": floats(radii),
        "results_per_query": floats(np.asarray(counts, np.float64).mean(axis=0)),
        "recall": floats(within.mean(axis=0)),
    }


def count_within(xq: np.ndarray, xb: np.ndarray, radii: np.ndarray, distance: str) -> np.ndarray:
    """(nq, n_radii) int64: for one database block, how many rows are within each radius of each query."""
    radii = np.asarray(radii, dtype=np.float32)
    G = len(radii)
    counts = np.zeros((len(xq), G), np.int64)
    if len(xb) == 0:
        return counts
    rows = max(1, _PAIR_CHUNK // len(xb))
    for s in range(0, len(xq), rows):
        D = pairwise(xq[s : s + rows], xb, distance)
        # slot[i, j] = number of radii below D[i, j]; D <= radii[g] iff slot <= g. Adding G boolean masks
        # into uint8 is ~5x faster than np.searchsorted for the few dozen radii used here.
        slot = np.zeros(D.shape, np.uint8)
        for r in radii:
            slot += D > r
        qc = len(D)
        flat = slot.astype(np.int64) + (np.arange(qc, dtype=np.int64) * (G + 1))[:, None]
        hist = np.bincount(flat.ravel(), minlength=qc * (G + 1)).reshape(qc, G + 1)
        counts[s : s + qc] = np.cumsum(hist, axis=1)[:, :G]
    return counts
