"""Exact k-nearest-neighbour search over blocks of the database, with faiss, and the top-k merge.

Memory depends on the query block and database block sizes, never on the database size.
Distances follow the dataset's ``distance`` attribute, reported so that smaller is better
(``vecspread.distances``).
"""

from __future__ import annotations

from typing import Iterable

import faiss
import numpy as np

from vecspread.distances import METRICS, from_faiss, unit_rows


def knn_blocks(
    xq: np.ndarray, xb_blocks: Iterable[tuple[int, np.ndarray]], k: int, distance: str = "euclidean"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN of (nq, d) float32 queries over an iterable of (start, (bs, d) float32) database blocks.

    Returns D (nq, k) float32 and I (nq, k) int64, best first (see the module docstring for D).
    Ids are ``start + row``; slots beyond the number of database vectors hold id -1.
    """
    if distance not in METRICS:
        raise ValueError(f"unknown distance {distance!r}")
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    if distance == "angular":
        xq = unit_rows(xq)
    keep_max = distance != "euclidean"
    heap = faiss.ResultHeap(xq.shape[0], k, keep_max=keep_max)
    for start, xb in xb_blocks:
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        if distance == "angular":
            xb = unit_rows(xb)
        kb = min(k, xb.shape[0])
        if keep_max:
            D, I = faiss.knn(xq, xb, kb, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            D, I = faiss.knn(xq, xb, kb)
        I = np.where(I >= 0, I + start, -1)
        heap.add_result(D, I)
    heap.finalize()
    D, I = heap.D, heap.I
    return from_faiss(D, distance), I


def merge_topk(D1: np.ndarray, I1: np.ndarray, D2: np.ndarray, I2: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of the union of two (nq, *) candidate lists, ordered by (distance, id); ids -1 (no result) last."""
    D = np.concatenate([D1, D2], axis=1)
    I = np.concatenate([I1, I2], axis=1)
    key_id = np.where(I < 0, np.iinfo(np.int64).max, I)
    order = np.lexsort((key_id, D), axis=1)[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)
