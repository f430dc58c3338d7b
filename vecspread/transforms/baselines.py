"""The field's baselines as ``train --method``s, each reproducing a faiss index on the same data.

- ``lsh``: random rotation to ``bits`` dims, sign bits -- faiss ``IndexLSH(d, bits, True, False)``;
- ``lsh-thresholds``: the same rotation minus each bit's training median, sign bits --
  faiss ``IndexLSH(d, bits, True, True)``;
- ``itq``: centre, L2-normalise, PCA + ITQ rotation, sign bits -- faiss ``index_factory(d, "ITQ{bits},LSH")``;
- ``pq``: identity, PQ codec with M = bits / 8 -- faiss ``IndexPQ(d, M, 8)`` (``"PQ{M}"``);
- ``opq``: OPQ rotation, PQ codec -- faiss ``index_factory(d, "OPQ{M},PQ{M}")``;
- ``lsq``: identity, LSQ codec -- faiss ``IndexLocalSearchQuantizer(d, M, 8)`` (``"LSQ{M}x8"``).

Defaults are faiss's (LSH rotation seed 5, ITQ seed 123 and 50 iterations, OPQ 50 iterations, LSQ 25
training and 16 encoding iterations), and the matrices are applied through faiss, so with default
options the codes are bit-identical to those of the faiss index trained on the same vectors (up to
faiss's own multi-threaded nondeterminism in OPQ/ITQ training; LSQ codes also depend on the batch).

Sign bits: faiss sets a bit where the projection is >= 0, :class:`~vecspread.codecs.binary.SignCodec`
where it is > 0; they differ only for a projection exactly equal to 0 (or to the LSH threshold).

The trained codec is stored in the model's ``/codec`` group by ``train``. A pq/opq/lsq transform rebuilt
with ``from_state`` carries only the transform (``fitted_codec()`` is then None): ``encode`` reads the
codec from the model file. (The sign codec has no state, so lsh and itq always return one.)
"""

from __future__ import annotations

from typing import Any, ClassVar

import faiss
import numpy as np

from vecspread.codecs.base import Codec
from vecspread.codecs.binary import SignCodec
from vecspread.codecs.faiss_codecs import (LSQCodec, PQCodec, faiss_linear, linear_matrix,
                                           train_opq_rotation)
from vecspread.errors import ConfigError
from vecspread.transforms.base import Transform

#: faiss's seeds: IndexLSH draws its rotation with RandomRotationMatrix.init(5); ITQMatrix.seed = 123
LSH_SEED = 5
ITQ_SEED = 123
#: faiss ITQTransform trains on at most max(ITQ_TRAIN_PER_DIM * d, ITQ_MIN_TRAIN) vectors (seed 1234)
ITQ_TRAIN_PER_DIM = 10
ITQ_MIN_TRAIN = 32768
ITQ_SUBSAMPLE_SEED = 1234


