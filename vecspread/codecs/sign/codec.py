"""Sign bits: one bit per dimension (1 where y > 0), packed as faiss packs binary codes."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.codecs.base import Codec
from vecspread.codecs.sign import SPEC
from vecspread.errors import ConfigError


class SignCodec(Codec):
    """Code bit i = [y_i > 0], packed little-endian within each byte (bit i in byte i // 8, as faiss).

    Searched by Hamming distance to the sign bits of the query (``vecspread.scanners.hamming``);
    among equal distances the lower id comes first.
    """

    spec = SPEC
    family = "binary"
    scanner = "hamming"

    def fit(self, yt: np.ndarray) -> "SignCodec":
        d = int(yt.shape[1])
        if self.bits is not None and self.bits != d:
            raise ConfigError(
                f"sign codes have one bit per output dimension: the model outputs {d} dimensions, "
                f"not --bits {self.bits}; "
                + (f"train the model with --dout {self.bits} or drop --bits" if self.bits >= 8 else "drop --bits")
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
    def code_bits(self) -> int:
        return self.d_

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d / 8) uint8."""
        self._check_dim(y)
        return np.packbits(np.asarray(y) > 0, axis=1, bitorder="little")

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, d / 8) uint8 -> (n, d) float32 in {-1, +1}."""
        bits = np.unpackbits(codes, axis=1, count=self.d_, bitorder="little")
        return (bits.astype(np.float32) * 2 - 1)

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
