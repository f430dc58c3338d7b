"""The ``import`` stage: vector files -> a dataset artifact (ann-benchmarks layout + ``learn``)."""

from __future__ import annotations

import os
from typing import Iterator

import h5py
import numpy as np

from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, DISTANCES, write_artifact
from vecspread.distances import paired
from vecspread.errors import ConfigError, InputError
from vecspread.io.datasets import max_abs_value
from vecspread.io.formats import VectorFile, open_vectors, read_labels
from vecspread.progress import Progress, as_progress


def import_dataset(
    base: str,
    output: str,
    *,
    queries: str,
    learn: str | None = None,
    groundtruth: str | None = None,
    distance: str = "euclidean",
    fmt: str | None = None,
    groundtruth_fmt: str | None = None,
    labels: dict[str, str] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress | None = None,
) -> dict:
    """Copy base (-> ``train``), queries (-> ``test``), optional learn and ground truth into ``output``.

    uint8 vectors stay uint8; other numeric types are stored as float32 (values checked finite).
    A ground-truth file (ivecs/ibin/npy of ids, one row per query; the big-ann-benchmarks layout of ids
    followed by distances is read too) becomes ``neighbors`` (int64) and ``distances`` (float32), the
    distances recomputed exactly from the vectors (so ties can be judged). ``fmt`` is the format of the
    vector files (overriding their extensions), ``groundtruth_fmt`` that of the ground truth.
    ``labels``: split ("train", "test", "learn") -> a file of one class per vector (npy or ivecs,
    :func:`vecspread.io.formats.read_labels`), stored as ``<split>_labels`` (n,) int64.
    Returns a summary dict (sizes, dimension).
    """
    progress = as_progress(progress)
    if distance not in DISTANCES:
        raise ConfigError(f"--distance {distance!r} is not one of {', '.join(DISTANCES)}")
    xb = open_vectors(base, fmt)
    xq = open_vectors(queries, fmt)
    xl = open_vectors(learn, fmt) if learn else None
    for name, vf in (("queries", xq), ("learn", xl)):
        if vf is not None and vf.d != xb.d:
            raise InputError(f"{name} {vf.path}: dimension {vf.d} differs from the base's {xb.d}")
    try:
        gt = open_vectors(groundtruth, groundtruth_fmt) if groundtruth else None
    except InputError as e:  # its hints name the ground truth's own flag
        raise InputError(str(e).replace("--format", "--groundtruth-format")) from None
    if gt is not None:
        _check_groundtruth_ids(gt, xq.n, xb.n)
    sizes = {"train": xb.n, "test": xq.n, "learn": xl.n if xl is not None else None}
    label_sets = {}
    for split, path in (labels or {}).items():
        if sizes.get(split) is None:
            raise ConfigError(f"--{split}-labels: the dataset has no {split} set" + (" (give --learn)" if split == "learn" else ""))
        y = read_labels(path)
        if len(y) != sizes[split]:
            raise InputError(f"{split} labels {path}: {len(y)} labels for the {sizes[split]} {split} vectors; give one "
                             "per vector, in the same order")
        label_sets[split] = y

    params = {"distance": distance, "files": {k: os.path.abspath(v) for k, v in
              (("base", base), ("queries", queries), ("learn", learn), ("groundtruth", groundtruth),
               *((f"{split}_labels", p) for split, p in (labels or {}).items())) if v}}
    size = sum(vf.n * vf.d * _stored_dtype(vf).itemsize for vf in (xb, xq, xl) if vf is not None)
    size += gt.n * gt.d * 12 if gt is not None else 0
    size += sum(y.nbytes for y in label_sets.values())
    with write_artifact(output, "dataset", params=params, attrs={"distance": distance}, expected_bytes=size) as f:
        for name, vf in (("train", xb), ("test", xq), ("learn", xl)):
            if vf is not None:
                _copy_vectors(f, name, vf, block_size, progress)
        for split, y in label_sets.items():
            f.create_dataset(f"{split}_labels", data=y)
        f.attrs["dimension"] = xb.d
        f.attrs["point_type"] = "float"
        f.attrs["type"] = "dense"
        if gt is not None:
            progress.log(f"computing true distances of the {gt.n}x{gt.d} ground-truth neighbours")
            ids = gt.read_all().astype(np.int64)
            D = _true_distances(f["train"], f["test"], ids, distance)
            # keep the file's order but make sure it is ascending in our own distances
            order = np.argsort(D, axis=1, kind="stable")
            f.create_dataset("neighbors", data=np.take_along_axis(ids, order, 1))
            f.create_dataset("distances", data=np.take_along_axis(D, order, 1))
    return {"n": xb.n, "nq": xq.n, "nlearn": xl.n if xl else 0, "d": xb.d,
            "dtype": str(_stored_dtype(xb)), "groundtruth_k": gt.d if gt else 0,
            **({"classes": {split: int(y.max()) + 1 for split, y in label_sets.items()}} if label_sets else {})}


