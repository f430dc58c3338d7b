"""Diagnostics that explain why a code works: how evenly a transform spreads the data, and how codes use their bits.

Statistics (each takes arrays and returns plain floats, dicts or arrays):

- :func:`uniformity` — Sablayrolles et al. (ICLR 2019) §3.3: the probability that a query's distance to
  its nearest neighbour exceeds *another* query's distance to its k-th (100th) neighbour. About 50% in a
  badly imbalanced space, towards 0% in a uniform one (paper, Deep1M: 20.8% input, 5.0% after the catalyzer).
- :func:`range_counts` + :func:`epsilon_curve` — Appendix C / Figure 7: for a sweep of radii ε, the average
  number of database vectors within ε of a query and the share of queries whose true (input-space) nearest
  neighbour is within ε.
- :func:`angles_deg` — Schmidt & Talwar's "mean correct angle": the angle between a query and its true
  nearest neighbour (hyperplane LSH sees a pair only through this angle).
- :func:`table_balance` — Schmidt & Talwar's table balance M / M* of a hash table keyed by the first b bits
  of each code: M = sum_b n_b^2 / N (the mean size of the bucket a random point falls in), M* = N / 2^b.
- :func:`sign_code_usage`, :func:`lattice_code_usage`, :func:`distinct_share` — how codes use their capacity.
- :func:`tie_aware_recall` next to :func:`id_recall` — ann-benchmarks' k-recall@k (a result counts when its
  recomputed true distance is within ``tol`` of the k-th true distance) against plain id intersection.

:func:`inspect` opens a model or codes artifact and a dataset, computes all of the above and returns a JSON-able
report; ``vecspread.plots.write_figures`` draws it. Distances follow ``vecspread.knn``: true L2 (not squared),
1 - cos, or -ip in the input space; the transformed space is compared with L2, the geometry every codec here
searches in (sign codes and the lattice look at directions of centred or normalised outputs).
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from vecspread.artifacts import DEFAULT_BLOCK_SIZE, Dataset, check_lineage, open_artifact
from vecspread.errors import ConfigError, InputError
from vecspread.knn import METRICS, knn_blocks, merge_topk
from vecspread.metrics import tie_threshold
from vecspread.progress import LogProgress, Progress

#: distance used in the transformed space (see the module docstring)
TRANSFORMED_DISTANCE = "euclidean"
#: ann-benchmarks' absolute tolerance on the k-th true distance
ANN_BENCHMARKS_TOL = 1e-3
#: table balance is reported for b = 8 .. 24 leading bits (capped at the code length)
BALANCE_BITS = tuple(range(8, 25))
#: largest (queries x database rows) distance block held at once (float32 items, 16 MiB)
_PAIR_CHUNK = 1 << 22
#: codes unpacked (bits, lattice points) at once in the code statistics
_CODE_CHUNK = 1 << 16

# ---------------------------------------------------------------------------------------------
# The report


def inspect(
    model_or_codes: str,
    dataset: str,
    *,
    nq: int = 1000,
    sample: int | None = 200_000,
    k: int = 100,
    n_radii: int = 40,
    recall_at: Sequence[int] = (1, 10, 100),
    tol: float = ANN_BENCHMARKS_TOL,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Diagnose a model or codes artifact on a dataset; returns a JSON-able dict.

    Queries are the first ``nq`` of the dataset's ``test`` set; the database side is a seeded random sample
    of ``sample`` rows of ``train`` (all rows when ``sample`` is None or at least the database size). On that
    sample, in the input space and in the transformed space (``apply_query`` for queries, ``apply`` for the
    database): exact k-NN (faiss), :func:`uniformity` of the 1st vs k-th neighbour distances, the ε-curve
    over ``n_radii`` radii, and the angle to the true nearest neighbour (with the angle to a random database
    vector for reference). When codes are available — the ``/codes`` of a codes artifact, or a codec trained
    with the model applied to the sample — code statistics on the sample's codes; for a codes artifact also
    a search of the queries over all codes, scored by :func:`id_recall` and :func:`tie_aware_recall` at each
    k in ``recall_at`` (ground truth from the dataset, else computed exactly).

    The database is read in blocks of ``block_size`` rows, twice (k-NN, then range counts); memory is bounded
    by the block size, the queries and the sampled codes (``sample`` x code_size bytes), not by N.
    """
    from vecspread.encoding import load_codec, open_codes
    from vecspread.modeling import open_model

    progress = progress or LogProgress()
    t0 = time.perf_counter()
    _check_positive(nq=nq, k=k, block_size=block_size)
    if not 2 <= n_radii <= 255:
        raise ConfigError(f"the number of radii must be between 2 and 255, got {n_radii}")
    if sample is not None and sample < 1:
        raise ConfigError(f"sample must be at least 1 database vector, got {sample}")
    if tol < 0:
        raise ConfigError(f"the recall tolerance must be >= 0, got {tol}")

    with open_artifact(model_or_codes, ("model", "codes"), role="model or codes") as probe:
        kind = probe.kind
    if kind == "codes":
        art, transform, codec = open_codes(model_or_codes)
    else:
        art, transform = open_model(model_or_codes)
        codec = None
    with art, Dataset(dataset) as ds:
        if kind == "codes":
            check_lineage(art, "dataset", ds.art, "codes were encoded from")
        elif "codec" in art.file:
            codec = load_codec(art)
        if ds.d != transform.d_in:
            raise InputError(
                f"{model_or_codes} expects {transform.d_in}-dimensional vectors but {dataset} has {ds.d}"
            )
        n_db = ds.size("train")
        db = _Sample(ds, _sample_ids(n_db, sample, seed), transform, block_size)
        if k > db.n:
            raise ConfigError(
                f"k={k} exceeds the {db.n} sampled database vectors: use a smaller k or a larger sample"
            )
        xq = ds.read("test", limit=nq)
        nq = len(xq)
        if nq < 2:
            raise ConfigError("uniformity compares queries with each other: the dataset needs at least 2 queries")
        # each space: its queries and its distance
        spaces = {"input": (xq, ds.distance), "transformed": (transform.apply_query(xq), TRANSFORMED_DISTANCE)}
        report: dict[str, Any] = {
            "artifact": model_or_codes, "kind": kind, "method": " -> ".join(art.params["chain"]) if art.params.get("chain") else art.params.get("method"),
            "d_in": int(transform.d_in), "d_out": int(transform.d_out),
            "dataset": dataset, "distance": ds.distance, "transformed_distance": TRANSFORMED_DISTANCE,
            "nq": nq, "n_database": n_db, "n_sample": db.n, "k": k, "seed": seed,
        }
        codes_file = art.file["codes"] if kind == "codes" else None
        knn, codes = _knn_pass(db, spaces, k, codes_file, codec, progress)

        # the true nearest neighbours (input space, ties included) and a random partner per query
        D_in, I_in = knn["input"]
        tied = D_in <= tie_threshold(D_in[:, :1])
        q_of, local = np.nonzero(tied)[0], I_in[tied]  # row-major: per query, ranks ascending
        first = np.r_[True, q_of[1:] != q_of[:-1]]  # the best-ranked of each query's tied neighbours
        partner = np.random.default_rng(seed + 1).integers(0, db.n, nq)
        rows = db.rows(np.concatenate([local, partner]))
        report["uniformity"], report["angle"], target, radii = {}, {}, {}, {}
        for space, (q, distance) in spaces.items():
            t_rows, p_rows = rows[space][: len(local)], rows[space][len(local) :]
            # a tie must not count as a miss: the target is the nearest of the tied neighbours in this space
            target[space] = _min_per_query(pair_distances(q[q_of], t_rows, distance), q_of, nq)
            D = knn[space][0]
            report["uniformity"][space] = {
                "p": uniformity(D[:, 0], D[:, k - 1]), "d1": _floats(D[:, 0]), "dk": _floats(D[:, k - 1]),
            }
            report["angle"][space] = _angle_summary(q, t_rows[first], p_rows)
            radii[space] = epsilon_grid(D, target[space], n_radii)

        counts = _range_pass(db, spaces, radii, progress)
        report["epsilon"] = {s: epsilon_curve(counts[s], target[s], radii[s]) for s in spaces}

        if codec is not None:
            report["codes"] = code_report(codes, codec, source="codes file" if kind == "codes" else "model codec")
        if kind == "codes":
            report["recall"] = _recall_report(
                ds, art.file["codes"], codec, xq, spaces["transformed"][0], recall_at, tol, block_size, progress
            )
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an :func:`inspect` report, flat, for a terminal summary (no arrays)."""
    out: dict[str, Any] = {
        "artifact": report["artifact"], "method": report.get("method"),
        "dims": f"{report['d_in']} -> {report['d_out']}",
        "queries x sample": f"{report['nq']} x {report['n_sample']} (of {report['n_database']})",
    }
    k = report["k"]
    for space in ("input", "transformed"):
        out[f"uniformity {space} (P[d1 > d{k}'])"] = round(report["uniformity"][space]["p"], 4)
    for space in ("input", "transformed"):
        a = report["angle"][space]
        out[f"angle to NN {space} (deg)"] = f"{a['mean_deg']:.1f} (random pair {a['random_mean_deg']:.1f})"
    for space in ("input", "transformed"):
        e = report["epsilon"][space]
        r80 = _results_at_recall(e, 0.8)
        out[f"results/query for 80% NN recall, {space}"] = None if r80 is None else round(r80, 1)
    codes = report.get("codes")
    if codes:
        out["codec"] = f"{codes['codec']} ({codes['bits']} bits)"
        out["distinct codes"] = round(codes["distinct_share"], 4)
        if codes.get("table_balance"):
            tb = codes["table_balance"]
            last = str(max(int(b) for b in tb))
            out["table balance b=8 / b=" + last] = (
                f"{tb['8']['ratio']:.2f} / {tb[last]['ratio']:.2f} (random codes {tb[last]['uniform_ratio']:.2f})"
            )
        if "bit_usage" in codes:
            out["mean |bit corr|"] = round(codes["bit_usage"]["mean_abs_corr"], 4)
        if "atom_usage" in codes:
            out["atoms used"] = f"{codes['atom_usage']['atoms_used']} of {codes['atom_usage']['n_atoms']}"
    if "recall" in report:
        for kk, v in report["recall"]["ids"].items():
            out[f"{kk}-recall@{kk} ids / tie-aware"] = f"{v:.4f} / {report['recall']['tie_aware'][kk]:.4f}"
    return out


def code_report(codes: np.ndarray, codec: Any, source: str = "") -> dict[str, Any]:
    """Code statistics of (n, code_size) uint8 codes made by ``codec``: distinct share always; table balance
    and bit usage for sign codes; atom usage for lattice codes."""
    from vecspread.codecs.binary import SignCodec
    from vecspread.codecs.lattice import LatticeCodec

    out: dict[str, Any] = {"codec": codec.name, "bits": int(codec.bits), "code_size": int(codec.code_size),
                           "n": int(len(codes)), "source": source, "distinct_share": distinct_share(codes)}
    if isinstance(codec, SignCodec):
        bits = [b for b in BALANCE_BITS if b <= codec.bits]
        ratios = table_balance(codes, bits)
        out["table_balance"] = {str(b): {"ratio": ratios[b], "uniform_ratio": uniform_balance(len(codes), b)}
                                for b in bits}
        usage = sign_code_usage(codes, codec.bits)
        out["bit_usage"] = {key: (_floats(v) if isinstance(v, np.ndarray) else v)
                            for key, v in usage.items() if key != "corr"}
    elif isinstance(codec, LatticeCodec):
        usage = lattice_code_usage(codes, codec)
        out["atom_usage"] = {**usage, "atom_counts": usage["atom_counts"].tolist()}
    return out


# ---------------------------------------------------------------------------------------------
# Uniformity (§3.3, Figure 3)


def uniformity(d1: np.ndarray, dk: np.ndarray) -> float:
    """P[d1_i > dk_j] over ordered pairs of distinct queries i != j, exactly, in O(n log n).

    d1: (n,) distance of each query to its nearest neighbour; dk: (n,) to its k-th (e.g. 100th) neighbour.
    ~0.5 when the space is badly imbalanced (one query's nearest neighbour is farther than another's 100th),
    -> 0 when it is uniform. Returns nan for fewer than 2 queries.
    """
    d1 = np.asarray(d1, dtype=np.float64).ravel()
    dk = np.asarray(dk, dtype=np.float64).ravel()
    if d1.shape != dk.shape:
        raise ValueError(f"d1 and dk must have the same length, got {d1.size} and {dk.size}")
    n = d1.size
    if n < 2:
        return float("nan")
    # for each i, the number of j (including i) with dk_j < d1_i; then drop the pairs i == j
    below = int(np.searchsorted(np.sort(dk), d1, side="left").sum())
    below -= int(np.count_nonzero(dk < d1))
    return below / (n * (n - 1))


# ---------------------------------------------------------------------------------------------
# Range search against nearest-neighbour search (Appendix C, Figure 7)


def range_counts(
    xq: np.ndarray, xb_blocks: Iterable[np.ndarray], radii: np.ndarray, distance: str = "euclidean"
) -> np.ndarray:
    """Number of database vectors within each radius of each query: (nq, n_radii) int64.

    xq: (nq, d) float32; xb_blocks: iterable of (bs, d) float32 database blocks; radii: (n_radii,) ascending,
    at most 255 values. A vector counts for radius r when its distance (``distance`` as in vecspread.knn)
    is <= r. Memory is bounded by the block size, not by the database size.
    """
    radii = np.asarray(radii, dtype=np.float32)
    if not 1 <= len(radii) <= 255:
        raise ValueError(f"between 1 and 255 radii are supported, got {len(radii)}")
    counts = np.zeros((len(xq), len(radii)), np.int64)
    for xb in xb_blocks:
        counts += _count_within(xq, xb, radii, distance)
    return counts


def epsilon_grid(D: np.ndarray, target: np.ndarray, n_radii: int = 40) -> np.ndarray:
    """(<= n_radii,) ascending float32 radii for the ε sweep.

    Half are quantiles, evenly spaced in probability from 0 to 1, of ``target`` (nq,), the distances to
    the true nearest neighbours: the recall of the curve then rises in even steps up to 1. The other half
    are quantiles of the 1st..k-th neighbour distances D (nq, k) at geometrically spaced probabilities
    (from one value in the pool to all of it), which resolve the region of less than one to a few results
    per query that even quantiles skip over. Repeated values are merged.
    """
    target = np.asarray(target, np.float64).ravel()
    pool = np.asarray(D, np.float64).ravel()
    target, pool = target[np.isfinite(target)], pool[np.isfinite(pool)]
    if target.size == 0 and pool.size == 0:
        raise ValueError("no finite distance to build radii from")
    parts = []
    if target.size:
        parts.append(np.quantile(target, np.linspace(0, 1, n_radii - n_radii // 2)))
    if pool.size:
        parts.append(np.quantile(pool, np.geomspace(1 / pool.size, 1, n_radii // 2)))
    return np.unique(np.concatenate(parts).astype(np.float32))


def epsilon_curve(counts: np.ndarray, target: np.ndarray, radii: np.ndarray) -> dict[str, list[float]]:
    """Figure 7's curve: per radius, the mean number of results per query and the share of queries whose
    true nearest neighbour is within the radius.

    counts: (nq, n_radii) from :func:`range_counts`; target: (nq,) distance of each query to its true
    (input-space) nearest neighbour, measured in the same space as ``counts``; radii: (n_radii,).
    """
    radii = np.asarray(radii, dtype=np.float32)
    within = np.asarray(target, np.float32)[:, None] <= radii[None, :]
    return {
        "radius": _floats(radii),
        "results_per_query": _floats(np.asarray(counts, np.float64).mean(axis=0)),
        "recall": _floats(within.mean(axis=0)),
    }


def pair_distances(a: np.ndarray, b: np.ndarray, distance: str = "euclidean") -> np.ndarray:
    """(n,) float64 distance between rows a[i] and b[i] ((n, d) each), as vecspread.knn reports them."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if distance == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", a - b, a - b))
    if distance == "angular":
        return 1 - _cosines(a, b, zero=0.0)
    if distance == "dot":
        return -np.einsum("ij,ij->i", a, b)
    raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")


