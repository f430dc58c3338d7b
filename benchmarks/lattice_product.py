"""Product lattice codes past 64 bits: block layouts and the handling of block norms, measured.

    python benchmarks/lattice_product.py ../shared/data/debsift200k.h5 --bits 128 [--model M.h5 ...] [--pca 48]

For each source of vectors (each ``--model``, a trained vecspread model, and ``pca --dout D`` fitted on
``learn``, alone and followed by a random rotation ``rotation --dout D --seed 0`` that spreads the variance
over the blocks), the database ``train`` and the queries ``test`` are transformed once, then coded at
``--bits`` in every layout of ``--blocks`` (default 2, 3, 4 blocks) and every way of handling the norm of
each block:

- ``unit``: what ``encode --codec lattice`` does: each block coded as a direction on its own spherical
  lattice, all blocks decoded to norm 1 / sqrt(blocks); nothing else stored; searched by its scanner;
- ``8-bit norms``: each block's share of the vector's norm, ||y_b|| / ||y|| in [0, 1], stored in 8 bits
  (uniform), its direction on a lattice of the remaining bits (``--bits`` - 8 x blocks, split as the
  codec splits), decoded as norm x direction (the IndexLattice way: quantized norms); searched exactly
  over the decoded vectors (faiss IndexFlatL2, unit queries);
- ``exact norms``: the same with the float norms and the full budget for the directions (not a code:
  the bound on what storing norms could give).

Prints one markdown table of 1-recall@1/10/100 (the dataset's ground truth) on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date

import faiss
import h5py
import numpy as np

from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.distances import unit_rows
from vecspread.io.datasets import Dataset
from vecspread.metrics import one_recall_at
from vecspread.runtime import set_threads
from vecspread.scanners import search

K = 100
ATS = (1, 10, 100)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def with_norms(yb: np.ndarray, yq: np.ndarray, bits: int, nb: int, norm_bits: int | None) -> np.ndarray:
    """I (nq, K) of the unit queries against the database decoded as (block norm) x (lattice direction);
    ``norm_bits`` None: exact float norms and all ``bits`` for the directions."""
    dir_bits = bits if norm_bits is None else bits - norm_bits * nb
    codec = LatticeCodec(bits=dir_bits, blocks=nb).fit(yb[:1])
    directions = codec.decode(codec.encode(yb)) * np.float32(np.sqrt(nb))  # unit per block
    y = unit_rows(yb)
    norms = np.stack([np.linalg.norm(p, axis=1) for p in (y[:, cols] for cols in codec.block_slices())], axis=1)
    if norm_bits is not None:
        levels = (1 << norm_bits) - 1
        norms = np.round(np.clip(norms, 0, 1) * levels) / levels
    parts = [d * n[:, None] for d, n in zip((directions[:, cols] for cols in codec.block_slices()), norms.T)]
    x = np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    return index.search(unit_rows(yq), K)[1]


def unit_blocks(yb: np.ndarray, yq: np.ndarray, bits: int, nb: int) -> tuple[np.ndarray, str]:
    codec = LatticeCodec(bits=bits, blocks=nb).fit(yb[:1])
    codes = codec.encode(yb)
    layout = " + ".join(f"{b.dim}-d r2 {b.r2}" for b in codec.layout_)
    return search(codec, yq, [codes], K)[1], layout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--bits", type=int, default=128)
    ap.add_argument("--model", action="append", default=[], help="a trained vecspread model (repeatable)")
    ap.add_argument("--pca", type=int, default=48, help="PCA dimension (0: none)")
    ap.add_argument("--blocks", type=lambda v: [int(b) for b in v.split(",")], default=[2, 3, 4])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_threads(args.threads)

    from vecspread.api import load_transform
    from vecspread.stages.train import fit_method
    from vecspread.transforms.chain import ChainTransform

    with Dataset(args.dataset) as ds:
        xt, xb, xq = ds.read("learn"), ds.read("train"), ds.read("test")
    with h5py.File(args.dataset, "r") as f:
        gt_I, gt_D = f["neighbors"][()], f["distances"][()]
    sources = [(m, load_transform(m)) for m in args.model]
    if args.pca:
        pca, _ = fit_method("pca", xt, dout=args.pca)
        sources.append((f"pca {args.pca}", pca))
        rotation, _ = fit_method("rotation", pca.apply(xt), dout=args.pca, seed=0)
        sources.append((f"pca {args.pca} + rotation", ChainTransform([pca, rotation])))

    rows = []
    for name, transform in sources:
        t0 = time.perf_counter()
        yb = np.ascontiguousarray(transform.apply(xb), dtype=np.float32)
        yq = np.ascontiguousarray(transform.apply_query(xq), dtype=np.float32)
        log(f"{name}: {yb.shape[1]} dimensions, transformed in {time.perf_counter() - t0:.1f} s")
        for nb in args.blocks:
            variants = []
            try:
                I, layout = unit_blocks(yb, yq, args.bits, nb)
                variants.append(("unit", layout, I))
                variants.append(("8-bit norms", f"{nb} x 8 norm bits", with_norms(yb, yq, args.bits, nb, 8)))
                variants.append(("exact norms (bound)", "", with_norms(yb, yq, args.bits, nb, None)))
            except Exception as e:  # a layout this dimension cannot store: say so, go on
                log(f"  {nb} blocks: {e}")
            for how, layout, I in variants:
                r = [one_recall_at(I, gt_I, gt_D, k) for k in ATS]
                rows.append((name, nb, how, layout, r))
                log(f"  {nb} blocks, {how}: 1-recall@1/10/100 " + "/".join(f"{v:.3f}" for v in r))

    print(f"\nMachine: {platform.processor() or platform.machine()}, {args.threads} thread(s); date {date.today()}; "
          f"{len(xb)} codes of {args.bits} bits; {len(xq)} queries.\n")
    print("| vectors | blocks | block norms | layout | R@1 | R@10 | R@100 |")
    print("|---|---:|---|---|---:|---:|---:|")
    for name, nb, how, layout, r in rows:
        print(f"| {name} | {nb} | {how} | {layout} | " + " | ".join(f"{v:.3f}" for v in r) + " |")


if __name__ == "__main__":
    main()
