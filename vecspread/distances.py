"""Distance kernels, written once. Distances are reported so that smaller is better:

- ``euclidean``: the true L2 distance ||q - x|| (not squared), as ann-benchmarks stores it;
- ``angular``: 1 - cos(q, x), as ann-benchmarks stores it;
- ``dot``: -q.x (the negated inner product, so that ascending order is best first).

:func:`pairwise` compares every query with every database row in float32 (BLAS, as faiss does);
:func:`paired` compares rows pairwise in float64 (recomputed true distances); :func:`unit_rows` is the
one normalisation (overflow-safe, zero rows stay zero).
"""

from __future__ import annotations

import numpy as np

METRICS = ("euclidean", "angular", "dot")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(n, d) finite rows scaled to unit L2 norm, float32; all-zero rows stay zero.

    Rows are divided by their max-abs value first, so that the squared norm cannot overflow float32.
    """
    x = np.asarray(x, dtype=np.float32)
    scale = np.abs(x).max(axis=1, keepdims=True) if x.shape[1] else np.ones((len(x), 1), np.float32)
    scale[scale == 0] = 1
    x = x / scale
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    norm[norm == 0] = 1
    return np.ascontiguousarray(x / norm, dtype=np.float32)


def pairwise(xq: np.ndarray, xb: np.ndarray, distance: str = "euclidean") -> np.ndarray:
    """(nq, nb) float32 distances between all (nq, d) queries and (nb, d) database rows."""
    xq = np.ascontiguousarray(xq, np.float32)
    xb = np.ascontiguousarray(xb, np.float32)
    if distance == "euclidean":
        sq = (xq * xq).sum(axis=1)[:, None] + (xb * xb).sum(axis=1)[None, :] - 2 * (xq @ xb.T)
        return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)
    if distance == "angular":
        return 1 - unit_rows(xq) @ unit_rows(xb).T
    if distance == "dot":
        return -(xq @ xb.T)
    raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")


def paired(a: np.ndarray, b: np.ndarray, distance: str = "euclidean") -> np.ndarray:
    """(n,) float64 distance between rows a[i] and b[i] ((n, d) each)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if distance == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", a - b, a - b))
    if distance == "angular":
        return 1 - cosines(a, b, zero=0.0)
    if distance == "dot":
        return -np.einsum("ij,ij->i", a, b)
    raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")


def cosines(a: np.ndarray, b: np.ndarray, zero: float) -> np.ndarray:
    """(n,) float64 cosine of rows a[i], b[i]; ``zero`` where either row is all zeros."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    out = np.full(len(a), zero, np.float64)
    out[ok] = np.einsum("ij,ij->i", a[ok], b[ok]) / (na[ok] * nb[ok])
    return out


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) float64 angle in degrees between rows a[i] and b[i]; nan where a row is zero."""
    return np.degrees(np.arccos(np.clip(cosines(a, b, zero=np.nan), -1.0, 1.0)))


def from_faiss(D: np.ndarray, distance: str) -> np.ndarray:
    """faiss's scores -> reported distances, float32: squared L2 -> L2, inner product of unit rows ->
    1 - cos, inner product -> -ip. Missing results (faiss's +-inf or +-3.4e38 sentinels) become +inf."""
    missing = ~np.isfinite(D) | (np.abs(D) > 1e37)
    if distance == "euclidean":
        out = np.sqrt(np.maximum(D, 0))
    elif distance == "angular":
        out = 1 - D
    else:
        out = -D
    out = out.astype(np.float32)
    out[missing] = np.inf
    return out
