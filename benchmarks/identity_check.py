"""Proof that a refactoring kept behaviour: hashes of the codes and results every method + codec writes.

    python benchmarks/identity_check.py ../shared/data/debsift200k.h5 --workdir /tmp/ident --out before.json
    python benchmarks/identity_check.py ../shared/data/debsift200k.h5 --workdir /tmp/ident --out after.json \
        --compare before.json

Runs the real command line (``python -m vecspread``) with ``--threads 1`` and fixed seeds for each
(method, codec) pair below -- train, encode, search (k = 100, and once with hash tables) -- plus ``gt``
and ``eval``, and records a blake2b hash of every array each one writes (``/codes``; ``neighbors`` and
``distances``). ``--compare`` prints each pair's verdict against an earlier run and exits 1 on any
difference. Neural methods train for 1 epoch (``--dint 256``) so that the whole check takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

NEURAL = ["--epochs", "1", "--dint", "256"]
#: (name, train arguments, [(codec label, encode arguments)])
CASES: list[tuple[str, list[str], list[tuple[str, list[str]]]]] = [
    ("pca24", ["--method", "pca", "--dout", "24"],
     [("lattice64", ["--codec", "lattice", "--bits", "64"]), ("pq64", ["--codec", "pq", "--bits", "64"]),
      ("opq64", ["--codec", "opq", "--bits", "64", "--train-iters", "5"]),
      ("lsq64", ["--codec", "lsq", "--bits", "64", "--train-iters", "2", "--encode-ils-iters", "2"]),
      ("l2lsh64", ["--codec", "l2lsh", "--bits", "64", "--r", "40"])]),
    ("pca64", ["--method", "pca", "--dout", "64"], [("sign", ["--codec", "sign"])]),
    ("rotation64", ["--method", "rotation", "--dout", "64", "--seed", "3"], [("sign", ["--codec", "sign"])]),
    ("rotation24", ["--method", "rotation", "--dout", "24"], [("lattice64", ["--codec", "lattice", "--bits", "64"])]),
    ("identity", ["--method", "identity"], [("pq128", ["--codec", "pq", "--bits", "128"])]),
    ("lsh64", ["--method", "lsh", "--bits", "64"], [("own", [])]),
    ("lsh-thresholds64", ["--method", "lsh-thresholds", "--bits", "64"], [("own", [])]),
    ("itq64", ["--method", "itq", "--bits", "64"], [("own", [])]),
    ("pq64", ["--method", "pq", "--bits", "64"], [("own", [])]),
    ("opq64", ["--method", "opq", "--bits", "64", "--train-iters", "5"], [("own", [])]),
    ("lsq64", ["--method", "lsq", "--bits", "64", "--train-iters", "2", "--encode-ils-iters", "2"], [("own", [])]),
    ("simple-lsh64", ["--method", "simple-lsh", "--bits", "64"], [("own", [])]),
    ("sign-alsh64", ["--method", "sign-alsh", "--bits", "64"], [("own", [])]),
    ("l2-alsh64", ["--method", "l2-alsh", "--bits", "64"], [("own", [])]),
    ("catalyzer24", ["--method", "catalyzer", "--dout", "24", *NEURAL],
     [("lattice64", ["--codec", "lattice", "--bits", "64"]), ("pq64", ["--codec", "pq", "--bits", "64"])]),
    ("catalyzer64", ["--method", "catalyzer", "--dout", "64", "--lam", "0.02", "--val-codec", "sign", *NEURAL],
     [("sign", ["--codec", "sign"])]),
    ("nphash64", ["--method", "nphash", "--bits", "64", *NEURAL], [("own", [])]),
]
#: extra searches of one codes file: (case, codec label, search arguments)
EXTRA_SEARCHES = [("rotation64", "sign", ["--tables", "8", "--bits-per-table", "16", "--probes", "4"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True, help="JSON file for the hashes")
    ap.add_argument("--compare", help="an earlier --out file: exit 1 unless every hash is the same")
    ap.add_argument("--only", help="comma-separated case names (default: all)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    hashes: dict[str, str] = {}
    t0 = time.perf_counter()
    gt = work / "gt.h5"
    run("gt", args.dataset, "-k", "100", "-o", gt)
    hashes["gt"] = array_hash(gt, ("neighbors", "distances"))
    for name, train_args, codecs in CASES:
        if only and name not in only:
            continue
        model = work / f"{name}.model.h5"
        run("train", args.dataset, *train_args, "--threads", "1", "-o", model)  # seeds: each method's default
        for label, encode_args in codecs:
            codes, res = work / f"{name}.{label}.codes.h5", work / f"{name}.{label}.res.h5"
            run("encode", model, args.dataset, *encode_args, "--threads", "1", "-o", codes)
            run("search", codes, args.dataset, "-k", "100", "--threads", "1", "-o", res)
            hashes[f"{name}+{label} codes"] = array_hash(codes, ("codes",))
            hashes[f"{name}+{label} results"] = array_hash(res, ("neighbors", "distances"))
            recall = run("eval", res, gt, "--json", capture=True)
            hashes[f"{name}+{label} eval"] = hashlib.blake2b(
                json.dumps(json.loads(recall)["recall"], sort_keys=True).encode(), digest_size=16).hexdigest()
            print(f"{name} + {label}: 1-recall@10 {json.loads(recall)['recall']['10']:.4f}", flush=True)
    for name, label, search_args in EXTRA_SEARCHES:
        if only and name not in only:
            continue
        res = work / f"{name}.{label}.tables.res.h5"
        run("search", work / f"{name}.{label}.codes.h5", args.dataset, "-k", "100", *search_args, "--threads", "1",
            "-o", res)
        hashes[f"{name}+{label} tables results"] = array_hash(res, ("neighbors", "distances"))
    print(f"{len(hashes)} hashes in {time.perf_counter() - t0:.0f} s", flush=True)
    Path(args.out).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        differ = [k for k in sorted(set(before) | set(hashes)) if before.get(k) != hashes.get(k)]
        for k in sorted(set(before) | set(hashes)):
            verdict = "identical" if k not in differ else ("DIFFERENT" if k in before and k in hashes else "missing")
            print(f"{verdict:10s} {k}")
        print(f"{len(hashes) - len(differ)} of {len(hashes)} identical")
        sys.exit(1 if differ else 0)


def run(*args: object, capture: bool = False) -> str:
    cmd = [sys.executable, "-m", "vecspread", "-q", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return proc.stdout if capture else ""


def array_hash(path: Path, names: tuple[str, ...]) -> str:
    """blake2b-128 over the named datasets of an HDF5 file (name, dtype, shape, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    with h5py.File(path, "r") as f:
        for name in names:
            a = np.ascontiguousarray(f[name][()])
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


if __name__ == "__main__":
    main()
