"""Measures of a representation searched among class vectors (seed 000, Schmidt & Talwar's softmax study).

A classifier whose last layer is a softmax answers "which class?" by a maximum inner product search of
the representation (pre-softmax) vector among the class vectors (the last layer's rows). The seed
measures how amenable that search is:

- the **mean correct angle**: the mean, over labelled vectors, of the angle between a representation
  and its correct class vector (:func:`correct_angles`; degrees);
- the **norm** of the representations: mean, standard deviation, range and relative spread
  (:func:`norm_stats`);
- the **table balance** M(P, h) / M* of an LSH partition h of a point set P (:func:`table_balance`):
  M(P, h) = Σ_b |P_b|² / |P|, the mean number of points in a random point's bucket (what a query costs
  when it falls like the points), and M* the same for the most even split of |P| points into the
  partition's B buckets: with q = ⌊|P| / B⌋ and r = |P| mod B, M* = (r (q + 1)² + (B − r) q²) / |P|
  (1 when B ≥ |P|). The ratio is 1 for a perfectly balanced table and grows with imbalance.

The partitions are FALCONN's two families: **hyperplane** LSH (K random Gaussian hyperplanes through
the origin, bucket = the K sign bits; B = 2^K, :func:`hyperplane_buckets`) and **cross-polytope** LSH
(Andoni et al. 2015: a random rotation, then the nearest of the 2m signed basis vectors, i.e. the index
of the largest |coordinate| and its sign; K of them concatenated, B = (2m)^K, :func:`cross_polytope_buckets`).
The rotation here is a uniformly random orthogonal matrix (the QR factor of a Gaussian matrix); FALCONN
uses pseudo-random Hadamard rotations, which approximate it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.linalg import random_rotation


def correct_angles(reps: np.ndarray, class_vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Angle (degrees, float64) between each (n, d) representation and its class's row of the (C, d)
    class vectors; ``labels`` (n,) int in [0, C). A zero vector's angle is 90 degrees (undefined: counted
    as orthogonal)."""
    reps = np.asarray(reps, np.float64)
    w = np.asarray(class_vectors, np.float64)[np.asarray(labels, np.int64)]
    dots = np.einsum("ij,ij->i", reps, w)
    norms = np.linalg.norm(reps, axis=1) * np.linalg.norm(w, axis=1)
    cos = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def mean_correct_angle(reps: np.ndarray, class_vectors: np.ndarray, labels: np.ndarray) -> float:
    """The mean of :func:`correct_angles` (degrees)."""
    return float(correct_angles(reps, class_vectors, labels).mean())


def norm_stats(x: np.ndarray) -> dict[str, float]:
    """l2 norms of the (n, d) rows: ``mean``, ``std``, ``min``, ``max`` and ``relative_std`` (std / mean)."""
    norms = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    mean = float(norms.mean())
    return {"mean": mean, "std": float(norms.std()), "min": float(norms.min()), "max": float(norms.max()),
            "relative_std": float(norms.std() / mean) if mean > 0 else float("nan")}


