"""Asymmetric lifts that turn maximum inner product search (MIPS) into a problem LSH can index.

Database vectors x and queries q are mapped by *different* functions, P (``apply``) and Q
(``apply_query``), chosen so that a similarity LSH understands (cosine or L2 distance between
Q(q) and P(x)) ranks the database (almost) as the inner product q.x does:

- ``sign-alsh`` (Shrivastava & Li, UAI 2015, "Improved asymmetric LSH"): with x scaled so that
  ||x|| <= U < 1, P(x) = [x; 1/2 - ||x||^2; 1/2 - ||x||^4; ...; 1/2 - ||x||^(2^m)] and
  Q(q) = [q/||q||; 0; ...; 0]. Then P.Q = x.q/||q|| and ||P(x)||^2 = m/4 + ||x||^(2^(m+1)), so
  cos(P, Q) is proportional to x.q up to the factor 1/sqrt(m/4 + ||x||^(2^(m+1))), which varies by
  at most sqrt(1 + 4 U^(2^(m+1)) / m) (1.095 for the defaults m = 2, U = 0.75).
- ``l2-alsh`` (Shrivastava & Li, NIPS 2014): P(x) = [x; ||x||^2; ...; ||x||^(2^m)],
  Q(q) = [q/||q||; 1/2; ...; 1/2], so ||Q - P||^2 = 1 + m/4 - 2 x.q/||q|| + ||x||^(2^(m+1)); the
  codes are E2LSH bucket ids (:class:`vecspread.codecs.l2lsh.codec.L2LSHCodec`, trained with the model).
- ``simple-lsh`` (Neyshabur & Srebro, ICML 2015): with ||x|| <= 1, P(x) = [x; sqrt(1 - ||x||^2)],
  Q(q) = [q/||q||; 0]: ||P(x)|| = 1, so cos(P, Q) = x.q/||q|| exactly.

The sign methods end with a Gaussian random projection to ``bits`` dimensions (signed random
projections, Charikar 2002), so ``encode`` with the sign codec yields their hash bits and the
Hamming distance between codes estimates the angle between P(x) and Q(q). With ``lift_only`` they
output P(x) and Q(q) themselves (d + m dimensions, no codec): the input of a method trained after
the lift (``vecspread train --after``, e.g. a catalyzer on the lifted data).

Hyper-parameters ``norm_terms`` and ``max_norm`` are the papers' m and U. The scale factor is
learned at fit: ``scale_ = U / max ||xt||`` over the training vectors (U = 1 for Simple-LSH).
A database vector longer than every training vector exceeds U after scaling: up to norm 1 the
identities above still hold (with a larger error term); beyond 1 its norm *terms* are computed
from ``min(||scale x||, 1)``, which keeps every appended coordinate bounded (in [-1/2, 1/2] for
Sign-ALSH, [0, 1] for L2-ALSH, 0 for Simple-LSH) while the x part keeps its true length. The
identities then no longer hold for those vectors (their norm correction is that of a unit
vector); nothing is discarded.
Queries are normalised (zero queries stay zero), so their scale never matters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.codecs.base import whole_bytes
from vecspread.errors import ConfigError
from vecspread.transforms.base import Transform
from vecspread.transforms.mips import L2_ALSH, SIGN_ALSH, SIMPLE_LSH


class MipsLift(Transform):
    """Shared machinery: the learned scale, the P/Q lifts and (for sign methods) the projection.

    Subclasses implement ``_extra(norms)`` (the appended database coordinates, from the clipped
    scaled norms) and ``_query_extra(n)`` (the appended query coordinates), and set ``bound``.
    """

    #: max ||scale_ * xt|| after fitting
    bound: float = 1.0
    scale_: float
    #: (bits, d_lift) float32 Gaussian projection, or None (L2-ALSH's codec projects itself; lift_only)
    projection_: np.ndarray | None
    lift_only: bool = False
    bits: int | None = None
    seed: int = 0

    # -- the lifts, before any projection ---------------------------------------------------------

    def lift(self, x: np.ndarray) -> np.ndarray:
        """P: (n, d_in) float32 database vectors -> (n, d_in + n_extra) float32 lifted vectors."""
        xs = self._check(x).astype(np.float64) * self.scale_
        norms = np.minimum(np.linalg.norm(xs, axis=1), 1.0)  # clipped: see the module docstring
        return np.hstack([xs, self._extra(norms)]).astype(np.float32)

    def lift_query(self, q: np.ndarray) -> np.ndarray:
        """Q: (n, d_in) float32 queries -> (n, d_in + n_extra) float32, query part of unit norm."""
        q = self._check(q).astype(np.float64)
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        qn = q / np.where(norms > 0, norms, 1.0)
        return np.hstack([qn, self._query_extra(len(q))]).astype(np.float32)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 database vectors -> (n, d_out) float32 (projected P(x))."""
        return self._project(self.lift(x))

    def apply_query(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 queries -> (n, d_out) float32 (projected Q(q))."""
        return self._project(self.lift_query(x))

    # -- fitting and state ------------------------------------------------------------------------

    def _fit_scale(self, xt: np.ndarray) -> None:
        xt = np.asarray(xt, dtype=np.float32)
        if xt.ndim != 2 or xt.shape[0] == 0:
            raise ConfigError(f"{self.name} needs a non-empty (n, d) training set, got shape {xt.shape}")
        max_norm = float(np.linalg.norm(xt.astype(np.float64), axis=1).max())
        if not max_norm > 0:
            raise ConfigError(f"{self.name}: every training vector is zero; the norm scale cannot be learned")
        self.d_in_ = int(xt.shape[1])
        self.scale_ = self.bound / max_norm

    def _finish_fit(self) -> None:
        """Sign methods: draw the projection, or with ``lift_only`` output the lifts themselves."""
        if self.lift_only:
            if self.bits is not None:
                raise ConfigError(f"{self.name}: --bits sets the random projection, which --lift-only leaves out; "
                                  "drop one of them")
            self.projection_ = None
            self.d_out_ = self.d_lift
        else:
            self._draw_projection(64 if self.bits is None else self.bits, self.seed)

    def _draw_projection(self, bits: int, seed: int) -> None:
        whole_bytes(bits, f"--method {self.name}: --bits")
        rng = np.random.default_rng(seed)
        self.projection_ = rng.standard_normal((bits, self.d_lift)).astype(np.float32)
        self.d_out_ = bits

    @property
    def d_lift(self) -> int:
        """Dimension of P(x) and Q(q)."""
        return self.d_in_ + self.n_extra

    @property
    def n_extra(self) -> int:
        raise NotImplementedError

    def _project(self, z: np.ndarray) -> np.ndarray:
        if self.projection_ is None:
            return z
        return np.ascontiguousarray(z @ self.projection_.T, dtype=np.float32)

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.d_in_:
            raise ConfigError(f"{self.name} was fitted on {self.d_in_}-d vectors, got shape {x.shape}")
        return x

    def _extra(self, norms: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _query_extra(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def get_weights(self) -> dict[str, np.ndarray]:
        w = {"scale": np.array([self.scale_], np.float64)}
        if self.projection_ is not None:
            w["projection"] = self.projection_
        return w

    def codec_name(self) -> str | None:
        return None if self.lift_only else super().codec_name()

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self.scale_ = float(np.asarray(weights["scale"]).reshape(-1)[0])
        proj = weights.get("projection")
        self.projection_ = None if proj is None else np.ascontiguousarray(proj, dtype=np.float32)
        expected = self.d_lift if self.projection_ is None else self.projection_.shape[0]
        if self.d_out_ != expected or (self.projection_ is not None and self.projection_.shape[1] != self.d_lift):
            raise ValueError(f"{self.name}: stored shapes do not match d_in={self.d_in_}, d_out={self.d_out_}")


class _NormPowerLift(MipsLift):
    """The asymmetric lifts that append m norm powers and scale the data to max norm U (the papers'
    m and U: ``norm_terms`` and ``max_norm``)."""

    norm_terms: int
    max_norm: float

    @property
    def bound(self) -> float:  # type: ignore[override]
        return float(self.max_norm)

    @property
    def n_extra(self) -> int:
        return int(self.norm_terms)


class SignALSHTransform(_NormPowerLift):
    """Sign-ALSH: P(x) = [x; 1/2 - ||x||^2; ...; 1/2 - ||x||^(2^m)], Q(q) = [q/||q||; 0...], then
    a (bits, d + m) Gaussian projection; the sign codec turns it into signed random projections."""

    spec = SIGN_ALSH

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "SignALSHTransform":
        self._fit_scale(xt)
        self._finish_fit()
        return self

    def _extra(self, norms: np.ndarray) -> np.ndarray:
        return 0.5 - _norm_powers(norms, self.norm_terms)

    def _query_extra(self, n: int) -> np.ndarray:
        return np.zeros((n, self.norm_terms))


class SimpleLSHTransform(MipsLift):
    """Simple-LSH: P(x) = [x; sqrt(1 - ||x||^2)] (unit norm), Q(q) = [q/||q||; 0], then a
    (bits, d + 1) Gaussian projection for signed random projections."""

    spec = SIMPLE_LSH
    bound = 1.0

    @property
    def n_extra(self) -> int:
        return 1

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "SimpleLSHTransform":
        self._fit_scale(xt)
        self._finish_fit()
        return self

    def _extra(self, norms: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(1.0 - norms**2, 0.0))[:, None]

    def _query_extra(self, n: int) -> np.ndarray:
        return np.zeros((n, 1))


class L2ALSHTransform(_NormPowerLift):
    """L2-ALSH: P(x) = [x; ||x||^2; ...; ||x||^(2^m)], Q(q) = [q/||q||; 1/2; ...; 1/2].

    The transform outputs the (d + m)-dimensional lifts themselves; the E2LSH hashes
    floor((a.y + b) / r) are drawn and stored by the codec it trains with
    (:class:`~vecspread.codecs.l2lsh.codec.L2LSHCodec`: ``--bits``, ``--hash-bits``, ``--r``, ``--seed``).
    """

    spec = L2_ALSH

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "L2ALSHTransform":
        self._fit_scale(xt)
        self.projection_ = None
        self.d_out_ = self.d_lift
        return self

    def _extra(self, norms: np.ndarray) -> np.ndarray:
        return _norm_powers(norms, self.norm_terms)

    def _query_extra(self, n: int) -> np.ndarray:
        return np.full((n, self.norm_terms), 0.5)


# ------------------------------------------------------------------------------------------------


def _norm_powers(norms: np.ndarray, m: int) -> np.ndarray:
    """(n,) norms -> (n, m) float64 [||x||^2, ||x||^4, ..., ||x||^(2^m)] by repeated squaring."""
    out = np.empty((len(norms), m))
    p = norms.astype(np.float64) ** 2
    for i in range(m):
        out[:, i] = p
        p = p * p
    return out
