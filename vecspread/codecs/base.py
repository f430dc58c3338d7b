"""The codec interface: y (n, d) float32 -> codes (n, code_size) uint8, and scanning.

Every ``vecspread encode --codec`` is a Codec subclass registered in ``vecspread.codecs.REGISTRY``.

- ``__init__`` stores parameters; ``fit(yt)`` learns what the codec needs (most are parameter-free
  and only check/record the dimension) and returns ``self``;
- ``encode(y)`` maps (n, d) float32 to (n, code_size) uint8;
- ``decode(codes)`` maps back to (n, d) float32 reconstructions (where that makes sense);
- ``search(yq, code_blocks, k)`` scans an iterable of (bs, code_size) uint8 blocks and returns
  ``D`` (nq, k) float32 and ``I`` (nq, k) int64, best first, ids counted across blocks;
- ``get_config()`` / ``get_arrays()`` / ``from_state(config, arrays)`` as for transforms.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

import numpy as np


class Codec:
    """Base class of all codecs."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: True when fit() learns from data (PQ, OPQ...): encode then passes transformed training vectors
    needs_training: ClassVar[bool] = False
    #: at most this many training vectors are passed to fit() when needs_training
    max_train: ClassVar[int] = 100_000

    d_: int

    def fit(self, yt: np.ndarray) -> "Codec":
        """Learn from (n, d) float32 transformed training vectors; returns self."""
        raise NotImplementedError

    @property
    def code_size(self) -> int:
        """Bytes per code."""
        raise NotImplementedError

    @property
    def bits(self) -> int:
        """Information bits per code (may be less than 8 * code_size)."""
        return 8 * self.code_size

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) float32."""
        raise NotImplementedError

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scan code blocks with (nq, d) float32 queries; returns D (nq, k) float32, I (nq, k) int64."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Codec":
        raise NotImplementedError
