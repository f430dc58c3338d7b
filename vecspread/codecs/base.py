"""The codec interface: y (n, d) float32 -> codes (n, code_size) uint8.

Every ``vecspread encode --codec`` is a Codec subclass registered in ``vecspread.codecs.REGISTRY``, its
hyper-parameters declared in its spec (see ``vecspread.params``):

- ``__init__`` stores parameters; ``fit(yt)`` learns what the codec needs (most are parameter-free
  and only check/record the dimension) and returns ``self``;
- ``encode(y)`` maps (n, d) float32 to (n, code_size) uint8;
- ``decode(codes)`` maps back to (n, d) float32 reconstructions (where that makes sense);
- ``get_config()`` / ``get_arrays()`` / ``from_state(config, arrays)`` store and rebuild a fitted codec.

Codes are searched by a scanner (``vecspread.scanners``): ``family`` says what kind of codes these are,
``scanner`` names the exhaustive scanner that reads them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vecspread.errors import ConfigError
from vecspread.params import Configurable


class Codec(Configurable):
    """Base class of all codecs."""

    kind: ClassVar[str] = "--codec"
    #: "binary", "lattice", "pq", "additive", "e2lsh", "float": what a scanner must understand to read the codes
    family: ClassVar[str] = ""
    #: the exhaustive scanner of these codes (a name in ``vecspread.scanners.REGISTRY``)
    scanner: ClassVar[str] = ""
    #: True when fit() learns from data (PQ, OPQ...): it is then given transformed training vectors
    needs_training: ClassVar[bool] = False
    #: at most this many training vectors are passed to fit() when needs_training
    max_train: ClassVar[int] = 100_000
    #: fewest training vectors fit() can learn from (PQ-family codebooks: one per centroid)
    min_train: ClassVar[int] = 0

    d_: int

    def fit(self, yt: np.ndarray) -> "Codec":
        """Learn from (n, d) float32 transformed training vectors; returns self."""
        raise NotImplementedError

    def fit_class_vectors(self, classes: np.ndarray) -> "Codec":
        """Fit for the (classes, d) float32 class vectors of a softmax model, the database of its class
        search (codecs whose distance depends on that, such as flat's "auto", override this)."""
        if self.needs_training and len(classes) < self.min_train:
            raise ConfigError(f"{self.name} learns codebooks from the vectors it codes: the softmax model's {len(classes)} "
                              f"class vectors are fewer than the {self.min_train} it needs; use a codec that learns "
                              "nothing (--codec lattice, sign or flat), or a model with more classes")
        return self.fit(classes if self.needs_training else np.zeros((0, classes.shape[1]), np.float32))

    def fit_notes(self) -> list[str]:
        """Lines worth telling the user about the fitted codec (e.g. it uses fewer bits than asked)."""
        return []

    def check_dimension(self, d: int) -> None:
        """ConfigError now when the codec cannot code d-dimensional vectors with its hyper-parameters
        (called before a long fit, so that a refusal comes first); ``fit`` checks again."""

    @property
    def code_size(self) -> int:
        """Bytes per code."""
        raise NotImplementedError

    @property
    def code_bits(self) -> int:
        """Information bits per code (may be less than 8 * code_size). (``bits``, where a codec takes
        it, is the hyper-parameter: the requested budget.)"""
        return 8 * self.code_size

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) float32."""
        raise NotImplementedError

    def check_queries(self, y: np.ndarray) -> np.ndarray:
        """(nq, d) queries as C-contiguous float32; ConfigError when d is not the codec's."""
        if y.ndim != 2 or y.shape[1] != self.d_:
            raise ConfigError(f"{self.name} codec built for dimension {self.d_}, got vectors of shape {tuple(y.shape)}")
        return np.ascontiguousarray(y, dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Codec":
        raise NotImplementedError


def whole_bytes(bits: int, what: str) -> int:
    """``bits`` when it is a positive multiple of 8, else ConfigError with the nearest valid values.

    ``what`` names the option and its owner, e.g. "--method lsh: --bits".
    """
    if bits <= 0 or bits % 8:
        lower, upper = 8 * (bits // 8), 8 * -(-bits // 8)
        hint = f"use --bits {max(upper, 8)}" if lower <= 0 else f"use --bits {lower} or {upper}"
        raise ConfigError(f"{what} {bits} is not a positive multiple of 8 (whole bytes); {hint}")
    return bits
