"""Catalyzer acceptance runs on debsift200k through the real CLI (train -> encode -> search -> eval).

    python benchmarks/catalyzer_debsift.py RUN [RUN ...] [--data ../shared/data/debsift200k.h5] [--workdir DIR]

RUN is one of the names in RUNS below (e.g. cat24-lattice cat64-sign pca24-lattice rot64-sign).
``--train-extra "--seed 1 --bn-stats per-role"`` appends options to every run's train command (the
artifacts are then named after them, so variants do not overwrite each other).
For each run prints one JSON line: the commands, 1-recall@1/10/100, training time and its split per
epoch (negative mining / SGD steps / validation, from the history stored in the model artifact),
encode and search times. Threads: all available cores (2 on the reference machine).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import h5py

COMMON = ["--dint", "512", "--epochs", "8"]
#: name -> (train options, encode options)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "pca24-lattice": (["--method", "pca", "--dout", "24"], ["--codec", "lattice", "--bits", "64"]),
    "rot64-sign": (["--method", "rotation", "--dout", "64"], ["--codec", "sign"]),
    "cat24-lattice": (["--method", "catalyzer", "--dout", "24", *COMMON], ["--codec", "lattice", "--bits", "64"]),
    "cat24-lattice-e2e": (["--method", "catalyzer", "--dout", "24", *COMMON, "--quantizer-train", "lattice"],
                          ["--codec", "lattice", "--bits", "64"]),
    "cat64-sign": (["--method", "catalyzer", "--dout", "64", *COMMON, "--lam", "0.02", "--val-codec", "sign"],
                   ["--codec", "sign"]),
    "cat24-lattice-32ep": (["--method", "catalyzer", "--dout", "24", "--dint", "512", "--epochs", "32"],
                           ["--codec", "lattice", "--bits", "64"]),
    "cat64-sign-32ep": (["--method", "catalyzer", "--dout", "64", "--dint", "512", "--epochs", "32", "--lam", "0.02",
                         "--val-codec", "sign"], ["--codec", "sign"]),
}


def vecspread(*args: str, capture: bool = False) -> str:
    cmd = [sys.executable, "-m", "vecspread", *args]
    out = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return out.stdout if capture else ""


def run(name: str, data: str, work: Path, gt: str, extra: list[str] | None = None) -> dict:
    train_opts, encode_opts = RUNS[name]
    train_opts = [*train_opts, *(extra or [])]
    stem = "_".join([name, *(a.lstrip("-") for a in extra or [])])
    model, codes, res = (str(work / f"{stem}.{ext}.h5") for ext in ("model", "codes", "res"))
    t0 = time.perf_counter()
    vecspread("train", data, *train_opts, "-o", model)
    wall_train = time.perf_counter() - t0
    enc = json.loads(vecspread("encode", model, data, *encode_opts, "-o", codes, "--json", capture=True))
    srch = json.loads(vecspread("search", codes, data, "-k", "100", "-o", res, "--json", capture=True))
    ev = json.loads(vecspread("eval", res, gt, "--at", "1,10,100", "--json", capture=True))
    with h5py.File(model) as f:
        config = json.loads(f["transform"].attrs["config"])
        train_seconds = float(f.attrs["train_seconds"])
        timings = json.loads(f.attrs["params"]).get("timings", [])
    per_epoch = {key: [round(h[key], 2) for h in timings if key in h]
                 for key in ("t_mining", "t_train", "t_val")}
    return {
        "run": name, "train": " ".join(["vecspread train DATA", *map(shlex.quote, train_opts)]),
        "encode": " ".join(["vecspread encode MODEL DATA", *encode_opts]),
        "recall": ev["recall"], "bits": enc["bits"], "train_seconds": round(train_seconds, 1),
        "train_wall_seconds": round(wall_train, 1), "per_epoch": per_epoch, "best_epoch": config.get("best_epoch"),
        "lam": config.get("lam"), "encode_seconds": enc["encode_seconds"],
        "encode_vectors_per_second": enc["vectors_per_second"], "search_ms_per_query": srch["ms_per_query"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", choices=sorted(RUNS))
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "debsift200k.h5"))
    ap.add_argument("--workdir", default="/tmp/vs-catalyzer")
    ap.add_argument("--train-extra", default="", help="options appended to every train command")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.runs:
        print(json.dumps(run(name, args.data, work, args.data, shlex.split(args.train_extra))), flush=True)


if __name__ == "__main__":
    main()
