"""Angular data whose norms vary gives the codes of unit-norm data: every bench method on both files.

    python benchmarks/angular_norms.py ../shared/data/debsift200k.h5 [--workdir DIR] [--n 50000] [--threads 2]

Builds two angular datasets from the same real vectors (the first ``--n`` database rows, all queries,
the first ``--n-learn`` learn rows, as float32):

- ``unit.h5``: every row divided by its norm;
- ``spread.h5``: every unit row multiplied by its own factor drawn log-uniformly in [0.5, 2] (seed 0), as
  the rows of ann-benchmarks' glove, nytimes or lastfm files are not unit-norm;
- ``jitter.h5``, the control: every unit row multiplied by its own factor in [1 - 2^-21, 1 + 2^-21] (seed
  1), norms that differ from 1 only by a few float32 rounding steps.

Then, on each, ``vecspread bench --bits 64`` over every method (its ground truth: 1 − cos) with the same seeds
and thread count, and prints one markdown table: each method's 1-recall@10 on the three files and the
differences from unit.h5. vecspread unit-normalises angular rows as it reads them, so what is left is
what the float32 rounding of that division does downstream: nothing for the methods without iterative
training; for the iterative ones (ITQ, OPQ, LSQ, the neural methods) a different local optimum, as
large for the rounding-level control as for the ×0.5–2 spread. ``--reuse`` keeps bench results
already in the work directory.
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


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(n, d) any dtype -> (n, d) float32 rows of norm 1."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_angular(path: Path, sets: dict[str, np.ndarray]) -> None:
    with h5py.File(path, "w") as f:
        for name, x in sets.items():
            f.create_dataset(name, data=x)
        f.attrs["distance"] = "angular"


def build(source: str, work: Path, n: int, n_learn: int) -> tuple[Path, Path, Path]:
    with h5py.File(source, "r") as f:
        sets = {"train": unit_rows(f["train"][:n]), "test": unit_rows(f["test"][:]),
                "learn": unit_rows(f["learn"][:n_learn])}
    rng = np.random.default_rng(0)
    spread = {name: x * np.exp(rng.uniform(np.log(0.5), np.log(2.0), (len(x), 1))).astype(np.float32)
              for name, x in sets.items()}
    rng = np.random.default_rng(1)
    jitter = {name: x * (1 + rng.uniform(-2.0 ** -21, 2.0 ** -21, (len(x), 1))).astype(np.float32)
              for name, x in sets.items()}
    unit_path, spread_path, jitter_path = work / "unit.h5", work / "spread.h5", work / "jitter.h5"
    write_angular(unit_path, sets)
    write_angular(spread_path, spread)
    write_angular(jitter_path, jitter)
    norms = np.linalg.norm(spread["train"], axis=1)
    print(f"spread.h5 database norms: min {norms.min():.3f}, median {np.median(norms):.3f}, max {norms.max():.3f}",
          file=sys.stderr)
    return unit_path, spread_path, jitter_path


def vecspread(*args: str) -> str:
    cmd = [sys.executable, "-m", "vecspread", *args]
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE).stdout


def bench(data: Path, work: Path, threads: str, reuse: bool) -> dict[str, float]:
    out = work / f"bench-{data.stem}"
    if reuse and (out / "bench.json").is_file():
        report = json.loads((out / "bench.json").read_text())
    else:
        report = json.loads(vecspread("bench", str(data), "--bits", "64", "--no-plot",
                                      "--threads", threads, "--json", "-o", str(out)))
    return {c["method"]: c["recall"]["10"] for c in report["cells"] if c.get("recall")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="a dataset with train, test and learn (e.g. debsift200k.h5)")
    ap.add_argument("--workdir", default="/tmp/vs-angular")
    ap.add_argument("--n", type=int, default=50000, help="database rows taken")
    ap.add_argument("--n-learn", type=int, default=20000, help="learn rows taken")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--reuse", action="store_true", help="keep bench results already in the work directory")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    paths = build(args.source, work, args.n, args.n_learn)
    t0 = time.perf_counter()
    unit, spread, jitter = (bench(p, work, args.threads, args.reuse) for p in paths)
    print(f"# {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print("| method (64 bits) | 1-recall@10, unit norms | norms ×0.5–2 | difference | control: norms 1 ± 2^-21 "
          "| difference |")
    print("|---|---|---|---|---|---|")
    for method in unit:
        s, j = spread.get(method, float("nan")), jitter.get(method, float("nan"))
        print(f"| {method} | {unit[method]:.4f} | {s:.4f} | {s - unit[method]:+.4f} | {j:.4f} | {j - unit[method]:+.4f} |")


if __name__ == "__main__":
    main()