# ---------------------------------------------------------------------------------------------
# Mean correct angle (Schmidt & Talwar)


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) float64 angle in degrees between rows a[i] and b[i] ((n, d) each); nan where a row is zero."""
    return np.degrees(np.arccos(np.clip(_cosines(a, b, zero=np.nan), -1.0, 1.0)))


# ---------------------------------------------------------------------------------------------
# Codes: table balance and usage


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

    Each code is decoded to its integer lattice point (unit point x sqrt(r2), rounded); its atom is the
    tuple of sorted absolute values, located in ``lattice.atoms(d, r2)``. Returns ``atom_counts``
    (n_atoms,) int64, ``atoms_used``, ``n_atoms``, ``n_distinct`` and ``distinct_share``.
    """
    from vecspread.codecs.lattice import atoms

    table = atoms(codec.d_, codec.r2_)
    index = {a: i for i, a in enumerate(table)}
    counts = np.zeros(len(table), np.int64)
    for s in range(0, len(codes), _CODE_CHUNK):
        points = codec.decode(codes[s : s + _CODE_CHUNK]).astype(np.float64) * math.sqrt(codec.r2_)
        points = np.rint(points).astype(np.int64)
        if np.any((points * points).sum(axis=1) != codec.r2_):
            raise InputError(f"decoded lattice points do not all have squared norm {codec.r2_}: codes damaged?")
        keys = -np.sort(-np.abs(points), axis=1)
        uniq, per_atom = np.unique(keys, axis=0, return_counts=True)
        for row, c in zip(uniq, per_atom):
            counts[index[tuple(int(v) for v in row)]] += c
    n_distinct = int(round(distinct_share(codes) * len(codes))) if len(codes) else 0
    return {
        "atom_counts": counts,
        "atoms_used": int(np.count_nonzero(counts)),
        "n_atoms": len(table),
        "n_distinct": n_distinct,
        "distinct_share": n_distinct / len(codes) if len(codes) else float("nan"),
    }


