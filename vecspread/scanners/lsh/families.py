"""The two LSH families of FALCONN, and what multi-probe needs of a query.

A table's key concatenates K hash values (:meth:`Family.keys`). For multi-probe, a query's nearby
buckets come from *alternatives*: another value of one hash function of one table, at a cost
(:meth:`Family.alternatives`). A probe picks, for each of the K functions of one table, its own value or
one alternative; its score is the sum of the costs (0 for the query's own bucket), and its key the
query's key plus the alternatives' ``delta`` values (a key is an integer sum of per-function digits, so an
alternative shifts it by a fixed amount).

- **hyperplane** (Charikar's SimHash): h(x) = [a . x > 0] for a Gaussian a; key bit j of table t is
  hash (t, j). Flipping bit j costs (a_j . q)^2: bits whose projection is close to 0 flip first.
- **crosspolytope** (Andoni et al., 2015): h(x) = the closest of the 2 d signed unit vectors +-e_i to the
  rotated point R x, i.e. argmax |(R x)_i| with its sign; the value is i, or i + d for a negative
  coordinate, and the key the base-2d number of the K values. R is a random rotation (the Q of a
  Gaussian matrix's QR; FALCONN applies three fast Hadamard pseudo-rotations instead, the same family at
  a lower cost for large d). Moving to the signed vector s e_j costs (|(Rq)_max| - s (Rq)_j)^2.

Multi-probe with P probes over L tables keeps the P - L + 1 cheapest alternatives of each function (at
most all of them): the r-th one is only probed after the table's own buckets and the r - 1 cheaper
single alternatives of the same function, so no probe needs more.
"""

from __future__ import annotations

import math

import numpy as np

from vecspread.errors import ConfigError



class Family:
    """Hash functions of L tables, K per table, on d-dimensional vectors; ``seed`` draws them."""

    name = ""

    def __init__(self, d: int, ntables: int, nhashes: int, seed: int) -> None:
        self.d, self.ntables, self.nhashes = d, ntables, nhashes
        self.check()
        self._draw(np.random.default_rng(seed))

    def check(self) -> None:
        """ConfigError when the keys would not fit in 63 bits."""

    def _draw(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def keys(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, L) int64 bucket keys."""
        return self._hash(y)[0]

    def alternatives(self, yq: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For (nq, d) float32 queries: keys (nq, L) int64, and for each (query, table, function) its
        ``most`` cheapest alternatives (at most all: values per function - 1) in increasing cost: cost
        (nq, L, K, a) float64 and delta (nq, L, K, a) int64 (the key's change)."""
        raise NotImplementedError

    def _hash(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _cheapest(cost: np.ndarray, delta: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``most`` cheapest along the last axis of (..., a) arrays, ascending."""
    most = max(0, min(int(most), cost.shape[-1]))
    if 0 < most < cost.shape[-1] // 2:  # partition first: a few of many
        part = np.argpartition(cost, most - 1, axis=-1)[..., :most]
        cost, delta = np.take_along_axis(cost, part, -1), np.take_along_axis(delta, part, -1)
    order = np.argsort(cost, axis=-1, kind="stable")[..., :most]
    return (np.ascontiguousarray(np.take_along_axis(cost, order, -1)),
            np.ascontiguousarray(np.take_along_axis(delta, order, -1)))


class Hyperplane(Family):
    """Key of table t: bit j = [a_tj . x > 0], j < K."""

    name = "hyperplane"

    def check(self) -> None:
        if self.nhashes > 62:
            raise ConfigError(f"--lsh-hashes {self.nhashes}: hyperplane keys of more than 62 bits do not fit; use at most 62")

    def _draw(self, rng: np.random.Generator) -> None:
        self.planes_ = rng.standard_normal((self.ntables * self.nhashes, self.d)).astype(np.float32)

    def _hash(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proj = (np.asarray(y, np.float32) @ self.planes_.T).reshape(len(y), self.ntables, self.nhashes)
        bits = (proj > 0).astype(np.int64)
        keys = (bits << np.arange(self.nhashes, dtype=np.int64)).sum(axis=2)
        return keys, proj

    def alternatives(self, yq: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys, proj = self._hash(yq)
        weight = np.int64(1) << np.arange(self.nhashes, dtype=np.int64)
        delta = np.where(proj > 0, -weight, weight)[..., None]  # the one alternative: bit j flipped
        a = 1 if most >= 1 else 0
        return (keys, np.ascontiguousarray((proj.astype(np.float64)[..., None] ** 2)[..., :a]),
                np.ascontiguousarray(delta[..., :a]))


class CrossPolytope(Family):
    """Key of table t: sum_j v_tj (2 d)^j, v_tj = the signed axis closest to R_tj x."""

    name = "crosspolytope"

    def check(self) -> None:
        if self.nhashes * math.log2(2 * self.d) > 62:
            most = max(1, int(62 // math.log2(2 * self.d)))
            raise ConfigError(f"--lsh-hashes {self.nhashes}: {self.nhashes} cross-polytope hashes of dimension "
                              f"{self.d} need keys of {self.nhashes * math.log2(2 * self.d):.0f} bits (more than "
                              f"62); use at most {most}")

    def _draw(self, rng: np.random.Generator) -> None:
        g = rng.standard_normal((self.ntables * self.nhashes, self.d, self.d))
        q, r = np.linalg.qr(g)
        q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # Haar-distributed rotations
        self.rotations_ = np.ascontiguousarray(q.transpose(0, 2, 1).reshape(-1, self.d), dtype=np.float32)

    def _hash(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, d = len(y), self.d
        rot = (np.asarray(y, np.float32) @ self.rotations_.T).reshape(n, self.ntables, self.nhashes, d)
        i = np.abs(rot).argmax(axis=3)
        negative = np.take_along_axis(rot, i[..., None], 3)[..., 0] < 0
        values = i + d * negative  # (n, L, K) in [0, 2 d)
        keys = (values * (np.int64(2 * d) ** np.arange(self.nhashes, dtype=np.int64))).sum(axis=2)
        return keys, rot

    def alternatives(self, yq: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys, rot = self._hash(yq)
        nq, L, K, d = rot.shape
        signed = np.concatenate([rot, -rot], axis=3).astype(np.float64)  # value v: s e_j, v = j + d [s < 0]
        own = signed.argmax(axis=3)
        cost = (signed.max(axis=3, keepdims=True) - signed) ** 2
        np.put_along_axis(cost, own[..., None], np.inf, 3)  # the hash's own value: sorted last, then cut
        base = np.int64(2 * d) ** np.arange(K, dtype=np.int64)
        delta = (np.arange(2 * d, dtype=np.int64)[None, None, None, :] - own[..., None]) * base[None, None, :, None]
        return (keys, *_cheapest(cost, delta, min(most, 2 * d - 1)))


FAMILY_CLASSES = {cls.name: cls for cls in (Hyperplane, CrossPolytope)}


def default_hashes(family: str, n: int, d: int) -> int:
    """FALCONN's rule for K: about log2(n) hyperplane bits, or as many rotations as give about n buckets."""
    if family == "hyperplane":
        return max(1, min(62, int(round(math.log2(max(n, 2))))))
    return max(1, min(int(62 // math.log2(2 * d)), int(round(math.log2(max(n, 2)) / math.log2(2 * d)))))
