"""Diagnose a model or codes artifact on debsift200k: uniformity (paper §3.3 / Figure 3), ε-search
(Appendix C / Figure 7), mean angle to the true neighbour, and, for codes, table balance, code usage and
id-based vs tie-aware recall.

Writes ``report.json``, ``uniformity.png`` and ``epsilon.png`` into --outdir and prints the headline
numbers as one JSON line on stdout (progress goes to stderr through the "vecspread" logger).

Example (PCA to 24 dimensions, the paper's "PCA" baseline space, then its sign codes)::

    vecspread train /work/shared/data/debsift200k.h5 --method pca --dout 24 -o /tmp/pca24.h5
    python benchmarks/diagnostics_debsift.py /tmp/pca24.h5 --outdir /tmp/diag-pca24 --threads 2
    vecspread encode /tmp/pca24.h5 /work/shared/data/debsift200k.h5 --codec sign -o /tmp/pca24.sign.h5
    python benchmarks/diagnostics_debsift.py /tmp/pca24.sign.h5 --outdir /tmp/diag-pca24-sign --threads 2

Quick smoke run (200 queries against 20k database vectors)::

    python benchmarks/diagnostics_debsift.py /tmp/pca24.h5 --outdir /tmp/diag-smoke --nq 200 --sample 20000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

DEFAULT_DATA = "/work/shared/data/debsift200k.h5"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("vecspread").setLevel(logging.INFO)  # our progress lines, not faiss's loader chatter

    from vecspread.diagnostics.report import inspect, summarize
    from vecspread.diagnostics.plots import write_figures
    from vecspread.runtime import set_threads

    set_threads(args.threads)
    report = inspect(
        args.artifact, args.data, nq=args.nq, sample=args.sample or None, k=args.k, n_radii=args.radii,
        recall_at=tuple(int(v) for v in args.at.split(",")), tol=args.tol, seed=args.seed,
    )
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "report.json"), "w") as f:
        json.dump(report, f)
    figures = write_figures(report, args.outdir)
    headline = summarize(report)
    headline.update({"figures": figures, "seconds": report["seconds"], "threads": args.threads})
    print(json.dumps(headline))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("artifact", help="model (vecspread train) or codes (vecspread encode) artifact")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"dataset (default {DEFAULT_DATA})")
    p.add_argument("--outdir", required=True, help="directory for report.json, uniformity.png, epsilon.png")
    p.add_argument("--nq", type=int, default=1000, help="queries (the first NQ of the test set)")
    p.add_argument("--sample", type=int, default=200_000, help="database vectors sampled (0: all)")
    p.add_argument("-k", type=int, default=100, help="k of the k-th neighbour in the uniformity statistic")
    p.add_argument("--radii", type=int, default=40, help="radii in the ε sweep")
    p.add_argument("--at", default="1,10,100", help="ranks for the recall of codes artifacts")
    p.add_argument("--tol", type=float, default=1e-3, help="tie tolerance of the tie-aware recall")
    p.add_argument("--seed", type=int, default=0, help="seed of the database sample")
    p.add_argument("--threads", type=int, default=1, help="faiss/BLAS threads")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