# ---------------------------------------------------------------------------------------------
# Recall: id intersection vs recomputed true distances (ann-benchmarks)


def id_recall(I: np.ndarray, gt_I: np.ndarray, k: int) -> float:
    """k-recall@k by id intersection: mean over queries of |I[:, :k] ∩ gt_I[:, :k]| / k."""
    hits = [np.intersect1d(I[q, :k], gt_I[q, :k]).size for q in range(len(I))]
    return float(np.mean(hits) / k) if hits else float("nan")


def true_distances(xq: np.ndarray, I: np.ndarray, xb: Any, distance: str = "euclidean") -> np.ndarray:
    """(nq, k) float64 true distance between each query and each returned id (inf for id -1).

    xq: (nq, d) float32; I: (nq, k) int64 ids; xb: the database, an (n, d) array or a callable mapping
    an int64 id array to the (len(ids), d) float32 rows.
    """
    I = np.asarray(I, dtype=np.int64)
    valid = I >= 0
    ids = I[valid]
    rows = xb(ids) if callable(xb) else np.asarray(xb)[ids]
    out = np.full(I.shape, np.inf)
    out[valid] = pair_distances(np.repeat(xq, I.shape[1], axis=0)[valid.ravel()], rows, distance)
    return out


def tie_aware_recall(
    I: np.ndarray, xq: np.ndarray, xb: Any, gt_D: np.ndarray, k: int, *,
    distance: str = "euclidean", tol: float = ANN_BENCHMARKS_TOL,
) -> float:
    """k-recall@k as ann-benchmarks counts it: the share of the first k results whose recomputed true
    distance is <= the k-th true distance gt_D[:, k - 1] + tol (absolute), averaged over queries.

    I: (nq, >= k) int64 results; xq: (nq, d) float32 queries; xb: database array or row callable (see
    :func:`true_distances`); gt_D: (nq, >= k) exact distances, ascending. A result tied with the k-th
    neighbour counts even when its id differs from the ground truth's.
    """
    D = true_distances(xq, np.asarray(I)[:, :k], xb, distance)
    threshold = np.asarray(gt_D, np.float64)[:, k - 1 : k] + tol
    return float((D <= threshold).sum(axis=1).mean() / k) if len(D) else float("nan")


