"""The faiss baselines (lsh, lsh-thresholds, itq, pq, opq, lsq) on debsift200k, through vecspread's classes.

For each method: fit on the learn set, encode the database and search the queries block by block (as
``vecspread encode`` / ``search`` do), then 1-recall@1/10/100 against the file's exact ground truth.
With ``--compare-faiss`` the faiss index the method reproduces is trained on the same vectors and
searched too, and its recalls and the share of identical codes are reported beside ours.

Prints one JSON line per method on stdout; progress lines go to stderr.

The full run (faiss defaults: OPQ 50 iterations, LSQ 25 training / 16 encoding iterations)::

    python benchmarks/baselines_debsift.py --bits 64 --threads 16 --compare-faiss

A smoke run on one thread (LSQ on a small budget)::

    python benchmarks/baselines_debsift.py --threads 1 --base-limit 50000 --queries-limit 200 \\
        --train-iters 3 --encode-ils-iters 4 --lsq-learn-limit 20000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

DEFAULT_DATA = "/work/shared/data/debsift200k.h5"
METHODS = ("lsh", "lsh-thresholds", "itq", "pq", "opq", "lsq")
BLOCK = 65536
KS = (1, 10, 100)

log = logging.getLogger("baselines")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    import faiss
    import h5py

    faiss.omp_set_num_threads(args.threads)
    with h5py.File(args.data, "r") as f:
        xt = f["learn"][: args.learn_limit].astype(np.float32)
        xb = f["train"][: args.base_limit].astype(np.float32)
        xq = f["test"][: args.queries_limit].astype(np.float32)
        full_base = args.base_limit is None or args.base_limit >= f["train"].shape[0]
        gt = (f["neighbors"][: len(xq)].astype(np.int64), f["distances"][: len(xq)]) if full_base else None
    if gt is None:  # the stored ground truth is for the whole database: recompute it for the slice
        from vecspread.knn import knn_blocks

        D, I = knn_blocks(xq, ((s, xb[s : s + BLOCK]) for s in range(0, len(xb), BLOCK)), 100)
        gt = (I, D)

    for method in args.methods:
        n_train = args.lsq_learn_limit if method == "lsq" and args.lsq_learn_limit else len(xt)
        row = run_method(method, xt[:n_train], xb, xq, gt, args)
        print(json.dumps(row, sort_keys=True), flush=True)
    return 0


def run_method(method: str, xt: np.ndarray, xb: np.ndarray, xq: np.ndarray, gt: tuple, args: argparse.Namespace) -> dict:
    from vecspread.scanners import search
    from vecspread.stages.train import fit_method

    log.info(f"{method}: fitting on {len(xt)} vectors")
    t0 = time.perf_counter()
    transform, codec = fit_method(method, xt, **method_options(method, args))
    train_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    codes = np.concatenate([codec.encode(transform.apply(xb[s : s + BLOCK])) for s in range(0, len(xb), BLOCK)])
    encode_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    _, I = search(codec, transform.apply_query(xq), (codes[s : s + BLOCK] for s in range(0, len(codes), BLOCK)), 100)
    search_s = time.perf_counter() - t0

    row: dict[str, Any] = {
        "method": method, "bits": codec.code_bits, "code_size": codec.code_size, "n_learn": len(xt), "n_base": len(xb),
        "n_queries": len(xq), "threads": args.threads, "params": method_options(method, args),
        "recall": recalls(I, gt), "train_s": round(train_s, 2), "encode_s": round(encode_s, 2),
        "search_s": round(search_s, 3), "ms_per_query": round(1000 * search_s / len(xq), 4),
    }
    if args.compare_faiss:
        row["faiss"] = run_faiss(method, xt, xb, xq, gt, codes, args)
    return row


def method_options(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ``train --method`` options of each baseline."""
    options: dict[str, Any] = {"bits": args.bits}
    if method in ("opq", "lsq"):
        options["train_iters"] = args.train_iters
    if method == "lsq":
        options["encode_ils_iters"] = args.encode_ils_iters
    return options


def run_faiss(method: str, xt: np.ndarray, xb: np.ndarray, xq: np.ndarray, gt: tuple, codes: np.ndarray,
              args: argparse.Namespace) -> dict:
    """The faiss index the method reproduces, trained and searched on the same vectors (one add() call)."""
    import faiss

    d, M = xt.shape[1], args.bits // 8
    factory = {
        "lsh": f"IndexLSH(d, {args.bits}, True, False)",
        "lsh-thresholds": f"IndexLSH(d, {args.bits}, True, True)",
        "itq": f"ITQ{args.bits},LSH",
        "pq": f"PQ{M}np",
        "opq": f"OPQ{M},PQ{M}np",
        "lsq": f"LSQ{M}x8",
    }[method]
    if method.startswith("lsh"):
        index = faiss.IndexLSH(d, args.bits, True, method == "lsh-thresholds")
    else:
        index = faiss.index_factory(d, factory)
    if method == "opq" and args.train_iters is not None:
        faiss.downcast_VectorTransform(index.chain.at(0)).niter = args.train_iters
    if method == "lsq":
        lsq = faiss.downcast_index(index).lsq
        if args.train_iters is not None:
            lsq.train_iters = args.train_iters
        if args.encode_ils_iters is not None:
            lsq.encode_ils_iters = args.encode_ils_iters
    log.info(f"{method}: faiss reference {factory}")
    t0 = time.perf_counter()
    index.train(xt)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.add(xb)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, I = index.search(xq, 100)
    search_s = time.perf_counter() - t0
    inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index)
    ref_codes = faiss.vector_to_array(inner.codes).reshape(len(xb), -1)
    return {"index": factory, "recall": recalls(I, gt), "train_s": round(train_s, 2), "encode_s": round(encode_s, 2),
            "search_s": round(search_s, 3), "identical_codes": float((ref_codes == codes).all(axis=1).mean())}


def recalls(I: np.ndarray, gt: tuple) -> dict[str, float]:
    from vecspread.metrics import one_recall_at

    gt_I, gt_D = gt
    return {f"1-R@{k}": round(one_recall_at(I, gt_I, gt_D, k), 4) for k in KS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="ann-benchmarks HDF5 file with a learn set")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--bits", type=int, default=64, help="code size in bits (M = bits/8 for pq, opq, lsq)")
    p.add_argument("--train-iters", type=int, default=None, help="OPQ / LSQ training iterations (default: faiss's, 50 / 25)")
    p.add_argument("--encode-ils-iters", type=int, default=None, help="LSQ encoding ILS iterations (default: faiss's, 16)")
    p.add_argument("--learn-limit", type=int, default=None, help="use the first N learn vectors")
    p.add_argument("--lsq-learn-limit", type=int, default=None, help="train LSQ on the first N learn vectors only")
    p.add_argument("--base-limit", type=int, default=None, help="use the first N database vectors (gt recomputed)")
    p.add_argument("--queries-limit", type=int, default=None, help="use the first N queries")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compare-faiss", action="store_true", help="also train and search the equivalent faiss index")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
