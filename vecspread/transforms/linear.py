"""Closed-form linear transforms: identity, PCA and random orthogonal rotation (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.errors import ConfigError
from vecspread.transforms.base import Transform


class LinearTransform(Transform):
    """y = (x - mean_) @ matrix_.T, with matrix_ (d_out, d_in) float32 and mean_ (d_in,) float32."""

    mean_: np.ndarray
    matrix_: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 -> (n, d_out) float32."""
        x = np.asarray(x, dtype=np.float32)
        return np.ascontiguousarray((x - self.mean_) @ self.matrix_.T, dtype=np.float32)

    def _set(self, mean: np.ndarray, matrix: np.ndarray) -> "LinearTransform":
        self.mean_ = np.ascontiguousarray(mean, dtype=np.float32)
        self.matrix_ = np.ascontiguousarray(matrix, dtype=np.float32)
        self.d_out_, self.d_in_ = self.matrix_.shape
        return self

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "matrix": self.matrix_}

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "LinearTransform":
        params = {k: v for k, v in config.items() if k not in ("d_in", "d_out")}
        mean, matrix = np.asarray(weights["mean"]), np.asarray(weights["matrix"])
        if matrix.ndim != 2 or mean.shape != (matrix.shape[1],):
            raise ValueError(f"inconsistent weights: mean {mean.shape}, matrix {matrix.shape}")
        if (config.get("d_out"), config.get("d_in")) != matrix.shape:
            raise ValueError(f"weights of shape {matrix.shape} do not match d_in {config.get('d_in')}, "
                             f"d_out {config.get('d_out')}")
        return cls(**params)._set(mean, matrix)


def _check_dout(dout: int | None, d_in: int, method: str) -> int:
    if dout is None:
        return d_in
    if dout <= 0:
        raise ConfigError(f"--dout must be positive, got {dout}")
    if dout > d_in:
        raise ConfigError(f"--dout {dout} exceeds the input dimension {d_in}; {method} cannot add dimensions")
    return dout


class IdentityTransform(LinearTransform):
    """y = x: codes are computed on the input vectors themselves."""

    name = "identity"
    summary = "y = x (no transform; codes on the raw vectors)"

    def __init__(self) -> None:
        pass

    def get_params(self) -> dict[str, Any]:
        return {}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "IdentityTransform":
        d = xt.shape[1]
        return self._set(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32)


class PCATransform(LinearTransform):
    """Centre on the training mean and project on the ``dout`` leading principal directions.

    The paper's "PCA + lattice" baseline: the spherical codecs then quantise the direction of y.
    """

    name = "pca"
    summary = "centre + project on the dout leading principal components"

    def __init__(self, dout: int | None = None) -> None:
        self.dout = dout

    def get_params(self) -> dict[str, Any]:
        return {"dout": self.dout}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "PCATransform":
        xt = np.asarray(xt, dtype=np.float64)
        n, d = xt.shape
        dout = _check_dout(self.dout, d, "PCA")
        if n < 2:
            raise ConfigError(f"PCA needs at least 2 training vectors, got {n}")
        mean = xt.mean(axis=0)
        cov = np.cov(xt - mean, rowvar=False).reshape(d, d)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1][:dout]
        components = eigvec[:, order].T
        # a deterministic sign per component: the largest-magnitude coordinate is positive
        signs = np.sign(components[np.arange(dout), np.abs(components).argmax(axis=1)])
        components *= np.where(signs == 0, 1, signs)[:, None]
        self.explained_variance_ = eigval[order].astype(np.float32)
        return self._set(mean, components)


class RotationTransform(LinearTransform):
    """A random orthogonal projection to ``dout`` dimensions (no centring), drawn from ``seed``.

    Followed by the sign codec this is classic LSH, as faiss ``IndexLSH(d, dout)`` does it
    (``rotate_data=True``, thresholds at 0).
    """

    name = "rotation"
    summary = "random orthogonal projection (with sign codes: LSH)"

    def __init__(self, dout: int | None = None, seed: int = 0) -> None:
        self.dout = dout
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {"dout": self.dout, "seed": self.seed}

    def fit(self, xt: np.ndarray, *, progress: Any = None) -> "RotationTransform":
        d = xt.shape[1]
        dout = self.dout if self.dout is not None else d
        if dout <= 0:
            raise ConfigError(f"--dout must be positive, got {dout}")
        rng = np.random.default_rng(self.seed)
        # rows orthonormal when dout <= d; when dout > d, stacked independent rotations
        blocks = []
        for _ in range(-(-dout // d)):
            q, r = np.linalg.qr(rng.standard_normal((d, d)))
            q *= np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
            blocks.append(q.T)
        matrix = np.concatenate(blocks)[:dout]
        return self._set(np.zeros(d, np.float32), matrix)
