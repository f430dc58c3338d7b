"""Peak resident memory of `gt`, `encode` and `search` over a 2M x 128 float32 database.

    python benchmarks/memory_2m.py --workdir /tmp/vs-mem [--source ../shared/data/debsift200k.h5]

The database is built from real SIFT descriptors: the 200k debsift200k database repeated 10 times,
each copy with independent Gaussian jitter (sigma 2, on a 0..255 scale), stored as float32 (1 GiB).
Queries and learn set are debsift200k's own. Each stage runs as its own process (the real CLI),
and its peak RSS is read from the kernel (wait4 rusage). A child's maxrss starts from its parent's
at fork, so this parent never loads data itself: the dataset is built by a separate process.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vecspread.io.artifacts import open_artifact, provenance, write_artifact

N_COPIES = 10


def build_dataset(source: str, output: Path) -> None:
    src = open_artifact(source, "dataset")
    f = src.file
    base = f["train"][()]
    rng = np.random.default_rng(0)
    n = len(base) * N_COPIES
    with write_artifact(output, "dataset", params={"source": source, "copies": N_COPIES, "jitter_sigma": 2.0},
                        inputs=[provenance(src, "source")], attrs={"distance": "euclidean"}) as out:
        ds = out.create_dataset("train", shape=(n, base.shape[1]), dtype=np.float32, chunks=(8192, base.shape[1]))
        for c in range(N_COPIES):
            block = base.astype(np.float32) + rng.normal(0, 2.0, base.shape).astype(np.float32)
            ds[c * len(base) : (c + 1) * len(base)] = block
        out.create_dataset("test", data=f["test"][()].astype(np.float32))
        out.create_dataset("learn", data=f["learn"][()].astype(np.float32))
    src.close()


def run_stage(args: list[str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "vecspread", "-q", *args])
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"stage failed: {args}")
    return {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="/tmp/vs-mem")
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "debsift200k.h5"))
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / "sift2m.h5"
    if args.build_only:
        build_dataset(args.source, data)
        return
    if not data.exists():
        subprocess.run([sys.executable, __file__, "--workdir", str(work), "--source", args.source, "--build-only"],
                       check=True)
    w = lambda name: str(work / name)  # noqa: E731
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"n": 2_000_000, "d": 128, "dtype": "float32", "file_gib": round(data.stat().st_size / 2**30, 2),
              "parent_rss_mib": round(own, 1)}
    report["gt"] = run_stage(["gt", str(data), "-k", "100", "-o", w("gt.h5")])
    run_stage(["train", str(data), "--method", "pca", "--dout", "24", "-o", w("pca24.h5")])
    report["encode"] = run_stage(["encode", w("pca24.h5"), str(data), "--codec", "lattice", "--bits", "64", "-o", w("codes.h5")])
    report["search"] = run_stage(["search", w("codes.h5"), str(data), "-k", "100", "-o", w("res.h5")])
    out = subprocess.run([sys.executable, "-m", "vecspread", "eval", w("res.h5"), w("gt.h5"), "--json"],
                         capture_output=True, text=True, check=True)
    report["recall"] = json.loads(out.stdout)["recall"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
