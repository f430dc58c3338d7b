"""Train NPhash on debsift200k's learn set, sign-encode its database, search its queries (Hamming).

Prints one JSON line on stdout: the settings, 1-recall@1/10/100 (tie-aware in true distance) and
10-/100-recall, for NPhash and, with ``--rotation-baseline``, for the random rotation + sign baseline
(LSH, ``vecspread train --method rotation --dout BITS`` then ``encode --codec sign``); training time
(total, per epoch, and the estimated time of a full epoch when the budget stopped one part-way),
transform, encoding and search times. Hamming ties are broken by id (SignCodec); beside that recall,
``recall_random_ties`` gives its expectation when equal Hamming distances are ordered at random.
Per-epoch progress goes to stderr through the "vecspread" logger.

The lead's full run (30 minutes of training, 64 bits, two threads)::

    python benchmarks/nphash_debsift.py --bits 64 --minutes 30 --threads 2 --rotation-baseline

Quick smoke run (a couple of minutes)::

    python benchmarks/nphash_debsift.py --bits 64 --learn-limit 20000 --proxies 2000 --minutes 2 --threads 1
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

DEFAULT_DATA = "/work/shared/data/debsift200k.h5"
KS = (1, 10, 100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr, format="%(message)s")

    import faiss
    import h5py
    import torch

    from vecspread.neural.validation import split_sizes
    from vecspread.runtime import RunSettings
    from vecspread.transforms.linear.transforms import RotationTransform
    from vecspread.transforms.nphash.transform import NPHashTransform

    if args.threads:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)

    with h5py.File(args.data, "r") as f:
        xt = (f["learn"][: args.learn_limit] if args.learn_limit else f["learn"][:]).astype(np.float32)
        xb = f["train"][:].astype(np.float32)
        xq = f["test"][:].astype(np.float32)
        gt_I = f["neighbors"][:].astype(np.int64)
        gt_D = f["distances"][:].astype(np.float32)

    params: dict[str, Any] = dict(
        bits=args.bits, dint=args.dint, hidden_layers=args.hidden_layers, beta=args.beta, k=args.k,
        proxies=args.proxies, tau_in=args.tau_in, tau_out=args.tau_out, kl=args.kl, optimizer=args.optimizer,
        lr=args.lr, momentum=args.momentum, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
        val_every=args.val_every,
    )
    if args.val_size is not None:
        params["val_size"] = args.val_size if len(args.val_size) == 2 else args.val_size[0]
    run = RunSettings(threads=args.threads, device=args.device, checkpoint=args.checkpoint, resume=args.resume,
                      max_minutes=args.minutes)

    t0 = time.perf_counter()
    model = NPHashTransform(**params).fit(xt, run=run)
    train_s = time.perf_counter() - t0
    methods = {"nphash": evaluate(model, xb, xq, gt_I, gt_D)}
    methods["nphash"]["train_s"] = round(train_s, 2)
    if args.rotation_baseline:
        t0 = time.perf_counter()
        rot = RotationTransform(dout=args.bits, seed=args.seed).fit(xt)
        methods["rotation"] = evaluate(rot, xb, xq, gt_I, gt_D)
        methods["rotation"]["train_s"] = round(time.perf_counter() - t0, 2)

    hist = model.history_
    n_val_db, n_val_q = split_sizes(model.val_size, xt.shape[0], model.default_validation)
    nb = -(-(xt.shape[0] - n_val_db - n_val_q) // args.batch_size)
    out = {
        "dataset": os.path.basename(args.data),
        "n_learn": int(xt.shape[0]),
        "n_db": int(xb.shape[0]),
        "n_queries": int(xq.shape[0]),
        "params": {k: v for k, v in model.get_config().items() if k != "history"},
        "threads": args.threads,
        "recall": {name: m["recall"] for name, m in methods.items()},
        "methods": methods,
        "epochs": [
            {"epoch": r["epoch"], "steps": r["steps"], "partial": r["partial"], "loss": round(r["loss"], 6),
             "train_s": round(t["t_train"], 2), "search_s": round(t["t_search"], 2), "val_s": round(t["t_val"], 2),
             **{k: r[k] for k in ("sign_r1", "sign_r10", "sign_r100") if k in r}}
            for r, t in zip(hist, model.timings_)
        ],
        "steps_per_epoch": nb,
        # a budget-stopped epoch extrapolated to all of its steps: the per-epoch cost at this size
        "est_full_epoch_s": round(float(np.median([t["t_train"] * nb / t["steps"] for t in model.timings_
                                                   if t["steps"]])), 1)
        if hist else None,
        "best_epoch": model.best_epoch_,
    }
    print(json.dumps(out))
    return 0


def evaluate(model: Any, xb: np.ndarray, xq: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray) -> dict[str, Any]:
    """Sign-encode ``model.apply(xb)``, Hamming-search ``model.apply_query(xq)``; recalls and timings."""
    from vecspread.codecs.sign.codec import SignCodec
    from vecspread.metrics import k_recall_at, one_recall_at
    from vecspread.scanners import search

    t0 = time.perf_counter()
    yb = model.apply(xb)
    yq = model.apply_query(xq)
    transform_s = time.perf_counter() - t0
    codec = SignCodec().fit(yb)
    t0 = time.perf_counter()
    codes = codec.encode(yb)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, I = search(codec, yq, [codes], max(KS))
    search_s = time.perf_counter() - t0
    recall = {f"1-R@{k}": round(one_recall_at(I, gt_I, gt_D, k), 4) for k in KS}
    recall.update({f"{k}-R@{k}": round(k_recall_at(I, gt_I, gt_D, k), 4) for k in KS[1:]})
    random_ties = random_tie_recall(codec.encode(yq), codes, gt_I, gt_D)
    return {
        "recall": recall, "recall_random_ties": {f"1-R@{k}": round(v, 4) for k, v in random_ties.items()},
        "bits": int(codec.code_bits), "code_size": int(codec.code_size), "transform_s": round(transform_s, 3),
        "encode_s": round(encode_s, 3), "search_s": round(search_s, 3),
    }


def random_tie_recall(cq: np.ndarray, cb: np.ndarray, gt_I: np.ndarray, gt_D: np.ndarray) -> dict[int, float]:
    """Expected 1-recall@k when codes at equal Hamming distance are ranked in uniformly random order.

    (nq, B) / (n, B) uint8 codes. For a query, let h be the smallest Hamming distance of its true
    nearest neighbours (all ids tied with the first in true distance), m how many of them are at h,
    a the number of codes closer than h and t the number at exactly h. The first k results hold r = k - a
    of those t in random order, so the probability that one of the m is among them is
    1 - C(t - m, r) / C(t, r).
    """
    from vecspread.metrics import tie_threshold

    words = _as_words(cb)
    out = {k: 0.0 for k in KS}
    tied = gt_D <= tie_threshold(gt_D[:, :1])
    for i in range(cq.shape[0]):
        ham = np.bitwise_count(words ^ _as_words(cq[i : i + 1])).sum(axis=1)
        h_nn = ham[gt_I[i, tied[i]]]
        h = int(h_nn.min())
        m = int((h_nn == h).sum())
        a = int((ham < h).sum())
        t = int((ham == h).sum())
        for k in KS:
            r = k - a
            if r <= 0:
                continue
            if r >= t:
                out[k] += 1.0
                continue
            miss = math.prod((t - m - j) / (t - j) for j in range(r)) if t - m >= r else 0.0
            out[k] += 1.0 - miss
    return {k: v / cq.shape[0] for k, v in out.items()}


def _as_words(codes: np.ndarray) -> np.ndarray:
    """(n, B) uint8 codes as (n, ceil(B / 8)) uint64 words, zero-padded (Hamming distances unchanged)."""
    n, nbytes = codes.shape
    padded = np.zeros((n, -(-nbytes // 8) * 8), dtype=np.uint8)
    padded[:, :nbytes] = codes
    return padded.view(np.uint64)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from vecspread.transforms.nphash import TAU_IN, TAU_OUT

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="debsift200k.h5 (learn / train / test / neighbors)")
    p.add_argument("--learn-limit", type=int, default=None, help="train on the first N learn vectors only")
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--dint", type=int, default=1024)
    p.add_argument("--hidden-layers", type=int, default=2)
    p.add_argument("--beta", type=float, default=None, help="relaxed-sign slope (default sqrt(bits))")
    p.add_argument("--k", type=int, default=100, help="neighbours among the proxies per query")
    p.add_argument("--proxies", type=int, default=10000)
    p.add_argument("--tau-in", type=float, default=TAU_IN)
    p.add_argument("--tau-out", type=float, default=TAU_OUT)
    p.add_argument("--kl", choices=["pq", "qp"], default="pq")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1000, help="upper bound; --minutes usually stops first")
    p.add_argument("--minutes", type=float, default=30.0, help="training time budget (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-every", type=int, default=1)
    p.add_argument("--val-size", type=int, nargs="+", default=None, help="DB [QUERIES] held out of the learn set; 0 = none")
    p.add_argument("--rotation-baseline", action="store_true", help="also run rotation --dout BITS + sign (LSH)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--resume", default=None)
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING"], default="INFO")
    args = p.parse_args(argv)
    if args.val_size is not None and len(args.val_size) > 2:
        p.error("--val-size takes one or two integers")
    if args.minutes is not None and args.minutes <= 0:
        args.minutes = None
    return args


if __name__ == "__main__":
    sys.exit(main())
