"""Product-quantizer codecs backed by faiss: PQ, OPQ (rotation + PQ) and LSQ (additive quantizer).

Each codec equals, code for code, the faiss index named in its docstring when trained on the same
vectors; ``search`` is ADC (asymmetric distance computation): the query stays unquantized and D holds
squared L2 distances from the query to the reconstruction of each code, ascending
(``vecspread.scanners.adc`` for PQ and OPQ, ``vecspread.scanners.decoded`` for LSQ).

All three use 8-bit sub-quantizers (256 centroids each), so ``--bits`` is a multiple of 8 and
M = bits / 8 codebooks; one code is M bytes.

Storage: learned state is plain float32 arrays (centroids, rotation, codebooks) from which the faiss
objects are rebuilt in ``from_state``; no faiss serialisation blob is ever stored or loaded.
"""

from __future__ import annotations

from typing import Any, Callable

import faiss
import numpy as np

from vecspread.codecs.base import Codec, whole_bytes
from vecspread.codecs.pq import LSQ, OPQ, PQ
from vecspread.errors import ConfigError, InputError

#: bits per sub-quantizer index (256 centroids), as ``IndexPQ(d, M, 8)`` and the factory's ``PQ{M}``
NBITS = 8
KSUB = 1 << NBITS

#: faiss's own defaults, kept so that an option left unset gives the faiss index's result
OPQ_TRAIN_ITERS = 50  # OPQMatrix.niter
LSQ_TRAIN_ITERS = 25  # LocalSearchQuantizer.train_iters
LSQ_ENCODE_ILS_ITERS = 16  # LocalSearchQuantizer.encode_ils_iters
LSQ_MIN_M = 4  # LocalSearchQuantizer.nperts: codebooks perturbed per local-search step


class _FaissSACodec(Codec):
    """What PQ and LSQ share: a faiss index whose standalone codes (``sa_encode`` / ``sa_decode``) are
    M bytes, one per sub-quantizer or codebook. Subclasses build ``index_`` and define ``M``."""

    index_: faiss.Index
    needs_training = True
    min_train = KSUB

    @property
    def M(self) -> int:
        raise NotImplementedError

    #: PQ cuts vectors into M groups: M must divide d (LSQ's codebooks span all dimensions)
    need_divide: bool = True

    def check_dimension(self, d: int) -> None:
        sub_quantizers(self.bits, d, self.name, need_divide=self.need_divide)

    def _training_set(self, yt: np.ndarray, need_divide: bool) -> tuple[np.ndarray, int, int]:
        """(yt as float32, d, M) once the bit budget and the number of training vectors are checked."""
        yt = _as_float32(yt)
        M = sub_quantizers(self.bits, yt.shape[1], self.name, need_divide=need_divide)
        _check_train_size(yt, self.name)
        return yt, yt.shape[1], M

    @property
    def code_size(self) -> int:
        return self.M

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, M) uint8."""
        return self.index_.sa_encode(self.check_queries(y))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, M) uint8 -> (n, d) float32 reconstructions."""
        return self.index_.sa_decode(np.ascontiguousarray(codes, dtype=np.uint8))

