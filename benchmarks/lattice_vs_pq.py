"""Lattice search time per query versus faiss IndexPQ(d, 8, 8), same data, same run, same threads.

    python benchmarks/lattice_vs_pq.py ../shared/data/debsift200k.h5 [--threads 2] [--repeats 3]

Both scan all 200k database codes (64 bits each) for the 1k queries with k = 100:
- vecspread: PCA to 24 dimensions + spherical lattice r^2 = 79 (64 bits), asymmetric search
  (queries unquantized, each block of codes decoded once and compared with all queries by BLAS);
- faiss: IndexPQ(128, 8, 8) trained on the learn set, asymmetric distance computation (ADC).
Times are the best of --repeats runs of the search call (query transform included for vecspread).
Prints one JSON line with ms per query, the ratio and 1-recall@10 of both.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import faiss

from vecspread.io.datasets import Dataset
from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.metrics import one_recall_at
from vecspread.runtime import set_threads
from vecspread.scanners import search
from vecspread.transforms.linear.transforms import PCATransform


def best_time(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--block-size", type=int, default=65536)
    ap.add_argument("-k", type=int, default=100)
    args = ap.parse_args()
    threads = set_threads(args.threads)
    with Dataset(args.dataset) as ds:
        xt, xb, xq = ds.read("learn"), ds.read("train"), ds.read("test")
        gt_I, gt_D = ds.art.file["neighbors"][()], ds.art.file["distances"][()]
    k = args.k

    pca = PCATransform(dout=24).fit(xt)
    codec = LatticeCodec(bits=64).fit(pca.apply(xt[:1]))
    t0 = time.perf_counter()
    codes = codec.encode(pca.apply(xb))
    lattice_encode = time.perf_counter() - t0
    blocks = [codes[i : i + args.block_size] for i in range(0, len(codes), args.block_size)]
    t_lat, (_, I_lat) = best_time(lambda: search(codec, pca.apply(xq), blocks, k), args.repeats)

    pq = faiss.IndexPQ(xb.shape[1], 8, 8)
    pq.train(xt)
    t0 = time.perf_counter()
    pq.add(xb)
    pq_encode = time.perf_counter() - t0
    t_pq, (_, I_pq) = best_time(lambda: pq.search(xq, k), args.repeats)

    nq = len(xq)
    print(json.dumps({
        "machine": platform.processor() or platform.machine(), "threads": threads, "n": len(xb), "nq": nq, "k": k,
        "lattice_ms_per_query": 1000 * t_lat / nq, "pq_ms_per_query": 1000 * t_pq / nq,
        "ratio_lattice_over_pq": t_lat / t_pq,
        "lattice_encode_s": lattice_encode, "pq_encode_s": pq_encode,
        "lattice_r2": codec.r2_, "lattice_bits": codec.code_bits,
        "lattice_1recall@10": one_recall_at(I_lat, gt_I, gt_D, 10), "pq_1recall@10": one_recall_at(I_pq, gt_I, gt_D, 10),
    }))


if __name__ == "__main__":
    main()
