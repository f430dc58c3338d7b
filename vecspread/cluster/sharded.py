"""The sharded forms of ``gt``, ``encode`` and ``search``: plan the shards, run them, merge what comes back.

The stages (``vecspread.stages``) call these when given ``--cluster`` and write their artifacts as
usual; what is computed here is identical to their one-process loops (see :mod:`vecspread.cluster`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from typing import Any

import h5py
import numpy as np

from vecspread.cluster.connect import connect
from vecspread.cluster.plan import shard_ranges
from vecspread.cluster.run import run_shards, summarize
from vecspread.cluster.tasks import EncodeJob, KnnJob, SearchJob, encode_shard, knn_shard, search_shard
from vecspread.io.sharded import ShardRef, ShardedCodes, open_shard, shard_file_name
from vecspread.knn import merge_topk
from vecspread.progress import Progress, as_progress


def _merged(D: np.ndarray | None, I: np.ndarray | None, Ds: np.ndarray, Is: np.ndarray,
            k: int) -> tuple[np.ndarray, np.ndarray]:
    """The running top-k with one more shard's: by (distance, id), so the order shards finish in does not
    matter (ids are unique across shards)."""
    if D is None or I is None:
        D, I = np.full((len(Ds), 0), np.inf, np.float32), np.zeros((len(Ds), 0), np.int64)
    return merge_topk(D, I, Ds, Is, k)


def knn(address: str, ds: Any, k: int, *, block_size: int, query_block: int, shard_rows: int | None = None,
        threads: int | None = None, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Exact k-NN of the dataset's queries over its database on the cluster: D (nq, k) float32, I (nq, k)
    int64, and what the run reports (:func:`vecspread.cluster.run.summarize`)."""
    progress = as_progress(progress)
    with connect(address, progress, threads) as cluster:
        shards = shard_ranges(ds.size("train"), cluster.workers, block_size, shard_rows)
        job = KnnJob(os.path.abspath(ds.path), ds.fingerprint, k, block_size, query_block, cluster.threads_per_task)
        D = I = None
        stats = []
        for _, (Ds, Is, st) in run_shards(cluster, knn_shard, shards, progress=progress, label=f"gt k={k}", shared=job):
            D, I = _merged(D, I, Ds, Is, k)
            stats.append(st)
        assert D is not None and I is not None
        return D, I, summarize(cluster, shards, stats)


def model_groups_fingerprint(write_groups: Any) -> str:
    """``components_fingerprint`` of the model groups ``write_groups(f)`` writes (and records), written in
    memory: the value the output will record, known before any shard is written (each shard records it)."""
    with h5py.File(f"groups-{uuid.uuid4().hex}.h5", "w", driver="core", backing_store=False) as mem:
        write_groups(mem)
        return str(mem.attrs["components_fingerprint"])


def encode(address: str, job: EncodeJob, output: str, *, shard_files: bool, shard_rows: int | None = None,
           threads: int | None = None, progress: Progress | None = None) -> tuple[list[ShardRef], str | None, dict[str, Any]]:
    """Encode the database on the cluster into shard files; returns the shards, the temporary directory
    holding them (None when ``shard_files``: they are beside ``output``, named after it, to stay) and what
    the run reports. The caller writes the manifest or copies the shards into one file, then removes
    the temporary directory (:func:`remove_parts`)."""
    progress = as_progress(progress)
    out_dir = os.path.dirname(os.path.abspath(output))
    parts = None if shard_files else tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.", suffix=".shards",
                                                      dir=out_dir)
    try:
        with connect(address, progress, threads) as cluster:
            shards = shard_ranges(job.n, cluster.workers, job.block_size, shard_rows)
            job = EncodeJob(**{**job.__dict__, "threads": cluster.threads_per_task})
            names = [shard_file_name(output, i, len(shards)) for i in range(len(shards))]
            paths = [os.path.join(parts or out_dir, name) for name in names]
            refs: list[ShardRef | None] = [None] * len(shards)
            stats = []
            for i, (fingerprint, st) in run_shards(cluster, encode_shard, shards, progress=progress,
                                                   label=f"encode {job.codec_name}", shared=job,
                                                   per_shard=[(p,) for p in paths]):
                refs[i] = ShardRef(names[i], shards[i][0], shards[i][1], fingerprint)
                stats.append(st)
            return [r for r in refs if r is not None], parts, summarize(cluster, shards, stats)
    except BaseException:
        remove_parts(parts)
        raise


def copy_shards(codes: h5py.Dataset, shards: list[ShardRef], parts: str, code_size: int, components: str,
                output: str, block_size: int, progress: Progress | None = None) -> None:
    """Copy the shard files' codes, each verified as read, into ``codes`` (n, code_size) uint8."""
    progress = as_progress(progress)
    progress.start(sum(r.rows for r in shards), "assembling the codes")
    for ref in shards:
        with open_shard(os.path.join(parts, ref.file), ref, code_size, components, output) as shard:
            for s, block in shard.blocks("codes", block_size):
                codes[ref.start + s : ref.start + s + len(block)] = block
                progress.advance(len(block))
    progress.finish()


def remove_parts(parts: str | None) -> None:
    if parts is not None:
        shutil.rmtree(parts, ignore_errors=True)


def search(address: str, art: Any, yq: np.ndarray, k: int, *, options: dict[str, Any], block_size: int | None,
           memory_bytes: int | None, shard_rows: int | None = None, threads: int | None = None,
           progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    """Top-k of the transformed queries (nq, d_out) float32 over the codes on the cluster: D, I, the
    seconds of the scan (wall time, from submission to the last shard) and what the run reports.
    A manifest's shards are the tasks; a single codes file is split into row ranges."""
    progress = as_progress(progress)
    with connect(address, progress, threads) as cluster:
        if isinstance(art, ShardedCodes):
            shards = [(r.start, r.stop) for r in art.shards]
        else:
            shards = shard_ranges(int(art.member("codes").shape[0]), cluster.workers, 1 << 16, shard_rows)
        given = {key: v for key, v in options.items() if v is not None}
        job = SearchJob(os.path.abspath(art.path), art.fingerprint, k, given, block_size, memory_bytes,
                        cluster.threads_per_task)
        t0 = time.perf_counter()
        D = I = None
        stats = []
        for _, (Ds, Is, st) in run_shards(cluster, search_shard, shards, yq, progress=progress, label=f"search k={k}",
                                          shared=job):
            D, I = _merged(D, I, Ds, Is, k)
            stats.append(st)
        seconds = time.perf_counter() - t0
        assert D is not None and I is not None
        return D, I, seconds, summarize(cluster, shards, stats)
