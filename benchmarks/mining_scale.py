"""Catalyzer mining at scale: exact against IVF neighbour search, its cost, its neighbour recall, its effect.

    python benchmarks/mining_scale.py ../shared/data/debsift200k.h5 [--part cost|train|both] [--epochs 8]

**cost**: a 200k-vector learn set, debsift200k's 100k ``learn`` followed by the first 100k rows of its
``train`` (the database: this stands in for a learn set twice as large; nothing here is evaluated on
those rows), scaled as the trainer scales it (divided by the mean norm). Times the positives (the
11-NN of every vector among all, kpos 10 + itself) and one epoch's hard-negative mining (the 51-NN of
every output, kneg 50 + itself, on the outputs of an untrained catalyzer network, d_out 24), exact
(faiss brute force) and IVF (``--mining ivf``, its default nprobe and others), and the neighbour recall
of IVF against exact on 2000 sampled rows.

**train**: the catalyzer (d_out 24, 64-bit lattice) trained on the 100k ``learn`` set with exact and
with IVF mining, the same seed, epochs and width (``--epochs``, ``--dint``), through the real CLI
(train, encode, search, eval): the test 1-recall@10 of each, and the training time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(approx, exact)]))


def cost(data: str) -> list[str]:
    import faiss
    import torch

    from vecspread.neural.mlp import build_mlp, init_mlp
    from vecspread.neural.torch_util import forward_batched
    from vecspread.transforms.catalyzer import PARAMS
    from vecspread.transforms.catalyzer.transform import _knn, ivf_knn

    with h5py.File(data, "r") as f:
        x = np.concatenate([f["learn"][:], f["train"][:100000]]).astype(np.float32)
    x /= np.float32(np.linalg.norm(x, axis=1).mean())
    net = build_mlp(x.shape[1], 24, 1024, 2, "bn-relu")
    init_mlp(net, torch.Generator().manual_seed(0))
    net.eval()
    y = forward_batched(net, x, 24, torch.device("cpu"))
    sub = np.random.default_rng(0).choice(len(x), 2000, replace=False)
    default = PARAMS["nprobe"].default
    rows = [f"| search (n = {len(x)}) | exact s | IVF nprobe | IVF s | IVF recall of the k-NN |", "|---|---|---|---|---|"]
    for name, v, k in (("positives: 11-NN, d = 128", x, 11), ("negatives: 51-NN of the outputs, d = 24", y, 51)):
        t0 = time.perf_counter()
        exact = _knn(v, v, k)
        t_exact = time.perf_counter() - t0
        log(f"{name}: exact {t_exact:.1f} s")
        for nprobe in sorted({16, default, 64}):
            t0 = time.perf_counter()
            approx = ivf_knn(v, v, k, nprobe, 0)
            t_ivf = time.perf_counter() - t0
            r = recall(approx[sub], exact[sub])
            log(f"{name}: IVF nprobe {nprobe} {t_ivf:.1f} s, recall {r:.3f}")
            mark = " (default)" if nprobe == default else ""
            rows.append(f"| {name} | {t_exact:.1f} | {nprobe}{mark} | {t_ivf:.1f} | {r:.3f} |")
    rows.append(f"\nfaiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    return rows


def vecspread(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "vecspread", *args], check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def train(data: str, work: Path, epochs: int, dint: int) -> list[str]:
    work.mkdir(parents=True, exist_ok=True)
    gt = str(work / "gt.h5")
    vecspread("gt", data, "-k", "100", "-o", gt)
    rows = ["| mining | epochs | dint | train s | test 1-recall@10 (lattice 64) | 1-recall@1 |", "|---|---|---|---|---|---|"]
    for mining in ("exact", "ivf"):
        model, codes, res = (str(work / f"{mining}.{x}.h5") for x in ("model", "codes", "res"))
        t0 = time.perf_counter()
        vecspread("train", data, "--method", "catalyzer", "--dout", "24", "--dint", str(dint), "--epochs", str(epochs),
                  "--mining", mining, "-o", model)
        t_train = time.perf_counter() - t0
        vecspread("encode", model, data, "-o", codes)
        vecspread("search", codes, data, "-k", "100", "-o", res)
        ev = json.loads(vecspread("eval", res, gt, "--json"))
        log(f"{mining}: {t_train:.0f} s, 1-recall@10 {ev['recall']['10']:.4f}")
        rows.append(f"| {mining} | {epochs} | {dint} | {t_train:.0f} | {ev['recall']['10']:.4f} | {ev['recall']['1']:.4f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--part", choices=("cost", "train", "both"), default="both")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--dint", type=int, default=1024)
    ap.add_argument("--workdir", default="/tmp/vs-mining")
    args = ap.parse_args()
    if args.part in ("cost", "both"):
        print("\n".join(cost(args.dataset)), flush=True)
    if args.part in ("train", "both"):
        print("\n".join(train(args.dataset, Path(args.workdir), args.epochs, args.dint)), flush=True)


if __name__ == "__main__":
    main()
