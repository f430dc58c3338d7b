"""The ``search`` stage: transform the queries with the stored model, scan the codes, keep the top k."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from vecspread.io.artifacts import check_lineage, provenance, write_artifact
from vecspread.io.datasets import Dataset
from vecspread.models import open_codes
from vecspread.progress import Progress, as_progress
from vecspread.runtime import available_cores
from vecspread.searcher import Searcher, latency_percentiles
from vecspread.stages.groundtruth import check_k


def search_codes(
    codes: str, dataset: str, output: str, k: int = 100, *, block_size: int | None = None,
    query_batch: int | None = None, memory_mb: float | None = None, threads: int | None = None,
    options: dict[str, Any] | None = None, cluster: str | None = None, shard_rows: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Search the dataset's queries (``test``) in the codes; write a results artifact.

    Results: ``neighbors`` (nq, k) int64 and ``distances`` (nq, k) float32 (the scanner's own distance:
    Hamming for sign codes, squared distance to the lattice point for lattice codes...), best first.
    ``options``: the scanner options the user set (``--tables`` and its kin choose the hash-table
    scanner; see ``vecspread.scanners``). The codes are loaded once (:class:`vecspread.searcher.Searcher`)
    and the queries answered ``query_batch`` at a time (default: all at once); each batch's latency is
    measured (transform + scan) and its percentiles recorded with the timings, beside what the scanner
    measured (e.g. the mean number of candidates per query of hash tables).

    ``cluster``: scan row ranges of the codes (a manifest's shards) on a Dask cluster
    (``vecspread.cluster``): the queries are transformed here, once, and the shards' top-k merged;
    the same results. Exhaustive scanners only (hash tables index the codes in one process).
    """
    progress = as_progress(progress)
    art, transform, codec = open_codes(codes)
    with art, Dataset(dataset) as ds:
        check_lineage(art, "dataset", ds.art, "codes were encoded from")
        n = art.member("codes").shape[0]
        check_k(k, n)
        xq = ds.read("test")
        memory = None if memory_mb is None else int(memory_mb * 2**20)
        if cluster is not None:
            return _search_sharded(cluster, art, transform, codec, ds, xq, output, k, block_size=block_size,
                                   query_batch=query_batch, memory=memory, options=options or {},
                                   shard_rows=shard_rows, threads=threads, progress=progress)
        searcher = Searcher(transform, codec, art, options=options, memory_bytes=memory, block_size=block_size,
                            progress=progress)
        nq = len(xq)
        batch = min(query_batch or nq, nq) or 1
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        stats: dict[str, float] = {}
        latencies: list[float] = []
        t_transform = t_scan = 0.0
        progress.start(nq, f"search k={k} ({searcher.scanner.name}, {batch} queries per batch)")
        for qstart in range(0, nq, batch):
            sl = slice(qstart, qstart + batch)
            t0 = time.perf_counter()
            yq = transform.apply_query(xq[sl])
            t1 = time.perf_counter()
            result = searcher.search_transformed(yq, k)
            t2 = time.perf_counter()
            D[sl], I[sl] = result.D, result.I
            for key, value in result.stats.items():  # means weighted by the batch's queries, times summed
                if key.startswith("mean_") or key.endswith("_seconds"):
                    value = stats.get(key, 0.0) + value * (len(yq) if key.startswith("mean_") else 1)
                stats[key] = value
            t_transform, t_scan = t_transform + t1 - t0, t_scan + t2 - t1
            latencies.append(t2 - t0)
            progress.advance(len(yq))
        progress.finish()
        stats = {key: v / max(nq, 1) if key.startswith("mean_") else v for key, v in stats.items()}
        total = t_transform + t_scan
        timing = {"transform_seconds": t_transform, "scan_seconds": t_scan, "search_seconds": total,
                  "load_seconds": searcher.load_seconds, "ms_per_query": 1000 * total / max(nq, 1),
                  "queries_per_second": nq / max(total, 1e-12), "query_batch": batch,
                  **latency_percentiles(latencies), "resident_bytes": searcher.resident_bytes,
                  "threads": threads or available_cores(), **stats}
        params = {"k": k, "codec": codec.name, "n": n, "scanner": searcher.scanner.name, "scan_mode": searcher.mode}
        if searcher.scanner.params.names:
            params[searcher.scanner.name] = searcher.scanner.get_params()
        searcher.close()
        return _write(output, art, ds, params, timing, I, D)


def _write(output: str, art: Any, ds: Dataset, params: dict, timing: dict, I: np.ndarray, D: np.ndarray) -> dict:
    attrs = {key: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for key, v in timing.items()}
    with write_artifact(
        output, "results", params=params,
        inputs=[provenance(art, "codes"), provenance(ds.art, "dataset")], attrs=attrs, expected_bytes=I.nbytes + D.nbytes,
    ) as f:
        f.create_dataset("neighbors", data=I)
        f.create_dataset("distances", data=D)
    return {"nq": len(I), "n": params["n"], "k": params["k"], "scan_mode": params["scan_mode"],
            **{key: round(v, 6) if isinstance(v, float) else v for key, v in timing.items()}}


def _search_sharded(cluster: str, art: Any, transform: Any, codec: Any, ds: Dataset, xq: np.ndarray, output: str,
                    k: int, *, block_size: int | None, query_batch: int | None, memory: int | None,
                    options: dict[str, Any], shard_rows: int | None, threads: int | None,
                    progress: Progress) -> dict:
    """``search`` on a Dask cluster: the queries transformed here (``query_batch`` at a time, as one process
    does), the shards scanned by the workers, their top-k merged by (distance, id)."""
    from vecspread.cluster import sharded
    from vecspread.errors import ConfigError
    from vecspread.scanners import choose
    from vecspread.scanners.base import ExhaustiveScanner

    scanner = choose(codec, options)
    if not isinstance(scanner, ExhaustiveScanner):
        flag = next(iter(scanner.params)).flag if len(scanner.params) else scanner.name
        raise ConfigError(f"--cluster scans the codes exhaustively; the {scanner.name} scanner ({flag} ...) indexes "
                          f"them in one process: drop --cluster or {flag} and its options")
    nq = len(xq)
    batch = min(query_batch or nq, nq) or 1
    t0 = time.perf_counter()
    yq = np.vstack([transform.apply_query(xq[s : s + batch]) for s in range(0, nq, batch)]) if nq else \
        transform.apply_query(xq)
    t_transform = time.perf_counter() - t0
    D, I, t_scan, ran = sharded.search(cluster, art, np.ascontiguousarray(yq, np.float32), k, options=options,
                                       block_size=block_size, memory_bytes=memory, shard_rows=shard_rows,
                                       threads=threads, progress=progress)
    total = t_transform + t_scan
    timing = {"transform_seconds": t_transform, "scan_seconds": t_scan, "search_seconds": total,
              "ms_per_query": 1000 * total / max(nq, 1), "queries_per_second": nq / max(total, 1e-12),
              "query_batch": batch, "cluster": ran}
    params = {"k": k, "codec": codec.name, "n": int(art.member("codes").shape[0]), "scanner": scanner.name,
              "scan_mode": "cluster"}
    if scanner.params.names:
        params[scanner.name] = scanner.get_params()
    return _write(output, art, ds, params, timing, I, D)
