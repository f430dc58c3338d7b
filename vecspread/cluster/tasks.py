"""What a worker runs for one shard: open the inputs by path, read its own rows, return something small.

Every task checks that the files it opens are the ones the client planned with (their fingerprints), so
that a file replaced during the run is a LineageError, not a silent mix. Each returns its result with
``stats``: the worker, the task's seconds and the worker process's peak resident memory.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecspread.errors import LineageError


@dataclass(frozen=True)
class ShardStats:
    """Where and how a shard ran: worker address, seconds, the worker process's peak RSS in bytes."""

    worker: str
    seconds: float
    peak_rss: int


def _start(threads: int | None) -> float:
    """Give this task its threads (faiss, torch, numba); None: the worker's cores over its task slots."""
    from vecspread.runtime import available_cores, set_threads

    if threads is None:
        try:
            from distributed import get_worker

            threads = max(1, available_cores() // max(1, get_worker().state.nthreads))
        except (ImportError, ValueError):
            threads = available_cores()
    set_threads(threads)
    return time.perf_counter()


def _stats(t0: float) -> ShardStats:
    try:
        from distributed import get_worker

        where = get_worker().address
    except (ImportError, ValueError):
        where = f"{socket.gethostname()}:{os.getpid()}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return ShardStats(where, time.perf_counter() - t0, int(peak))


def _same(art_fingerprint: str, expected: str, path: str, what: str) -> None:
    if art_fingerprint != expected:
        raise LineageError(f"{what} {path} changed while the cluster was working on it (its fingerprint differs from "
                           "the one the run started with); run again")


# ---------------------------------------------------------------------------------------------
# gt


@dataclass(frozen=True)
class KnnJob:
    """The part of a sharded ground truth every shard shares."""

    dataset: str
    fingerprint: str
    k: int
    block_size: int
    query_block: int
    threads: int | None


def knn_shard(job: KnnJob, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, ShardStats]:
    """Exact top-k of all the queries over database rows [start, stop): D (nq, k) float32, I (nq, k)
    int64 (global ids), in ``job.block_size`` blocks from ``start`` as one process reads them."""
    from vecspread.io.datasets import Dataset
    from vecspread.knn import knn_blocks

    t0 = _start(job.threads)
    with Dataset(job.dataset) as ds:
        _same(ds.fingerprint, job.fingerprint, job.dataset, "dataset")
        xq_all = ds.read("test")
        parts = [knn_blocks(xq_all[q : q + job.query_block], ds.blocks("train", job.block_size, start, stop),
                            job.k, ds.distance) for q in range(0, len(xq_all), job.query_block)]
    D = np.vstack([p[0] for p in parts])
    I = np.vstack([p[1] for p in parts])
    return D, I, _stats(t0)


# ---------------------------------------------------------------------------------------------
# encode


@dataclass(frozen=True)
class EncodeJob:
    """The part of a sharded encode every shard shares: the inputs (path and fingerprint), the fitted
    codec's state (small: codebooks, rotations) and the fingerprint of the model groups the output
    carries (``components_fingerprint``), which each shard records."""

    model: str
    model_fingerprint: str
    dataset: str
    dataset_fingerprint: str
    codec_name: str
    codec_config: dict[str, Any]
    codec_arrays: dict[str, np.ndarray]
    components: str
    n: int
    block_size: int
    threads: int | None
    inputs: list[dict[str, Any]]


def encode_shard(job: EncodeJob, start: int, stop: int, path: str) -> tuple[str, ShardStats]:
    """Encode database rows [start, stop) into the shard file ``path`` (written atomically, so a task
    retried after its worker died writes it whole); returns the shard's fingerprint."""
    from vecspread.codecs import REGISTRY as CODECS
    from vecspread.io.artifacts import open_artifact, write_artifact
    from vecspread.io.datasets import Dataset
    from vecspread.models import open_model

    t0 = _start(job.threads)
    codec = CODECS.load(job.codec_name).from_state(job.codec_config, job.codec_arrays)
    model_art, transform = open_model(job.model)
    with model_art, Dataset(job.dataset) as ds:
        _same(model_art.fingerprint, job.model_fingerprint, job.model, "model")
        _same(ds.fingerprint, job.dataset_fingerprint, job.dataset, "dataset")
        rows = stop - start
        with write_artifact(path, "shard", params={"codec": job.codec_name, "start": start, "stop": stop, "n": job.n},
                            inputs=job.inputs, expected_bytes=rows * codec.code_size) as f:
            codes = f.create_dataset("codes", shape=(rows, codec.code_size), dtype=np.uint8,
                                     chunks=(max(1, min(rows, 1 << 16)), codec.code_size))
            codes.attrs["start"], codes.attrs["stop"] = start, stop
            codes.attrs["components"] = job.components
            for s, xb in ds.blocks("train", job.block_size, start, stop):
                codes[s - start : s - start + len(xb)] = codec.encode(transform.apply(xb))
    with open_artifact(path, "shard", role="shard") as shard:
        return shard.fingerprint, _stats(t0)


# ---------------------------------------------------------------------------------------------
# search


@dataclass(frozen=True)
class SearchJob:
    """The part of a sharded search every shard shares: the codes file (or manifest) and how to scan."""

    codes: str
    fingerprint: str
    k: int
    options: dict[str, Any]
    block_size: int | None
    memory_bytes: int | None
    threads: int | None


def search_shard(job: SearchJob, start: int, stop: int, yq: np.ndarray) -> tuple[np.ndarray, np.ndarray, ShardStats]:
    """Top-k of the transformed queries (nq, d_out) float32 over code rows [start, stop): D (nq, k)
    float32, I (nq, k) int64 (global ids), by the codec's scanner (or the one ``options`` choose)."""
    from vecspread.io.artifacts import open_artifact
    from vecspread.io.sharded import RowRange, is_manifest, open_manifest
    from vecspread.models import load_codec
    from vecspread.searcher import Searcher

    t0 = _start(job.threads)
    with open_artifact(job.codes, "codes", role="codes") as art:
        _same(art.fingerprint, job.fingerprint, job.codes, "codes")
        codec = load_codec(art)
        source: Any = open_manifest(art, check_shards=False) if is_manifest(art) else art
        with Searcher(None, codec, RowRange(source, start, stop), options=job.options, memory_bytes=job.memory_bytes,
                      block_size=job.block_size) as searcher:
            result = searcher.search_transformed(yq, job.k)
    I = np.where(result.I >= 0, result.I + start, -1)
    return result.D, I, _stats(t0)
