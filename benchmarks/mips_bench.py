"""Inner-product search with 64-bit hash codes: Sign-ALSH, L2-ALSH, Simple-LSH and plain sign LSH.

Reads a dataset whose ``distance`` is "dot" (e.g. the GCIDE word vectors of
``benchmarks/make_mips_dataset.py``), fits each method on its ``learn`` set, encodes ``train``,
ranks the whole database for each ``test`` query by the codec's own distance (Hamming for sign
codes, number of colliding hashes for E2LSH codes; ties by id) and compares with the exact
inner-product ranking (vecspread.knn.knn_blocks, distance "dot").

Reported per method, as in the ALSH papers' precision-recall evaluation, for the gold sets
"true top-T" with T in {1, 5, 10}: recall R(T, K) = |true top-T in the first K retrieved| / T for
K in {T, 10, 100, 1000}, and precision P(T, K) = R(T, K) * T / K; plus the project's tie-aware
1-recall@1/10/100 (vecspread.metrics). Rows marked "lift only" rank by the exact similarity the
hash estimates (cos(P(x), Q(q)), or -||Q(q) - P(x)|| for L2-ALSH) without any hashing: the error
due to the lift alone; "exact angle" is the same for plain sign LSH (the cosine ranking, blind to
norms).

Example::

    python benchmarks/make_mips_dataset.py -o /tmp/gcide-mips.h5
    python benchmarks/mips_bench.py /tmp/gcide-mips.h5 --bits 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TOPS = (1, 5, 10)
RETRIEVED = (1, 5, 10, 100, 1000)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import faiss
    import torch

    from vecspread.io.datasets import Dataset
    from vecspread.knn import knn_blocks

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    with Dataset(args.data) as ds:
        if ds.distance != "dot":
            log(f"note: {args.data} declares distance {ds.distance!r}; ranking by inner product anyway")
        xt, xb, xq = ds.read("learn"), ds.read("train"), ds.read("test", args.nq)
    kmax = min(max(RETRIEVED), len(xb))
    gt_D, gt_I = knn_blocks(xq, [(0, xb)], kmax, distance="dot")

    from vecspread.codecs.sign.codec import SignCodec
    from vecspread.scanners import search
    from vecspread.stages.train import fit_method

    rows = []
    for name, (method, options) in methods(args).items():
        t0 = time.perf_counter()
        transform, codec = fit_method(method, xt, **options)
        codec = codec or SignCodec().fit(np.zeros((0, transform.d_out), np.float32))  # plain rotation: sign bits
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        codes = codec.encode(transform.apply(xb))
        _, I = search(codec, transform.apply_query(xq), [codes], kmax)
        search_s = time.perf_counter() - t0
        row = evaluate(name, I, gt_I, gt_D)
        row.update(bits=codec.code_bits, fit_s=round(fit_s, 2), encode_search_s=round(search_s, 2))
        if hasattr(transform, "scale_"):
            bound = transform.bound / transform.scale_
            row["database_beyond_bound"] = int((np.linalg.norm(xb, axis=1) > bound).sum())
        rows.append(row)
        log(f"{name}: 1-R@10 {row['1-recall@10']:.3f} ({search_s:.1f} s)")
        if args.lift_only:
            label = "lift only" if hasattr(transform, "lift") else "exact angle"
            rows.append(evaluate(f"{name} ({label})", lift_ranking(transform, xb, xq, kmax), gt_I, gt_D))
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": os.path.basename(args.data), "nq": int(len(xq)), "n": int(len(xb)), "rows": rows},
                      f, indent=1)
    return 0


def methods(args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (train --method, its options); a method without a codec of its own gets sign bits."""
    b, s = args.bits, args.seed
    out = {
        "sign LSH (rotation + sign)": ("rotation", {"dout": b, "seed": s}),
        "Sign-ALSH m=2 U=0.75": ("sign-alsh", {"norm_terms": 2, "max_norm": 0.75, "bits": b, "seed": s}),
        "Simple-LSH": ("simple-lsh", {"bits": b, "seed": s}),
    }
    for hb in args.l2_hash_bits:
        out[f"L2-ALSH m=3 U=0.83 r=2.5, {b // hb} x {hb}-bit hashes"] = (
            "l2-alsh", {"norm_terms": 3, "max_norm": 0.83, "r": 2.5, "bits": b, "hash_bits": hb, "seed": s})
    return out


def lift_ranking(transform: Any, xb: np.ndarray, xq: np.ndarray, k: int) -> np.ndarray:
    """Top-k ids by the exact similarity the method's hashes estimate (no hashing).

    Plain sign LSH estimates the angle between q and x: its reference is the cosine ranking.
    """
    if not hasattr(transform, "lift"):
        from vecspread.distances import unit_rows as normalize_rows

        score = normalize_rows(xq).astype(np.float64) @ normalize_rows(xb).T.astype(np.float64)
        return np.argsort(-score, axis=1, kind="stable")[:, :k]
    P = transform.lift(xb).astype(np.float64)
    Q = transform.lift_query(xq).astype(np.float64)
    if transform.name == "l2-alsh":
        score = -((Q**2).sum(1)[:, None] - 2 * Q @ P.T + (P**2).sum(1)[None, :])
    else:
        score = (Q @ P.T) / np.linalg.norm(P, axis=1)
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


def evaluate(name: str, I: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray) -> dict[str, Any]:
    from vecspread.metrics import one_recall_at

    row: dict[str, Any] = {"method": name}
    for T in TOPS:
        for K in RETRIEVED:
            if K < T or K > I.shape[1]:
                continue
            found = np.mean([np.isin(gt_I[q, :T], I[q, :K]).sum() for q in range(len(I))])
            row[f"R(T={T},K={K})"] = float(found / T)
            row[f"P(T={T},K={K})"] = float(found / K)
    for k in (1, 10, 100):
        row[f"1-recall@{k}"] = one_recall_at(I, gt_I, gt_D, k)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["1-recall@1", "1-recall@10", "1-recall@100", "R(T=5,K=5)", "R(T=5,K=100)", "R(T=10,K=10)",
            "R(T=10,K=100)", "R(T=10,K=1000)", "P(T=10,K=100)"]
    print("| method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for r in rows:
        print(f"| {r['method']} | " + " | ".join(f"{r[c]:.3f}" if c in r else "" for c in cols) + " |")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="dataset with learn/train/test (distance dot)")
    p.add_argument("--bits", type=int, default=64, help="code length in bits, all methods")
    p.add_argument("--l2-hash-bits", type=int, nargs="+", default=[4, 8],
                   help="bits stored per E2LSH hash for L2-ALSH (one row each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nq", type=int, default=None, help="first nq queries only")
    p.add_argument("--no-lift-only", dest="lift_only", action="store_false", help="skip the unhashed lift rows")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write all rows to this JSON file")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
