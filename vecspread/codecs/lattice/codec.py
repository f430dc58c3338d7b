"""The spherical-lattice codec (Sablayrolles et al., ICLR 2019): a vector is quantized to the point of
S_d^r = {z in Z^d : ||z||^2 = r2} whose direction is nearest to its own, and stored as the point's rank
in faiss's enumeration of S_d^r (``faiss.ZnSphereCodec``), truncated to the fewest whole bytes.
The exact counts and the choice of r2 are in ``combinatorics``. Past 64 bits (one rank is a uint64) the
codec is a product of such lattices over consecutive blocks of coordinates, each block's rank in its own
bytes; the layout rule is in ``layout``.

Facts about faiss's ``ZnSphereCodec`` this module relies on (checked in tests/codecs/test_lattice.py):

- ``encode`` sorts |y|, takes the atom with the largest dot product with it and puts the atom's
  values back in y's order with y's signs: the exact maximiser of <y, z> over S_d^r, up to
  float32 rounding of the dot products. The argmax is invariant to positive scaling of y, but
  faiss neither normalises nor guards the degenerate cases: an all-zero row gets a rank that
  depends on ``std::sort``'s tie order, and a NaN row reads outside the atom table. We encode
  with our own compiled kernel instead (``encode_kernels``: the same enumeration, exact float64
  choice among the nearest atoms, ties resolved by position; its speed against faiss's is in benchmarks/RESULTS.md), reject
  non-finite input, scale rows by their max-abs value and give zero rows rank 0;
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
from vecspread.codecs.lattice import PRODUCT_MAX_BITS, R2_MAX, SPEC
from vecspread.codecs.lattice.combinatorics import as_int, check_storable
from vecspread.codecs.lattice.layout import Block, code_size, layout_for
from vecspread.errors import ConfigError, InputError


class LatticeCodec(Codec):
    """Quantize directions onto S_d^r and store each point's uint64 rank in ceil(bits/8) bytes; past 64 bits
    (or with ``blocks``), the product of such lattices over consecutive blocks of coordinates.

    Give exactly one of ``r2`` (the squared radius of every block) or ``bits`` (the code budget: the
    layout of ``layout.layout_for(d, bits, blocks=blocks)`` once ``fit`` knows d). Only the dimension of
    the training data is used. Learned state: ``d_`` and ``layout_`` (the blocks: dimension, squared
    radius); ``r2_`` is the radius of a one-block lattice (None for a product). The faiss codecs are
    rebuilt on demand.

    A product code is the blocks' ranks side by side (block b in ``layout_[b].nbytes`` little-endian
    bytes); it decodes to the concatenation of the blocks' unit points divided by sqrt(n_blocks), a unit
    vector: no block norm is stored. Quantizing y picks each block's nearest direction to y's block,
    which together are the product point nearest to y's direction (all product points have the same
    norm, and the inner product is the sum of the blocks').
    """

    spec = SPEC
    family = "lattice"
    scanner = "lattice"

    layout_: tuple[Block, ...]
    r2_: int | None

    def _check_params(self) -> None:
        if (self.r2 is None) == (self.bits is None):
            raise ConfigError("--codec lattice needs exactly one of --bits or --r2 (e.g. --bits 64)")

    # -- fitting and state ---------------------------------------------------------------------

    def fit(self, yt: np.ndarray) -> "LatticeCodec":
        """Record d from (n, d) training vectors, resolve the layout and check it is storable."""
        if not isinstance(yt, np.ndarray) or yt.ndim != 2:
            raise InputError(f"lattice codec expects (n, d) training vectors, got {_shape_of(yt)}")
        self.check_dimension(int(yt.shape[1]))
        return self

    def check_dimension(self, d: int) -> None:
        """Resolve (and keep) the layout for d dimensions; ConfigError when it cannot be stored."""
        self._set_layout(d, layout_for(d, self.bits, self.r2, self.blocks))

    def _set_layout(self, d: int, layout: tuple[Block, ...]) -> None:
        self.d_ = d
        self.layout_ = layout
        self.r2_ = layout[0].r2 if len(layout) == 1 else None
        self.n_points_ = [b.n_points for b in layout]
        for cached in ("_faiss_codecs", "_encode_tables"):  # a refit must not reuse another lattice
            self.__dict__.pop(cached, None)

    def _require_fitted(self) -> None:
        if not hasattr(self, "layout_"):
            raise RuntimeError("LatticeCodec is not fitted: call fit() or from_state() first")

    @property
    def n_blocks(self) -> int:
        self._require_fitted()
        return len(self.layout_)

    @cached_property
    def _faiss_codecs(self) -> list[Any]:
        """faiss.ZnSphereCodec(d_b, r2_b) of each block, built on first use (cheap: it only lists the atoms)."""
        import faiss  # imported lazily: the combinatorics above do not need it

        self._require_fitted()
        return [faiss.ZnSphereCodec(b.dim, b.r2) for b in self.layout_]

    def block_slices(self) -> list[slice]:
        """The coordinates of each block, in order."""
        bounds = np.cumsum([0] + [b.dim for b in self.layout_])
        return [slice(int(a), int(b)) for a, b in zip(bounds, bounds[1:])]

    def fit_notes(self) -> list[str]:
        """A line when a block stopped at r2 = R2_MAX (faiss's limit) and so the codes carry fewer bits
        than --bits asked: a block too narrow for its share of the budget."""
        self._require_fitted()
        capped = [b for b in self.layout_ if b.r2 == R2_MAX]
        if self.bits is None or not capped or self.code_bits >= self.bits:
            return []
        narrow = min(b.dim for b in capped)
        return [f"the lattice codes carry {self.code_bits} of the {self.bits} bits asked: a block of {narrow} "
                f"dimensions stops at r2 {R2_MAX} (faiss's limit), {min(b.bits for b in capped)} bits; for "
                f"{self.bits} bits code more dimensions (e.g. train with a larger --dout)"
                + (f", or ask --bits {self.code_bits} to say what the codes hold" if len(self.layout_) == 1 else "")]

    @property
    def code_bits(self) -> int:
        """Information bits per code: the sum over blocks of ceil(log2 |S_{d_b}^{r_b}|)."""
        self._require_fitted()
        return sum(b.bits for b in self.layout_)

    @property
    def code_size(self) -> int:
        """Bytes per code: each block's ceil(bits_b / 8), side by side."""
        self._require_fitted()
        return code_size(self.layout_)

    def get_config(self) -> dict[str, Any]:
        self._require_fitted()
        where = ({"r2": self.r2_} if self.r2_ is not None
                 else {"blocks": [[b.dim, b.r2] for b in self.layout_]})
        return {**where, "d": self.d_, "bits": self.code_bits, "code_size": self.code_size}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "LatticeCodec":
        """Rebuild from ``get_config()``; InputError if its bits/code_size disagree with the layout."""
        try:
            d = as_int(config["d"], "d", 1)
            if "blocks" in config:
                if not isinstance(config["blocks"], list) or not 1 <= len(config["blocks"]) <= PRODUCT_MAX_BITS:
                    raise ValueError(f"blocks must be a list of 1 to {PRODUCT_MAX_BITS} [dimension, r2] pairs")
                layout = tuple(Block(as_int(db, "block dimension", 1), as_int(r2, "block r2", 1))
                               for db, r2 in config["blocks"])
                codec = cls(r2=layout[0].r2)
            else:
                codec = cls(r2=as_int(config["r2"], "r2", 1))
                layout = (Block(d, codec.r2),)
        except (KeyError, TypeError, ValueError, IndexError, ConfigError) as e:
            raise InputError(f"lattice codec state is not a layout ({e}): {config!r}") from None
        if sum(b.dim for b in layout) != d:
            raise InputError(f"lattice codec state: blocks of {[b.dim for b in layout]} dimensions do not make d={d}")
        try:
            for b in layout:
                check_storable(b.dim, b.r2)
        except ConfigError as e:
            raise InputError(f"lattice codec state: {e}") from None
        if sum(b.bits for b in layout) > PRODUCT_MAX_BITS:
            raise InputError(f"lattice codec state: {sum(b.bits for b in layout)} bits, more than the "
                             f"{PRODUCT_MAX_BITS} a code may hold")
        codec._set_layout(d, layout)
        for key, attr in (("bits", "code_bits"), ("code_size", "code_size")):
            if key in config and config[key] != getattr(codec, attr):
                raise InputError(
                    f"lattice codec state says {key}={config[key]} but its layout gives "
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
        """(n, d) float32 finite -> (n, n_blocks) uint64 ranks of each block's nearest lattice direction.

        The kernel divides each block by its max-abs value first: the argmax is scale-free, and this
        keeps the float32 screen of the atoms away from overflow and underflow (an L2 norm of 1e20 would
        overflow float32). An all-zero block has no direction; it gets rank 0, which decodes to
        ``atoms(d_b, r2_b)[0]`` as is (non-negative, in the leading coordinates).
        """
        from vecspread.codecs.lattice.encode_kernels import encode_ranks
        from vecspread.scanners.lattice_kernels import use_threads

        use_threads()
        n = y.shape[0]
        ranks = np.empty((n, self.n_blocks), dtype=np.uint64)
        for b, (cols, tables) in enumerate(zip(self.block_slices(), self._encode_tables)):
            out = np.empty(n, dtype=np.uint64)
            if n:
                encode_ranks(y[:, cols], *tables, out)
            ranks[:, b] = out
        return ranks

    @cached_property
    def _encode_tables(self) -> list[tuple[np.ndarray, ...]]:
        """``encode_kernels.enumeration_tables`` of each block, built on first use."""
        from vecspread.codecs.lattice.encode_kernels import enumeration_tables

        self._require_fitted()
        return [enumeration_tables(b.dim, b.r2) for b in self.layout_]

    def _integer_points(self, ranks: np.ndarray) -> np.ndarray:
        """(n, n_blocks) uint64 valid ranks -> (n, d) float32 integer lattice points (block b of squared
        norm r2_b)."""
        import faiss

        n = ranks.shape[0]
        points = np.empty((n, self.d_), dtype=np.float32)
        for b, (cols, zn) in enumerate(zip(self.block_slices(), self._faiss_codecs)):
            rb = np.ascontiguousarray(ranks[:, b], dtype=np.uint64)
            zb = np.empty((n, cols.stop - cols.start), dtype=np.float32)
            if n:
                zn.decode_multi(n, faiss.swig_ptr(rb), faiss.swig_ptr(zb))
            points[:, cols] = zb
        return points

    def _unit_points(self, ranks: np.ndarray) -> np.ndarray:
        """(n, n_blocks) uint64 valid ranks -> (n, d) float32 unit vectors: each block's integer point
        divided by its radius, and all by sqrt(n_blocks)."""
        points = self._integer_points(ranks)  # faiss returns the integer point
        nb = self.n_blocks
        for block, cols in zip(self.layout_, self.block_slices()):
            scale = 1.0 / math.sqrt(block.r2) if nb == 1 else 1.0 / (math.sqrt(block.r2) * math.sqrt(nb))
            points[:, cols] *= np.float32(scale)
        return points

    def quantize(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d) float32 unit-norm nearest lattice (product) direction.

        Equal to ``decode(encode(y))`` bit for bit, without packing the ranks into bytes.
        """
        return self._unit_points(self._ranks(self._check_vectors(y, "vectors")))

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, code_size) uint8: each block's uint64 rank as its first ``nbytes``
        little-endian bytes, the blocks side by side."""
        ranks = self._ranks(self._check_vectors(y, "vectors"))
        n = ranks.shape[0]
        as_bytes = ranks.astype("<u8", copy=False).reshape(n, self.n_blocks, 1).view(np.uint8)
        return np.ascontiguousarray(np.concatenate(
            [as_bytes[:, b, : block.nbytes] for b, block in enumerate(self.layout_)], axis=1))

    def _codes_to_ranks(self, codes: Any) -> np.ndarray:
        """(n, code_size) uint8 -> (n, n_blocks) uint64, refusing codes that are not ranks of the layout."""
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
        n = codes.shape[0]
        ranks = np.empty((n, self.n_blocks), dtype=np.uint64)
        start = 0
        for b, block in enumerate(self.layout_):
            padded = np.zeros((n, 8), dtype=np.uint8)
            padded[:, : block.nbytes] = codes[:, start : start + block.nbytes]
            start += block.nbytes
            ranks[:, b] = padded.view("<u8").ravel()
            if n and ranks[:, b].max() >= np.uint64(block.n_points):
                where = f"d={block.dim}, r2={block.r2}" + (f" (block {b})" if self.n_blocks > 1 else "")
                raise InputError(
                    f"lattice codes hold ranks >= {block.n_points} (the number of points for "
                    f"{where}): they come from another codec"
                )
        return ranks

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) float32 unit vectors: the lattice point / sqrt(r2) (a product:
        the blocks' so scaled points side by side, divided by sqrt(n_blocks))."""
        return self._unit_points(self._codes_to_ranks(codes))

    def integer_points(self, codes: np.ndarray) -> np.ndarray:
        """(n, code_size) uint8 -> (n, d) int8: the integer lattice point of each block, side by side."""
        return self._integer_points(self._codes_to_ranks(codes)).astype(np.int8)


def _shape_of(a: Any) -> str:
    return f"shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
