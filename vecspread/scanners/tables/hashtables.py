"""Hash-table lookup of binary codes: L tables keyed by K code bits, multi-probe, Hamming re-ranking.

Instead of scanning every code, each of ``ntables`` (L) tables groups the database by a key of
``nbits`` (K) bits of its code; a query visits its own bucket in every table plus ``nprobe``
further buckets per table, and only the union of the ids found there (the *candidates*) is ranked
by full Hamming distance to the query code, ties by id. Probing every one of the 2^K buckets
makes every code a candidate, so the result is then exactly the exhaustive Hamming ranking.

Which bits key table t (``layout``):

- ``"random"`` (default): K distinct bit positions drawn per table from ``seed``
  (``numpy.random.default_rng(seed)``, one ``choice`` without replacement per table), the
  classic LSH amplification g_t = (h_i1, ..., h_iK) over the hash bits the code already holds;
  tables may share bits, so L is not limited by the code length;
- ``"slices"``: table t uses the consecutive bits [t K, (t + 1) K), as faiss
  ``IndexBinaryMultiHash(d, nhash=L, b=K)`` does; needs L K <= code bits.

Key bit j of table t is code bit ``positions[t, j]``; code bit i is bit i % 8 of byte i // 8
(little-endian, as faiss and :class:`vecspread.codecs.sign.codec.SignCodec` pack them).

Probing order (:func:`probe_masks`): the query's key is XORed with flip masks in increasing
Hamming weight, and, within one weight, increasing value: mask 0 (the query's own bucket), then the
K one-bit flips (1, 2, 4, ...), then the two-bit flips (3, 5, 6, 9, ...). ``nprobe`` counts the
buckets beyond the query's own, per table. Probing a radius r ball is
``nprobe = probes_within(K, r)`` (faiss's ``nflip = r``).

Memory: the codes (n, code_size) uint8 stay in memory for re-ranking; each table stores the ids
sorted by key (n int32) and a CSR index over its non-empty buckets (sorted unique keys and start
offsets), so memory grows with n and L, never with 2^K.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from vecspread.errors import ConfigError

LAYOUTS = ("random", "slices")
#: queries whose candidates are gathered and ranked together (bounds the candidate arrays)
QUERY_BLOCK = 64
#: largest (queries x database) byte bitmap used to deduplicate candidates; beyond it, a sort
BITMAP_LIMIT = 1 << 26

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.int64)


class HashTables:
    """``ntables`` hash tables over (n, code_size) uint8 binary codes, keyed by ``nbits`` bits each."""

    def __init__(self, nbits: int, ntables: int, layout: str = "random", seed: int = 0) -> None:
        self.nbits = nbits
        self.ntables = ntables
        self.layout = layout
        self.seed = seed

    def build(self, code_blocks: Iterable[np.ndarray]) -> "HashTables":
        """Index the codes of an iterable of (bs, code_size) uint8 blocks; ids count across blocks."""
        codes, keys = [], []
        for block in code_blocks:
            block = np.ascontiguousarray(block, dtype=np.uint8)
            if not codes:
                self.positions_ = table_positions(8 * block.shape[1], self.nbits, self.ntables, self.layout, self.seed)
            elif block.shape[1] != codes[0].shape[1]:
                raise ConfigError(f"code blocks of different sizes: {codes[0].shape[1]} and {block.shape[1]} bytes")
            codes.append(block)
            keys.append(bucket_keys(block, self.positions_))
        if not codes:
            raise ConfigError("no codes to index")
        self.codes_ = np.concatenate(codes)
        all_keys = np.concatenate(keys)  # (n, L) int64
        self.ids_, self.bucket_keys_, self.bucket_starts_ = [], [], []
        id_type = np.int32 if len(all_keys) < 2**31 else np.int64  # half the memory of the id lists
        for t in range(self.ntables):
            # stable: within a bucket, ids stay increasing
            order = np.argsort(all_keys[:, t], kind="stable")
            sorted_keys = all_keys[order, t]
            uniq, first = np.unique(sorted_keys, return_index=True)
            self.ids_.append(order.astype(id_type))
            self.bucket_keys_.append(uniq)
            self.bucket_starts_.append(np.append(first, len(order)).astype(np.int64))
        return self

    @property
    def ntotal(self) -> int:
        return int(self.codes_.shape[0])

    @property
    def code_bits(self) -> int:
        return 8 * int(self.codes_.shape[1])

    def candidates(self, q_codes: np.ndarray, nprobe: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Ids in the probed buckets of any table, for (nq, code_size) uint8 query codes.

        Returns (qidx, ids), both (m,) int64, one pair per distinct (query, id), sorted by query
        then id.
        """
        q_codes = self._check_queries(q_codes)
        masks = probe_masks(self.nbits, nprobe)
        qkeys = bucket_keys(q_codes, self.positions_)  # (nq, L)
        n = self.ntotal
        pairs = []
        for t in range(self.ntables):
            probe = (qkeys[:, t : t + 1] ^ masks[None, :]).ravel()  # (nq * (nprobe + 1),)
            uniq, starts = self.bucket_keys_[t], self.bucket_starts_[t]
            pos = np.searchsorted(uniq, probe)
            hit = pos < len(uniq)
            hit[hit] = uniq[pos[hit]] == probe[hit]
            lo = np.where(hit, starts[np.minimum(pos, len(uniq) - 1)], 0)
            length = np.where(hit, starts[np.minimum(pos + 1, len(uniq))] - lo, 0)
            rows = np.repeat(np.arange(len(probe)) // len(masks), length)
            # concatenated ranges [lo, lo + length) without a Python loop
            offset = np.repeat(lo - (np.cumsum(length) - length), length) + np.arange(int(length.sum()))
            pairs.append((rows, self.ids_[t][offset]))
        return _distinct_pairs(pairs, len(q_codes), n)

    def search(
        self, q_codes: np.ndarray, k: int, nprobe: int = 0, query_block: int = QUERY_BLOCK
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k by Hamming distance among the candidates of each (nq, code_size) uint8 query code.

        Returns D (nq, k) float32 Hamming distances, I (nq, k) int64 (best first, ties by id; inf / -1
        where a query has fewer than k candidates) and ncand (nq,) int64, the number of distinct
        candidates whose distance was computed.
        """
        q_codes = self._check_queries(q_codes)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        nq, n = len(q_codes), self.ntotal
        D = np.full((nq, k), np.inf, np.float32)
        I = np.full((nq, k), -1, np.int64)
        ncand = np.zeros(nq, np.int64)
        span = self.code_bits + 1
        for q0 in range(0, nq, query_block):
            qc = q_codes[q0 : q0 + query_block]
            qidx, ids = self.candidates(qc, nprobe)
            dist = _hamming_rows(self.codes_[ids], qc[qidx])
            # one int64 key orders by (query, distance, id): a single sort ranks every query
            order = np.sort((qidx * span + dist) * n + ids)
            qidx, rest = order // (span * n), order % (span * n)
            dist, ids = rest // n, rest % n
            counts = np.bincount(qidx, minlength=len(qc))
            ncand[q0 : q0 + len(qc)] = counts
            rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
            keep = rank < k
            D[q0 + qidx[keep], rank[keep]] = dist[keep]
            I[q0 + qidx[keep], rank[keep]] = ids[keep]
        return D, I, ncand

    def _check_queries(self, q_codes: np.ndarray) -> np.ndarray:
        q_codes = np.ascontiguousarray(q_codes, dtype=np.uint8)
        if q_codes.ndim != 2 or q_codes.shape[1] != self.codes_.shape[1]:
            raise ConfigError(f"query codes of shape {q_codes.shape}; the tables hold {self.codes_.shape[1]}-byte codes")
        return q_codes


def _distinct_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], nq: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (query, id) pairs, sorted by query then id, from per-table (rows, ids) arrays."""
    if nq * n <= BITMAP_LIMIT:
        # a (nq, n) membership bitmap: scatter, then nonzero yields the pairs in row-major order
        seen = np.zeros((nq, n), bool)
        for rows, ids in pairs:
            seen[rows, ids] = True
        qidx, ids = np.nonzero(seen)
        return qidx.astype(np.int64), ids.astype(np.int64)
    key = np.sort(np.concatenate([rows * n + ids for rows, ids in pairs]))
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return key // n, key % n


def _hamming_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distances of two (m, code_size) uint8 arrays, (m,) int64."""
    x = np.bitwise_xor(a, b)
    if not hasattr(np, "bitwise_count"):  # numpy < 2.0: a byte lookup table
        return _POPCOUNT8[x].sum(axis=1)
    if x.shape[1] % 8 == 0:
        x = x.view(np.uint64)  # 8 bytes per popcount
    return np.bitwise_count(x).sum(axis=1, dtype=np.int64)


def table_positions(code_bits: int, nbits: int, ntables: int, layout: str = "random", seed: int = 0) -> np.ndarray:
    """(ntables, nbits) int64 code bit positions keying each table (see the module docstring)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown table layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if ntables < 1:
        raise ConfigError(f"the number of tables must be at least 1, got {ntables}")
    if not 1 <= nbits <= min(code_bits, 62):
        raise ConfigError(f"key bits must lie in [1, {min(code_bits, 62)}] for {code_bits}-bit codes, got {nbits}")
    if layout == "slices":
        if nbits * ntables > code_bits:
            raise ConfigError(
                f"slices layout: {ntables} tables x {nbits} bits exceed the {code_bits} code bits; "
                "use fewer tables or the random layout"
            )
        return np.arange(ntables * nbits, dtype=np.int64).reshape(ntables, nbits)
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(code_bits, nbits, replace=False) for _ in range(ntables)]).astype(np.int64)


