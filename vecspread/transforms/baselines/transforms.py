"""The field's baselines as ``train --method``s, each reproducing a faiss index on the same data.

- ``lsh``: random rotation to ``bits`` dims, sign bits -- faiss ``IndexLSH(d, bits, True, False)``;
- ``lsh-thresholds``: the same rotation minus each bit's training median, sign bits --
  faiss ``IndexLSH(d, bits, True, True)``;
- ``itq``: centre, L2-normalise, PCA + ITQ rotation, sign bits -- faiss ``index_factory(d, "ITQ{bits},LSH")``.

(``pq``, ``opq`` and ``lsq`` are the identity transform trained with those codecs: ``vecspread.codecs.pq``.)

Defaults are faiss's (LSH rotation seed 5, ITQ seed 123 and 50 iterations), and the matrices are applied
through faiss, so with default options the codes are bit-identical to those of the faiss index trained on
the same vectors (up to faiss's own multi-threaded nondeterminism in ITQ training).

Sign bits: faiss sets a bit where the projection is >= 0, :class:`~vecspread.codecs.sign.codec.SignCodec`
where it is > 0; they differ only for a projection exactly equal to 0 (or to the LSH threshold).
"""

from __future__ import annotations

from typing import Any, ClassVar

import faiss
import numpy as np

from vecspread.codecs.base import whole_bytes
from vecspread.codecs.pq.codecs import faiss_linear, linear_matrix
from vecspread.errors import ConfigError
from vecspread.transforms.base import Transform
from vecspread.transforms.baselines import ITQ, LSH, LSH_THRESHOLDS

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

    spec = LSH
    #: subtract the per-bit median of the training projections (IndexLSH train_thresholds)
    train_thresholds: ClassVar[bool] = False

    lin_: faiss.LinearTransform
    thresholds_: np.ndarray | None = None

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "LSHTransform":
        """Draw the rotation (and, with thresholds, take medians over (n, d) float32 xt); returns self."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        bits = whole_bytes(self.bits, f"--method {self.name}: --bits")
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

    def get_weights(self) -> dict[str, np.ndarray]:
        """``matrix`` (bits, d) float32; ``thresholds`` (bits,) float32 for lsh-thresholds."""
        weights = {"matrix": linear_matrix(self.lin_)}
        if self.thresholds_ is not None:
            weights["thresholds"] = self.thresholds_
        return weights

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self._set(weights["matrix"], weights.get("thresholds"))


class LSHThresholdsTransform(LSHTransform):
    """LSH with a per-bit threshold at the training median: faiss ``IndexLSH(d, bits, True, True)``."""

    spec = LSH_THRESHOLDS
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

    spec = ITQ

    mean_: np.ndarray
    lin_: faiss.LinearTransform

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "ITQTransform":
        """Learn mean, PCA and the ITQ rotation from (n, d) float32 xt; returns self."""
        xt = np.ascontiguousarray(xt, dtype=np.float32)
        n, d = xt.shape
        bits = whole_bytes(self.bits, f"--method {self.name}: --bits")
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

    def get_weights(self) -> dict[str, np.ndarray]:
        """``mean`` (d,) float32 and ``matrix`` (bits, d) float32."""
        return {"mean": self.mean_, "matrix": linear_matrix(self.lin_)}

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self._set(weights["mean"], weights["matrix"])


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


def _c_int(value: int, flag: str) -> int:
    # faiss seeds are C ints; a larger value would be truncated silently by SWIG or raise an obscure error
    if not -(2**31) <= value < 2**31:
        raise ConfigError(f"{flag} {value} is out of range (faiss seeds are 32-bit integers)")
    return int(value)


def _log(progress: Any, message: str) -> None:
    if progress is not None:
        progress.log(message)
