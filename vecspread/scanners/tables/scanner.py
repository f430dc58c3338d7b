"""The hash-table scanner: build the tables over the codes (held in memory), then rank each query's candidates."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vecspread.errors import ConfigError
from vecspread.scanners.base import IndexScanner, ScanResult
from vecspread.scanners.tables import SPEC
from vecspread.scanners.tables.hashtables import HashTables


class TablesScanner(IndexScanner):
    """``tables`` (L) hash tables keyed by ``bits_per_table`` (K) code bits; each query probes its own
    bucket plus ``probes`` more per table, and only the candidates are ranked by Hamming distance, ties
    by id. A query with fewer than k candidates gets id -1 in the remaining slots. Probing all 2^K
    buckets returns exactly what the full Hamming scan returns."""

    spec = SPEC
    families = ("binary",)

    def _check_params(self) -> None:
        if self.bits_per_table > self.codec.code_bits:
            raise ConfigError(f"--bits-per-table {self.bits_per_table} exceeds the {self.codec.code_bits} bits of each code")

    def build(self, code_blocks: Iterable[np.ndarray]) -> HashTables:
        return HashTables(self.bits_per_table, self.tables, layout=self.table_layout, seed=self.table_seed).build(code_blocks)

    def index_bytes(self, index: Any) -> int:
        return int(index.codes_.nbytes + sum(a.nbytes for a in (*index.ids_, *index.bucket_keys_, *index.bucket_starts_)))

    def search_index(self, index: HashTables, yq: np.ndarray, k: int) -> ScanResult:
        D, I, ncand = index.search(self.codec.encode(yq), k, self.probes)
        return ScanResult(D, I, {"mean_candidates": float(ncand.mean()) if len(ncand) else 0.0})
