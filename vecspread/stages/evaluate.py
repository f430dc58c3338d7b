"""The ``eval`` stage: recall of a results artifact against exact ground truth."""

from __future__ import annotations

import numpy as np

from vecspread.io.artifacts import open_artifact
from vecspread.errors import ConfigError, InputError, LineageError
from vecspread.stages.groundtruth import open_groundtruth
from vecspread.metrics import k_recall_at, one_recall_at


def evaluate(results: str, groundtruth: str, at: list[int]) -> dict:
    """1-recall@k and k-recall@k for each k in ``at``; ids as strings in the returned dict."""
    if not at or any(k <= 0 for k in at):
        raise ConfigError(f"--at needs positive ranks, got {at}")
    res = open_artifact(results, "results", role="results")
    gt, gt_dataset, gt_n = open_groundtruth(groundtruth)
    with res, gt:
        res_dataset = (res.input("dataset") or {}).get("fingerprint")
        if res_dataset and gt_dataset and res_dataset != gt_dataset:
            raise LineageError(
                f"results {results} answer the queries of {(res.input('dataset') or {}).get('path')}, "
                f"but {groundtruth} is the ground truth of another dataset; use the matching ground truth"
            )
        I = res.read("neighbors")
        gt_I = gt.read("neighbors").astype("int64")
        gt_D = gt.read("distances")
        for name, a in (("neighbors", I), ("distances", res.read("distances"))):
            if a.ndim != 2:
                raise InputError(f"results {results}: '{name}' must be 2-D (queries, k), found shape {a.shape}")
        if gt_I.ndim != 2 or gt_D.shape != gt_I.shape:
            raise InputError(f"groundtruth {groundtruth}: 'neighbors' {gt_I.shape} and 'distances' {gt_D.shape} must be "
                             "2-D arrays of the same shape")
        n = int(res.params.get("n", 1 << 62))
        if I.size and (I.min() < -1 or I.max() >= n):
            raise InputError(f"results {results}: ids {I.min()}..{I.max()} outside -1..{n - 1} (file damaged or edited)")
        if gt_I.size and gt_I.min() < 0:
            raise InputError(f"groundtruth {groundtruth}: negative neighbour id {gt_I.min()} (file damaged or edited)")
        if gt_I.size and gt_n is not None and gt_I.max() >= gt_n:
            raise InputError(f"groundtruth {groundtruth}: neighbour id {gt_I.max()} outside its database of {gt_n} "
                             "vectors (file damaged or edited)")
        if I.shape[0] != gt_I.shape[0]:
            raise InputError(f"results have {I.shape[0]} queries but the ground truth has {gt_I.shape[0]}")
        for k in at:
            if k > I.shape[1]:
                raise ConfigError(f"--at {k} exceeds the {I.shape[1]} results per query; search with -k {k} or more")
            if k > gt_I.shape[1]:
                raise ConfigError(f"--at {k} exceeds the ground truth's {gt_I.shape[1]} neighbours; run gt with -k {k}")
        report = {
            "results": results, "groundtruth": groundtruth, "nq": int(I.shape[0]),
            "recall": {str(k): one_recall_at(I, gt_I, gt_D, k) for k in at},
            "k_recall": {str(k): k_recall_at(I, gt_I, gt_D, k) for k in at},
            "codec": res.params.get("codec"),
            "ms_per_query": _number(res.file.attrs.get("ms_per_query")),
        }
        if gt.kind == "groundtruth" and gt.has("labels"):
            report["class_search"] = class_search_accuracy(I, gt_I, gt.read("labels"), groundtruth)
        return report


def class_search_accuracy(I: np.ndarray, gt_I: np.ndarray, labels: np.ndarray, groundtruth: str) -> dict:
    """For a softmax model's class search (``gt --model`` on a labelled dataset): ``accuracy`` of the exact
    softmax (its class, gt_I[:, 0], is the label), ``right`` how many queries that is, and
    ``relative_accuracy`` = P[the index's first class is the exact softmax's | the model is right] (seed
    000's Figure 7 measure; None when the model is right on no query)."""
    labels = np.asarray(labels)
    if labels.shape != (gt_I.shape[0],) or labels.dtype.kind not in "iu":
        raise InputError(f"groundtruth {groundtruth}: 'labels' must be one integer per query ({gt_I.shape[0]}), found "
                         f"{labels.dtype} {labels.shape} (file damaged or edited)")
    exact = gt_I[:, 0]
    right = exact == labels
    return {"accuracy": float(right.mean()) if len(right) else None, "right": int(right.sum()),
            "relative_accuracy": float((I[right, 0] == exact[right]).mean()) if right.any() else None}


def parse_min_recall(specs: list[str]) -> dict[int, float]:
    """Parse repeated ``K=V`` thresholds (1-recall@K must be at least V)."""
    out: dict[int, float] = {}
    for spec in specs:
        k_text, sep, v_text = spec.partition("=")
        try:
            k, v = int(k_text), float(v_text)
        except ValueError:
            k, v = 0, -1.0
        if not sep or k <= 0 or not 0 <= v <= 1:
            raise ConfigError(f"--min-recall {spec!r}: expected K=V with K a positive rank and V in [0, 1], e.g. 10=0.8")
        out[k] = v
    return out


def evaluate_with_checks(results: str, groundtruth: str, at: list[int], thresholds: dict[int, float]) -> tuple[dict, list[str]]:
    """:func:`evaluate` at the ranks ``at`` and those of ``thresholds`` (k -> minimum 1-recall@k); the report
    gains ``checks`` and the failed checks are returned as messages."""
    report = evaluate(results, groundtruth, sorted(set(at) | set(thresholds)))
    report["recall"] = {key: v for key, v in report["recall"].items() if int(key) in at or int(key) in thresholds}
    failures = [f"1-recall@{k} = {report['recall'][str(k)]:.4f} < {v}" for k, v in sorted(thresholds.items())
                if report["recall"][str(k)] < v]
    report["checks"] = {f"{k}": {"min": v, "ok": report["recall"][str(k)] >= v} for k, v in thresholds.items()}
    return report, failures


def _number(value: object) -> float:
    """A timing attribute (provenance) as a float; NaN when absent or not a number (a damaged file)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
