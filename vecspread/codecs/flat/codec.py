"""Flat codes: each (d,) float32 vector stored as its 4 d little-endian bytes."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.codecs.base import Codec
from vecspread.codecs.flat import SPEC
from vecspread.errors import ConfigError

_F32 = np.dtype("<f4")


class FlatCodec(Codec):
    """Code = the vector's float32 bytes (code_size 4 d); decode is exact.

    ``metric_`` is what scanners rank by: "euclidean" (squared L2, smaller first) or "dot" (the negated
    inner product, smaller first). "auto" resolves to dot for a softmax model's class vectors (their
    search is the softmax's argmax), else to euclidean.
    """

    spec = SPEC
    family = "float"
    scanner = "flat"

    def fit(self, yt: np.ndarray) -> "FlatCodec":
        self.d_ = int(yt.shape[1])
        if self.d_ < 1:
            raise ConfigError("flat codes need vectors of at least one dimension")
        self.metric_ = "euclidean" if self.metric == "auto" else self.metric
        return self

    def fit_class_vectors(self, classes: np.ndarray) -> "FlatCodec":
        self.fit(classes)
        if self.metric == "auto":
            self.metric_ = "dot"
        return self

    @property
    def code_size(self) -> int:
        return 4 * self.d_

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, 4 d) uint8."""
        y = self.check_queries(np.asarray(y))
        return np.ascontiguousarray(y.astype(_F32, copy=False)).view(np.uint8).reshape(len(y), self.code_size)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, 4 d) uint8 -> (n, d) float32, bit-exact."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.code_size:
            raise ConfigError(f"flat codes of dimension {self.d_} are {self.code_size} bytes, got shape {codes.shape}")
        return codes.view(_F32).reshape(len(codes), self.d_).astype(np.float32, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {"d": self.d_, "metric": self.metric_, "code_size": self.code_size}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "FlatCodec":
        metric = str(config["metric"])
        if metric not in ("euclidean", "dot"):
            raise ConfigError(f"flat codec metric {metric!r} is not euclidean or dot")
        c = cls(metric=metric)
        c.d_ = int(config["d"])
        c.metric_ = metric
        return c
