"""The ``search`` stage: transform the queries with the stored model, scan the codes, keep the top k."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, check_lineage, provenance, write_artifact
from vecspread.io.datasets import Dataset
from vecspread.models import open_codes
from vecspread.progress import Progress, as_progress
from vecspread.runtime import available_cores
from vecspread.scanners import choose
from vecspread.scanners.base import code_blocks
from vecspread.stages.groundtruth import check_k


def search_codes(
    codes: str, dataset: str, output: str, k: int = 100, *, block_size: int = DEFAULT_BLOCK_SIZE,
    threads: int | None = None, options: dict[str, Any] | None = None, progress: Progress | None = None,
) -> dict:
    """Search the dataset's queries (``test``) in the codes; write a results artifact.

    Results: ``neighbors`` (nq, k) int64 and ``distances`` (nq, k) float32 (the scanner's own distance:
    Hamming for sign codes, squared distance to the lattice point for lattice codes...), best first.
    ``options``: the scanner options the user set (``--tables`` and its kin choose the hash-table
    scanner; see ``vecspread.scanners``). What the scanner measured (e.g. the mean number of candidates
    per query of hash tables) is recorded with the timings.
    """
    progress = as_progress(progress)
    options = options or {}
    art, transform, codec = open_codes(codes)
    with art, Dataset(dataset) as ds:
        check_lineage(art, "dataset", ds.art, "codes were encoded from")
        scanner = choose(codec, options)
        n = art.member("codes").shape[0]
        check_k(k, n)
        xq = ds.read("test")
        t0 = time.perf_counter()
        yq = transform.apply_query(xq)
        t_transform = time.perf_counter() - t0
        nq = len(yq)
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        stats: dict[str, float] = {}
        qb = scanner.query_block or nq
        progress.start(n * -(-nq // qb), f"search k={k} ({scanner.name})")
        t1 = time.perf_counter()
        for qstart in range(0, nq, qb):
            sl = slice(qstart, qstart + qb)
            result = scanner.search(yq[sl], code_blocks(art, block_size, progress), k)
            D[sl], I[sl] = result.D, result.I
            stats = result.stats
        progress.finish()
        t_scan = time.perf_counter() - t1
        total = t_transform + t_scan
        timing = {"transform_seconds": t_transform, "scan_seconds": t_scan, "search_seconds": total,
                  "ms_per_query": 1000 * total / nq, "queries_per_second": nq / max(total, 1e-12),
                  "threads": threads or available_cores(), **stats}
        params = {"k": k, "codec": codec.name, "n": n, "scanner": scanner.name}
        if scanner.params.names:
            params[scanner.name] = scanner.get_params()
        with write_artifact(
            output, "results", params=params,
            inputs=[provenance(art, "codes"), provenance(ds.art, "dataset")], attrs=timing, expected_bytes=I.nbytes + D.nbytes,
        ) as f:
            f.create_dataset("neighbors", data=I)
            f.create_dataset("distances", data=D)
    return {"nq": nq, "n": n, "k": k, **{key: round(v, 6) for key, v in timing.items()}}
