"""The scanners: how ``search`` compares queries with stored codes.

Each codec names its exhaustive scanner (``Codec.scanner``); a scanner with options of its own (hash
tables, LSH tables, Annoy trees) is chosen by giving them (``search --tables ...``, ``--lsh ...``,
``--annoy-trees ...``). :func:`choose` is the one place that decides;
no stage looks at a codec's name.
"""

from __future__ import annotations

from typing import Any

from vecspread.errors import ConfigError
from vecspread.params import ParamSet
from vecspread.registry import Registry, Spec
from vecspread.scanners import lsh, tables, trees

REGISTRY = Registry("scanner", "scanner", [
    Spec("hamming", "vecspread.scanners.hamming:HammingScanner", summary="Hamming distance of binary codes"),
    Spec("lattice", "vecspread.scanners.lattice:LatticeScanner", summary="unit queries against the integer lattice points (compiled)"),
    Spec("decoded", "vecspread.scanners.decoded:DecodedScanner", summary="exact L2 to decoded reconstructions"),
    Spec("adc", "vecspread.scanners.adc:ADCScanner", summary="faiss's PQ look-up tables (ADC)"),
    Spec("collisions", "vecspread.scanners.collisions:CollisionScanner", summary="E2LSH collision counts"),
    Spec("flat", "vecspread.scanners.flat:FlatScanner", summary="exact distance to flat (float32) codes"),
    tables.SPEC,
    lsh.SPEC,
    trees.SPEC,
])


def option_params() -> list[tuple[str, ParamSet]]:
    """(scanner, parameters) of the scanners chosen by their options, for the command line."""
    return [(s.name, s.params) for s in REGISTRY if len(s.params)]


def choose(codec: Any, options: dict[str, Any]) -> Any:
    """The scanner for ``codec``'s codes: the one whose options are given, else the codec's own.

    ``options``: the search options the user set (None = not given).
    """
    given = {k: v for k, v in options.items() if v is not None}
    chosen = [s for s in REGISTRY if any(k in s.params for k in given)]
    if len(chosen) > 1:
        raise ConfigError(f"options of two scanners given ({', '.join(s.name for s in chosen)}): choose one")
    name = chosen[0].name if chosen else codec.scanner
    return REGISTRY.create(name, given, codec)


def search(codec: Any, yq: Any, code_blocks: Any, k: int) -> tuple[Any, Any]:
    """Exhaustive top-k of (nq, d) float32 queries over (bs, code_size) uint8 blocks of ``codec``'s codes:
    D (nq, k) float32, I (nq, k) int64 (the codec's own scanner; used by validation and diagnostics)."""
    result = choose(codec, {}).search(yq, code_blocks, k)
    return result.D, result.I
