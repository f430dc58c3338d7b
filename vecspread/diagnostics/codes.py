"""How codes use their capacity: table balance (Schmidt & Talwar), bit and atom usage, distinct codes.

- :func:`table_balance` — the table balance M / M* of a hash table keyed by the first b bits of each code:
  M = sum_b n_b^2 / N (the mean size of the bucket a random point falls in), M* = N / 2^b.
- :func:`sign_code_usage`, :func:`lattice_code_usage`, :func:`distinct_share`.
- :func:`code_report` picks the statistics a code family has (binary: balance and bits; lattice: atoms).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from vecspread.diagnostics.floats import floats
from vecspread.errors import InputError

#: table balance is reported for b = 8 .. 24 leading bits (capped at the code length)
BALANCE_BITS = tuple(range(8, 25))
#: codes unpacked (bits, lattice points) at once in the code statistics
_CODE_CHUNK = 1 << 16


def code_report(codes: np.ndarray, codec: Any, source: str = "") -> dict[str, Any]:
    """Code statistics of (n, code_size) uint8 codes made by ``codec``: distinct share always; table balance
    and bit usage for sign codes; atom usage for lattice codes."""
    out: dict[str, Any] = {"codec": codec.name, "bits": int(codec.code_bits), "code_size": int(codec.code_size),
                           "n": int(len(codes)), "source": source, "distinct_share": distinct_share(codes)}
    if codec.family == "binary":
        bits = [b for b in BALANCE_BITS if b <= codec.code_bits]
        ratios = table_balance(codes, bits)
        out["table_balance"] = {str(b): {"ratio": ratios[b], "uniform_ratio": uniform_balance(len(codes), b)}
                                for b in bits}
        usage = sign_code_usage(codes, codec.code_bits)
        out["bit_usage"] = {key: (floats(v) if isinstance(v, np.ndarray) else v)
                            for key, v in usage.items() if key != "corr"}
    elif codec.family == "lattice":
        usage = lattice_code_usage(codes, codec)
        out["atom_usage"] = {**usage, "atom_counts": usage["atom_counts"].tolist()}
    return out


def bucket_ids(codes: np.ndarray, b: int) -> np.ndarray:
    """(n,) int64 bucket of each code: its first b bits, bit i weighing 2^i.

    Bit i of a code is (byte i // 8 >> i % 8) & 1 (SignCodec / faiss packing), so the bucket is the code's
    leading bytes read as a little-endian integer, masked to b bits. codes: (n, code_size) uint8, b <= 62.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    if not 1 <= b <= min(62, 8 * codes.shape[1]):
        raise ValueError(f"b must be between 1 and min(62, {8 * codes.shape[1]}) bits, got {b}")
    nbytes = -(-b // 8)
    ids = np.zeros(len(codes), np.int64)
    for j in range(nbytes):
        ids |= codes[:, j].astype(np.int64) << (8 * j)
    return ids & ((1 << b) - 1)


def table_balance(codes: np.ndarray, bits: Iterable[int] = BALANCE_BITS) -> dict[int, float]:
    """{b: M / M*} for hash tables keyed by the first b bits of (n, code_size) uint8 codes.

    M = sum over buckets of n_bucket^2 / N (the mean size of the bucket a random code lands in) and
    M* = N / 2^b, its value when every bucket holds the same number of codes. 1 is perfectly balanced;
    all-identical codes give 2^b. Note M >= 1, so when N < 2^b the ratio cannot go below 2^b / N: compare
    with :func:`uniform_balance`, the expected ratio of independent uniformly random codes.
    """
    n = len(codes)
    out: dict[int, float] = {}
    for b in bits:
        if n == 0:
            out[b] = float("nan")
            continue
        _, sizes = np.unique(bucket_ids(codes, b), return_counts=True)
        sizes = sizes.astype(np.float64)  # n^2 overflows int64 past 3e9 codes; float64 loses only 1e-16 relative
        out[b] = float(np.dot(sizes, sizes) * 2.0**b / (float(n) * n))
    return out


def uniform_balance(n: int, b: int) -> float:
    """Expected :func:`table_balance` ratio of n independent uniformly random codes: (2^b + n - 1) / n.

    (E[sum n_bucket^2] = n + n (n - 1) / 2^b for a multinomial with 2^b equal cells.)
    """
    return float("nan") if n == 0 else (2.0 ** b + n - 1) / n


def distinct_share(codes: np.ndarray) -> float:
    """Number of distinct codes / number of codes, for (n, code_size) uint8 codes (nan when n = 0)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if len(codes) == 0:
        return float("nan")
    rows = codes.view(np.dtype((np.void, codes.shape[1]))).ravel()
    return len(np.unique(rows)) / len(codes)


def sign_code_usage(codes: np.ndarray, d: int) -> dict[str, Any]:
    """Bit statistics of (n, ceil(d / 8)) uint8 sign codes of d bits (SignCodec packing).

    Returns ``ones_fraction`` (d,) float64 (share of codes with bit i set); ``corr`` (d, d) float64, the
    Pearson correlation of bits i and j over the codes (nan for a constant bit); and the summaries
    ``mean_abs_corr`` / ``max_abs_corr`` over off-diagonal pairs of non-constant bits, ``constant_bits``
    and ``mean_bit_entropy`` (bits; 1 when every bit is set half of the time).
    """
    codes = np.asarray(codes, dtype=np.uint8)
    n = len(codes)
    if n == 0:
        raise ValueError("no codes to measure")
    ones = np.zeros(d, np.float64)
    both = np.zeros((d, d), np.float64)  # both[i, j] = number of codes with bits i and j set (exact below 2^53)
    for s in range(0, n, _CODE_CHUNK):  # unpacked bits take 8 bytes each: bound them by the chunk
        B = np.unpackbits(codes[s : s + _CODE_CHUNK], axis=1, count=d, bitorder="little").astype(np.float64)
        ones += B.sum(axis=0)
        both += B.T @ B
    p = ones / n
    cov = both / n - np.outer(p, p)
    std = np.sqrt(np.maximum(p * (1 - p), 0))
    live = std > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(std, std)
    corr[~live, :] = np.nan
    corr[:, ~live] = np.nan
    corr[live, live] = 1.0
    off = corr[~np.eye(d, dtype=bool)]
    off = np.abs(off[np.isfinite(off)])
    with np.errstate(invalid="ignore", divide="ignore"):
        h = -(np.where(p > 0, p * np.log2(p), 0) + np.where(p < 1, (1 - p) * np.log2(1 - p), 0))
    return {
        "ones_fraction": p,
        "corr": corr,
        "mean_abs_corr": float(off.mean()) if off.size else float("nan"),
        "max_abs_corr": float(off.max()) if off.size else float("nan"),
        "constant_bits": int((~live).sum()),
        "mean_bit_entropy": float(h.mean()),
    }


def lattice_code_usage(codes: np.ndarray, codec: Any) -> dict[str, Any]:
    """Atom usage of (n, code_size) uint8 codes of a fitted LatticeCodec.

    Each code is decoded to its integer lattice point; its atom is the tuple of sorted absolute values,
    located in ``lattice.atoms(d, r2)``. Returns ``atom_counts`` (n_atoms,) int64, ``atoms_used``,
    ``n_atoms``, ``n_distinct`` and ``distinct_share``. For a product of lattices each block's atoms
    are counted on their own: ``atom_counts`` is the blocks' counts side by side, ``blocks`` gives
    ``atoms_used`` and ``n_atoms`` per block.
    """
    from vecspread.codecs.lattice.combinatorics import atoms

    tables = [atoms(b.dim, b.r2) for b in codec.layout_]
    indexes = [{a: i for i, a in enumerate(table)} for table in tables]
    counts = [np.zeros(len(table), np.int64) for table in tables]
    for s in range(0, len(codes), _CODE_CHUNK):
        points = codec.integer_points(codes[s : s + _CODE_CHUNK]).astype(np.int64)
        for block, cols, index, count in zip(codec.layout_, codec.block_slices(), indexes, counts):
            zb = points[:, cols]
            if np.any((zb * zb).sum(axis=1) != block.r2):
                raise InputError(f"decoded lattice points do not all have squared norm {block.r2}: codes damaged?")
            keys = -np.sort(-np.abs(zb), axis=1)
            uniq, per_atom = np.unique(keys, axis=0, return_counts=True)
            for row, c in zip(uniq, per_atom):
                count[index[tuple(int(v) for v in row)]] += c
    per_block = [{"atoms_used": int(np.count_nonzero(c)), "n_atoms": len(c)} for c in counts]
    counts_all = np.concatenate(counts)
    n_distinct = int(round(distinct_share(codes) * len(codes))) if len(codes) else 0
    return {
        "atom_counts": counts_all,
        "atoms_used": int(np.count_nonzero(counts_all)),
        "n_atoms": len(counts_all),
        **({"blocks": per_block} if len(per_block) > 1 else {}),
        "n_distinct": n_distinct,
        "distinct_share": n_distinct / len(codes) if len(codes) else float("nan"),
    }