# ---------------------------------------------------------------------------------------------
# Helpers


class _Sample:
    """The database rows under study: all of ``train`` (sel None) or the sorted ids ``sel``, read in blocks.

    Positions 0 .. n - 1 number the sampled rows in id order; k-NN ids are such positions.
    """

    def __init__(self, ds: Dataset, sel: np.ndarray | None, transform: Any, block_size: int) -> None:
        self.ds, self.sel, self.transform, self.block_size = ds, sel, transform, block_size
        self.n = ds.size("train") if sel is None else len(sel)

    def ids(self, positions: np.ndarray) -> np.ndarray:
        """Database ids of sample positions."""
        return positions if self.sel is None else self.sel[positions]

    def blocks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (first position, (bs, d_in) float32 x, (bs, d_out) float32 transform.apply(x))."""
        if self.sel is None:
            for start, xb in self.ds.blocks("train", self.block_size):
                yield start, xb, self.transform.apply(xb)
            return
        for start in range(0, self.n, self.block_size):
            xb = _as_float32(self.ds, _read_sorted(self.ds.file["train"], self.sel[start : start + self.block_size]))
            yield start, xb, self.transform.apply(xb)

    def rows(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """{"input": (m, d_in), "transformed": (m, d_out)} float32 rows at sample positions (repeats allowed)."""
        x = _read_rows(self.ds, self.ids(np.asarray(positions, np.int64)), self.block_size)
        return {"input": x, "transformed": self.transform.apply(x)}


def _knn_pass(
    db: _Sample, spaces: dict[str, tuple[np.ndarray, str]], k: int, codes_file: Any, codec: Any,
    progress: Progress,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """Exact k-NN (D, I) per space over the sample, I in sample positions; and the sample's codes, read
    from ``codes_file`` or, failing that, made by ``codec`` (None when neither is given)."""
    nq = len(next(iter(spaces.values()))[0])
    knn = {s: (np.full((nq, 0), np.inf, np.float32), np.zeros((nq, 0), np.int64)) for s in spaces}
    parts: list[np.ndarray] = []
    progress.start(db.n, "inspect: k-NN")
    for start, xb, yb in db.blocks():
        for space, b in (("input", xb), ("transformed", yb)):
            q, distance = spaces[space]
            knn[space] = merge_topk(*knn[space], *knn_blocks(q, [(start, b)], k, distance), k)
        if codes_file is not None:
            parts.append(_read_sorted(codes_file, db.ids(np.arange(start, start + len(xb)))))
        elif codec is not None:
            parts.append(codec.encode(yb))
        progress.advance(len(xb))
    progress.finish()
    if codec is None:
        return knn, None
    return knn, np.concatenate(parts) if parts else np.zeros((0, codec.code_size), np.uint8)


def _range_pass(
    db: _Sample, spaces: dict[str, tuple[np.ndarray, str]], radii: dict[str, np.ndarray], progress: Progress
) -> dict[str, np.ndarray]:
    """(nq, n_radii) int64 counts of sampled rows within each radius of each query, per space."""
    counts = {s: np.zeros((len(q), len(radii[s])), np.int64) for s, (q, _) in spaces.items()}
    progress.start(db.n, "inspect: range counts")
    for _, xb, yb in db.blocks():
        for space, b in (("input", xb), ("transformed", yb)):
            q, distance = spaces[space]
            counts[space] += _count_within(q, b, radii[space], distance)
        progress.advance(len(xb))
    progress.finish()
    return counts


def _recall_report(
    ds: Dataset, codes_file: Any, codec: Any, xq: np.ndarray, yq: np.ndarray, recall_at: Sequence[int],
    tol: float, block_size: int, progress: Progress,
) -> dict[str, Any]:
    """Search the queries over all codes; id-based and tie-aware k-recall@k against the full database."""
    n_db, nq = codes_file.shape[0], len(xq)
    have_gt = ds.has("neighbors") and ds.has("distances") and ds.file["neighbors"].shape[0] >= nq
    kgt = int(ds.file["neighbors"].shape[1]) if have_gt else max(recall_at)
    ks = sorted({int(kk) for kk in recall_at if 1 <= kk <= min(kgt, n_db)})
    if not ks:
        return {"k": [], "ids": {}, "tie_aware": {}, "tol": tol, "groundtruth": None}
    kmax = ks[-1]
    if have_gt:
        gt_I = ds.file["neighbors"][:nq].astype(np.int64)
        gt_D = ds.file["distances"][:nq].astype(np.float32)
        source = "dataset"
    else:
        progress.log("inspect: no ground truth in the dataset, computing exact k-NN of the queries")
        gt_D, gt_I = knn_blocks(xq, ds.blocks("train", block_size), kmax, ds.distance)
        source = "computed"
    progress.log(f"inspect: searching {nq} queries over {n_db} codes")
    _, I = codec.search(yq, (codes_file[s : s + block_size] for s in range(0, n_db, block_size)), kmax)
    D_true = true_distances(xq, I, lambda ids: _read_rows(ds, ids, block_size), ds.distance)
    tie = {str(kk): float((D_true[:, :kk] <= gt_D[:, kk - 1 : kk].astype(np.float64) + tol).sum(axis=1).mean() / kk)
           for kk in ks}
    return {"k": ks, "ids": {str(kk): id_recall(I, gt_I, kk) for kk in ks}, "tie_aware": tie, "tol": tol,
            "groundtruth": source}


def _check_positive(**values: int) -> None:
    for name, v in values.items():
        if v < 1:
            raise ConfigError(f"{name} must be at least 1, got {v}")


def _sample_ids(n: int, sample: int | None, seed: int) -> np.ndarray | None:
    """Sorted int64 ids of a seeded random sample of ``sample`` of n rows, or None for all rows."""
    if sample is None or sample >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)).astype(np.int64)


def _read_rows(ds: Dataset, ids: np.ndarray, block_size: int) -> np.ndarray:
    """Rows ``ids`` (any order, repeats allowed) of ``train`` as (len(ids), d) float32, read in sorted runs."""
    uniq, inverse = np.unique(np.asarray(ids, np.int64), return_inverse=True)
    parts = [_read_sorted(ds.file["train"], uniq[s : s + block_size]) for s in range(0, len(uniq), block_size)]
    rows = np.concatenate(parts) if parts else np.zeros((0, ds.d), np.float32)
    return _as_float32(ds, rows)[inverse.ravel()]


def _read_sorted(h5ds: Any, ids: np.ndarray) -> np.ndarray:
    """Rows of an HDF5 dataset at sorted unique ``ids``: one contiguous read when they are dense (h5py's
    point selection is several times slower than a slice), a point selection otherwise."""
    if len(ids) == 0:
        return np.zeros((0,) + h5ds.shape[1:], h5ds.dtype)
    lo, hi = int(ids[0]), int(ids[-1]) + 1
    if hi - lo <= 4 * len(ids):
        return h5ds[lo:hi][ids - lo]
    return h5ds[ids]


def _as_float32(ds: Dataset, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{ds.path}: 'train' contains NaN or inf values; clean the vectors before import")
    return x


def _count_within(xq: np.ndarray, xb: np.ndarray, radii: np.ndarray, distance: str) -> np.ndarray:
    """(nq, n_radii) int64: for one database block, how many rows are within each radius of each query."""
    radii = np.asarray(radii, dtype=np.float32)
    G = len(radii)
    counts = np.zeros((len(xq), G), np.int64)
    if len(xb) == 0:
        return counts
    rows = max(1, _PAIR_CHUNK // len(xb))
    for s in range(0, len(xq), rows):
        D = _pairwise(xq[s : s + rows], xb, distance)
        # slot[i, j] = number of radii below D[i, j]; D <= radii[g] iff slot <= g. Adding G boolean masks
        # into uint8 is ~5x faster than np.searchsorted for the few dozen radii used here.
        slot = np.zeros(D.shape, np.uint8)
        for r in radii:
            slot += D > r
        qc = len(D)
        flat = slot.astype(np.int64) + (np.arange(qc, dtype=np.int64) * (G + 1))[:, None]
        hist = np.bincount(flat.ravel(), minlength=qc * (G + 1)).reshape(qc, G + 1)
        counts[s : s + qc] = np.cumsum(hist, axis=1)[:, :G]
    return counts


def _pairwise(xq: np.ndarray, xb: np.ndarray, distance: str) -> np.ndarray:
    """(nq, bs) float32 distances between all queries and database rows (float32 BLAS, as faiss)."""
    xq = np.ascontiguousarray(xq, np.float32)
    xb = np.ascontiguousarray(xb, np.float32)
    if distance == "euclidean":
        sq = (xq * xq).sum(axis=1)[:, None] + (xb * xb).sum(axis=1)[None, :] - 2 * (xq @ xb.T)
        return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)
    if distance == "angular":
        from vecspread.knn import normalize_rows

        return 1 - normalize_rows(xq) @ normalize_rows(xb).T
    if distance == "dot":
        return -(xq @ xb.T)
    raise ValueError(f"unknown distance {distance!r}; expected one of {', '.join(METRICS)}")


def _cosines(a: np.ndarray, b: np.ndarray, zero: float) -> np.ndarray:
    """(n,) float64 cosine of rows a[i], b[i]; ``zero`` where either row is all zeros."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ok = (na > 0) & (nb > 0)
    out = np.full(len(a), zero, np.float64)
    out[ok] = np.einsum("ij,ij->i", a[ok], b[ok]) / (na[ok] * nb[ok])
    return out


