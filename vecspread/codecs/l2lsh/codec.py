"""E2LSH codes (Datar, Immorlica, Indyk & Mirrokni 2004): integer bucket ids of random projections.

Hash j of a vector y is h_j(y) = floor((a_j . y + b_j) / r), with a_j ~ N(0, I) and b_j ~ U[0, r)
drawn from ``seed`` at fit. Two vectors at L2 distance c collide on one hash with probability
p(c) = 1 - 2 Phi(-r/c) - 2 / (sqrt(2 pi) r/c) (1 - exp(-(r/c)^2 / 2)), decreasing in c, so the
number of colliding hashes ranks a database by distance to the query.

Storage: ``bits`` bits per code hold ``nhash = bits / hash_bits`` hashes, each reduced modulo
2^hash_bits (two's complement low bits) and packed little-endian, hash after hash, as faiss packs
bits. Reducing the bucket id is the usual universal-hashing step of LSH tables: two hashes whose
bucket ids differ by a non-zero multiple of 2^hash_bits collide falsely. With the L2-ALSH defaults
(||P(x)||, ||Q(q)|| below 1.4, r = 2.5, hash_bits = 4) that needs projections 40 apart, i.e. more
than 10 standard deviations of a.(Q - P): such false collisions essentially never happen.

Ranking rule: database codes are ranked by the number of hashes equal to the query's (the
standard LSH collision count), most collisions first; equal counts in increasing id order.
Its scanner (``vecspread.scanners.collisions``) reports D = nhash - collisions (float32, exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.codecs.base import Codec
from vecspread.codecs.l2lsh import SPEC
from vecspread.errors import ConfigError


class L2LSHCodec(Codec):
    """``nhash`` E2LSH bucket ids of ``hash_bits`` bits each, searched by collision count
    (``vecspread.scanners.collisions``)."""

    spec = SPEC
    family = "e2lsh"
    scanner = "collisions"

    def fit(self, yt: np.ndarray) -> "L2LSHCodec":
        """Draw the projections for (n, d) inputs (only d is used: the hash family is data-independent)."""
        bits, hb = self.bits, self.hash_bits
        if bits % 8 or bits % hb:
            raise ConfigError(
                f"--bits must be a positive multiple of 8 and of --hash-bits {hb} (whole hashes in whole bytes), got {bits}"
            )
        d = int(yt.shape[1])
        rng = np.random.default_rng(self.seed)
        nhash = bits // hb
        self._set(rng.standard_normal((nhash, d)), rng.uniform(0.0, self.r, nhash))
        return self
    def _set(self, a: np.ndarray, b: np.ndarray) -> "L2LSHCodec":
        self.a_ = np.ascontiguousarray(a, dtype=np.float64)  # float64: bucket edges reproducible
        self.b_ = np.ascontiguousarray(b, dtype=np.float64)
        self.nhash_, self.d_ = self.a_.shape
        return self

    @property
    def code_size(self) -> int:
        return self.nhash_ * self.hash_bits // 8

    @property
    def code_bits(self) -> int:
        return self.nhash_ * self.hash_bits

    def hash(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, nhash) int64 bucket ids floor((a.y + b) / r), before any reduction."""
        if y.ndim != 2 or y.shape[1] != self.d_:
            raise ConfigError(f"l2lsh codec built for dimension {self.d_}, got vectors of shape {y.shape}")
        return np.floor((np.asarray(y, np.float64) @ self.a_.T + self.b_) / self.r).astype(np.int64)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8: hashes mod 2^hash_bits, packed little-endian."""
        return self.pack(self.hash(y))

    def pack(self, h: np.ndarray) -> np.ndarray:
        """(n, nhash) integer bucket ids -> (n, code_size) uint8 (low ``hash_bits`` bits of each)."""
        h = np.asarray(h, np.int64) & ((1 << self.hash_bits) - 1)
        bits = (h[:, :, None] >> np.arange(self.hash_bits)) & 1  # (n, nhash, hash_bits), LSB first
        return np.packbits(bits.reshape(len(h), -1).astype(np.uint8), axis=1, bitorder="little")

    def unpack(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, nhash) int64 reduced hashes in [0, 2^hash_bits)."""
        bits = np.unpackbits(np.asarray(codes, np.uint8), axis=1, bitorder="little")
        bits = bits.reshape(len(codes), self.nhash_, self.hash_bits).astype(np.int64)
        return (bits << np.arange(self.hash_bits)).sum(axis=2)

    def get_config(self) -> dict[str, Any]:
        return {"d": self.d_, "bits": self.code_bits, "hash_bits": self.hash_bits, "r": self.r, "seed": self.seed,
                "nhash": self.nhash_, "code_size": self.code_size}

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {"a": self.a_, "b": self.b_}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "L2LSHCodec":
        c = cls(bits=int(config["bits"]), hash_bits=int(config["hash_bits"]), r=float(config["r"]),
                seed=int(config["seed"]))
        c._set(arrays["a"], arrays["b"])
        if c.d_ != int(config["d"]) or c.nhash_ * c.hash_bits != c.bits:
            raise ValueError("stored projections do not match d / bits / hash_bits")
        return c

