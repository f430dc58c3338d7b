"""Seed 002's winner-take-all autoencoders on debsift200k at 64 bits, beside PCA, ITQ and the catalyzer of the
same run, through the real CLI (train [-> train --after] -> encode -> search -> eval, and inspect for the
uniformity of the output space).

    python benchmarks/wta_debsift.py [RUN ...] [--seeds 0,1,2] [--data ../shared/data/debsift200k.h5] [--workdir DIR]

RUN is a name in RUNS (default: all). Learned runs are repeated for each seed (``--seed S`` on every
learned stage); the others run once. For each run prints one JSON line (commands, 1-recall@1/10/100,
uniformity of the output, training time; for WTA models the reconstruction error of the test queries
against PCA of the same width), then a Markdown table of mean +- std over the seeds.
Threads: all available cores (2 on the reference machine).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

CAT = ["--method", "catalyzer", "--dout", "24", "--dint", "512", "--epochs", "8"]
LATTICE64 = ["--codec", "lattice", "--bits", "64"]
#: name -> (train stages: the options of each ``train``, the later ones ``--after`` the one before; encode options)
RUNS: dict[str, tuple[list[list[str]], list[str]]] = {
    "itq64": ([["--method", "itq", "--bits", "64"]], []),
    "pca64-sign": ([["--method", "pca", "--dout", "64"]], ["--codec", "sign"]),
    "pca24-lattice": ([["--method", "pca", "--dout", "24"]], LATTICE64),
    "cat24-lattice": ([CAT], LATTICE64),
    "cat24-lattice-wta5": ([[*CAT, "--wta-sparsity", "5"]], LATTICE64),
    "cat24-lattice-wta20": ([[*CAT, "--wta-sparsity", "20"]], LATTICE64),
    "wta64-sign": ([["--method", "wta", "--dout", "64"]], ["--codec", "sign"]),
    "wta64-s20-sign": ([["--method", "wta", "--dout", "64", "--sparsity", "20"]], ["--codec", "sign"]),
    "wta64-s50-sign": ([["--method", "wta", "--dout", "64", "--sparsity", "50"]], ["--codec", "sign"]),
    "wta64-s100-sign": ([["--method", "wta", "--dout", "64", "--sparsity", "100"]], ["--codec", "sign"]),
    "wta64-h1024-sign": ([["--method", "wta", "--dout", "64", "--hidden", "1024"]], ["--codec", "sign"]),
    "wta64-h1024-stacked-sign": ([["--method", "wta", "--dout", "64", "--hidden", "1024", "--stacked"]],
                                 ["--codec", "sign"]),
    "wta256-pca24-lattice": ([["--method", "wta", "--dout", "256"], ["--method", "pca", "--dout", "24"]], LATTICE64),
    "wta64-pca24-lattice": ([["--method", "wta", "--dout", "64"], ["--method", "pca", "--dout", "24"]], LATTICE64),
}
LEARNED = ("catalyzer", "wta", "nphash")


def vecspread(*args: str, capture: bool = False) -> str:
    cmd = [sys.executable, "-m", "vecspread", *args]
    out = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return out.stdout if capture else ""


def is_learned(opts: list[str]) -> bool:
    return any(m in opts for m in LEARNED)


def run(name: str, seed: int | None, data: str, work: Path) -> dict:
    stages, encode_opts = RUNS[name]
    stem = name + ("" if seed is None else f"_s{seed}")
    t0 = time.perf_counter()
    models, commands = [], []
    for i, opts in enumerate(stages):
        opts = [*opts, *(["--seed", str(seed)] if seed is not None and is_learned(opts) else [])]
        model = str(work / f"{stem}.stage{i}.model.h5")
        after = ["--after", models[-1]] if models else []
        vecspread("train", data, *opts, *after, "-o", model)
        models.append(model)
        commands.append(" ".join(["vecspread train DATA", *map(shlex.quote, opts), *(["--after", "PREVIOUS"] if after else [])]))
    wall_train = time.perf_counter() - t0
    codes, res = str(work / f"{stem}.codes.h5"), str(work / f"{stem}.res.h5")
    enc = json.loads(vecspread("encode", models[-1], data, *encode_opts, "-o", codes, "--json", capture=True))
    vecspread("search", codes, data, "-k", "100", "-o", res, "--json", capture=True)
    ev = json.loads(vecspread("eval", res, data, "--at", "1,10,100", "--json", capture=True))
    report = json.loads(vecspread("inspect", models[-1], data, "--nq", "1000", "--sample", "200000", "--json",
                                  capture=True))
    out = {
        "run": name, "seed": seed, "train": commands, "encode": " ".join(["vecspread encode MODEL DATA", *encode_opts]),
        "recall": ev["recall"], "bits": enc["bits"], "train_wall_seconds": round(wall_train, 1),
        "uniformity": {s: round(v["p"], 4) for s, v in report["uniformity"].items()},
    }
    with h5py.File(models[0]) as f:
        config = json.loads(f["transform"].attrs["config"])
        out["best_epoch"] = config.get("best_epoch")
        out["epochs_run"] = config.get("epochs_run", config.get("epochs"))
    if "wta" in stages[0]:
        out["reconstruction"] = reconstruction(models[0], data)
    return out


def reconstruction(model: str, data: str) -> dict:
    """Mean squared reconstruction error of the test queries over their total variance (about the learn
    set's mean): the autoencoder's with its code released and made sparse as in training (batches of 256),
    and PCA's of the same width fitted on the learn set (numpy)."""
    import vecspread

    t = vecspread.load(model).transform
    with h5py.File(data, "r") as f:
        xt, xq = f["learn"][:].astype(np.float64), f["test"][:].astype(np.float64)
    mean = xt.mean(0)
    total = float(((xq - mean) ** 2).sum(1).mean())
    width = int(t.d_out)
    out = {"width": width,
           "released": float(((t.reconstruct(xq.astype(np.float32)) - xq) ** 2).sum(1).mean()) / total,
           "sparse": float(((t.reconstruct(xq.astype(np.float32), sparse_batch=256) - xq) ** 2).sum(1).mean()) / total}
    if width < xt.shape[1]:
        _, _, vt = np.linalg.svd(xt - mean, full_matrices=False)
        p = vt[:width]
        xc = xq - mean
        out["pca"] = float(((xc - xc @ p.T @ p) ** 2).sum(1).mean()) / total
    else:
        out["pca"] = 0.0  # as many components as dimensions: exact
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def table(rows: list[dict]) -> str:
    """Markdown: per run, 1-R@10 per seed and mean +- std, uniformity of the output, reconstruction."""
    lines = ["| run | 1-R@10 per seed | mean ± std | 1-R@1 mean | uniformity (transformed) | reconstruction (released / sparse / PCA) |",
             "|---|---|---|---|---|---|"]
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["run"], []).append(r)
    for name, rs in by.items():
        r10 = [r["recall"]["10"] for r in rs]
        r1 = [r["recall"]["1"] for r in rs]
        spread = f"{statistics.mean(r10):.3f} ± {statistics.stdev(r10):.3f}" if len(r10) > 1 else f"{r10[0]:.3f}"
        uni = statistics.mean(r["uniformity"].get("transformed", r["uniformity"].get("input", float("nan"))) for r in rs)
        rec = ""
        if "reconstruction" in rs[0]:
            rec = " / ".join(f"{statistics.mean(r['reconstruction'][k] for r in rs):.3f}"
                             for k in ("released", "sparse", "pca"))
        lines.append(f"| `{name}` | {' '.join(f'{v:.3f}' for v in r10)} | {spread} | {statistics.mean(r1):.3f} | "
                     f"{uni:.4f} | {rec} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", help=f"default: all of {', '.join(RUNS)}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "debsift200k.h5"))
    ap.add_argument("--workdir", default="/tmp/vs-wta")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    unknown = [r for r in args.runs if r not in RUNS]
    if unknown:
        ap.error(f"unknown runs {unknown}; choose from {', '.join(RUNS)}")
    rows = []
    for name in args.runs or list(RUNS):
        learned = any(is_learned(opts) for opts in RUNS[name][0])
        for seed in seeds if learned else [None]:
            rows.append(run(name, seed, args.data, work))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