def _min_per_query(d: np.ndarray, q_of: np.ndarray, nq: int) -> np.ndarray:
    """(nq,) minimum of the values d grouped by query index q_of (inf for a query without any)."""
    out = np.full(nq, np.inf)
    np.minimum.at(out, q_of, d)
    return out


def _angle_summary(q: np.ndarray, nn: np.ndarray, rand: np.ndarray) -> dict[str, float]:
    a, r = angles_deg(q, nn), angles_deg(q, rand)
    return {"mean_deg": float(np.nanmean(a)), "median_deg": float(np.nanmedian(a)),
            "random_mean_deg": float(np.nanmean(r))}


def _results_at_recall(curve: dict[str, list[float]], level: float) -> float | None:
    """Results per query needed for NN recall ``level``: geometric interpolation between the two radii
    that bracket it (None when no radius reaches it)."""
    res = np.asarray(curve["results_per_query"], np.float64)
    rec = np.asarray(curve["recall"], np.float64)
    above = np.flatnonzero(rec >= level)
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0 or rec[i] == rec[i - 1] or res[i - 1] <= 0:
        return float(res[i])
    t = (level - rec[i - 1]) / (rec[i] - rec[i - 1])
    return float(res[i - 1] * (res[i] / res[i - 1]) ** t)


def _floats(a: np.ndarray) -> list[float]:
    """A JSON-able list of Python floats; float32 values are written with the 8 digits they carry."""
    a = np.asarray(a).ravel()
    if a.dtype == np.float32:
        return [float(f"{v:.8g}") for v in a.tolist()]
    return a.astype(np.float64).tolist()
