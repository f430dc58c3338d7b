"""Why learned codes fail on inner-product data: how far the MIPS queries lie from what the networks saw.

    python benchmarks/mips_query_shift.py [--data /tmp/gcide-mips.h5] [--workdir /tmp/vs-mips-learned]

Run after ``benchmarks/mips_learned.py`` (it reads the models that script wrote to ``--workdir``).
Prints one JSON object:

- ``norms``: 5th / 50th / 95th percentiles of the query and database norms;
- ``collapse``: for the catalyzer and NPhash trained on the raw vectors, the mean pairwise cosine of
  the 1000 query outputs and the number of distinct query sign codes;
- ``lifts``: for the Simple-LSH and Sign-ALSH lifts (``--lift-only`` models), the median of each
  appended database coordinate, the share of learn vectors whose first appended coordinate is below
  0.3, and the median cosine of a lifted query to its nearest lifted learn vector against that of a
  learn vector to its nearest other (cosines of the lifted vectors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/gcide-mips.h5")
    ap.add_argument("--workdir", default="/tmp/vs-mips-learned")
    args = ap.parse_args()
    import faiss
    import h5py

    from vecspread.models import open_model

    with h5py.File(args.data, "r") as f:
        xt, xb, xq = f["learn"][:], f["train"][:], f["test"][:]
    pct = (5, 50, 95)
    out: dict = {"norms": {"queries": np.percentile(np.linalg.norm(xq, axis=1), pct).round(3).tolist(),
                           "database": np.percentile(np.linalg.norm(xb, axis=1), pct).round(3).tolist()}}
    out["collapse"] = {}
    for name in ("catalyzer-sign", "nphash"):
        art, t = open_model(os.path.join(args.workdir, f"{name}.model.h5"))
        with art:
            yq = unit(t.apply(xq).astype(np.float64))
        out["collapse"][name] = {"mean_pairwise_cosine": round(float((yq @ yq.T).mean()), 4),
                                 "distinct_query_codes": len({tuple(r) for r in (yq > 0)})}
    out["lifts"] = {}
    for name in ("simple-lsh", "sign-alsh"):
        art, lift = open_model(os.path.join(args.workdir, f"{name}.lift.h5"))
        with art:
            P, Q = lift.apply(xt), lift.apply_query(xq)
        extra = P[:, xt.shape[1]:]
        index = faiss.IndexFlatIP(P.shape[1])
        index.add(np.ascontiguousarray(unit(P), dtype=np.float32))
        Dq, _ = index.search(np.ascontiguousarray(unit(Q), dtype=np.float32), 1)
        Dp, _ = index.search(np.ascontiguousarray(unit(P[:1000]), dtype=np.float32), 2)
        out["lifts"][name] = {
            "appended_median": [round(float(v), 3) for v in np.median(extra, axis=0)],
            "share_first_appended_below_0.3": round(float((extra[:, 0] < 0.3).mean()), 5),
            "query_to_nearest_learn_cos": round(float(np.median(Dq[:, 0])), 3),
            "learn_to_nearest_other_cos": round(float(np.median(Dp[:, 1])), 3),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
