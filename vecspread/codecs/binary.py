"""Sign bits: one bit per dimension (1 where y > 0), packed as faiss packs binary codes."""

from __future__ import annotations

from typing import Any, Iterable

import faiss
import numpy as np

from vecspread.codecs.base import Codec
from vecspread.errors import ConfigError
from vecspread.knn import merge_topk


class SignCodec(Codec):
    """Code bit i = [y_i > 0], packed little-endian within each byte (bit i in byte i // 8, as faiss).

    Search ranks codes by Hamming distance to the sign bits of the query (faiss binary flat scan);
    among equal distances the lower id comes first.
    """

    name = "sign"
    summary = "one sign bit per dimension, Hamming search"

    def __init__(self, bits: int | None = None) -> None:
        self.bits_requested = bits

    def fit(self, yt: np.ndarray) -> "SignCodec":
        d = int(yt.shape[1])
        if self.bits_requested is not None and self.bits_requested != d:
            raise ConfigError(
                f"sign codes have one bit per output dimension: the model outputs {d} dimensions, "
                f"not --bits {self.bits_requested}; train the model with --dout {self.bits_requested} or drop --bits"
            )
        if d % 8:
            raise ConfigError(
                f"sign codes need a dimension that is a multiple of 8 (one bit per dimension, whole bytes); "
                f"got {d}: train with --dout {8 * -(-d // 8)} or {max(8, 8 * (d // 8))}"
            )
        self.d_ = d
        return self

    @property
    def code_size(self) -> int:
        return self.d_ // 8

    @property
    def bits(self) -> int:
        return self.d_

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d / 8) uint8."""
        self._check_dim(y)
        return np.packbits(np.asarray(y) > 0, axis=1, bitorder="little")

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, d / 8) uint8 -> (n, d) float32 in {-1, +1}."""
        bits = np.unpackbits(codes, axis=1, count=self.d_, bitorder="little")
        return (bits.astype(np.float32) * 2 - 1)

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Hamming top-k of the query signs over (bs, code_size) uint8 blocks.

        Returns D (nq, k) float32 Hamming distances and I (nq, k) int64, ascending, ties by id.
        """
        self._check_dim(yq)
        q = self.encode(yq)
        best_D = np.full((len(q), 0), np.inf, np.float32)
        best_I = np.zeros((len(q), 0), np.int64)
        start = 0
        for block in code_blocks:
            block = np.ascontiguousarray(block, dtype=np.uint8)
            # faiss orders equal distances by id, so per-block lists merge into exact (distance, id) order
            D, I = faiss.knn_hamming(q, block, min(k, block.shape[0]))
            best_D, best_I = merge_topk(best_D, best_I, D.astype(np.float32), np.where(I >= 0, I + start, -1), k)
            start += block.shape[0]
        return best_D, best_I

    def _check_dim(self, y: np.ndarray) -> None:
        if y.shape[1] != self.d_:
            raise ConfigError(f"sign codec built for dimension {self.d_}, got vectors of dimension {y.shape[1]}")

    def get_config(self) -> dict[str, Any]:
        return {"d": self.d_, "bits": self.d_, "code_size": self.code_size}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SignCodec":
        c = cls()
        c.d_ = int(config["d"])
        return c

