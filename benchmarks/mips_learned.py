"""Learned codes on inner-product data: the catalyzer and NPhash with and without a MIPS lift first.

    python benchmarks/mips_learned.py [RUN ...] [--data /tmp/gcide-mips.h5] [--workdir DIR] [--threads 1]

Every run goes through the real CLI (train [--after LIFT] -> encode -> search -> eval against the
dataset's exact inner-product ground truth) and prints one JSON line: the commands, top-1 (1-R@1),
R(5, 5) and R(10, 10) (k-recall@k: the share of the true top-k found among the first k retrieved),
1-R@10 and training time. A "lift" in a run name is trained first with ``--lift-only`` and the
learned method is fitted ``--after`` it, on the lifted learn set; queries go through the query side
of the lift. With no RUN, all of RUNS run in order. Dataset: ``benchmarks/make_mips_dataset.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

NEURAL = ["--dint", "512", "--epochs", "40"]
CAT_SIGN = ["--method", "catalyzer", "--dout", "64", "--lam", "0.02", "--val-codec", "sign", *NEURAL]
CAT_LATTICE = ["--method", "catalyzer", "--dout", "24", *NEURAL]
NPHASH = ["--method", "nphash", "--bits", "64", "--epochs", "10"]
#: name -> (lift method or None, train options, encode options)
RUNS: dict[str, tuple[str | None, list[str], list[str]]] = {
    "sign-lsh": (None, ["--method", "rotation", "--dout", "64"], ["--codec", "sign"]),
    "simple-lsh": (None, ["--method", "simple-lsh"], []),
    "catalyzer-sign": (None, CAT_SIGN, ["--codec", "sign"]),
    "simple-lsh+catalyzer-sign": ("simple-lsh", CAT_SIGN, ["--codec", "sign"]),
    "sign-alsh+catalyzer-sign": ("sign-alsh", CAT_SIGN, ["--codec", "sign"]),
    "catalyzer-lattice": (None, CAT_LATTICE, ["--codec", "lattice", "--bits", "64"]),
    "simple-lsh+catalyzer-lattice": ("simple-lsh", CAT_LATTICE, ["--codec", "lattice", "--bits", "64"]),
    "nphash": (None, NPHASH, []),
    "simple-lsh+nphash": ("simple-lsh", NPHASH, []),
}
#: the methods that serve a dot dataset themselves; any other, run without a lift, needs --any-distance
MIPS_METHODS = ("simple-lsh", "sign-alsh", "l2-alsh")


def vecspread(*args: str) -> str:
    cmd = [sys.executable, "-m", "vecspread", *args]
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE).stdout


def run(name: str, data: str, work: Path, threads: str) -> dict:
    lift, train_opts, encode_opts = RUNS[name]
    model, codes, res = (str(work / f"{name}.{ext}.h5") for ext in ("model", "codes", "res"))
    after: list[str] = []
    if lift is not None:
        lift_model = str(work / f"{lift}.lift.h5")
        vecspread("train", data, "--method", lift, "--lift-only", "-o", lift_model)
        after = ["--after", lift_model]
    elif train_opts[train_opts.index("--method") + 1] not in MIPS_METHODS:
        after = ["--any-distance"]  # an L2 method on inner-product data, on purpose: the comparison
    t0 = time.perf_counter()
    vecspread("train", data, *train_opts, *after, "--threads", threads, "-o", model)
    train_seconds = time.perf_counter() - t0
    vecspread("encode", model, data, *encode_opts, "-o", codes)
    vecspread("search", codes, data, "-k", "100", "-o", res, "--threads", threads)
    ev = json.loads(vecspread("eval", res, data, "--at", "1,5,10,100", "--json"))
    lift_cmd = f"vecspread train DATA --method {lift} --lift-only -o LIFT && " if lift else ""
    return {
        "run": name,
        "train": lift_cmd + " ".join(["vecspread train DATA", *map(shlex.quote, train_opts),
                                      *(["--after", "LIFT"] if lift else after)]),
        "encode": " ".join(["vecspread encode MODEL DATA", *encode_opts]),
        "top1": ev["recall"]["1"], "R5@5": ev["k_recall"]["5"], "R10@10": ev["k_recall"]["10"],
        "1-R@10": ev["recall"]["10"], "1-R@100": ev["recall"]["100"], "train_seconds": round(train_seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", metavar="RUN", help=f"some of: {', '.join(RUNS)} (default: all)")
    ap.add_argument("--data", default="/tmp/gcide-mips.h5")
    ap.add_argument("--workdir", default="/tmp/vs-mips-learned")
    ap.add_argument("--threads", default="1")
    args = ap.parse_args()
    unknown = [r for r in args.runs if r not in RUNS]
    if unknown:
        ap.error(f"unknown run(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.runs or list(RUNS):
        print(json.dumps(run(name, args.data, work, args.threads)), flush=True)


if __name__ == "__main__":
    main()
