"""Cut the small real dataset bundled with vecspread (vecspread/data/debsift-demo.h5).

Random subsets (fixed seed) of the three disjoint sets of ../shared/data/debsift200k.h5 — real
128-d SIFT descriptors, uint8 — with exact L2 ground truth recomputed on the cut database:

    python tools/make_demo_data.py ../shared/data/debsift200k.h5 vecspread/data/debsift-demo.h5
"""

from __future__ import annotations

import argparse

import numpy as np

from vecspread.io.artifacts import open_artifact, provenance, write_artifact
from vecspread.knn import knn_blocks

N_TRAIN, N_LEARN, N_TEST, K = 20_000, 20_000, 200, 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    src = open_artifact(args.source, "dataset")
    f = src.file
    sets = {}
    for name, n in (("train", N_TRAIN), ("learn", N_LEARN), ("test", N_TEST)):
        ids = np.sort(rng.choice(f[name].shape[0], n, replace=False))
        sets[name] = f[name][ids]
    D, I = knn_blocks(sets["test"].astype(np.float32), [(0, sets["train"].astype(np.float32))], K)
    params = {"source": "debsift200k.h5", "seed": args.seed, "sizes": {k: len(v) for k, v in sets.items()}}
    with write_artifact(args.output, "dataset", params=params, inputs=[provenance(src, "source")],
                        attrs={"distance": "euclidean", "dimension": 128, "point_type": "float", "type": "dense"}) as out:
        for name, x in sets.items():
            out.create_dataset(name, data=x, compression="gzip", compression_opts=9, chunks=(min(len(x), 4096), 128))
        out.create_dataset("neighbors", data=I)
        out.create_dataset("distances", data=D)
    src.close()


if __name__ == "__main__":
    main()