class LSHTransform(Transform):
    """Random rotation to ``bits`` dimensions, then sign bits: faiss ``IndexLSH(d, bits, True, False)``.

    The (bits, d) matrix is faiss ``RandomRotationMatrix(d, bits).init(seed)``: orthonormal rows when
    bits <= d, a tight frame (orthonormal columns) when bits > d. With the default seed 5 the codes
    equal those of ``IndexLSH``.
    """

    name = "lsh"
    summary = "random rotation + sign bits (faiss IndexLSH(d, bits, rotate_data=True))"
    #: subtract the per-bit median of the training projections (IndexLSH train_thresholds)
    train_thresholds: ClassVar[bool] = False

    lin_: faiss.LinearTransform
    thresholds_: np.ndarray | None = None

    def __init__(self, bits: int | None = None, seed: int = LSH_SEED) -> None:
        self.bits = bits
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"bits": self.bits, "seed": self.seed}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "LSHTransform":
        """Draw the rotation (and, with thresholds, take medians over (n, d) float32 xt); returns self."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        bits = _sign_bits(self.bits, self.name)
        _log(progress, f"{self.name}: random rotation {xt.shape[1]} -> {bits} dims (faiss seed {self.seed})")
        rotation = faiss.RandomRotationMatrix(xt.shape[1], bits)
        rotation.init(_c_int(self.seed, "--seed"))
        self._set(linear_matrix(rotation), None)
        if self.train_thresholds:
            # the exact median (mean of the two middle values for even n), as IndexLSH.train
            self.thresholds_ = np.median(self.lin_.apply(xt), axis=0).astype(np.float32)
        return self

    def _set(self, matrix: np.ndarray, thresholds: np.ndarray | None) -> "LSHTransform":
        self.lin_ = faiss_linear(matrix)
        self.d_out_, self.d_in_ = matrix.shape
        self.thresholds_ = None if thresholds is None else np.asarray(thresholds, dtype=np.float32)
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, bits) float32 projections (minus the thresholds when trained)."""
        y = self.lin_.apply(np.ascontiguousarray(x, dtype=np.float32))
        if self.thresholds_ is not None:
            y -= self.thresholds_
        return y

    def fitted_codec(self) -> Codec | None:
        return _sign_codec(self.d_out_) if hasattr(self, "lin_") else None

    def get_weights(self) -> dict[str, np.ndarray]:
        """``matrix`` (bits, d) float32; ``thresholds`` (bits,) float32 for lsh-thresholds."""
        weights = {"matrix": linear_matrix(self.lin_)}
        if self.thresholds_ is not None:
            weights["thresholds"] = self.thresholds_
        return weights

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "LSHTransform":
        t = cls(**_params(config))
        return t._set(weights["matrix"], weights.get("thresholds"))


class LSHThresholdsTransform(LSHTransform):
    """LSH with a per-bit threshold at the training median: faiss ``IndexLSH(d, bits, True, True)``."""

    name = "lsh-thresholds"
    summary = "random rotation, per-bit median thresholds + sign bits (faiss IndexLSH(d, bits, True, True))"
    train_thresholds = True


class ITQTransform(Transform):
    """PCA + ITQ rotation, then sign bits: faiss ``index_factory(d, "ITQ{bits},LSH")``.

    y = A normalize(x - mean) with A (bits, d) = R_itq P_pca, as faiss ``ITQTransform(d, bits, True)``:
    training vectors (at most max(10 d, 32768), faiss's subsample) are centred and L2-normalised, PCA
    keeps the ``bits`` leading directions, and ITQ (Gong & Lazebnik) learns the rotation that brings
    them closest to their signs (faiss ``ITQMatrix``: 50 iterations from a random rotation of ``seed``).

    bits > d (faiss refuses it): PCA keeps all d directions (a rotation), they are padded with
    bits - d zero coordinates, and ITQ learns a (bits, bits) rotation of the padded vectors, so A is a
    learned tight frame (bits, d) rather than a random one. With bits <= d the result equals faiss's.
    """

    name = "itq"
    summary = "PCA + ITQ rotation + sign bits (faiss index_factory \"ITQ{bits},LSH\")"

    mean_: np.ndarray
    lin_: faiss.LinearTransform

    def __init__(self, bits: int | None = None, seed: int = ITQ_SEED) -> None:
        self.bits = bits
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"bits": self.bits, "seed": self.seed}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "ITQTransform":
        """Learn mean, PCA and the ITQ rotation from (n, d) float32 xt; returns self."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        n, d = xt.shape
        bits = _sign_bits(self.bits, self.name)
        seed = _c_int(self.seed, "--seed")
        if n < 2:
            raise ConfigError(f"itq needs at least 2 training vectors, got {n}")
        _log(progress, f"itq: PCA {d} -> {min(bits, d)} dims + ITQ rotation in {bits} dims")
        if bits <= d:
            itq = faiss.ITQTransform(d, bits, True)
            itq.itq.seed = seed
            itq.train(xt)
            mean, matrix = faiss.vector_to_array(itq.mean), linear_matrix(itq.pca_then_itq)
        else:
            mean, matrix = _padded_itq(xt, bits, seed)
        return self._set(mean, matrix)

    def _set(self, mean: np.ndarray, matrix: np.ndarray) -> "ITQTransform":
        self.mean_ = np.ascontiguousarray(mean, dtype=np.float32)
        self.lin_ = faiss_linear(matrix)
        self.d_out_, self.d_in_ = matrix.shape
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, bits) float32 (the L2 normalisation is faiss's; it leaves signs unchanged)."""
        z = np.ascontiguousarray(np.asarray(x, dtype=np.float32) - self.mean_)
        faiss.normalize_L2(z)
        return self.lin_.apply(z)

    def fitted_codec(self) -> Codec | None:
        return _sign_codec(self.d_out_) if hasattr(self, "lin_") else None

    def get_weights(self) -> dict[str, np.ndarray]:
        """``mean`` (d,) float32 and ``matrix`` (bits, d) float32."""
        return {"mean": self.mean_, "matrix": linear_matrix(self.lin_)}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "ITQTransform":
        return cls(**_params(config))._set(weights["mean"], weights["matrix"])


