"""Datasets: the ann-benchmarks HDF5 layout plus an optional ``learn`` set, read in float32 blocks."""

from __future__ import annotations

import os
from typing import Any, Iterator

import h5py
import numpy as np

from vecspread.distances import unit_rows
from vecspread.errors import InputError
from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, DISTANCES, Closing, open_artifact
from vecspread.io.safety import check_matrix, text_of


class Dataset(Closing):
    """A dataset artifact (ann-benchmarks layout plus optional ``learn``), read in float32 blocks.

    ``train`` is the database (n, d), ``test`` the queries (nq, d), ``learn`` optional training
    vectors, ``neighbors``/``distances`` optional ground truth, ``<set>_labels`` optional class labels
    (n,) int64 of a set (:meth:`labels`). Stored dtypes may be uint8 or float32.
    Every set is checked before it is used (``vecspread.io.safety``), read in full it is verified
    against its recorded fingerprint, and values are refused when not finite or so large that squared
    distances would overflow float32 (:func:`max_abs_value`).

    The dataset's ``distance`` is honoured here, for every stage: the rows of an ``angular`` dataset are
    returned unit-normalised (zero rows stay zero), so that cosine similarity is what every transform,
    codec and scan sees. A file without a ``distance`` attribute is read as ``euclidean``
    (``distance_assumed`` is then True and the stages say so).
    """

    def __init__(self, path: str | os.PathLike, role: str = "dataset"):
        self.art = open_artifact(path, "dataset", role=role)
        self.path = self.art.path
        self.role = role
        try:
            for name in ("train", "test"):
                if not self.has(name):
                    raise InputError(f"{role} {self.path}: has no '{name}' set (a dataset needs train and test)")
            d = self._check_matrix("train")
            for name in ("test", "learn"):
                if self.has(name) and self._check_matrix(name) != d:
                    raise InputError(f"{role} {self.path}: '{name}' has dimension {self.member(name).shape[1]} but "
                                     f"train has {d}")
            self.distance_assumed = "distance" not in self.art.file.attrs
            distance = self.art.file.attrs.get("distance", "euclidean")
            self.distance = text_of(distance, 40)
            if self.distance not in DISTANCES:
                raise InputError(
                    f"{role} {self.path}: distance '{self.distance}' is not supported (use one of {', '.join(DISTANCES)})"
                )
        except BaseException:
            self.art.close()
            raise
        self.d = d
        self.max_abs = max_abs_value(d)

    def _check_matrix(self, name: str) -> int:
        ds = self.member(name)
        n, d = check_matrix(ds, self.path)
        if n == 0:
            raise InputError(f"{self.path}: '{name}' is empty (0 vectors)")
        if d == 0:
            raise InputError(f"{self.path}: '{name}' has dimension 0")
        return d

    def member(self, name: str) -> h5py.Dataset:
        """The numeric set ``name``, checked (``vecspread.io.safety``)."""
        return self.art.member(name)

    @property
    def fingerprint(self) -> str:
        return self.art.fingerprint

    def has(self, name: str) -> bool:
        return self.art.has(name)

    def size(self, name: str) -> int:
        return int(self.member(name).shape[0])

    def blocks(self, name: str, block_size: int = DEFAULT_BLOCK_SIZE, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, (bs, d) float32) blocks of set ``name``, the whole set verified against its recorded
        fingerprint after the last block; refuses NaN/inf and overflowing values. ``start``/``stop``: rows
        [start, stop) only (one shard; not verified, see :meth:`Artifact.blocks`)."""
        for start, block in self.art.blocks(name, block_size, start, stop):
            yield start, self._as_float(name, start, block)

    def read(self, name: str, limit: int | None = None) -> np.ndarray:
        """The whole set ``name`` (verified) or its first ``limit`` rows, as (n, d) float32."""
        ds = self.member(name)
        if limit is None or limit >= ds.shape[0]:
            return self._as_float(name, 0, self.art.read(name))
        return self._as_float(name, 0, ds[:limit])

    def has_labels(self, name: str) -> bool:
        """Whether set ``name`` ("train", "test", "learn") carries class labels (``<name>_labels``)."""
        return self.has(f"{name}_labels")

    def labels(self, name: str) -> np.ndarray:
        """The class of each vector of set ``name``: (n,) int64, verified, one per row, non-negative."""
        key = f"{name}_labels"
        if not self.has(key):
            raise InputError(f"{self.role} {self.path}: its '{name}' set has no class labels ('{key}'); import them "
                             f"with `vecspread import ... --{name}-labels FILE`")
        ds = self.member(key)
        if ds.ndim != 1 or ds.dtype.kind not in "iu" or ds.shape[0] != self.size(name):
            raise InputError(f"{self.role} {self.path}: '{key}' is {ds.shape} {ds.dtype}, expected ({self.size(name)},) "
                             "integer labels, one per vector")
        y = np.asarray(self.art.read(key), np.int64)
        if len(y) and y.min() < 0:
            raise InputError(f"{self.role} {self.path}: '{key}' holds a negative label at row {int(np.argmin(y))}")
        return y

    def read_rows(self, name: str, ids: np.ndarray, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
        """Rows ``ids`` (any order, repeats allowed) of set ``name`` as (len(ids), d) float32, read in
        sorted runs of at most ``block_size`` distinct rows."""
        uniq, inverse = np.unique(np.asarray(ids, np.int64), return_inverse=True)
        ds = self.member(name)
        if len(uniq) and (uniq[0] < 0 or uniq[-1] >= ds.shape[0]):
            raise InputError(f"{self.path}: row {int(uniq[-1] if uniq[-1] >= ds.shape[0] else uniq[0])} of '{name}' "
                             f"requested, which has {ds.shape[0]} rows")
        parts = [read_sorted(ds, uniq[s : s + block_size]) for s in range(0, len(uniq), block_size)]
        rows = np.concatenate(parts) if parts else np.zeros((0, self.d), np.float32)
        return self._as_float(name, 0, rows)[inverse.ravel()]

    def _as_float(self, name: str, start: int, x: np.ndarray) -> np.ndarray:
        small_ints = x.dtype.kind in "iu" and x.dtype.itemsize <= 2  # uint8 SIFT: nothing to check
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not small_ints and len(x):
            bad = ~np.isfinite(x).all(axis=1)
            if bad.any():
                row = start + int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{self.path}: '{name}' row {row} contains NaN or inf ({int(bad.sum())} such rows in this block); "
                    "clean the vectors before import"
                )
            big = np.abs(x).max(axis=1) > self.max_abs
            if big.any() and self.distance != "angular":  # angular rows are unit-normalised below
                row = start + int(np.flatnonzero(big)[0])
                raise InputError(f"{self.path}: '{name}' row {row} holds values beyond {self.max_abs:.3g}, whose squared "
                                 f"distances overflow float32 in {self.d} dimensions; rescale the vectors")
        if self.distance == "angular":
            x = unit_rows(x)
        return x

    def training_set(self, limit: int | None, seed: int = 0) -> tuple[np.ndarray, str]:
        """Vectors to fit a model on, (n, d) float32, and a note on where they came from.

        Uses ``learn`` when present; otherwise a random sample of ``train`` (and says so).
        """
        name, ids, note = self.training_rows(limit, seed)
        return (self.read(name) if ids is None else self.read_rows(name, ids)), note

    def training_labels(self, limit: int | None, seed: int = 0) -> np.ndarray:
        """The classes (n,) int64 of the vectors :meth:`training_set` gives, in its order (InputError
        when that set has no labels)."""
        name, ids, _ = self.training_rows(limit, seed)
        labels = self.labels(name)
        return labels if ids is None else labels[ids]

    def training_rows(self, limit: int | None, seed: int = 0) -> tuple[str, np.ndarray | None, str]:
        """Which vectors fit a model: the set ("learn", else "train"), its sorted row ids (None: all of
        it; else a seeded sample of ``limit``) and the note saying so."""
        name = "learn" if self.has("learn") else "train"
        n = self.size(name)
        ids = None if limit is None or limit >= n else np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
        if name == "learn":
            return name, ids, f"learn set ({n} vectors)" if ids is None else f"{limit} random vectors of the learn set ({n})"
        return name, ids, (f"no learn set: fitting on the whole database ({n} vectors)" if ids is None else
                           f"no learn set: fitting on {limit} random database vectors of {n}")

    def close(self) -> None:
        self.art.close()


def read_sorted(h5ds: Any, ids: np.ndarray) -> np.ndarray:
    """Rows of an HDF5 dataset at sorted unique ``ids``: one contiguous read when they are dense (h5py's
    point selection is several times slower than a slice), a point selection otherwise."""
    if len(ids) == 0:
        return np.zeros((0,) + h5ds.shape[1:], h5ds.dtype)
    lo, hi = int(ids[0]), int(ids[-1]) + 1
    if hi - lo <= 4 * len(ids):
        return h5ds[lo:hi][ids - lo]
    return h5ds[ids]


def max_abs_value(d: int) -> float:
    """The largest |value| a d-dimensional vector may hold: squared L2 distances (and inner products)
    between two such vectors stay below float32's maximum, 4 d v^2 < 3.4e38, with a factor 4 to spare."""
    return float(np.sqrt(np.finfo(np.float32).max / (16.0 * max(d, 1))))
