"""Compiled (numba) top-k heaps that the exhaustive scan kernels share.

A query's k best are a max-heap of (distance, id) pairs, largest at the root: a candidate enters when it
is smaller than the root, which it replaces (:func:`heap_push`). Distances compare first, ids break ties
(the larger id is the worse), so that equal distances keep the smallest ids whatever the scan order.
:func:`sort_heap` turns a heap into the ascending (distance, id) rows a scanner returns.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def heap_push(heap_d: np.ndarray, heap_i: np.ndarray, k: int, dist: np.float32, idx: np.int64) -> None:
    """Replace the root of a max-heap of (distance, id) by (dist, idx) and sift it down."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        if child + 1 < k and (heap_d[child + 1] > heap_d[child] or (
                heap_d[child + 1] == heap_d[child] and heap_i[child + 1] > heap_i[child])):
            child += 1
        if heap_d[child] > dist or (heap_d[child] == dist and heap_i[child] > idx):
            heap_d[pos] = heap_d[child]
            heap_i[pos] = heap_i[child]
            pos = child
        else:
            break
    heap_d[pos] = dist
    heap_i[pos] = idx


@numba.njit(cache=True, nogil=True)
def sort_heap(heap_d: np.ndarray, heap_i: np.ndarray, out_d: np.ndarray, out_i: np.ndarray) -> None:
    """Heap contents -> ascending (distance, id): a stable sort by distance of the entries sorted by id.
    Empty slots (id -1, distance +inf) come last: every real distance is finite."""
    k = heap_d.shape[0]
    by_id = np.argsort(heap_i, kind="mergesort")
    d_by_id = np.empty(k, np.float32)
    for j in range(k):
        d_by_id[j] = heap_d[by_id[j]]
    order = np.argsort(d_by_id, kind="mergesort")
    for j in range(k):
        src = by_id[order[j]]
        out_d[j] = heap_d[src]
        out_i[j] = heap_i[src]
