"""The scanner interface and the one scan loop.

A scanner compares (nq, d) float32 transformed, unquantized queries with stored codes and keeps the k
best of each query: ``search(yq, code_blocks, k)`` returns D (nq, k) float32 (the scanner's distance,
smaller is better) and I (nq, k) int64 database ids, best first, ties in increasing id order. When
fewer than k codes exist, the missing slots hold id -1 and distance +inf (faiss's convention).

Exhaustive scanners only say how to compare the queries with one block of codes
(:meth:`ExhaustiveScanner.block_topk`); :func:`scan_blocks` walks the blocks and keeps the running
top k. Memory is bounded by the block size, not by the number of codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

import numpy as np

from vecspread.knn import merge_topk
from vecspread.params import Configurable

BlockTopK = Callable[[np.ndarray, int], "tuple[np.ndarray, np.ndarray]"]


@dataclass
class ScanResult:
    """D (nq, k) float32, I (nq, k) int64 and what the scanner measured (e.g. candidates per query)."""

    D: np.ndarray
    I: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)


class Scanner(Configurable):
    """Searches the codes of one codec; subclasses set ``name``, ``families`` and implement ``search``."""

    kind: ClassVar[str] = "scanner"
    #: the code families (``Codec.family``) this scanner reads
    families: ClassVar[tuple[str, ...]] = ()
    #: queries given to one ``search`` call at most (None: all of them, e.g. to build tables once)
    query_block: ClassVar[int | None] = None

    def __init__(self, codec: Any, **params: Any) -> None:
        self.codec = codec
        super().__init__(**params)
        if codec.family not in self.families:
            from vecspread.errors import ConfigError

            raise ConfigError(f"the {self.name} scanner reads {' or '.join(self.families)} codes, "
                              f"not {codec.name} codes ({codec.family})")

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> ScanResult:
        """Top-k of (nq, d) float32 queries over an iterable of (bs, code_size) uint8 blocks."""
        raise NotImplementedError


class ExhaustiveScanner(Scanner):
    """Compares every query with every code, one block at a time."""

    query_block = 65536

    def prepare(self, yq: np.ndarray) -> Any:
        """What the block comparisons need of the queries (their codes, unit rows, look-up tables...)."""
        raise NotImplementedError

    def block_topk(self, queries: Any, block: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
        """The kb best codes of one (bs, code_size) uint8 block for every query: D (nq, kb) float32 and
        block-local ids (nq, kb) int64, best first (-1 for a missing result)."""
        raise NotImplementedError

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> ScanResult:
        queries = self.prepare(yq)
        D, I = scan_blocks(lambda block, kb: self.block_topk(queries, block, kb), len(yq), code_blocks, k)
        return ScanResult(D, I)


def scan_blocks(block_topk: BlockTopK, nq: int, code_blocks: Iterable[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The scan loop: ``block_topk(block, kb)`` on each (bs, code_size) uint8 block, merged by (distance, id).

    Returns D (nq, k) float32 and I (nq, k) int64, ascending, ids counted across blocks; slots beyond
    the number of codes hold id -1 and distance +inf.
    """
    best_D = np.full((nq, 0), np.inf, np.float32)
    best_I = np.zeros((nq, 0), np.int64)
    start = 0
    for block in code_blocks:
        block = np.ascontiguousarray(block, dtype=np.uint8)
        if block.shape[0] == 0:
            continue
        if nq:
            D, I = block_topk(block, min(k, block.shape[0]))
            D = np.where(I >= 0, D, np.inf).astype(np.float32)
            best_D, best_I = merge_topk(best_D, best_I, D, np.where(I >= 0, I + start, -1), k)
        start += block.shape[0]
    if best_D.shape[1] < k:
        pad = k - best_D.shape[1]
        best_D = np.hstack([best_D, np.full((nq, pad), np.inf, np.float32)])
        best_I = np.hstack([best_I, np.full((nq, pad), -1, np.int64)])
    return best_D, best_I


def code_blocks(codes: Any, block_size: int, progress: Any = None) -> Iterator[np.ndarray]:
    """(bs, code_size) uint8 blocks of a codes artifact (its ``/codes``, verified against the recorded
    fingerprint as it is read) or of an (n, code_size) array, advancing ``progress``."""
    blocks = codes.blocks("codes", block_size) if hasattr(codes, "blocks") else (
        (s, codes[s : s + block_size]) for s in range(0, codes.shape[0], block_size))
    for _, block in blocks:
        block = np.asarray(block)
        yield block
        if progress is not None:
            progress.advance(len(block))
