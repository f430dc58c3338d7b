"""Closed-form linear transforms: identity, PCA and random orthogonal rotation (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.errors import ConfigError
from vecspread.linalg import random_rotation
from vecspread.transforms.base import Transform
from vecspread.transforms.linear import IDENTITY, PCA, PCA_ROTATION_SEED, ROTATION


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

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        mean, matrix = np.asarray(weights["mean"]), np.asarray(weights["matrix"])
        if matrix.ndim != 2 or mean.shape != (matrix.shape[1],):
            raise ValueError(f"inconsistent weights: mean {mean.shape}, matrix {matrix.shape}")
        if (config.get("d_out"), config.get("d_in")) != matrix.shape:
            raise ValueError(f"weights of shape {matrix.shape} do not match d_in {config.get('d_in')}, "
                             f"d_out {config.get('d_out')}")
        self._set(mean, matrix)


def _check_dout(dout: int | None, d_in: int, method: str) -> int:
    if dout is None:
        return d_in
    if dout > d_in:
        raise ConfigError(f"--dout {dout} exceeds the input dimension {d_in}; {method} cannot add dimensions")
    return dout


class IdentityTransform(LinearTransform):
    """y = x: codes are computed on the input vectors themselves."""

    spec = IDENTITY

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "IdentityTransform":
        d = xt.shape[1]
        return self._set(np.zeros(d, np.float32), np.eye(d, dtype=np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32)


class PCATransform(LinearTransform):
    """Centre on the training mean and project on the ``dout`` leading principal directions.

    The paper's "PCA + lattice" baseline: the spherical codecs then quantise the direction of y. With
    ``rotate``, y is then mixed by a fixed random rotation (matrix_ = R @ components, R (dout, dout)
    orthogonal), so that each block of a product lattice gets an even share of the variance.
    """

    spec = PCA

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "PCATransform":
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
        if self.rotate:
            components = random_rotation(dout, np.random.default_rng(PCA_ROTATION_SEED)) @ components
        return self._set(mean, components)


class RotationTransform(LinearTransform):
    """A random orthogonal projection to ``dout`` dimensions (no centring), drawn from ``seed``.

    Haar-distributed (numpy QR). Followed by the sign codec this is LSH; ``--method lsh`` draws the
    rotation as faiss ``IndexLSH`` does, so that its codes equal faiss's.
    """

    spec = ROTATION

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: Any = None) -> "RotationTransform":
        d = xt.shape[1]
        dout = self.dout if self.dout is not None else d
        rng = np.random.default_rng(self.seed)
        # rows orthonormal when dout <= d; when dout > d, stacked independent rotations
        blocks = []
        for _ in range(-(-dout // d)):
            blocks.append(random_rotation(d, rng).T)
        matrix = np.concatenate(blocks)[:dout]
        return self._set(np.zeros(d, np.float32), matrix)
