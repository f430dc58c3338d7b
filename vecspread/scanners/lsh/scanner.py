"""The LSH scanner: FALCONN-style tables over flat codes, built once, multi-probe, exact re-ranking."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vecspread.errors import ConfigError
from vecspread.scanners.base import IndexScanner, ScanResult
from vecspread.scanners.lsh import SPEC
from vecspread.scanners.lsh.index import LSHIndex


class LSHScanner(IndexScanner):
    """``lsh`` hash family, ``lsh_tables`` (L) tables of ``lsh_hashes`` (K) functions; each query probes
    ``lsh_probes`` buckets over all tables (its own bucket in each, then in increasing perturbation
    score) and its candidates are ranked by the flat codec's exact distance (-q.x or squared L2), ties by
    id. Queries with fewer than k candidates get id -1 in the remaining slots. Compiled, one thread."""

    spec = SPEC
    families = ("float",)

    def _check_params(self) -> None:
        if self.lsh_probes is not None and self.lsh_probes < self.lsh_tables:
            raise ConfigError(f"--lsh-probes {self.lsh_probes} is fewer than --lsh-tables {self.lsh_tables}: each "
                              f"table's own bucket is one probe; use --lsh-probes {self.lsh_tables} or more")

    def build(self, code_blocks: Iterable[np.ndarray]) -> LSHIndex:
        blocks = [self.codec.decode(np.ascontiguousarray(b, dtype=np.uint8)) for b in code_blocks]
        if not blocks:
            raise ConfigError("no codes to index")
        return LSHIndex(self.lsh, self.lsh_tables, self.lsh_hashes, self.lsh_seed, self.codec.metric_).build(
            np.concatenate(blocks))

    def index_bytes(self, index: Any) -> int:
        return index.nbytes

    def search_index(self, index: LSHIndex, yq: np.ndarray, k: int) -> ScanResult:
        D, I, ncand = index.search(self.codec.check_queries(yq), k, self.lsh_probes)
        return ScanResult(D, I, {"mean_candidates": float(ncand.mean()) if len(ncand) else 0.0,
                                 "lsh_hashes": float(index.family_.nhashes)})
