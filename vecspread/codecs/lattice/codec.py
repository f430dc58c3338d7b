"""The spherical-lattice codec (Sablayrolles et al., ICLR 2019): a vector is quantized to the point of
S_d^r = {z in Z^d : ||z||^2 = r2} whose direction is nearest to its own, and stored as the point's rank
in faiss's enumeration of S_d^r (``faiss.ZnSphereCodec``), truncated to the fewest whole bytes.
The exact counts and the choice of r2 are in ``combinatorics``.

Facts about faiss's ``ZnSphereCodec`` this module relies on (checked in tests/codecs/test_lattice.py):

- ``encode`` sorts |y|, takes the atom with the largest dot product with it and puts the atom's
  values back in y's order with y's signs: the exact maximiser of <y, z> over S_d^r, up to
  float32 rounding of the dot products. The argmax is invariant to positive scaling of y, but
  faiss neither normalises nor guards the degenerate cases: an all-zero row gets a rank that
  depends on ``std::sort``'s tie order, and a NaN row reads outside the atom table. We therefore
  reject non-finite input, scale rows by their max-abs value and give zero rows rank 0;
- ``decode`` returns the integer point itself (norm sqrt(r2)), not a unit vector;
- its atoms are enumerated in the same order as ``atoms()`` and each atom owns a contiguous
  range of ranks, so ranks run over exactly 0 .. count_points - 1;
- its ``nv`` (number of points) is a uint64 that silently wraps past 2^64, hence our own exact
  count in ``check_storable``.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np

from vecspread.codecs.base import Codec
from vecspread.codecs.lattice import SPEC
from vecspread.codecs.lattice.combinatorics import as_int, bits_of, check_storable, count_points, r2_for_bits
from vecspread.errors import ConfigError, InputError


class LatticeCodec(Codec):
    """Quantize directions onto S_d^r and store each point's uint64 rank in ceil(bits/8) bytes.

    Give exactly one of ``r2`` (the squared radius) or ``bits`` (the code budget: r2 becomes
    ``r2_for_bits(d, bits)`` once ``fit`` knows d). Only the dimension of the training data is
    used. Learned state: ``d_`` and ``r2_``; the faiss codec is rebuilt on demand.
    """

    spec = SPEC
    family = "lattice"
    scanner = "lattice"

    r2_: int

    def _check_params(self) -> None:
        if (self.r2 is None) == (self.bits is None):
            raise ConfigError("--codec lattice needs exactly one of --bits or --r2 (e.g. --bits 64)")

    # -- fitting and state ---------------------------------------------------------------------

    def fit(self, yt: np.ndarray) -> "LatticeCodec":
        """Record d from (n, d) training vectors, resolve r2 and check the lattice is storable."""
        if not isinstance(yt, np.ndarray) or yt.ndim != 2:
            raise InputError(f"lattice codec expects (n, d) training vectors, got {_shape_of(yt)}")
        d = int(yt.shape[1])
        r2 = self.r2 if self.r2 is not None else r2_for_bits(d, self.bits)
        self._set_lattice(d, r2)
        return self

    def _set_lattice(self, d: int, r2: int) -> None:
        check_storable(d, r2)
        self.d_ = d
        self.r2_ = r2
        self.n_points_ = count_points(d, r2)
        self.__dict__.pop("_faiss_codec", None)  # a refit must not reuse another lattice

    def _require_fitted(self) -> None:
        if not hasattr(self, "r2_"):
            raise RuntimeError("LatticeCodec is not fitted: call fit() or from_state() first")

    @cached_property
    def _faiss_codec(self) -> Any:
        """faiss.ZnSphereCodec(d, r2), built on first use (cheap: it only lists the atoms)."""
        import faiss  # imported lazily: the combinatorics above do not need it

        self._require_fitted()
        return faiss.ZnSphereCodec(self.d_, self.r2_)

    @property
    def code_bits(self) -> int:
        """Information bits per code: ceil(log2 |S_d^r|)."""
        self._require_fitted()
        return bits_of(self.n_points_)

    @property
    def code_size(self) -> int:
        """Bytes per code: ceil(code_bits / 8)."""
        return (self.code_bits + 7) // 8

    def get_config(self) -> dict[str, Any]:
        self._require_fitted()
        return {"r2": self.r2_, "d": self.d_, "bits": self.code_bits, "code_size": self.code_size}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "LatticeCodec":
        """Rebuild from ``get_config()``; InputError if its bits/code_size disagree with (d, r2)."""
        try:
            d, r2 = config["d"], config["r2"]
        except (KeyError, TypeError):
            raise InputError(f"lattice codec state lacks 'd' or 'r2': {config!r}") from None
        codec = cls(r2=as_int(r2, "r2", 1))
        codec._set_lattice(as_int(d, "d", 1), codec.r2)
        for key, attr in (("bits", "code_bits"), ("code_size", "code_size")):
            if key in config and config[key] != getattr(codec, attr):
                raise InputError(
                    f"lattice codec state says {key}={config[key]} but d={d}, r2={r2} gives "
                    f"{getattr(codec, attr)}: the model file is inconsistent"
                )
        return codec

    # -- quantization --------------------------------------------------------------------------

    def check_queries(self, y: np.ndarray) -> np.ndarray:
        return self._check_vectors(y, "queries")

    def _check_vectors(self, y: Any, what: str) -> np.ndarray:
        """(n, d) real array -> C-contiguous float32, refusing wrong shapes and non-finite values."""
        self._require_fitted()
        if not isinstance(y, np.ndarray) or y.ndim != 2 or y.shape[1] != self.d_:
            raise InputError(f"lattice codec expects (n, {self.d_}) {what}, got {_shape_of(y)}")
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
            raise InputError(f"lattice codec expects real-valued {what}, got dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=np.float32)
        if not np.isfinite(y).all():
            # faiss would index outside its atom table for NaN rows
            raise InputError(f"{what} contain NaN or infinite values")
        return y

    def _ranks(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 finite -> (n,) uint64 ranks of the nearest lattice directions.

        Rows are divided by their max-abs value first: the argmax is scale-free, and this keeps
        faiss's float32 dot products away from overflow and underflow (an L2 norm of 1e20 would
        overflow float32). All-zero rows have no direction; they get rank 0, which decodes to
        ``atoms(d, r2)[0]`` as is (non-negative, in the leading coordinates).
        """
        import faiss

        n = y.shape[0]
        scale = np.abs(y).max(axis=1)
        zero = scale == 0
        scale[zero] = 1
        y_scaled = np.ascontiguousarray(y / scale[:, None], dtype=np.float32)
        ranks = np.empty(n, dtype=np.uint64)
        if n:
            self._faiss_codec.encode_multi(n, faiss.swig_ptr(y_scaled), faiss.swig_ptr(ranks))
        ranks[zero] = 0
        return ranks

    def _unit_points(self, ranks: np.ndarray) -> np.ndarray:
        """(n,) uint64 valid ranks -> (n, d) float32 lattice points scaled to unit norm."""
        import faiss

        ranks = np.ascontiguousarray(ranks, dtype=np.uint64)
        n = ranks.shape[0]
        points = np.empty((n, self.d_), dtype=np.float32)
        if n:
            self._faiss_codec.decode_multi(n, faiss.swig_ptr(ranks), faiss.swig_ptr(points))
        points *= np.float32(1.0 / math.sqrt(self.r2_))  # faiss returns the integer point
        return points

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d) float32 unit-norm nearest lattice direction.

        Equal to ``decode(encode(y))`` bit for bit, without packing the ranks into bytes.
        """
        return self._unit_points(self._ranks(self._check_vectors(y, "vectors")))

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8: little-endian bytes of the uint64 rank."""
        ranks = self._ranks(self._check_vectors(y, "vectors"))
        as_bytes = ranks.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
        return np.ascontiguousarray(as_bytes[:, : self.code_size])

    def _codes_to_ranks(self, codes: Any) -> np.ndarray:
        """(n, code_size) uint8 -> (n,) uint64, refusing codes that are not ranks of S_d^r."""
        self._require_fitted()
        if (
            not isinstance(codes, np.ndarray)
            or codes.dtype != np.uint8
            or codes.ndim != 2
            or codes.shape[1] != self.code_size
        ):
            raise InputError(
                f"lattice codes must be (n, {self.code_size}) uint8, got {_shape_of(codes)}"
                + (f" {codes.dtype}" if isinstance(codes, np.ndarray) else "")
            )
        padded = np.zeros((codes.shape[0], 8), dtype=np.uint8)
        padded[:, : self.code_size] = codes
        ranks = padded.view("<u8").ravel().astype(np.uint64, copy=False)
        if ranks.size and ranks.max() >= np.uint64(self.n_points_):
            raise InputError(
                f"lattice codes hold ranks >= {self.n_points_} (the number of points for "
                f"d={self.d_}, r2={self.r2_}): they come from another codec"
            )
        return ranks

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) float32 unit-norm lattice points (integer point / sqrt(r2))."""
        return self._unit_points(self._codes_to_ranks(codes))


def _shape_of(a: Any) -> str:
    return f"shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