class PQCodec(_FaissSACodec):
    """Product quantization, equal to faiss ``IndexPQ(d, M, 8)``, M = bits / 8.

    The factory string ``"PQ{M}"`` gives the same distances and results, but also runs faiss's polysemous
    training, which permutes the centroid ids (other bytes, same reconstructions); ``"PQ{M}np"`` gives
    the same bytes.

    The d dimensions are cut into M contiguous groups of d / M; each group is coded by the nearest of
    256 k-means centroids (faiss ``ProductQuantizer.train``: 25 iterations, at most 65,536 points per
    sub-quantizer, seed 1234).
    """

    spec = PQ
    family = "pq"
    scanner = "adc"

    def fit(self, yt: np.ndarray) -> "PQCodec":
        """Train the M sub-quantizers on (n, d) float32 vectors; returns self."""
        yt, d, M = self._training_set(yt, need_divide=True)
        pq = faiss.ProductQuantizer(d, M, NBITS)
        pq.train(yt)
        return self._set(d, faiss.vector_to_array(pq.centroids).reshape(M, KSUB, d // M))

    def _set(self, d: int, centroids: np.ndarray) -> "PQCodec":
        M = centroids.shape[0]
        self.d_ = d
        self.centroids_ = np.ascontiguousarray(centroids, dtype=np.float32)
        self.index_ = faiss.IndexPQ(d, M, NBITS)
        faiss.copy_array_to_vector(self.centroids_.ravel(), self.index_.pq.centroids)
        self.index_.is_trained = True
        return self

    @property
    def M(self) -> int:
        return int(self.centroids_.shape[0])

    def adc_index(self) -> faiss.IndexPQ:
        """The faiss index whose scanner searches these codes (``vecspread.scanners.adc``)."""
        return self.index_

    def adc_queries(self, yq: np.ndarray) -> np.ndarray:
        return self.check_queries(yq)

    def get_config(self) -> dict[str, Any]:
        return {"d": self.d_, "bits": self.code_bits, "M": self.M, "nbits": NBITS, "code_size": self.code_size}

    def get_arrays(self) -> dict[str, np.ndarray]:
        """``centroids`` (M, 256, d / M) float32."""
        return {"centroids": self.centroids_}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "PQCodec":
        return cls(bits=int(config["bits"]))._set(int(config["d"]), arrays["centroids"])


class OPQCodec(Codec):
    """A learned rotation, then PQ: equal to faiss ``index_factory(d, "OPQ{M},PQ{M}")``, M = bits / 8, or
    with ``dout`` D to ``index_factory(d, "OPQ{M}_{D},PQ{M}")``.

    The rotation R (D, d) is faiss ``OPQMatrix(d, M, D)`` (``train_iters`` alternations, faiss default
    50; D = d unless ``dout`` says otherwise); PQ is then trained on the rotated vectors. Distances are
    those of the rotated space: they equal those of the input space when D = d (R is orthonormal), and
    are those between the projections on R's D orthonormal rows when D < d (the way to a bit budget
    whose M does not divide d, e.g. 96 bits on 128 dimensions: ``--dout 120``). Use it after a learned
    transform (``encode --codec opq``): "Catalyst + OPQ".
    """

    spec = OPQ
    family = "pq"
    scanner = "adc"
    needs_training = True
    min_train = KSUB

    def _rotated_dim(self, d: int) -> int:
        """D, once it is checked against the input's dimension d and the bit budget."""
        D = d if self.dout is None else self.dout
        if D > d:
            raise ConfigError(f"{self.name}: --dout {D} is more than the input's {d} dimensions (the rotation "
                              f"keeps D of them); choose --dout {d} or less")
        if self.dout is None:  # the rotation can drop dimensions so that M divides them: faiss OPQ{M}_{D}
            sub_quantizers(self.bits, D, self.name, other_fix=lambda M: (
                f"--dout {D - D % M} (faiss OPQ{M}_{D - D % M}: the rotation keeps {D - D % M} dimensions)"))
        else:
            sub_quantizers(self.bits, D, self.name, what="--dout")
        return D

    def check_dimension(self, d: int) -> None:
        self._rotated_dim(d)

    def fit(self, yt: np.ndarray) -> "OPQCodec":
        """Train the rotation, then PQ on the rotated (n, d) float32 vectors; returns self."""
        yt = _as_float32(yt)
        D = self._rotated_dim(yt.shape[1])
        rotation = train_opq_rotation(yt, self.bits, self.train_iters, self.name, dout=D)
        self.rotation_ = faiss_linear(rotation)
        self.pq_ = PQCodec(bits=self.bits).fit(self.rotation_.apply(yt))
        self.d_ = yt.shape[1]
        return self

    @property
    def code_size(self) -> int:
        return self.pq_.code_size

    def encode(self, y: np.ndarray) -> np.ndarray:
        """(n, d) float32 -> (n, M) uint8."""
        return self.pq_.encode(self.rotation_.apply(self.check_queries(y)))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, M) uint8 -> (n, d) float32 reconstructions, rotated back into the input space (R^T times
        the (n, D) reconstruction: within R's row space when D < d)."""
        return self.rotation_.reverse_transform(self.pq_.decode(codes))

    def adc_index(self) -> faiss.IndexPQ:
        return self.pq_.index_

    def adc_queries(self, yq: np.ndarray) -> np.ndarray:
        """The rotated queries (n, D): distances in the rotated space equal those of the input space
        when D = d."""
        return self.rotation_.apply(self.check_queries(yq))

    def get_config(self) -> dict[str, Any]:
        # d is the input's dimension; the PQ's is D
        return {**self.pq_.get_config(), "d": self.d_, "dout": self.pq_.d_, "train_iters": self.train_iters}

    def get_arrays(self) -> dict[str, np.ndarray]:
        """``rotation`` (D, d) float32 (y_rot = R y) and ``centroids`` (M, 256, D / M) float32."""
        return {"rotation": linear_matrix(self.rotation_), **self.pq_.get_arrays()}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "OPQCodec":
        rotation = arrays["rotation"]
        D, d = rotation.shape
        if d != int(config["d"]) or D != int(config.get("dout", d)):
            raise InputError(f"opq state: a rotation of shape {rotation.shape} for d={config['d']}, "
                             f"dout={config.get('dout', d)}")
        c = cls(bits=int(config["bits"]), train_iters=config.get("train_iters"),
                dout=None if D == d else D)
        c.d_ = d
        c.rotation_ = faiss_linear(rotation)
        c.pq_ = PQCodec.from_state({**config, "d": D}, arrays)
        return c


class LSQCodec(_FaissSACodec):
    """Local search quantization: equal to faiss ``IndexLocalSearchQuantizer(d, M, 8)`` (factory ``"LSQ{M}x8"``).

    A code is M bytes; its reconstruction is the *sum* of one 256-entry codebook vector (d,) per byte.
    Training runs ``train_iters`` rounds (faiss default 25) and encoding ``encode_ils_iters`` iterated
    local-search rounds (faiss default 16); both cost time linearly, so they are the budget knobs.
    Search ranks codes by the squared L2 distance from the query to their reconstruction, the distance
    of the index's default ``ST_decompress`` search (the codes store no norms): ``vecspread.scanners.decoded``
    scans few queries by look-up tables with each code's norm computed once into its search-ready form,
    and many by decoding each block once and running ``faiss.knn`` on it (faiss's own ``ST_decompress``
    scan decodes every code once per query).

    faiss draws the random starting codes per ``compute_codes`` call from a fixed seed, so the code of
    a vector depends on the batch it is encoded in (``--block-size``), not only on the vector; the
    quality does not.
    """

    spec = LSQ
    family = "additive"
    scanner = "decoded"

    need_divide = False

    def check_dimension(self, d: int) -> None:
        M = sub_quantizers(self.bits, d, self.name, need_divide=False)
        if M < LSQ_MIN_M:
            raise ConfigError(f"lsq needs at least {LSQ_MIN_M} codebooks: use --bits {NBITS * LSQ_MIN_M} or more "
                              f"(got --bits {self.bits})")

    def fit(self, yt: np.ndarray) -> "LSQCodec":
        """Train M additive codebooks on (n, d) float32 vectors; returns self."""
        yt, d, M = self._training_set(yt, need_divide=False)
        if M < LSQ_MIN_M:
            # faiss perturbs nperts = 4 codebooks per local-search step and aborts when M < 4
            raise ConfigError(f"lsq needs at least {LSQ_MIN_M} codebooks: use --bits {NBITS * LSQ_MIN_M} or more "
                              f"(got --bits {self.bits})")
        lsq = faiss.LocalSearchQuantizer(d, M, NBITS)
        lsq.train_iters = LSQ_TRAIN_ITERS if self.train_iters is None else self.train_iters
        lsq.train(yt)
        return self._set(d, faiss.vector_to_array(lsq.codebooks).reshape(M, KSUB, d))

    def _set(self, d: int, codebooks: np.ndarray) -> "LSQCodec":
        M = codebooks.shape[0]
        self.d_ = d
        self.codebooks_ = np.ascontiguousarray(codebooks, dtype=np.float32)
        self.index_ = faiss.IndexLocalSearchQuantizer(d, M, NBITS)
        lsq = self.index_.lsq
        faiss.copy_array_to_vector(self.codebooks_.ravel(), lsq.codebooks)
        lsq.encode_ils_iters = LSQ_ENCODE_ILS_ITERS if self.encode_ils_iters is None else self.encode_ils_iters
        lsq.is_trained = True
        self.index_.is_trained = True
        return self

    @property
    def M(self) -> int:
        return int(self.codebooks_.shape[0])

    def get_config(self) -> dict[str, Any]:
        return {"d": self.d_, "bits": self.code_bits, "M": self.M, "nbits": NBITS, "code_size": self.code_size,
                "train_iters": self.train_iters, "encode_ils_iters": self.encode_ils_iters}

    def get_arrays(self) -> dict[str, np.ndarray]:
        """``codebooks`` (M, 256, d) float32."""
        return {"codebooks": self.codebooks_}

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> "LSQCodec":
        c = cls(bits=int(config["bits"]), train_iters=config.get("train_iters"),
                encode_ils_iters=config.get("encode_ils_iters"))
        return c._set(int(config["d"]), arrays["codebooks"])


# ---------------------------------------------------------------------------------------------
# Shared pieces (also used by the baseline methods in vecspread.transforms.baselines)


def sub_quantizers(bits: int | None, d: int, codec: str, *, need_divide: bool = True,
                   what: str = "the dimension", other_fix: Callable[[int], str] | None = None) -> int:
    """M = bits / 8 for a PQ-family codec on d dimensions, or ConfigError naming the fix.

    ``need_divide``: PQ and OPQ cut the vector into M groups of d / M dimensions, so M must divide d;
    LSQ's codebooks span all d dimensions and take any M. ``what``: how the message names d.
    ``other_fix``: given M, one more way out that the codec offers (appended to the message).
    """
    if bits is None:
        raise ConfigError(f"{codec} needs --bits: M = bits / {NBITS} sub-quantizers of {NBITS} bits (e.g. --bits 64)")
    M = whole_bytes(bits, f"{codec}: --bits") // NBITS
    if need_divide and d % M:
        valid = ", ".join(str(NBITS * m) for m in range(1, d + 1) if d % m == 0)
        fix = f"choose --bits among {valid}"
        if other_fix is not None:
            fix += f", or {other_fix(M)}"
        raise ConfigError(f"{codec}: --bits {bits} gives M = {M} sub-quantizers, which does not divide "
                          f"{what} {d}; {fix}")
    return M


def train_opq_rotation(yt: np.ndarray, bits: int | None, train_iters: int | None, codec: str,
                       dout: int | None = None) -> np.ndarray:
    """faiss ``OPQMatrix(d, M, D)`` trained on (n, d) float32 vectors (D = ``dout``, default d); returns
    R (D, d) float32 with orthonormal rows, y_rot = R y."""
    d = yt.shape[1]
    D = d if dout is None else dout
    M = sub_quantizers(bits, D, codec)
    _check_train_size(yt, codec)
    opq = faiss.OPQMatrix(d, M, D)
    opq.niter = OPQ_TRAIN_ITERS if train_iters is None else train_iters
    opq.train(yt)
    return linear_matrix(opq)


def faiss_linear(matrix: np.ndarray, bias: np.ndarray | None = None) -> faiss.LinearTransform:
    """A faiss LinearTransform y = A x (+ b) from A (d_out, d_in) float32 and optional b (d_out,).

    Baselines apply their matrices through faiss rather than numpy so that the float32 results, and
    hence the codes, are bit-identical to those of the faiss index they reproduce.
    """
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    d_out, d_in = matrix.shape
    lt = faiss.LinearTransform(d_in, d_out, bias is not None)
    faiss.copy_array_to_vector(matrix.ravel(), lt.A)
    if bias is not None:
        faiss.copy_array_to_vector(np.ascontiguousarray(bias, dtype=np.float32), lt.b)
    lt.is_trained = True
    # reverse_transform (used by OPQCodec.decode) needs to know A is orthonormal to use A^T
    lt.set_is_orthonormal()
    return lt


def linear_matrix(lt: faiss.LinearTransform) -> np.ndarray:
    """The (d_out, d_in) float32 matrix A of a faiss LinearTransform (y = A x + b)."""
    return faiss.vector_to_array(lt.A).reshape(lt.d_out, lt.d_in).astype(np.float32)


def _as_float32(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y, dtype=np.float32)


def _check_train_size(yt: np.ndarray, codec: str) -> None:
    # k-means and LSQ both need at least one training vector per centroid; faiss would abort
    if yt.shape[0] < KSUB:
        raise ConfigError(f"{codec} needs at least {KSUB} training vectors ({NBITS}-bit sub-quantizers), "
                          f"got {yt.shape[0]}; give the dataset a larger learn set or raise --max-train")
