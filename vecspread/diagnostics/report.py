"""``vecspread inspect``: why a code works, on one model or codes artifact and a dataset.

The report gathers the statistics of ``spread`` (uniformity, ε-search against k-NN), the mean angle to the
true neighbour (Schmidt & Talwar's "mean correct angle"), ``codes`` (table balance, bit and atom usage) and
``recall`` (id-based against tie-aware recall), as a JSON-able dict; ``plots.write_figures`` draws it.
Distances follow ``vecspread.distances``: true L2 (not squared), 1 - cos, or -ip in the input space; the
transformed space is compared with L2, the geometry every codec here searches in (sign codes and the
lattice look at directions of centred or normalised outputs).
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Sequence

import numpy as np

from vecspread.diagnostics.codes import code_report
from vecspread.diagnostics.floats import floats
from vecspread.diagnostics.recall import ANN_BENCHMARKS_TOL, id_recall, true_distances
from vecspread.diagnostics.spread import count_within, epsilon_curve, epsilon_grid, uniformity
from vecspread.distances import angles_deg, paired
from vecspread.errors import ConfigError, InputError
from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, check_lineage, open_artifact
from vecspread.io.datasets import Dataset, read_sorted
from vecspread.knn import knn_blocks, merge_topk
from vecspread.metrics import tie_threshold
from vecspread.progress import Progress, as_progress

#: distance used in the transformed space (see the module docstring)
TRANSFORMED_DISTANCE = "euclidean"


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
    from vecspread.models import load_codec, open_codes, open_model

    progress = as_progress(progress)
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
        elif art.has("codec"):
            codec = load_codec(art)
        if ds.d != transform.d_in:
            raise InputError(
                f"{model_or_codes} expects {transform.d_in}-dimensional vectors but {dataset} has {ds.d}"
            )
        from vecspread.stages.encode import is_softmax

        if is_softmax(transform):  # a softmax model: its class search
            from vecspread.diagnostics.classes import class_report

            return {"artifact": model_or_codes, "kind": kind, "method": art.params.get("method"),
                    "d_in": int(transform.d_in), "d_out": int(transform.d_out), "dataset": dataset,
                    "class_search": class_report(transform, ds, nq=nq, codes_art=art if kind == "codes" else None,
                                                 codec=codec, seed=seed),
                    "seconds": round(time.perf_counter() - t0, 3)}
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
        codes_file = art.member("codes") if kind == "codes" else None
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
            target[space] = _min_per_query(paired(q[q_of], t_rows, distance), q_of, nq)
            D = knn[space][0]
            report["uniformity"][space] = {
                "p": uniformity(D[:, 0], D[:, k - 1]), "d1": floats(D[:, 0]), "dk": floats(D[:, k - 1]),
            }
            report["angle"][space] = _angle_summary(q, t_rows[first], p_rows)
            radii[space] = epsilon_grid(D, target[space], n_radii)

        counts = _range_pass(db, spaces, radii, progress)
        report["epsilon"] = {s: epsilon_curve(counts[s], target[s], radii[s]) for s in spaces}

        if codec is not None:
            report["codes"] = code_report(codes, codec, source="codes file" if kind == "codes" else "model codec")
        if kind == "codes":
            report["recall"] = _recall_report(
                ds, art, codec, xq, spaces["transformed"][0], recall_at, tol, block_size, progress
            )
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an :func:`inspect` report, flat, for a terminal summary (no arrays)."""
    if "class_search" in report:
        return _class_summary(report)
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


def _class_summary(report: dict[str, Any]) -> dict[str, Any]:
    c = report["class_search"]
    out: dict[str, Any] = {"artifact": report["artifact"], "method": report.get("method"),
                           "dims": f"{report['d_in']} -> {report['d_out']}", "classes": c["classes"],
                           "queries": c["nq"]}
    if c["accuracy"] is not None:
        out["accuracy (exact softmax)"] = round(c["accuracy"], 4)
    out["mean correct angle (deg)"] = round(c["mean_correct_angle"], 2)
    rn, cn = c["representation_norm"], c["class_vector_norm"]
    out["representation norm (std/mean)"] = f"{rn['mean']:.3g} ({rn['relative_std']:.3f})"
    out["class vector norm (std/mean)"] = f"{cn['mean']:.3g} ({cn['relative_std']:.3f})"
    for name, tb in c["table_balance"].items():
        out[f"table balance {name.replace('_', ' ')} (M/M*)"] = round(tb["ratio"], 3)
    for key in ("index_top1", "relative_accuracy"):
        if c.get(key) is not None:
            out[key.replace("_", " ")] = round(c[key], 4)
    return out


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
            xb = self.ds.read_rows("train", self.sel[start : start + self.block_size], self.block_size)
            yield start, xb, self.transform.apply(xb)

    def rows(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """{"input": (m, d_in), "transformed": (m, d_out)} float32 rows at sample positions (repeats allowed)."""
        x = self.ds.read_rows("train", self.ids(np.asarray(positions, np.int64)), self.block_size)
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
            parts.append(read_sorted(codes_file, db.ids(np.arange(start, start + len(xb)))))
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
            counts[space] += count_within(q, b, radii[space], distance)
        progress.advance(len(xb))
    progress.finish()
    return counts


def _recall_report(
    ds: Dataset, codes_art: Any, codec: Any, xq: np.ndarray, yq: np.ndarray, recall_at: Sequence[int],
    tol: float, block_size: int, progress: Progress,
) -> dict[str, Any]:
    """Search the queries over all codes; id-based and tie-aware k-recall@k against the full database."""
    from vecspread.scanners.base import code_blocks

    n_db, nq = codes_art.member("codes").shape[0], len(xq)
    have_gt = ds.has("neighbors") and ds.has("distances") and ds.member("neighbors").shape[0] >= nq
    kgt = int(ds.member("neighbors").shape[1]) if have_gt else max(recall_at)
    ks = sorted({int(kk) for kk in recall_at if 1 <= kk <= min(kgt, n_db)})
    if not ks:
        return {"k": [], "ids": {}, "tie_aware": {}, "tol": tol, "groundtruth": None}
    kmax = ks[-1]
    if have_gt:
        gt_I = ds.member("neighbors")[:nq].astype(np.int64)
        gt_D = ds.member("distances")[:nq].astype(np.float32)
        source = "dataset"
    else:
        progress.log("inspect: no ground truth in the dataset, computing exact k-NN of the queries")
        gt_D, gt_I = knn_blocks(xq, ds.blocks("train", block_size), kmax, ds.distance)
        source = "computed"
    from vecspread.scanners import search

    progress.log(f"inspect: searching {nq} queries over {n_db} codes")
    _, I = search(codec, yq, code_blocks(codes_art, block_size), kmax)
    D_true = true_distances(xq, I, lambda ids: ds.read_rows("train", ids, block_size), ds.distance)
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


