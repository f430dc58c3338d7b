"""The ``search`` stage: transform the queries with the stored model, scan the codes, keep the top k."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from vecspread.artifacts import DEFAULT_BLOCK_SIZE, Dataset, check_lineage, provenance, write_artifact
from vecspread.encoding import open_codes
from vecspread.groundtruth import check_k
from vecspread.progress import LogProgress, Progress
from vecspread.runtime import available_cores

QUERY_BLOCK = 65536


def search_codes(
    codes: str, dataset: str, output: str, k: int = 100, *, block_size: int = DEFAULT_BLOCK_SIZE,
    threads: int | None = None, progress: Progress | None = None,
) -> dict:
    """Search the dataset's queries (``test``) in the codes; write a results artifact.

    Results: ``neighbors`` (nq, k) int64 and ``distances`` (nq, k) float32 (the codec's own distance:
    Hamming for sign codes, squared distance to the lattice point for lattice codes), best first.
    """
    progress = progress or LogProgress()
    art, transform, codec = open_codes(codes)
    with art, Dataset(dataset) as ds:
        check_lineage(art, "dataset", ds.art, "codes were encoded from")
        n = art.file["codes"].shape[0]
        check_k(k, n)
        xq = ds.read("test")
        t0 = time.perf_counter()
        yq = transform.apply_query(xq)
        t_transform = time.perf_counter() - t0
        nq = len(yq)
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        progress.start(n * -(-nq // QUERY_BLOCK), f"search k={k}")
        t1 = time.perf_counter()
        for qstart in range(0, nq, QUERY_BLOCK):
            sl = slice(qstart, qstart + QUERY_BLOCK)
            D[sl], I[sl] = codec.search(yq[sl], _code_blocks(art.file["codes"], block_size, progress), k)
        t_scan = time.perf_counter() - t1
        progress.finish()
        total = t_transform + t_scan
        timing = {"transform_seconds": t_transform, "scan_seconds": t_scan, "search_seconds": total,
                  "ms_per_query": 1000 * total / nq, "queries_per_second": nq / max(total, 1e-12),
                  "threads": threads or available_cores()}
        with write_artifact(
            output, "results", params={"k": k, "codec": codec.name, "n": n},
            inputs=[provenance(art, "codes"), provenance(ds.art, "dataset")], attrs=timing,
        ) as f:
            f.create_dataset("neighbors", data=I)
            f.create_dataset("distances", data=D)
    return {"nq": nq, "n": n, "k": k, **{key: round(v, 6) for key, v in timing.items()}}


def _code_blocks(codes, block_size: int, progress: Progress) -> Iterator[np.ndarray]:
    for start in range(0, codes.shape[0], block_size):
        block = codes[start : start + block_size]
        yield block
        progress.advance(len(block))