def _stored_dtype(vf: VectorFile) -> np.dtype:
    return np.dtype(np.uint8) if vf.dtype == np.uint8 else np.dtype(np.float32)


def _copy_vectors(f: h5py.File, name: str, vf: VectorFile, block_size: int, progress: Progress) -> None:
    dtype = _stored_dtype(vf)
    chunk_rows = max(1, min(vf.n, (1 << 20) // max(1, vf.d * dtype.itemsize)))
    ds = f.create_dataset(name, shape=(vf.n, vf.d), dtype=dtype, chunks=(chunk_rows, vf.d))
    limit = max_abs_value(vf.d)
    progress.start(vf.n, f"import {name}")
    for start, block in vf.blocks(block_size):
        if dtype != np.uint8:
            block = block.astype(np.float32)
            bad = ~np.isfinite(block).all(axis=1)
            if bad.any():
                raise InputError(
                    f"{vf.path}: row {start + int(np.flatnonzero(bad)[0])} contains NaN or inf; "
                    "clean the vectors before import"
                )
            big = (np.abs(block) > limit).any(axis=1)
            if big.any():
                row = start + int(np.flatnonzero(big)[0])
                raise InputError(
                    f"{vf.path}: row {row} holds a value of magnitude {np.abs(block[row - start]).max():.3g}: beyond "
                    f"{limit:.3g}, squared distances in {vf.d} dimensions overflow float32; scale the vectors down"
                )
        ds[start : start + len(block)] = block
        progress.advance(len(block))
    progress.finish()


def _check_groundtruth_ids(gt: VectorFile, nq: int, n: int) -> None:
    if not np.issubdtype(gt.dtype, np.integer):
        raise InputError(f"groundtruth {gt.path}: holds {gt.dtype} values, expected integer ids (.ivecs/.ibin)")
    if gt.n != nq:
        raise InputError(f"groundtruth {gt.path}: {gt.n} rows for {nq} queries; it must have one row per query")
    ids = gt.read_all()
    if ids.min() < 0 or ids.max() >= n:
        raise InputError(
            f"groundtruth {gt.path}: ids range {ids.min()}..{ids.max()} but the base has {n} vectors "
            "(is it the ground truth of another base?)"
        )


def _true_distances(xb: h5py.Dataset, xq: h5py.Dataset, ids: np.ndarray, distance: str) -> np.ndarray:
    """(nq, k) float32 distances between each query and its listed neighbours, in float64 arithmetic."""
    out = np.empty(ids.shape, np.float32)
    for start, qids in _row_blocks(ids, 1024):
        q = xq[start : start + len(qids)]
        uniq, inv = np.unique(qids, return_inverse=True)
        rows = xb[uniq][inv.reshape(-1)]  # (bq * k, d)
        out[start : start + len(qids)] = paired(np.repeat(q, qids.shape[1], axis=0), rows, distance).reshape(qids.shape)
    return out


def _row_blocks(a: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, a.shape[0], size):
        yield start, a[start : start + size]
