"""gt, encode and search of a 10M x 128 database: one process against --cluster local:1 and local:2.

    python benchmarks/cluster_scale.py --workdir /tmp/vs-10m --model MODEL.h5 [--copies 50]
        [--source ../shared/data/debsift200k.h5] [--codec lattice --bits 64]

The database is debsift200k's 200k database repeated ``--copies`` times (50: 10M), each copy after the
first with independent integer jitter (each coordinate +-1 or 0, uniformly, clipped to 0..255), kept as
uint8 (1.28 GB at 10M); queries are debsift200k's 1,000. ``MODEL`` is any 128-d model (the measured run:
a 24-d catalyzer trained on debsift200k, issue 16). Every stage is the real CLI in its own process; the
client's peak RSS is read from wait4, each worker process's from the run's own record (``cluster`` in
the output's attributes: ``worker_peak_rss_mib``, task seconds). Prints one JSON object per run and,
at the end, whether the outputs of the three set-ups are identical. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

SETUPS = [("one process", []), ("local:1", ["--cluster", "local:1"]), ("local:2", ["--cluster", "local:2"])]


def build_dataset(source: str, output: Path, copies: int) -> None:
    """The jittered copies, written through vecspread's own writer (so the file has its fingerprints)."""
    from vecspread.io.artifacts import open_artifact, provenance, write_artifact

    src = open_artifact(source, "dataset")
    base = src.file["train"][()]
    rng = np.random.default_rng(0)
    n = len(base) * copies
    with write_artifact(output, "dataset", params={"source": source, "copies": copies, "jitter": "uniform +-1"},
                        inputs=[provenance(src, "source")], attrs={"distance": "euclidean"}) as out:
        ds = out.create_dataset("train", shape=(n, base.shape[1]), dtype=np.uint8, chunks=(8192, base.shape[1]))
        for c in range(copies):
            x = base if c == 0 else np.clip(base.astype(np.int16) + rng.integers(-1, 2, base.shape), 0, 255)
            ds[c * len(base) : (c + 1) * len(base)] = x.astype(np.uint8)
        out.create_dataset("test", data=src.file["test"][()])
    src.close()


def run_measured(args: list[str]) -> dict:
    """One CLI process: its JSON summary, wall seconds and peak RSS (MiB, from wait4: the process and
    the workers it waited for; the client's own is in the summary's ``cluster`` record)."""
    t0 = time.perf_counter()
    with open(os.devnull, "w") as null:
        proc = subprocess.Popen([sys.executable, "-m", "vecspread", "-q", *args, "--json"], stdout=subprocess.PIPE,
                                stderr=null, text=True)
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status:
        raise SystemExit(f"vecspread {' '.join(map(str, args))} failed (status {status})")
    return {"wall_seconds": round(wall, 2), "process_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "summary": json.loads(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "debsift200k.h5"))
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--codec", default="lattice")
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("-k", type=int, default=100)
    a = ap.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"db{a.copies}x.h5"
    if not data.exists():
        t0 = time.perf_counter()
        # its own process: a child's maxrss starts from its parent's, so this one never holds the data
        subprocess.run([sys.executable, __file__, "--build", a.source, str(data), str(a.copies)], check=True)
        print(json.dumps({"built": str(data), "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    rows = []
    for name, extra in SETUPS:
        tag = name.replace(" ", "-").replace(":", "")
        gt, codes, res = work / f"{tag}.gt.h5", work / f"{tag}.codes.h5", work / f"{tag}.res.h5"
        for stage, args in [("gt", ["gt", data, "-k", a.k, "-o", gt]),
                            ("encode", ["encode", a.model, data, "--codec", a.codec, "--bits", a.bits, "-o", codes]),
                            ("search", ["search", codes, data, "-k", a.k, "-o", res])]:
            r = run_measured([*map(str, args), *extra])
            cluster = r["summary"].get("cluster") or {}
            row = {"setup": name, "stage": stage, "wall_seconds": r["wall_seconds"],
                   "process_peak_rss_mib": r["process_peak_rss_mib"],
                   "client_peak_rss_mib": cluster.get("client_peak_rss_mib", r["process_peak_rss_mib"]),
                   "worker_peak_rss_mib": sorted(cluster.get("worker_peak_rss_mib", {}).values()),
                   "task_seconds": cluster.get("task_seconds"), "busiest_worker_seconds": cluster.get("busiest_worker_seconds"),
                   "shards": cluster.get("shards"), "threads_per_task": cluster.get("threads_per_task")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    same = {}
    for kind, member in [("gt", "neighbors"), ("codes", "codes"), ("res", "neighbors")]:
        arrays = []
        for name, _ in SETUPS:
            with h5py.File(work / f"{name.replace(' ', '-').replace(':', '')}.{kind}.h5") as f:
                arrays.append(f[member][()])
        same[kind] = [bool(np.array_equal(arrays[0], x)) for x in arrays[1:]]
    print(json.dumps({"identical_to_one_process (local:1, local:2)": same}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--build":
        build_dataset(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
