"""Scan latency, vecspread against faiss in one process: lattice vs IndexPQ, sign vs IndexBinaryFlat.

    python benchmarks/scan_latency.py ../shared/data/debsift200k.h5 [--copies 5] [--threads 1] [--reps 7]
        [--lattice-bits 64,128] [--no-sign] [--lsq-bits 64,128] [--no-lattice]

The database is the dataset's ``train`` repeated ``--copies`` times (5: 1M vectors from the 200k of
debsift200k), every copy after the first with integer jitter in [-2, 2] added and clipped to 0..255
(seed 0), so that no two copies are equal; queries are its ``test``. Both sides get the same thread
count (faiss's OpenMP and vecspread's kernels), and their calls are interleaved: for each batch size
(1, 10, 1000 queries per call) and each repetition, one vecspread call then one faiss call on the same
queries; the table gives the median over repetitions of ms per query and the ratio.

- lattice: ``pca --dout 24`` fitted on ``learn``, lattice codes of 64 bits, searched by a
  :class:`vecspread.searcher.Searcher` (raw queries in: the PCA is part of the time) against faiss
  ``IndexPQ(d, 8, 8)`` trained on ``learn`` (64-bit codes too); for each of ``--lattice-bits``, the PCA
  dimension ``bench`` uses (96: 36, 128: 48, 256: 96; products of 64-bit lattices past 64 bits) against
  ``IndexPQ(d, bits / 8, 8)``, and the encode throughput of both (lattice codec on the PCA outputs,
  faiss ``sa_encode`` on the raw float32 vectors, interleaved, the median of ``--reps``);
- sign: ``rotation --dout 64`` sign codes (classic LSH) against faiss ``IndexBinaryFlat(64)`` holding
  the very same codes and given the queries' codes (its side does no projection);
- lsq (``--lsq-bits``): LSQ codes of the database (the ``lsq`` codec trained on the first
  ``--lsq-train`` learn vectors with 2 training rounds and encoded with 1 local-search round: the scan's
  cost does not depend on how good the codebooks are) searched by a :class:`vecspread.searcher.Searcher`
  against faiss ``IndexLocalSearchQuantizer`` holding the same codes with their norms (``ST_norm_float``,
  faiss's look-up-table search of additive codes), against ``IndexPQ(d, bits / 8, 8)`` (codes of the same
  size), and, for the record, the scan that decodes the codes at every call (the many-queries path of
  ``vecspread.scanners.decoded``, forced) against ``IndexPQ``; then that scan against the look-up tables at
  64 to 1000 queries per call, around where :func:`vecspread.scanners.decoded.use_tables` switches.

k = 100. The searcher is built once (its load time, and the memory of its search-ready form, are
printed). Prints a markdown table on stdout and progress on stderr.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date

import faiss
import h5py
import numpy as np

BATCHES = (1, 10, 1000)

#: queries per call where the LSQ scan's two paths are compared (``--lsq-bits``)
CROSSOVER_BATCHES = (64, 128, 512, 1000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def database(path: str, copies: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xb (copies * n, d) uint8, xq, xt as float32 arrays from the dataset (see the module docstring)."""
    with h5py.File(path, "r") as f:
        base, xq, xt = f["train"][:], f["test"][:], f["learn"][:]
    rng = np.random.default_rng(0)
    parts = [base] + [np.clip(base.astype(np.int16) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
                      for _ in range(copies - 1)]
    return np.concatenate(parts), xq.astype(np.float32), xt.astype(np.float32)


def encode_all(transform, codec, xb: np.ndarray, block: int = 65536) -> np.ndarray:
    return np.concatenate([codec.encode(transform.apply(xb[s : s + block].astype(np.float32)))
                           for s in range(0, len(xb), block)])


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(name: str, ours, theirs, xq: np.ndarray, xq_theirs: np.ndarray, k: int, reps: int,
            batches: tuple[int, ...] = BATCHES) -> list[tuple]:
    rows = []
    for b in batches:
        calls = max(1, min(len(xq) // b, 20 if b == 1 else 5 if b <= 32 else 1))
        t_ours, t_theirs = [], []
        for rep in range(reps):
            for c in range(calls):
                start = ((rep * calls + c) * b) % (len(xq) - b + 1)  # other queries at every call
                q, q2 = xq[start : start + b], xq_theirs[start : start + b]
                t_ours.append(timed(lambda: ours(q, k)) / b)
                t_theirs.append(timed(lambda: theirs(q2, k)) / b)
        mo, mt = statistics.median(t_ours) * 1e3, statistics.median(t_theirs) * 1e3
        rows.append((name, b, mo, mt, mo / mt))
        log(f"{name} {b} queries per call: vecspread {mo:.3f} ms/query, faiss {mt:.3f} ms/query, ratio {mo / mt:.2f}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--lattice-bits", type=lambda v: [int(b) for b in v.split(",")], default=[64],
                    help="comma-separated lattice sizes (64, 96, 128, 256), each against IndexPQ of bits/8 bytes")
    ap.add_argument("--no-sign", action="store_true", help="skip the sign-code comparison")
    ap.add_argument("--no-lattice", action="store_true", help="skip the lattice comparison (--lattice-bits)")
    ap.add_argument("--lsq-bits", type=lambda v: [int(b) for b in v.split(",")], default=[],
                    help="comma-separated LSQ sizes (multiples of 8), each against faiss's LSQ and IndexPQ")
    ap.add_argument("--lsq-train", type=int, default=20000, help="learn vectors the LSQ codebooks are trained on")
    args = ap.parse_args()

    from vecspread.runtime import set_threads
    from vecspread.searcher import Searcher
    from vecspread.stages.train import fit_method

    set_threads(args.threads)
    xb, xq, xt = database(args.dataset, args.copies)
    n, d = xb.shape
    log(f"database {n} x {d} ({args.copies} copies of {args.dataset}'s train), {len(xq)} queries, "
        f"{args.threads} thread(s)")
    rows = []

    encode_rows = []
    for bits in [] if args.no_lattice else args.lattice_bits:  # lattice (a product past 64 bits) vs PQ of the same size
        dout = LATTICE_DIM[bits]
        transform, codec = fit_method("pca", xt, dout=dout)
        codec = _lattice(xt, transform, bits)
        y = np.concatenate([transform.apply(xb[s : s + 65536].astype(np.float32)) for s in range(0, n, 65536)])
        xb32 = xb.astype(np.float32)  # both sides encode float32 vectors already in memory
        pq = faiss.IndexPQ(d, bits // 8, 8)
        pq.train(xt)
        t_lattice, t_pq = [], []
        for _ in range(args.reps):  # interleaved, the median of each side
            t0 = time.perf_counter()
            codes = np.concatenate([codec.encode(y[s : s + 65536]) for s in range(0, n, 65536)])
            t_lattice.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for s in range(0, n, 65536):
                pq.sa_encode(xb32[s : s + 65536])
            t_pq.append(time.perf_counter() - t0)
        t_lattice_encode, t_pq_encode = statistics.median(t_lattice), statistics.median(t_pq)
        pq.add(xb32)  # the searched index (untimed)
        del xb32
        t0 = time.perf_counter()
        searcher = Searcher(transform, codec, codes)
        log(f"lattice {bits} bits ({'+'.join(str(b.dim) for b in codec.layout_)} dims): {codes.nbytes / 2**20:.1f} MiB "
            f"of codes, search-ready form {searcher.resident_bytes / 2**20:.1f} MiB "
            f"({searcher.resident_bytes / codes.nbytes:.1f}x) built in {time.perf_counter() - t0:.2f} s")
        encode_rows.append((bits, dout, n / t_lattice_encode, n / t_pq_encode))
        log(f"encode {n} vectors: lattice {n / t_lattice_encode:,.0f} vectors/s (codec only, PCA excluded), "
            f"IndexPQ sa_encode {n / t_pq_encode:,.0f} vectors/s (median of {args.reps}, interleaved)")
        rows += compare(f"lattice {bits} bits vs IndexPQ(d, {bits // 8}, 8)", lambda q, k: searcher.search(q, k),
                        lambda q, k: pq.search(q, k), xq, xq, args.k, args.reps)
        searcher.close()

    for bits in args.lsq_bits:
        rows += lsq_rows(bits, xb, xq, xt, args)

    # sign vs IndexBinaryFlat
    if args.no_sign:
        return report(rows, encode_rows, n, args)
    transform, codec = fit_method("rotation", xt, dout=64)
    from vecspread.codecs import REGISTRY as CODECS

    codec = CODECS.create("sign", {}).fit(transform.apply(xt[:1000]))
    codes = encode_all(transform, codec, xb)
    searcher = Searcher(transform, codec, codes)
    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    xq_codes = codec.encode(transform.apply_query(xq))
    rows += compare("sign 64 bits vs IndexBinaryFlat(64)", lambda q, k: searcher.search(q, k),
                    lambda q, k: flat.search(q, k), xq, xq_codes, args.k, args.reps)

    report(rows, encode_rows, n, args)


def report(rows: list[tuple], encode_rows: list[tuple], n: int, args: argparse.Namespace) -> None:
    print(f"\nMachine: {platform.processor() or platform.machine()}, {faiss.omp_get_max_threads()} thread(s); "
          f"date {date.today()}; {n} codes; k = {args.k}; median of {args.reps} repetitions.\n")
    print("| scan | queries per call | vecspread ms/query | faiss ms/query | ratio |")
    print("|---|---|---|---|---|")
    for name, b, mo, mt, ratio in rows:
        print(f"| {name} | {b} | {mo:.3f} | {mt:.3f} | {ratio:.2f} |")
    print("\n| encode | lattice codec vectors/s | IndexPQ sa_encode vectors/s | ratio |")
    print("|---|---|---|---|")
    for bits, dout, lat, pq in encode_rows:
        print(f"| {bits} bits (PCA {dout}; PQ M = {bits // 8}) | {lat:,.0f} | {pq:,.0f} | {lat / pq:.2f} |")


def lsq_rows(bits: int, xb: np.ndarray, xq: np.ndarray, xt: np.ndarray, args: argparse.Namespace) -> list[tuple]:
    """The LSQ scan against faiss's LSQ look-up tables and IndexPQ; its two paths against each other."""
    from vecspread.scanners import decoded
    from vecspread.searcher import Searcher
    from vecspread.stages.train import fit_method

    n, d = xb.shape
    t0 = time.perf_counter()
    transform, codec = fit_method("lsq", xt[: args.lsq_train], bits=bits, train_iters=2, encode_ils_iters=1)
    codes = encode_all(transform, codec, xb)
    log(f"lsq {bits} bits: trained and encoded {n} vectors in {time.perf_counter() - t0:.0f} s")
    M = codec.code_size
    recon_norms = np.concatenate([(codec.decode(codes[s : s + 65536]).astype(np.float64) ** 2).sum(1)
                                  for s in range(0, n, 65536)]).astype(np.float32)
    lut_index = faiss.IndexLocalSearchQuantizer(d, M, 8, faiss.METRIC_L2, faiss.AdditiveQuantizer.ST_norm_float)
    faiss.copy_array_to_vector(codec.codebooks_.ravel(), lut_index.lsq.codebooks)
    lut_index.lsq.is_trained = lut_index.is_trained = True
    lut_index.add_sa_codes(np.hstack([codes, recon_norms.view(np.uint8).reshape(n, 4)]))
    pq = faiss.IndexPQ(d, M, 8)
    pq.train(xt)
    pq.add_sa_codes(codes)  # the scan's cost, not its recall, is measured: any M-byte codes serve
    t0 = time.perf_counter()
    searcher = Searcher(transform, codec, codes)
    log(f"lsq {bits} bits: {codes.nbytes / 2**20:.1f} MiB of codes, search-ready form "
        f"{searcher.resident_bytes / 2**20:.1f} MiB built in {time.perf_counter() - t0:.2f} s")
    searcher.search(xq[:1], args.k)  # the norms, computed at the first look-up-table scan

    def forced(tables: bool):
        """The searcher with the scan's path forced: the look-up tables, or decode + faiss's exhaustive search."""
        def run(q: np.ndarray, k: int):
            saved, decoded.use_tables = decoded.use_tables, lambda nq, d: tables
            try:
                return searcher.search(q, k)
            finally:
                decoded.use_tables = saved
        return run

    decoding, tables = forced(False), forced(True)

    ours = searcher.search(xq[:5], args.k)
    D1, I1 = ours.D, ours.I
    D2, I2 = lut_index.search(xq[:5], args.k)
    log(f"lsq {bits} bits: the same neighbours as faiss's look-up tables for {(I1 == I2).mean():.4f} of the "
        f"slots, distances within {np.abs(D1 - D2).max():.2g}")
    rows = compare(f"lsq {bits} bits vs faiss LSQ ST_norm_float", lambda q, k: searcher.search(q, k),
                   lambda q, k: lut_index.search(q, k), xq, xq, args.k, args.reps)
    rows += compare(f"lsq {bits} bits vs IndexPQ(d, {M}, 8)", lambda q, k: searcher.search(q, k),
                    lambda q, k: pq.search(q, k), xq, xq, args.k, args.reps)
    rows += compare(f"lsq {bits} bits decoded at every call (before) vs IndexPQ(d, {M}, 8)", decoding,
                    lambda q, k: pq.search(q, k), xq, xq, args.k, args.reps, (1, 10))
    rows += compare(f"lsq {bits} bits: look-up tables vs decoded at every call (both vecspread)",
                    tables, decoding, xq, xq, args.k, args.reps, CROSSOVER_BATCHES)
    searcher.close()
    return rows


#: PCA output dimension of the lattice at each budget (as ``vecspread bench``)
LATTICE_DIM = {64: 24, 96: 36, 128: 48, 256: 96}


def _lattice(xt: np.ndarray, transform, bits: int) -> object:
    from vecspread.codecs import REGISTRY as CODECS

    return CODECS.create("lattice", {"bits": bits}).fit(transform.apply(xt[:1000]))


if __name__ == "__main__":
    main()
