"""Compiled (numba) LSH query: multi-probe in increasing score over all tables, candidates re-ranked.

For each query, the probes are its own bucket in each of the L tables, then the other buckets in
increasing score, all tables in one heap (the order FALCONN probes in). A bucket of table t is a rank
vector r (K,): hash function f takes its r_f-th cheapest alternative (0: its own value), and the score
is the sum of the alternatives' costs. Rank vectors are enumerated from r = 0 by raising one rank at a
time, only at functions f >= the last one raised (the "pivot"): every vector comes out exactly once,
and as costs are sorted, in increasing score. Each probed bucket's ids are visited once per query (a stamp per id), their exact
distance computed in float64 and rounded to float32 once, and the k best (distance, id) kept, ties by id.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _heap_push(hs, ht, hm, hl, size, s, t, mask, last):  # pragma: no cover - compiled
    pos = size
    while pos > 0:
        parent = (pos - 1) >> 1
        if hs[parent] <= s:
            break
        hs[pos], ht[pos], hm[pos], hl[pos] = hs[parent], ht[parent], hm[parent], hl[parent]
        pos = parent
    hs[pos], ht[pos], hm[pos], hl[pos] = s, t, mask, last
    return size + 1


@numba.njit(cache=True, nogil=True)
def _heap_pop(hs, ht, hm, hl, size):  # pragma: no cover - compiled
    top = (hs[0], ht[0], hm[0], hl[0])
    size -= 1
    s, t, mask, last = hs[size], ht[size], hm[size], hl[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and hs[child + 1] < hs[child]:
            child += 1
        if hs[child] >= s:
            break
        hs[pos], ht[pos], hm[pos], hl[pos] = hs[child], ht[child], hm[child], hl[child]
        pos = child
    if size > 0:
        hs[pos], ht[pos], hm[pos], hl[pos] = s, t, mask, last
    return top, size


@numba.njit(cache=True, nogil=True)
def _visit(t, key, uniq, uniq_off, lo, hi, ids, xb, q, dot, k, stamp, qi, bestD, bestI, count, ncand):  # pragma: no cover
    a, b = uniq_off[t], uniq_off[t + 1]
    p = a + np.searchsorted(uniq[a:b], key)
    if p >= b or uniq[p] != key:
        return count, ncand
    d = q.shape[0]
    for r in range(lo[p], hi[p]):
        idx = ids[r]
        if stamp[idx] == qi:
            continue
        stamp[idx] = qi
        ncand += 1
        acc = 0.0
        if dot:
            for j in range(d):
                acc += np.float64(q[j]) * np.float64(xb[idx, j])
            dist = np.float32(-acc)
        else:
            for j in range(d):
                diff = np.float64(q[j]) - np.float64(xb[idx, j])
                acc += diff * diff
            dist = np.float32(acc)
        if count == k and (dist > bestD[k - 1] or (dist == bestD[k - 1] and idx > bestI[k - 1])):
            continue
        pos = count if count < k else k - 1
        while pos > 0 and (bestD[pos - 1] > dist or (bestD[pos - 1] == dist and bestI[pos - 1] > idx)):
            bestD[pos] = bestD[pos - 1]
            bestI[pos] = bestI[pos - 1]
            pos -= 1
        bestD[pos] = dist
        bestI[pos] = idx
        if count < k:
            count += 1
    return count, ncand


@numba.njit(cache=True, nogil=True)
def search(qkeys, cost, delta, nprobes, uniq, uniq_off, lo, hi, ids, xb, xq, dot, k, D, I, ncand):  # pragma: no cover
    """Fill D (nq, k) float32, I (nq, k) int64 (inf / -1 past the candidates) and ncand (nq,) int64.

    qkeys (nq, L) int64; cost (nq, L, K, a) float64 ascending along a, delta (nq, L, K, a) int64 (see
    ``families.Family.alternatives``); the tables: sorted distinct keys ``uniq`` with ``uniq_off``
    (L + 1) table offsets, bucket u holding ``ids[lo[u]:hi[u]]``; xb (n, d), xq (nq, d) float32.
    """
    nq, L = qkeys.shape
    K, A = cost.shape[2], cost.shape[3]
    n = xb.shape[0]
    stamp = np.full(n, -1, np.int64)
    cap = L + K * nprobes + 1  # states: the L roots, then at most K successors per probe
    ranks = np.zeros((cap, K), np.int16)
    hs = np.empty(cap, np.float64)
    ht = np.empty(cap, np.int64)
    hm = np.empty(cap, np.int64)  # the state's row in ``ranks``
    hl = np.empty(cap, np.int64)  # its pivot
    bestD = np.empty(k, np.float32)
    bestI = np.empty(k, np.int64)
    for qi in range(nq):
        q = xq[qi]
        count = 0
        nc = 0
        size = 0
        for t in range(L):
            ranks[t, :] = 0
            size = _heap_push(hs, ht, hm, hl, size, 0.0, t, t, 0)
        used = L
        emitted = 0
        while emitted < nprobes and size > 0:
            top, size = _heap_pop(hs, ht, hm, hl, size)
            s, t, row, pivot = top
            if not np.isfinite(s):
                break
            key = qkeys[qi, t]
            for f in range(K):
                r = ranks[row, f]
                if r > 0:
                    key += delta[qi, t, f, r - 1]
            count, nc = _visit(t, key, uniq, uniq_off, lo, hi, ids, xb, q, dot, k, stamp, qi,
                               bestD, bestI, count, nc)
            emitted += 1
            if emitted >= nprobes:
                break
            for f in range(pivot, K):
                r = ranks[row, f]
                if r >= A:
                    continue
                step = cost[qi, t, f, r] - (cost[qi, t, f, r - 1] if r > 0 else 0.0)
                ranks[used, :] = ranks[row, :]
                ranks[used, f] = r + 1
                size = _heap_push(hs, ht, hm, hl, size, s + step, t, used, f)
                used += 1
        for j in range(k):
            if j < count:
                D[qi, j] = bestD[j]
                I[qi, j] = bestI[j]
            else:
                D[qi, j] = np.inf
                I[qi, j] = -1
        ncand[qi] = nc
