"""The ``gt`` stage: exact k-NN of the dataset's queries over its database, block by block."""

from __future__ import annotations

import json
import time

import numpy as np

from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, Artifact, open_artifact, provenance, write_artifact
from vecspread.io.datasets import Dataset
from vecspread.errors import ConfigError, InputError
from vecspread.knn import knn_blocks
from vecspread.progress import Progress, as_progress

QUERY_BLOCK = 16384


def compute_groundtruth(
    dataset: str, output: str, k: int = 100, *, block_size: int = DEFAULT_BLOCK_SIZE,
    cluster: str | None = None, shard_rows: int | None = None, threads: int | None = None,
    model: str | None = None, progress: Progress | None = None,
) -> dict:
    """Write a groundtruth artifact: ``neighbors`` (nq, k) int64 and ``distances`` (nq, k) float32.

    Memory is bounded by ``block_size`` database rows and ``QUERY_BLOCK`` queries, not by N.
    ``cluster``: split the database in row ranges over a Dask cluster (``vecspread.cluster``; same result),
    ``threads`` per task (default: see :func:`vecspread.cluster.connect`). ``model``: a softmax model;
    the ground truth is then that of its class search (:func:`_class_groundtruth`).
    """
    progress = as_progress(progress)
    if model is not None:
        if cluster is not None:
            raise ConfigError("--model: the class search's ground truth is computed in one process; drop --cluster")
        return _class_groundtruth(dataset, output, k, model, progress)
    with Dataset(dataset) as ds:
        n, nq = ds.size("train"), ds.size("test")
        check_k(k, n)
        t0 = time.perf_counter()
        if cluster is not None:
            from vecspread.cluster import sharded

            D, I, ran = sharded.knn(cluster, ds, k, block_size=block_size, query_block=QUERY_BLOCK,
                                    shard_rows=shard_rows, threads=threads, progress=progress)
            return _write(output, ds, k, I, D, time.perf_counter() - t0, ran)
        I = np.empty((nq, k), np.int64)
        D = np.empty((nq, k), np.float32)
        n_qblocks = -(-nq // QUERY_BLOCK)
        progress.start(n * n_qblocks, f"gt k={k}")
        xq_all = ds.read("test")
        for qstart in range(0, nq, QUERY_BLOCK):
            xq = xq_all[qstart : qstart + QUERY_BLOCK]

            def blocks():
                for start, xb in ds.blocks("train", block_size):
                    yield start, xb
                    progress.advance(len(xb))

            Dq, Iq = knn_blocks(xq, blocks(), k, ds.distance)
            D[qstart : qstart + len(xq)], I[qstart : qstart + len(xq)] = Dq, Iq
        progress.finish()
        return _write(output, ds, k, I, D, time.perf_counter() - t0)


def _class_groundtruth(dataset: str, output: str, k: int, model: str, progress: Progress) -> dict:
    """The exact answers of a softmax model's class search: for each query's representation, the k class
    vectors of largest inner product (the first is the exact softmax's class): ``neighbors`` (nq, k)
    class ids, ``distances`` minus the inner products, and ``labels`` (nq,) int64, the test labels, when
    the dataset has them (``eval`` then reports the accuracy and relative accuracy of the class search)."""
    from vecspread.models import open_model
    from vecspread.stages.encode import class_vectors

    model_art, transform = open_model(model)
    with model_art, Dataset(dataset) as ds:
        classes = class_vectors(transform)
        if classes is None:
            raise ConfigError(f"--model {model}: not a softmax model (no class vectors); gt without --model computes the "
                              "dataset's own nearest neighbours")
        if ds.d != transform.d_in:
            raise InputError(f"model {model} expects {transform.d_in}-dimensional vectors but {dataset} has {ds.d}")
        check_k(k, len(classes))
        t0 = time.perf_counter()
        reps = transform.apply_query(ds.read("test"))
        D, I = knn_blocks(reps, [(0, classes)], k, "dot")
        progress.log(f"class search of {model}: the exact inner-product top {k} of its {len(classes)} class vectors")
        labels = ds.labels("test") if ds.has_labels("test") else None
        return _write(output, ds, k, I, D, time.perf_counter() - t0, n=len(classes), distance="dot",
                      inputs=[provenance(ds.art, "dataset"), provenance(model_art, "model")], labels=labels)


def _write(output: str, ds: Dataset, k: int, I: np.ndarray, D: np.ndarray, seconds: float,
           cluster: dict | None = None, *, n: int | None = None, distance: str | None = None,
           inputs: list | None = None, labels: np.ndarray | None = None) -> dict:
    n = ds.size("train") if n is None else n
    distance = distance or ds.distance
    attrs: dict = {"distance": distance, "seconds": seconds}
    if cluster is not None:
        attrs["cluster"] = json.dumps(cluster, sort_keys=True)
    with write_artifact(
        output, "groundtruth", params={"k": k, "distance": distance, "n": n},
        inputs=inputs or [provenance(ds.art, "dataset")], attrs=attrs, expected_bytes=I.nbytes + D.nbytes + (0 if labels is None else 8 * len(labels)),
    ) as f:
        f.create_dataset("neighbors", data=I)
        f.create_dataset("distances", data=D)
        if labels is not None:
            f.create_dataset("labels", data=np.asarray(labels, np.int64))
    return {"nq": len(I), "n": n, "k": k, "distance": distance, "seconds": round(seconds, 3),
            **({"cluster": cluster} if cluster is not None else {})}


def check_k(k: int, n: int, what: str = "-k") -> None:
    if k <= 0:
        raise ConfigError(f"{what} must be at least 1, got {k}")
    if k > n:
        raise ConfigError(f"{what} {k} exceeds the {n} database vectors; use {what} {n} or less")


def open_groundtruth(path: str) -> tuple[Artifact, str, int | None]:
    """Open a ground truth for eval: a groundtruth artifact, or a dataset carrying neighbors/distances.

    Returns the artifact, the fingerprint of the dataset whose queries it answers, and that dataset's
    size (None when the file does not say: ground truths written before it was recorded).
    """
    art = open_artifact(path, ("groundtruth", "dataset"), role="groundtruth")
    for name in ("neighbors", "distances"):
        if not art.has(name):
            art.close()
            raise InputError(
                f"groundtruth {path}: has no '{name}' (compute one with `vecspread gt DATASET -k 100 -o gt.h5`)"
            )
    if art.kind == "dataset":
        return art, art.fingerprint, art.member("train").shape[0] if art.has("train") else None
    rec = art.input("dataset")
    n = art.params.get("n")
    return art, (rec or {}).get("fingerprint", ""), n if isinstance(n, int) and not isinstance(n, bool) else None
