"""The scanner interface and the one scan loop.

A scanner compares (nq, d) float32 transformed, unquantized queries with stored codes and keeps the k
best of each query: ``search(yq, code_blocks, k)`` returns D (nq, k) float32 (the scanner's distance,
smaller is better) and I (nq, k) int64 database ids, best first, ties in increasing id order. When
fewer than k codes exist, the missing slots hold id -1 and distance +inf (faiss's convention).

Exhaustive scanners say how to turn one block of codes into its search-ready form
(:meth:`ExhaustiveScanner.ready`: the codes themselves, integer lattice points, a filled faiss index)
and how to compare the queries with one such block (:meth:`ExhaustiveScanner.block_topk`);
:func:`scan_blocks` walks the blocks and keeps the running top k. Blocks are sized in bytes
(:data:`SCAN_BLOCK_BYTES`), so that a million 64-bit codes are one call; when the codes are streamed,
memory is bounded by one block, not by the number of codes. A :class:`vecspread.searcher.Searcher`
builds the ready forms once and answers many queries with them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator

import numpy as np

from vecspread.knn import merge_topk
from vecspread.params import Configurable

BlockTopK = Callable[[Any, int], "tuple[np.ndarray, np.ndarray]"]

#: bytes of codes in one scan block (rows: :func:`block_rows`); 64 MiB is 8M codes of 64 bits
SCAN_BLOCK_BYTES = 64 << 20


def block_rows(code_size: int, block_bytes: int = SCAN_BLOCK_BYTES) -> int:
    """Codes per scan block: ``block_bytes`` of (code_size,) codes, at least one."""
    return max(1, int(block_bytes) // max(1, int(code_size)))


@dataclass
class Ready:
    """One block of codes in a scanner's search-ready form: ``n`` codes, ``data`` as the scanner wants
    it, ``nbytes`` the memory it holds."""

    n: int
    data: Any
    nbytes: int


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

            from vecspread.codecs import REGISTRY as CODECS

            fit = [n for n in CODECS.names if CODECS.load(n).family in self.families]
            raise ConfigError(f"the {self.name} scanner reads {' or '.join(self.families)} codes, "
                              f"not {codec.name} codes ({codec.family})"
                              + (f": encode with --codec {' or '.join(fit)}" if fit else ""))

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> ScanResult:
        """Top-k of (nq, d) float32 queries over an iterable of (bs, code_size) uint8 blocks."""
        raise NotImplementedError


class IndexScanner(Scanner):
    """Indexes all the codes once (hash tables, trees), then answers queries from the index.

    ``build(code_blocks)`` returns the index; ``search_index(index, yq, k)`` answers one batch. A
    :class:`vecspread.searcher.Searcher` builds the index once and keeps it; ``search`` builds one for
    a single call (its stats then include ``index_build_seconds``).
    """

    def build(self, code_blocks: Iterable[np.ndarray]) -> Any:
        """The index over an iterable of (bs, code_size) uint8 blocks (ids count across blocks)."""
        raise NotImplementedError

    def search_index(self, index: Any, yq: np.ndarray, k: int) -> ScanResult:
        """Top-k of (nq, d) float32 queries from an index :meth:`build` returned."""
        raise NotImplementedError

    def index_bytes(self, index: Any) -> int:
        """Memory the index holds (bytes)."""
        return 0

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> ScanResult:
        t0 = time.perf_counter()
        index = self.build(code_blocks)
        seconds = time.perf_counter() - t0
        result = self.search_index(index, yq, k)
        result.stats["index_build_seconds"] = seconds
        return result


class ExhaustiveScanner(Scanner):
    """Compares every query with every code, one block at a time."""

    query_block = 65536

    def prepare(self, yq: np.ndarray) -> Any:
        """What the block comparisons need of the queries (their codes, unit rows, look-up tables...)."""
        raise NotImplementedError

    def ready(self, block: np.ndarray) -> Ready:
        """The search-ready form of one (bs, code_size) uint8 block (by default, the codes themselves)."""
        return Ready(len(block), block, block.nbytes)

    def warm_up(self) -> None:
        """Compile or load whatever the scan runs (called by the searcher before it is timed)."""

    def ready_bytes_per_code(self) -> int | None:
        """Bytes per code of the form :meth:`ready` keeps, when a :class:`Searcher` may keep it in memory
        (it stays within 3x the code bytes); None when it would cost more (the codes are then streamed
        and readied block by block at every search)."""
        return self.codec.code_size

    def block_topk(self, queries: Any, block: Any, kb: int) -> tuple[np.ndarray, np.ndarray]:
        """The kb best codes of one block (``Ready.data``) for every query: D (nq, kb) float32 and
        block-local ids (nq, kb) int64, best first (-1 for a missing result)."""
        raise NotImplementedError

    def search(self, yq: np.ndarray, code_blocks: Iterable[np.ndarray], k: int) -> ScanResult:
        """Top-k over (bs, code_size) uint8 blocks, each readied as it comes (streaming)."""
        return self.search_ready(yq, (self.ready(np.ascontiguousarray(b, dtype=np.uint8)) for b in code_blocks), k)

    def search_ready(self, yq: np.ndarray, blocks: Iterable[Ready], k: int) -> ScanResult:
        """Top-k over blocks already in their search-ready form (:meth:`ready`)."""
        queries = self.prepare(yq)
        D, I = scan_blocks(lambda block, kb: self.block_topk(queries, block, kb), len(yq), blocks, k)
        return ScanResult(D, I)


def scan_blocks(block_topk: BlockTopK, nq: int, blocks: Iterable[Ready], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The scan loop: ``block_topk(block.data, kb)`` on each ready block, merged by (distance, id).

    Returns D (nq, k) float32 and I (nq, k) int64, ascending, ids counted across blocks; slots beyond
    the number of codes hold id -1 and distance +inf.
    """
    best_D = np.full((nq, 0), np.inf, np.float32)
    best_I = np.zeros((nq, 0), np.int64)
    start = 0
    for block in blocks:
        if block.n == 0:
            continue
        if nq:
            D, I = block_topk(block.data, min(k, block.n))
            missing = I < 0
            D = np.asarray(D, np.float32)
            if missing.any():
                D, I = np.where(missing, np.inf, D).astype(np.float32), np.where(missing, -1, I + start)
            elif start:
                I = I + start
            if best_D.shape[1] == 0 and _in_order(D, I):
                best_D, best_I = D, np.asarray(I, np.int64)  # the first block, already in (distance, id) order
            else:
                best_D, best_I = merge_topk(best_D, best_I, D, I, k)
        start += block.n
    if best_D.shape[1] < k:
        pad = k - best_D.shape[1]
        best_D = np.hstack([best_D, np.full((nq, pad), np.inf, np.float32)])
        best_I = np.hstack([best_I, np.full((nq, pad), -1, np.int64)])
    return best_D, best_I


def _in_order(D: np.ndarray, I: np.ndarray) -> bool:
    """Whether each row is ascending by (distance, id), missing results (-1) last."""
    if D.shape[1] < 2:
        return True
    d0, d1, i0, i1 = D[:, :-1], D[:, 1:], I[:, :-1], I[:, 1:]
    return bool(((d0 < d1) | ((d0 == d1) & ((i0 < i1) & (i0 >= 0) | (i1 < 0)))).all())


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
