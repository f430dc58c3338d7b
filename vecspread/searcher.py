"""A long-lived searcher: load a codes file once, answer many query batches.

The codes are read once and kept in their scanner's search-ready form (integer lattice points, a filled
faiss PQ index, the binary codes themselves; for the indexing scanners, their hash tables or trees, built
once) when that form fits the memory budget; otherwise they
are streamed from the file, block by block, at every search, and the searcher says so. ``vecspread
search`` is this object answering the dataset's queries, ``--query-batch`` at a time::

    from vecspread.searcher import Searcher
    with Searcher.open("db.codes.h5") as searcher:     # codes loaded here, once
        D, I = searcher.search(xq, k=10)               # (nq, d) raw queries, as the dataset holds them
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vecspread.progress import Progress, as_progress
from vecspread.scanners import choose
from vecspread.scanners.base import ExhaustiveScanner, IndexScanner, ScanResult, block_rows, code_blocks

#: share of the memory available at start-up that search-ready codes may take by default
MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes of memory available now (Linux MemAvailable; 4 GiB where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


class Searcher:
    """Codes held for searching: ``search(xq, k)`` transforms raw (nq, d) queries with the model's query
    side and scans; ``search_transformed(yq, k)`` takes queries already transformed.

    ``codes``: an open codes artifact (its ``/codes``, verified as read) or an (n, code_size) uint8 array.
    ``memory_bytes``: what the search-ready form may take (default: half the available memory).
    ``block_size``: codes per scan block (default: :data:`vecspread.scanners.base.SCAN_BLOCK_BYTES` of
    codes). ``mode`` is "resident" (loaded once) or "streaming"; ``resident_bytes`` what it holds;
    ``load_seconds`` the time the loading took.
    """

    def __init__(self, transform: Any, codec: Any, codes: Any, *, options: dict[str, Any] | None = None,
                 memory_bytes: int | None = None, block_size: int | None = None,
                 progress: Progress | None = None) -> None:
        self.transform, self.codec = transform, codec
        self.scanner = choose(codec, options or {})
        self.progress = as_progress(progress)
        self._codes = codes
        self._owned: Any = None  # the codes file, when ``open`` opened it
        self.n = int(codes.member("codes").shape[0] if hasattr(codes, "member") else codes.shape[0])
        self.block_size = block_size or block_rows(codec.code_size)
        budget = int(memory_bytes if memory_bytes is not None else MEMORY_SHARE * available_memory())
        per_code = self._per_code_bytes()
        self.mode = "resident" if per_code is not None and self.n * per_code <= budget else "streaming"
        self.resident_bytes = 0
        self._blocks: list[Any] = []
        self._index: Any = None
        t0 = time.perf_counter()
        if isinstance(self.scanner, ExhaustiveScanner):
            self.scanner.warm_up()
            if time.perf_counter() - t0 > 1:
                self.progress.log(f"compiled the {self.scanner.name} scan in {time.perf_counter() - t0:.0f} s "
                                  "(once on this machine: it is cached for later runs)")
        if self.mode == "resident":
            self._load()
        else:
            why = (f"the search-ready form of {self.scanner.name} codes would take more than "
                   f"3x the code bytes" if per_code is None else
                   f"{self.n * per_code / 2**20:.0f} MiB of codes do not fit the memory budget "
                   f"({budget / 2**20:.0f} MiB)")
            self.progress.log(f"streaming the codes from the file at every search: {why}")
        self.load_seconds = time.perf_counter() - t0

    @classmethod
    def open(cls, path: str, **kwargs: Any) -> "Searcher":
        """A searcher over a codes file (its model included); close it, or use it in a ``with``."""
        from vecspread.models import open_codes

        art, transform, codec = open_codes(path)
        try:
            searcher = cls(transform, codec, art, **kwargs)
        except BaseException:
            art.close()
            raise
        searcher._owned = art
        return searcher

    def _per_code_bytes(self) -> int | None:
        if isinstance(self.scanner, ExhaustiveScanner):
            return self.scanner.ready_bytes_per_code()
        return self.codec.code_size  # scanners that index the codes themselves (hash tables)

    def _load(self) -> None:
        self.progress.start(self.n, f"loading codes ({self.scanner.name})")
        for block in code_blocks(self._codes, self.block_size, self.progress):
            block = np.ascontiguousarray(block, dtype=np.uint8)
            if isinstance(self.scanner, ExhaustiveScanner):
                item: Any = self.scanner.ready(block)
                self.resident_bytes += item.nbytes
            else:
                item = block
                self.resident_bytes += block.nbytes
            self._blocks.append(item)
        self.progress.finish()
        if isinstance(self.scanner, IndexScanner):
            t0 = time.perf_counter()
            self._index = self.scanner.build(self._blocks)
            self._blocks = []
            self.resident_bytes = max(self.resident_bytes, self.scanner.index_bytes(self._index))
            self.progress.log(f"built the {self.scanner.name} index over {self.n} codes in "
                              f"{time.perf_counter() - t0:.2f} s")

    def search(self, xq: np.ndarray, k: int) -> ScanResult:
        """(nq, d) raw queries -> top-k: D (nq, k) float32, I (nq, k) int64 (and the scanner's stats)."""
        return self.search_transformed(self.transform.apply_query(xq), k)

    def search_transformed(self, yq: np.ndarray, k: int) -> ScanResult:
        """(nq, d_out) transformed queries -> top-k, ``scanner.query_block`` queries per scan at most."""
        nq = len(yq)
        qb = self.scanner.query_block or max(nq, 1)
        parts = [self._scan(yq[s : s + qb], k) for s in range(0, nq, qb)] or [self._scan(yq[:0], k)]
        return ScanResult(np.vstack([p.D for p in parts]), np.vstack([p.I for p in parts]), parts[-1].stats)

    def _scan(self, yq: np.ndarray, k: int) -> ScanResult:
        exhaustive = isinstance(self.scanner, ExhaustiveScanner)
        if self.mode == "resident":
            return self.scanner.search_ready(yq, self._blocks, k) if exhaustive else \
                self.scanner.search_index(self._index, yq, k)
        return self.scanner.search(yq, code_blocks(self._codes, self.block_size), k)

    def close(self) -> None:
        self._blocks = []
        self._index = None
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> "Searcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Searcher({self.scanner.name}, n={self.n}, {self.mode}"
                + (f", {self.resident_bytes / 2**20:.1f} MiB" if self.mode == "resident" else "") + ")")


def latency_percentiles(seconds: list[float]) -> dict[str, float]:
    """Per-batch latencies (s) -> ``latency_ms_p50`` / ``_p95`` / ``_p99`` (ms, linear interpolation)."""
    if not seconds:
        return {}
    ms = np.asarray(seconds, np.float64) * 1000
    return {f"latency_ms_p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}