class OPQTransform(Transform):
    """OPQ rotation, then PQ on the rotated vectors: faiss ``index_factory(d, "OPQ{M},PQ{M}")``, M = bits / 8.

    The transform is the (d, d) rotation of faiss ``OPQMatrix(d, M)`` (``train_iters`` alternations
    between rotation and PQ, faiss default 50); the PQ codec is trained on the rotated training vectors.
    """

    name = "opq"
    summary = "OPQ rotation + PQ codec, M = bits/8 (faiss index_factory \"OPQ{M},PQ{M}\")"

    lin_: faiss.LinearTransform
    codec_: PQCodec | None = None

    def __init__(self, bits: int | None = None, train_iters: int | None = None) -> None:
        self.bits = bits
        self.train_iters = train_iters

    def get_params(self) -> dict[str, Any]:
        return {"bits": self.bits, "train_iters": self.train_iters}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "OPQTransform":
        """Train the rotation, then the PQ codec on the rotated (n, d) float32 xt; returns self."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        _log(progress, f"opq: training the rotation on {xt.shape[0]} vectors")
        self._set(train_opq_rotation(xt, self.bits, self.train_iters, self.name))
        _log(progress, "opq: training the product quantizer on the rotated vectors")
        self.codec_ = PQCodec(self.bits).fit(self.apply(xt))
        return self

    def _set(self, matrix: np.ndarray) -> "OPQTransform":
        self.lin_ = faiss_linear(matrix)
        self.d_out_, self.d_in_ = matrix.shape
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, d) float32 rotated vectors."""
        return self.lin_.apply(np.ascontiguousarray(x, dtype=np.float32))

    def fitted_codec(self) -> Codec | None:
        return self.codec_

    def get_weights(self) -> dict[str, np.ndarray]:
        """``matrix`` (d, d) float32, the orthonormal rotation (y = matrix @ x)."""
        return {"matrix": linear_matrix(self.lin_)}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "OPQTransform":
        return cls(**_params(config))._set(weights["matrix"])


