"""The ``search`` stage: transform the queries with the stored model, scan the codes, keep the top k."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from vecspread.artifacts import DEFAULT_BLOCK_SIZE, Dataset, check_lineage, provenance, write_artifact
from vecspread.encoding import open_codes
from vecspread.errors import ConfigError
from vecspread.groundtruth import check_k
from vecspread.progress import LogProgress, Progress
from vecspread.runtime import available_cores

QUERY_BLOCK = 65536


@dataclass
class TableLookup:
    """Hash-table lookup instead of a full scan (binary codes): L tables keyed by K code bits each,
    ``probes`` extra buckets per table in increasing Hamming distance of the key."""

    ntables: int
    bits_per_table: int
    probes: int = 0
    layout: str = "random"
    seed: int = 0


def search_codes(
    codes: str, dataset: str, output: str, k: int = 100, *, block_size: int = DEFAULT_BLOCK_SIZE,
    threads: int | None = None, tables: TableLookup | None = None, progress: Progress | None = None,
) -> dict:
    """Search the dataset's queries (``test``) in the codes; write a results artifact.

    Results: ``neighbors`` (nq, k) int64 and ``distances`` (nq, k) float32 (the codec's own distance:
    Hamming for sign codes, squared distance to the lattice point for lattice codes), best first.
    With ``tables``, only the candidates found by hash-table lookup are ranked (sign codes only);
    a query with fewer than k candidates gets id -1 in the remaining slots, and the mean number of
    candidates per query is recorded.
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
        extra: dict[str, float] = {}
        if tables is not None:
            t1 = time.perf_counter()
            D, I, extra = _table_search(art.file["codes"], codec, yq, k, tables, block_size, progress)
        else:
            progress.start(n * -(-nq // QUERY_BLOCK), f"search k={k}")
            t1 = time.perf_counter()
            for qstart in range(0, nq, QUERY_BLOCK):
                sl = slice(qstart, qstart + QUERY_BLOCK)
                D[sl], I[sl] = codec.search(yq[sl], _code_blocks(art.file["codes"], block_size, progress), k)
            progress.finish()
        t_scan = time.perf_counter() - t1
        total = t_transform + t_scan
        timing = {"transform_seconds": t_transform, "scan_seconds": t_scan, "search_seconds": total,
                  "ms_per_query": 1000 * total / nq, "queries_per_second": nq / max(total, 1e-12),
                  "threads": threads or available_cores(), **extra}
        params = {"k": k, "codec": codec.name, "n": n}
        if tables is not None:
            params["tables"] = asdict(tables)
        with write_artifact(
            output, "results", params=params,
            inputs=[provenance(art, "codes"), provenance(ds.art, "dataset")], attrs=timing,
        ) as f:
            f.create_dataset("neighbors", data=I)
            f.create_dataset("distances", data=D)
    return {"nq": nq, "n": n, "k": k, **{key: round(v, 6) for key, v in timing.items()}}


def _table_search(codes, codec, yq: np.ndarray, k: int, tables: TableLookup, block_size: int,
                  progress: Progress) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Build the tables over the codes (held in memory), then rank each query's candidates."""
    from vecspread.hashtables import HashTables

    if codec.name != "sign":
        raise ConfigError(f"--tables needs binary sign codes (Hamming), not {codec.name} codes")
    if tables.bits_per_table > codec.bits:
        raise ConfigError(f"--bits-per-table {tables.bits_per_table} exceeds the {codec.bits} bits of each code")
    progress.start(codes.shape[0], "build tables")
    index = HashTables(tables.bits_per_table, tables.ntables, layout=tables.layout, seed=tables.seed)
    t0 = time.perf_counter()
    index.build(_code_blocks(codes, block_size, progress))
    build_seconds = time.perf_counter() - t0
    progress.finish()
    D, I, ncand = index.search(codec.encode(yq), k, tables.probes)
    return D, I, {"mean_candidates": float(ncand.mean()), "table_build_seconds": build_seconds}


def _code_blocks(codes, block_size: int, progress: Progress) -> Iterator[np.ndarray]:
    for start in range(0, codes.shape[0], block_size):
        block = codes[start : start + block_size]
        yield block
        progress.advance(len(block))
