"""Block layouts of product lattice codes: which coordinates each spherical lattice codes, at which radius.

A code of more than 64 bits cannot be one rank of one spherical lattice (ranks are uint64), so a vector
of d dimensions is cut into ``nb`` consecutive blocks, block b of ``d_b`` coordinates coded on its own
S_{d_b}^{r_b} = {z in Z^{d_b} : ||z||^2 = r_b^2}; the code is the blocks' ranks side by side, each in the
fewest whole bytes that hold it. Every block decodes to a unit direction and the product point is their
concatenation divided by sqrt(nb): a unit vector, with no norm stored (why: benchmarks/RESULTS.md,
"Lattice codes past 64 bits").

The rule for ``--bits B`` (``layout_for``):

- ``nb`` is ``--blocks`` when given, else the fewest blocks of at most 64 bits, ceil(B / 64) (one block,
  the plain spherical lattice, up to 64 bits), and never fewer than ceil(d / 64) (faiss codes at most 64
  dimensions per sphere);
- dimensions are split as evenly as possible, the larger blocks first (48 -> 24 + 24; 50 -> 17 + 17 + 16);
- with one block the budget is B bits as before; with several, B must be whole bytes and the B / 8 bytes
  are split as evenly as possible, the larger shares to the larger blocks first;
- each block's squared radius is the largest whose exact point count fits its share
  (``combinatorics.r2_for_bits``).

``--r2 R`` instead gives every block the squared radius R. Counts are exact Python integers; layouts that
cannot be stored are refused with the reason and a fix (ConfigError). Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from vecspread.codecs.lattice import LATTICE_MAX_BITS
from vecspread.codecs.lattice.combinatorics import as_int, bits_of, check_storable, count_points, r2_for_bits
from vecspread.errors import ConfigError


@dataclass(frozen=True)
class Block:
    """One block of a product layout: ``dim`` coordinates on the sphere of squared radius ``r2``."""

    dim: int
    r2: int

    @cached_property
    def n_points(self) -> int:
        """|S_dim^r|, exact (computed once)."""
        return count_points(self.dim, self.r2)

    @property
    def bits(self) -> int:
        """Bits of one rank: ceil(log2 n_points)."""
        return bits_of(self.n_points)

    @property
    def nbytes(self) -> int:
        """Bytes that store one rank."""
        return (self.bits + 7) // 8


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` cut into ``parts`` integers that differ by at most 1, the larger first."""
    base, extra = divmod(total, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def block_count(d: int, bits: int | None, blocks: int | None) -> int:
    """How many blocks a d-dimensional layout has (the rule in the module docstring)."""
    if blocks is not None:
        nb = as_int(blocks, "--blocks", 1)
        if nb > d:
            raise ConfigError(f"--blocks {nb} is more blocks than the {d} dimensions to cut: use --blocks {d} or fewer")
        if -(-d // nb) > 64:
            raise ConfigError(f"--blocks {nb} cuts {d} dimensions into blocks of up to {-(-d // nb)}, but a spherical "
                              f"lattice codes at most 64: use --blocks {-(-d // 64)} or more")
        return nb
    by_bits = 1 if bits is None else -(-bits // LATTICE_MAX_BITS)
    return max(by_bits, -(-d // 64))


def layout_for(d: int, bits: int | None = None, r2: int | None = None, blocks: int | None = None) -> tuple[Block, ...]:
    """The blocks coding d dimensions at ``bits`` (or with every block at squared radius ``r2``), cut into
    ``blocks`` blocks or by the rule; ConfigError (reason and fix) when it cannot be stored."""
    d = as_int(d, "d", 1)
    if (bits is None) == (r2 is None):
        raise ConfigError("a lattice needs exactly one of --bits or --r2 (e.g. --bits 64)")
    if bits is not None:
        bits = as_int(bits, "--bits", 1)
    nb = block_count(d, bits, blocks)
    dims = split_evenly(d, nb)
    if r2 is not None:
        layout = tuple(Block(db, as_int(r2, "--r2", 1)) for db in dims)
    elif nb == 1:
        if bits > LATTICE_MAX_BITS:
            raise ConfigError(f"--bits {bits} in one block: a rank holds at most {LATTICE_MAX_BITS} bits: use --blocks "
                              f"{-(-bits // LATTICE_MAX_BITS)} or more (or leave --blocks out)")
        layout = (Block(d, r2_for_bits(d, bits)),)
    else:
        if bits % 8:
            lower, upper = 8 * (bits // 8), 8 * -(-bits // 8)
            raise ConfigError(f"--bits {bits}: a product of {nb} lattices stores each block in whole bytes, so the "
                              f"budget must be a multiple of 8: use --bits {lower} or {upper}")
        shares = split_evenly(bits // 8, nb)
        if 8 * shares[0] > LATTICE_MAX_BITS:
            raise ConfigError(f"--bits {bits} over {nb} blocks gives {8 * shares[0]} bits to a block, more than the "
                              f"{LATTICE_MAX_BITS} a rank holds: use --blocks {-(-bits // LATTICE_MAX_BITS)} or more")
        layout = tuple(Block(db, _r2_for_block(db, 8 * share, nb)) for db, share in zip(dims, shares))
    for block in layout:
        try:
            check_storable(block.dim, block.r2)
        except ConfigError as e:
            if nb == 1:
                raise
            raise ConfigError(f"block of {block.dim} dimensions: {e}") from None
    return layout


def _r2_for_block(dim: int, bits: int, nb: int) -> int:
    try:
        return r2_for_bits(dim, bits)
    except ConfigError as e:
        raise ConfigError(f"{nb} blocks of about {dim} dimensions at {bits} bits each: {e}") from None


def code_size(layout: tuple[Block, ...]) -> int:
    """Bytes per product code: the blocks' rank bytes side by side."""
    return sum(b.nbytes for b in layout)


def describe_layout(layout: tuple[Block, ...]) -> dict[str, Any]:
    """Summary for ``vecspread atoms`` and the codec's config: blocks, radii, exact counts, bits used."""
    n_points = 1
    for b in layout:
        n_points *= b.n_points
    return {
        "dim": sum(b.dim for b in layout),
        "blocks": [{"dim": b.dim, "r2": b.r2, "n_points": b.n_points, "bits": b.bits, "bytes": b.nbytes}
                   for b in layout],
        "n_points": n_points,
        "bits": sum(b.bits for b in layout),
        "code_size": code_size(layout),
    }