class _IdentityWithCodec(Transform):
    """y = x, for methods whose whole model is the codec (PQ, LSQ)."""

    codec_: Codec | None = None

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "_IdentityWithCodec":
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        _log(progress, f"{self.name}: training the codec on {xt.shape[0]} vectors of dimension {xt.shape[1]}")
        self.codec_ = self._make_codec().fit(xt)
        self.d_in_ = self.d_out_ = xt.shape[1]
        return self

    def _make_codec(self) -> Codec:
        raise NotImplementedError

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> the same (n, d) float32."""
        return np.ascontiguousarray(x, dtype=np.float32)

    def fitted_codec(self) -> Codec | None:
        return self.codec_

    def get_weights(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "_IdentityWithCodec":
        t = cls(**_params(config))
        t.d_in_ = t.d_out_ = int(config["d_in"])
        return t


class PQTransform(_IdentityWithCodec):
    """No transform; a PQ codec with M = bits / 8 sub-quantizers: faiss ``IndexPQ(d, M, 8)`` (``"PQ{M}"``)."""

    name = "pq"
    summary = "identity + PQ codec, M = bits/8 sub-quantizers of 8 bits (faiss IndexPQ(d, M, 8), \"PQ{M}\")"

    def __init__(self, bits: int | None = None) -> None:
        self.bits = bits

    def get_params(self) -> dict[str, Any]:
        return {"bits": self.bits}

    def _make_codec(self) -> Codec:
        return PQCodec(self.bits)


class LSQTransform(_IdentityWithCodec):
    """No transform; an LSQ codec (M = bits / 8): faiss ``IndexLocalSearchQuantizer(d, M, 8)`` (``"LSQ{M}x8"``).

    ``train_iters`` (faiss default 25) and ``encode_ils_iters`` (faiss default 16) set the time budget:
    training and encoding time grow linearly with them.
    """

    name = "lsq"
    summary = "identity + LSQ additive codec, M = bits/8 (faiss IndexLocalSearchQuantizer(d, M, 8), \"LSQ{M}x8\")"

    def __init__(self, bits: int | None = None, train_iters: int | None = None,
                 encode_ils_iters: int | None = None) -> None:
        self.bits = bits
        self.train_iters = train_iters
        self.encode_ils_iters = encode_ils_iters

    def get_params(self) -> dict[str, Any]:
        return {"bits": self.bits, "train_iters": self.train_iters, "encode_ils_iters": self.encode_ils_iters}

    def _make_codec(self) -> Codec:
        return LSQCodec(self.bits, self.train_iters, self.encode_ils_iters)


# ---------------------------------------------------------------------------------------------


def _padded_itq(xt: np.ndarray, bits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss ITQTransform's steps for bits > d, with the PCA output zero-padded to ``bits`` dims.

    Returns mean (d,) float32 and A (bits, d) float32 with y = A normalize(x - mean).
    """
    n, d = xt.shape
    nmax = max(ITQ_TRAIN_PER_DIM * d, ITQ_MIN_TRAIN)
    if n > nmax:  # the same subsample as faiss's fvecs_maybe_subsample
        perm = np.empty(n, dtype=np.int32)
        faiss.rand_perm(faiss.swig_ptr(perm), n, ITQ_SUBSAMPLE_SEED)
        xt = xt[perm[:nmax]]
    mean = xt.mean(axis=0, dtype=np.float64).astype(np.float32)
    z = np.ascontiguousarray(xt - mean)
    faiss.normalize_L2(z)
    pca = faiss.PCAMatrix(d, d)
    pca.have_bias = False  # as ITQTransform: the data are already centred
    pca.train(z)
    padded = np.zeros((z.shape[0], bits), np.float32)
    padded[:, :d] = pca.apply(z)
    itq = faiss.ITQMatrix(bits)
    itq.seed = seed
    itq.train(padded)
    # y = R [P z; 0] = R[:, :d] P z
    matrix = linear_matrix(itq)[:, :d] @ linear_matrix(pca)
    return mean, matrix.astype(np.float32)


def _sign_bits(bits: int | None, method: str) -> int:
    if bits is None:
        raise ConfigError(f"--method {method} needs --bits (one sign bit per projected dimension, e.g. --bits 64)")
    if bits <= 0 or bits % 8:
        lower, upper = 8 * (bits // 8), 8 * -(-bits // 8)
        hint = f"use --bits {upper}" if lower <= 0 else f"use --bits {lower} or {upper}"
        raise ConfigError(f"--method {method}: --bits {bits} is not a positive multiple of 8 "
                          f"(sign codes are whole bytes); {hint}")
    return bits


def _sign_codec(bits: int) -> SignCodec:
    return SignCodec(bits).fit(np.zeros((0, bits), np.float32))


def _c_int(value: int, flag: str) -> int:
    # faiss seeds are C ints; a larger value would be truncated silently by SWIG or raise an obscure error
    if not -(2**31) <= value < 2**31:
        raise ConfigError(f"{flag} {value} is out of range (faiss seeds are 32-bit integers)")
    return int(value)


def _params(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("d_in", "d_out")}


def _log(progress: Any, message: str) -> None:
    if progress is not None:
        progress.log(message)
