"""Cost of encoding into the spherical lattice (faiss ZnSphereCodec) by dimension and bit budget.

    python benchmarks/lattice_encode_cost.py [--n 99000] [--threads 1]

Encodes n random unit vectors (the size of the catalyzer's validation database on debsift200k) with
vecspread's lattice codec and searches 1000 of them in the codes (k = 100). Prints one JSON line per
(dimension, bits): r2, encode seconds, microseconds per vector, search seconds. It shows why the
catalyzer's validation over the training set is slow at dout 16 and 64 bits (r2 512).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=99000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import faiss

    from vecspread.codecs.lattice.codec import LatticeCodec
    from vecspread.scanners import search

    faiss.omp_set_num_threads(args.threads)
    for d, bits in ((16, 64), (24, 64), (32, 64), (16, 16)):
        y = np.random.default_rng(0).standard_normal((args.n, d)).astype(np.float32)
        y /= np.linalg.norm(y, axis=1, keepdims=True)
        codec = LatticeCodec(bits=bits).fit(y[:10])
        t0 = time.perf_counter()
        codes = codec.encode(y)
        t_encode = time.perf_counter() - t0
        t0 = time.perf_counter()
        search(codec, y[:1000], [codes], 100)
        t_search = time.perf_counter() - t0
        print(json.dumps({"d": d, "bits": bits, "r2": codec.get_config().get("r2"), "encode_s": round(t_encode, 2),
                          "us_per_vector": round(1e6 * t_encode / args.n, 1), "search_s": round(t_search, 2)}))


if __name__ == "__main__":
    main()
