"""How a sharded stage splits the database: contiguous row ranges that follow the one-process blocks."""

from __future__ import annotations

from vecspread.errors import ConfigError

#: shards per worker by default: enough to balance uneven workers and to lose little to a failed one
SHARDS_PER_WORKER = 4


def shard_ranges(n: int, workers: int, block_size: int, shard_rows: int | None = None) -> list[tuple[int, int]]:
    """Row ranges [start, stop) covering ``0..n`` in order.

    Each range but the last is a whole number of ``block_size`` blocks, so that a shard reads, transforms
    and compares exactly the blocks one process would (the same rows in each block: bit-identical
    float results). ``shard_rows`` (rounded up to whole blocks): rows per shard; default about
    :data:`SHARDS_PER_WORKER` shards per worker.
    """
    if n <= 0:
        return []
    if shard_rows is not None and shard_rows < 1:
        raise ConfigError(f"--shard-rows must be at least 1, got {shard_rows}")
    rows = shard_rows or -(-n // (SHARDS_PER_WORKER * max(1, workers)))
    rows = -(-rows // block_size) * block_size
    return [(start, min(n, start + rows)) for start in range(0, n, rows)]
