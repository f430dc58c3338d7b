"""Hash-table lookup on debsift200k: candidates per query vs 1-recall@10, for several (K, L, probes).

Binary codes: LSH (``rotation --dout 64`` fitted on the learn set, then sign bits) and, for each
``--codes FILE`` given, the codes of a ``vecspread encode --codec sign`` artifact made from the same
dataset (catalyzer, NPhash, ITQ...; its stored model transforms the queries). For every setting the
script prints the mean number of distinct candidates per query (codes whose Hamming distance is
computed), 1-recall@1 and @10 against the exact L2 ground truth shipped with the dataset, and the
time per query. The first row of each code set is the exhaustive Hamming scan (every code a
candidate). For the ``slices`` layout, faiss ``IndexBinaryMultiHash`` (nflip = probe radius) is
timed on the same settings as a reference; its candidate count (``ndis``) equals ours.

Example::

    python benchmarks/hashtables_debsift.py                       # LSH, default grid
    python benchmarks/hashtables_debsift.py --codes cat.codes.h5  # plus a learned code
    python benchmarks/hashtables_debsift.py --nq 200 --grid 16x4x1,20x8x0   # quick

Settings are written KxLxR: K key bits, L tables, R the probe radius (every bucket within Hamming
distance R of the query's key is probed in each table: probes = sum_{i<=R} C(K, i) - 1 extra buckets).
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

DEFAULT_DATA = "/work/shared/data/debsift200k.h5"
DEFAULT_GRID = ("8x1x0,8x4x0,8x4x1,12x1x0,12x4x0,12x4x1,12x8x1,16x1x0,16x4x0,16x4x1,16x4x2,"
                "16x16x1,16x16x2,20x4x0,20x8x1,20x16x2,24x8x0,24x8x1,24x16x2")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import faiss

    from vecspread.io.datasets import Dataset
    from vecspread.codecs.sign.codec import SignCodec
    from vecspread.transforms.linear.transforms import RotationTransform

    faiss.omp_set_num_threads(args.threads)
    grid = [tuple(int(v) for v in s.split("x")) for s in args.grid.split(",") if s]

    with Dataset(args.data) as ds:
        xq = ds.read("test", args.nq)
        gt_I = ds.art.file["neighbors"][: len(xq)].astype(np.int64)
        gt_D = ds.art.file["distances"][: len(xq)].astype(np.float32)
        code_sets: list[tuple[str, np.ndarray, np.ndarray]] = []
        if not args.no_lsh:
            t0 = time.perf_counter()
            rot = RotationTransform(dout=args.lsh_bits, seed=args.seed).fit(ds.read("learn"))
            sign = SignCodec().fit(np.zeros((0, args.lsh_bits), np.float32))
            xb_codes = np.concatenate([sign.encode(rot.apply(x)) for _, x in ds.blocks("train")])
            code_sets.append((f"lsh{args.lsh_bits}", xb_codes, sign.encode(rot.apply_query(xq))))
            log(f"LSH codes: {xb_codes.shape} in {time.perf_counter() - t0:.1f} s")
        for path in args.codes:
            code_sets.append(load_codes(path, ds, xq))

    rows: list[dict[str, Any]] = []
    for name, xb_codes, xq_codes in code_sets:
        rows += run_code_set(name, xb_codes, xq_codes, gt_I, gt_D, grid, args)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": os.path.basename(args.data), "nq": int(len(xq)), "rows": rows}, f, indent=1)
    return 0


def run_code_set(name: str, xb: np.ndarray, xq: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray,
                 grid: list[tuple[int, ...]], args: argparse.Namespace) -> list[dict[str, Any]]:
    import faiss

    from vecspread.codecs.sign.codec import SignCodec
    from vecspread.metrics import one_recall_at
    from vecspread.scanners import search
    from vecspread.scanners.tables.hashtables import HashTables, probes_within

    k = 10
    bits = 8 * xb.shape[1]
    sign = SignCodec().fit(np.zeros((0, bits), np.float32))
    yq = np.unpackbits(xq, axis=1, bitorder="little").astype(np.float32) * 2 - 1
    t0 = time.perf_counter()
    D, I = search(sign, yq, [xb], k)
    ms = 1000 * (time.perf_counter() - t0) / len(xq)
    rows = [{"codes": name, "K": None, "L": None, "radius": None, "probes": None, "layout": "scan",
             "candidates": float(len(xb)), "recall1@1": one_recall_at(I, gt_I, gt_D, 1),
             "recall1@10": one_recall_at(I, gt_I, gt_D, 10), "ms_per_query": ms}]
    log(f"{name}: exhaustive scan {rows[0]['recall1@10']:.3f}")
    for K, L, radius in grid:
        if K > bits:
            continue
        nprobe = probes_within(K, radius)
        t0 = time.perf_counter()
        tables = HashTables(K, L, layout=args.layout, seed=args.seed).build([xb])
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        D, I, ncand = tables.search(xq, k, nprobe)
        ms = 1000 * (time.perf_counter() - t0) / len(xq)
        row = {"codes": name, "K": K, "L": L, "radius": radius, "probes": nprobe, "layout": args.layout,
               "candidates": float(ncand.mean()), "median_candidates": float(np.median(ncand)),
               "recall1@1": one_recall_at(I, gt_I, gt_D, 1), "recall1@10": one_recall_at(I, gt_I, gt_D, 10),
               "ms_per_query": ms, "build_s": build_s}
        if args.layout == "slices" and K * L <= bits and args.faiss:
            index = faiss.IndexBinaryMultiHash(bits, L, K)
            index.nflip = radius
            index.add(xb)
            stats = faiss.cvar.indexBinaryHash_stats
            stats.reset()
            t0 = time.perf_counter()
            index.search(xq, k)
            row["faiss_ms_per_query"] = 1000 * (time.perf_counter() - t0) / len(xq)
            row["faiss_candidates"] = stats.ndis / len(xq)
        rows.append(row)
        log(f"{name} K={K} L={L} r={radius}: {row['candidates']:.0f} candidates, 1-R@10 {row['recall1@10']:.3f}")
    return rows


def load_codes(path: str, ds: Any, xq: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """Database codes of a sign-codes artifact and the query codes its stored model makes."""
    from vecspread.io.artifacts import check_lineage
    from vecspread.models import open_codes

    art, transform, codec = open_codes(path)
    with art:
        check_lineage(art, "dataset", ds.art, "codes were encoded from")
        if codec.family != "binary":
            raise SystemExit(f"{path}: hash tables need binary sign codes, found codec {codec.name!r}")
        xb = art.file["codes"][:]
        method = art.params.get("method") or os.path.basename(path)
        return f"{method}{codec.code_bits}", xb, codec.encode(transform.apply_query(xq))


def print_table(rows: list[dict[str, Any]]) -> None:
    has_faiss = any("faiss_ms_per_query" in r for r in rows)
    head = "| codes | K | L | radius | probes/table | cand./query | 1-R@1 | 1-R@10 | ms/query |"
    head += " faiss ms/query |" if has_faiss else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        cells = [r["codes"], fmt(r["K"]), fmt(r["L"]), fmt(r["radius"]), fmt(r["probes"]),
                 f"{r['candidates']:.0f}", f"{r['recall1@1']:.3f}", f"{r['recall1@10']:.3f}",
                 f"{r['ms_per_query']:.2f}"]
        if has_faiss:
            cells.append(f"{r['faiss_ms_per_query']:.2f}" if "faiss_ms_per_query" in r else "")
        print("| " + " | ".join(cells) + " |")


def fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="dataset with learn/train/test and L2 ground truth")
    p.add_argument("--codes", action="append", default=[], help="a sign-codes artifact of this dataset (repeatable)")
    p.add_argument("--grid", default=DEFAULT_GRID, help="comma-separated KxLxR settings")
    p.add_argument("--layout", default="random", choices=["random", "slices"], help="bits keying each table")
    p.add_argument("--faiss", action="store_true", help="with --layout slices: time faiss IndexBinaryMultiHash too")
    p.add_argument("--lsh-bits", type=int, default=64, help="LSH code length")
    p.add_argument("--no-lsh", action="store_true", help="only the --codes files")
    p.add_argument("--nq", type=int, default=None, help="use the first nq queries (default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the LSH rotation and of the random layout")
    p.add_argument("--threads", type=int, default=1, help="faiss threads (the scan baseline, faiss multi-hash)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if not os.path.exists(args.data):
        p.error(f"{args.data}: no such file")
    return args


if __name__ == "__main__":
    sys.exit(main())