def bucket_keys(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(n, code_size) uint8 codes -> (n, L) int64 keys: key bit j of table t = code bit positions[t, j]."""
    bits = np.unpackbits(codes, axis=1, bitorder="little")  # (n, code_bits) in faiss bit order
    weights = np.left_shift(np.int64(1), np.arange(positions.shape[1], dtype=np.int64))
    return np.stack([bits[:, p].astype(np.int64) @ weights for p in positions], axis=1)


def probe_masks(nbits: int, nprobe: int) -> np.ndarray:
    """The first ``nprobe + 1`` flip masks of a ``nbits``-bit key, (nprobe + 1,) int64.

    Ordered by Hamming weight, then by value; mask 0 (the query's own bucket) comes first.
    """
    total = 1 << nbits
    if not 0 <= nprobe < total:
        raise ConfigError(f"probes must lie in [0, {total - 1}] for {nbits}-bit keys (2^{nbits} buckets), got {nprobe}")
    if nbits <= 16:
        masks = np.arange(total, dtype=np.int64)
        weight = _POPCOUNT8[masks & 255] + _POPCOUNT8[masks >> 8]
        return masks[np.argsort(weight, kind="stable")][: nprobe + 1]
    out = [0]
    weight = 1
    while len(out) <= nprobe:
        # Gosper's hack: the masks of one weight in increasing order, generated lazily
        m = (1 << weight) - 1
        while m < total and len(out) <= nprobe:
            out.append(m)
            c = m & -m
            r = m + c
            m = (((r ^ m) >> 2) // c) | r
        weight += 1
    return np.array(out, dtype=np.int64)


def probes_within(nbits: int, radius: int) -> int:
    """``nprobe`` that probes every bucket within Hamming ``radius`` of the query's key."""
    return sum(math.comb(nbits, i) for i in range(min(radius, nbits) + 1)) - 1