def hyperplane_buckets(x: np.ndarray, n_planes: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Random-hyperplane LSH of (n, d) points: bucket ids (n,) int64 (the K sign bits, bit j = hyperplane
    j, 1 when the point is on its positive side) and the number of buckets 2^K."""
    x = np.asarray(x, np.float64)
    planes = rng.standard_normal((x.shape[1], n_planes))
    bits = (x @ planes > 0).astype(np.int64)
    return bits @ (np.int64(1) << np.arange(n_planes, dtype=np.int64)), 2**n_planes


def cross_polytope_hash(x: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """One cross-polytope hash of (n, d) points: of the rotated point y = x R, the index i of the largest
    |y_i|, as i for y_i > 0 and m + i otherwise (m = R's columns): (n,) int64 in [0, 2m)."""
    y = np.asarray(x, np.float64) @ rotation
    i = np.argmax(np.abs(y), axis=1)
    negative = y[np.arange(len(y)), i] < 0
    return np.where(negative, rotation.shape[1] + i, i).astype(np.int64)


def cross_polytope_buckets(x: np.ndarray, n_hashes: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """K concatenated cross-polytope hashes of (n, d) points: bucket ids (n,) int64 (distinct tuples of
    hashes get distinct ids, numbered in order of first appearance) and the number of buckets (2d)^K."""
    x = np.asarray(x, np.float64)
    hashes = np.stack([cross_polytope_hash(x, random_rotation(x.shape[1], rng)) for _ in range(n_hashes)], axis=1)
    _, ids = np.unique(hashes, axis=0, return_inverse=True)
    return ids.reshape(-1).astype(np.int64), (2 * x.shape[1]) ** n_hashes


def table_balance(buckets: np.ndarray, n_buckets: int) -> dict[str, Any]:
    """M(P, h), M* and their ratio for the (n,) bucket ids of a point set in a table of ``n_buckets``
    (see the module docstring); ``used`` the buckets that hold a point."""
    n = len(buckets)
    if n == 0:
        raise ValueError("table balance of an empty point set")
    counts = np.unique(np.asarray(buckets), return_counts=True)[1].astype(np.float64)
    m = float((counts**2).sum() / n)
    q, r = divmod(n, int(n_buckets))
    m_star = (r * (q + 1) ** 2 + (int(n_buckets) - r) * q**2) / n
    return {"M": m, "M_star": float(m_star), "ratio": m / float(m_star), "used": int(len(counts)),
            "buckets": int(n_buckets) if n_buckets < 2**63 else float(n_buckets)}


#: hashes drawn for each table-balance figure (their mean is reported)
BALANCE_DRAWS = 5


def class_balance(class_vectors: np.ndarray, seed: int = 0) -> dict[str, dict[str, float]]:
    """Table balance of the (C, d) class vectors made unit (the points an index holds) under hyperplane
    LSH of ceil(log2 C) bits and one cross-polytope hash, each the mean over :data:`BALANCE_DRAWS`
    seeded draws: {"hyperplane_K": {ratio, M, M_star, buckets}, "cross_polytope_1": {...}}."""
    w = np.asarray(class_vectors, np.float64)
    unit = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    bits = max(1, int(np.ceil(np.log2(len(w)))))
    draws = range(seed, seed + BALANCE_DRAWS)

    def balance(family: Any) -> dict[str, float]:
        runs = [table_balance(*family(np.random.default_rng(s))) for s in draws]
        return {"ratio": float(np.mean([r["ratio"] for r in runs])), "M": float(np.mean([r["M"] for r in runs])),
                "M_star": runs[0]["M_star"], "buckets": runs[0]["buckets"]}

    return {f"hyperplane_{bits}": balance(lambda g: hyperplane_buckets(unit, bits, g)),
            "cross_polytope_1": balance(lambda g: cross_polytope_buckets(unit, 1, g))}


def class_measures(reps: np.ndarray, class_vectors: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """The seed's measures of (nq, d) representations against (C, d) class vectors: the exact softmax's
    ``accuracy`` (None without labels), the ``mean_correct_angle`` (degrees; against the labels, else
    against the exact softmax's class), the norms of both (:func:`norm_stats`), and ``exact`` (nq,)
    int64, the exact softmax's classes."""
    w = np.asarray(class_vectors, np.float32)
    exact = np.argmax(reps @ w.T, axis=1)
    return {"accuracy": float((exact == labels).mean()) if labels is not None else None,
            "mean_correct_angle": mean_correct_angle(reps, w, labels if labels is not None else exact),
            "representation_norm": norm_stats(reps), "class_vector_norm": norm_stats(w), "exact": exact}


def class_report(transform: Any, ds: Any, *, nq: int, codes_art: Any = None, codec: Any = None,
                 seed: int = 0) -> dict[str, Any]:
    """``inspect`` of a softmax model (or its class-vector codes) on a labelled dataset: the seed's measures.

    On the first ``nq`` test vectors, :func:`class_measures` and :func:`class_balance`. For codes, the
    search of the representations among the codes: ``index_top1`` P[its first result is the exact
    softmax's class] and ``relative_accuracy`` that probability among the queries the model classifies
    right (the seed's Figure 7 measure; with labels).
    """
    xq = ds.read("test", limit=nq)
    labels = ds.labels("test")[: len(xq)] if ds.has_labels("test") else None
    reps = transform.apply_query(xq)
    w = np.asarray(transform.class_vectors(), np.float32)
    measures = class_measures(reps, w, labels)
    exact = measures.pop("exact")
    report: dict[str, Any] = {"classes": int(len(w)), "nq": int(len(xq)), "labels": labels is not None,
                              **measures, "table_balance": class_balance(w, seed)}
    if codes_art is not None:
        from vecspread.searcher import Searcher

        with Searcher(transform, codec, codes_art) as searcher:
            first = searcher.search_transformed(reps, 1).I[:, 0]
        report["index_top1"] = float((first == exact).mean())
        if labels is not None:
            right = exact == labels
            report["relative_accuracy"] = float((first[right] == exact[right]).mean()) if right.any() else None
    return report
