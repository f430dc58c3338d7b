"""Build a real inner-product (MIPS) dataset offline: word vectors from GCIDE co-occurrence counts.

Why this data: MIPS matters when the database norms vary, as for the item factors of a matrix
factorisation (the ALSH papers use PureSVD on Movielens / Netflix ratings). No rating matrix ships
in a package we can install offline, so we factorise another real count matrix the same way: word
co-occurrence counts in the text of the GNU Collaborative International Dictionary of English
(Webster's 1913 + WordNet glosses, ~5.4 M words of English written by people), as packaged by
Debian 12 ``dict-gcide`` 0.48.5+nmu2 (GPL). Nothing here is synthetic; every step is below.

1. Text: ``usr/share/dictd/gcide.dict.dz`` from the .deb (dictzip = gzip), decoded as UTF-8
   (undecodable bytes replaced); lines that only hold a source tag (``[1913 Webster]``, ``[PJC]``...)
   and pronunciations (``\\A*buse"\\``) are removed; tokens are lower-cased runs of ASCII letters
   of length >= 2 (single letters are mostly grammar abbreviations: n., v. t., L., F.).
2. Vocabulary: words ranked by count (ties alphabetical); rows = the ``--rows`` most frequent,
   contexts = the ``--contexts`` most frequent.
3. Counts: #(w, c) within a symmetric window of ``--window`` tokens.
4. PPMI with context-distribution smoothing 0.75 (Levy, Goldberg & Dagan 2015):
   R[w, c] = max(0, log(#(w,c) N / (#(w) #_0.75(c)))), #_0.75(c) = N #(c)^0.75 / sum_c' #(c')^0.75.
5. Truncated SVD R ~ U S V^T of rank ``--dim`` (eigenvectors of R^T R; sign of each singular vector
   fixed so its largest-magnitude entry is positive):
   database item x_w = R_w V = U_w S (PureSVD item factors: norms vary with how much PMI mass a
   word has), query q_c = V_c (one row per context word). x_w . q_c = rank-dim reconstruction of
   PPMI(w, c): the MIPS top-k for context c are the words the model predicts most strongly near c.
6. Splits (``--seed``): the row words are shuffled into ``train`` (database, --n-train) and
   ``learn`` (disjoint, for fitting models, the rest); ``test`` = --n-test random context words.
7. Ground truth: exact inner-product top-100 (vecspread.knn.knn_blocks, distance "dot":
   distances = -q.x), stored as ``neighbors`` / ``distances``; root attr ``distance`` = "dot".
   ``meta/`` holds the words (fixed-length ASCII) for inspection.

The .deb is read from ``--deb`` (its SHA-256 is checked); when absent and ``apt-get`` is available
it is fetched with ``apt-get download dict-gcide=0.48.5+nmu2`` into the file's directory. The result
is deterministic for a given .deb up to floating-point rounding of the BLAS/LAPACK in use.

Example (about a minute on one core)::

    python benchmarks/make_mips_dataset.py -o /tmp/gcide-mips.h5
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

DEB_NAME = "dict-gcide_0.48.5+nmu2_all.deb"
DEB_VERSION = "dict-gcide=0.48.5+nmu2"
DEB_SHA256 = "7b0af5cfde3cbdef5e9d6e78f92ec335ced7c2790f37a40f49bebc6f7347ac0f"
DICT_MEMBER = "./usr/share/dictd/gcide.dict.dz"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    deb = fetch_deb(args.deb)
    text = read_dict_text(deb)
    tokens = tokenize(text)
    log(f"{len(tokens):,} tokens ({time.perf_counter() - t0:.1f} s)")
    words, ids = vocabulary(tokens, args.rows)
    counts = cooccurrence(ids, args.rows, args.contexts, args.window)
    log(f"{len(counts[0]):,} non-zero (word, context) counts ({time.perf_counter() - t0:.1f} s)")
    rows, cols, vals = ppmi(*counts, args.rows, args.contexts)
    X, V, S = truncated_svd(rows, cols, vals, args.rows, args.contexts, args.dim)
    log(f"SVD rank {args.dim}: top singular values {np.round(S[:4], 2).tolist()} ({time.perf_counter() - t0:.1f} s)")

    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(args.rows)
    train_rows, learn_rows = np.sort(perm[: args.n_train]), np.sort(perm[args.n_train :])
    test_ctx = np.sort(rng.choice(args.contexts, args.n_test, replace=False))
    xb, xt, xq = X[train_rows], X[learn_rows], V[test_ctx]
    write_dataset(args, xb, xt, xq, words, train_rows, learn_rows, test_ctx, S)
    norms = np.linalg.norm(xb, axis=1)
    log(f"wrote {args.output}: train {xb.shape}, learn {xt.shape}, test {xq.shape}; database norms "
        f"min {norms.min():.3g} median {np.median(norms):.3g} max {norms.max():.3g} ({time.perf_counter() - t0:.1f} s)")
    return 0


def fetch_deb(path: str) -> str:
    """The verified path of the dict-gcide .deb, downloaded with apt-get when missing."""
    if not os.path.exists(path):
        if shutil.which("apt-get") is None:
            raise SystemExit(f"{path}: missing; download {DEB_NAME} (Debian 12 {DEB_VERSION}) and pass --deb")
        log(f"fetching {DEB_VERSION} with apt-get download")
        subprocess.run(["apt-get", "download", DEB_VERSION], cwd=os.path.dirname(os.path.abspath(path)), check=True)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != DEB_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the expected {DEB_SHA256}")
    return path


def read_dict_text(deb: str) -> str:
    """The dictionary text inside the .deb (an ar archive holding data.tar.xz), without dpkg."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise SystemExit(f"{deb}: not a Debian package (ar archive)")
        while True:
            header = f.read(60)
            if len(header) < 60:
                raise SystemExit(f"{deb}: no data.tar member")
            name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
            body = f.read(size)
            f.read(size % 2)  # members are 2-byte aligned
            if name.startswith("data.tar"):
                break
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        raw = tar.extractfile(DICT_MEMBER).read()
    return gzip.decompress(raw).decode("utf-8", errors="replace")


def tokenize(text: str) -> list[str]:
    """Lower-cased ASCII words of >= 2 letters, with source-tag lines and pronunciations removed."""
    text = re.sub(r"(?m)^[ \t]*\[[^\]\n]*\][ \t]*$", " ", text)  # "[1913 Webster]" lines
    text = re.sub(r"\\[^\\\n]*\\", " ", text)  # \A*buse"\ pronunciations
    return re.findall(r"[a-z]{2,}", text.lower())


def vocabulary(tokens: list[str], nrows: int) -> tuple[list[str], np.ndarray]:
    """Words by decreasing count (ties alphabetical) and the token stream as ranks (int32)."""
    uniq, inverse, counts = np.unique(np.array(tokens), return_inverse=True, return_counts=True)
    order = np.lexsort((uniq, -counts))
    if len(order) < nrows:
        raise SystemExit(f"only {len(order)} distinct words; ask for fewer --rows")
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return [str(w) for w in uniq[order[:nrows]]], rank[inverse.ravel()]


def cooccurrence(ids: np.ndarray, nrows: int, nctx: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse counts #(w, c), w < nrows, c < nctx, within +-window tokens: (rows, cols, counts)."""
    keys = []
    for off in range(1, window + 1):
        for w, c in ((ids[:-off], ids[off:]), (ids[off:], ids[:-off])):
            keep = (w < nrows) & (c < nctx)
            keys.append(w[keep].astype(np.int64) * nctx + c[keep])
    key = np.sort(np.concatenate(keys))
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    uniq = key[starts]
    return uniq // nctx, uniq % nctx, counts.astype(np.float64)


def ppmi(rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, nrows: int, nctx: int,
         alpha: float = 0.75) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive PMI of the sparse counts with smoothed context probabilities; zero entries dropped."""
    total = counts.sum()
    row_sum = np.bincount(rows, counts, nrows)
    ctx_sum = np.bincount(cols, counts, nctx)
    p_ctx = ctx_sum**alpha / (ctx_sum**alpha).sum()
    pmi = np.log(counts * total / (row_sum[rows] * total * p_ctx[cols]))
    keep = pmi > 0
    return rows[keep], cols[keep], pmi[keep]


def truncated_svd(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, nrows: int, nctx: int, dim: int,
                  block: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R ~ U S V^T: returns X = R V (nrows, dim) float32, V (nctx, dim) float32, S (dim,) float64."""
    gram = np.zeros((nctx, nctx))
    for dense in _dense_row_blocks(rows, cols, vals, nrows, nctx, block):
        gram += dense.T @ dense
    eigval, eigvec = np.linalg.eigh(gram)
    order = np.argsort(eigval)[::-1][:dim]
    V = eigvec[:, order]
    V *= np.where(V[np.abs(V).argmax(axis=0), np.arange(dim)] < 0, -1.0, 1.0)  # deterministic signs
    X = np.concatenate([dense @ V for dense in _dense_row_blocks(rows, cols, vals, nrows, nctx, block)])
    return X.astype(np.float32), V.astype(np.float32), np.sqrt(np.maximum(eigval[order], 0))


def _dense_row_blocks(rows, cols, vals, nrows, nctx, block):
    order = np.argsort(rows, kind="stable")
    rows, cols, vals = rows[order], cols[order], vals[order]
    bounds = np.searchsorted(rows, np.arange(0, nrows + block, block))
    for i, r0 in enumerate(range(0, nrows, block)):
        sl = slice(bounds[i], bounds[i + 1])
        dense = np.zeros((min(block, nrows - r0), nctx))
        dense[rows[sl] - r0, cols[sl]] = vals[sl]
        yield dense


def write_dataset(args, xb, xt, xq, words, train_rows, learn_rows, test_ctx, S) -> None:
    from vecspread.io.artifacts import write_artifact
    from vecspread.knn import knn_blocks

    D, I = knn_blocks(xq, [(0, xb)], min(100, len(xb)), distance="dot")
    source = {
        "package": DEB_VERSION, "deb_sha256": DEB_SHA256, "member": DICT_MEMBER,
        "license": "GPL (GCIDE)", "tokens": "lower-cased ASCII words of >= 2 letters",
        "rows": args.rows, "contexts": args.contexts, "window": args.window, "weighting": "PPMI, cds 0.75",
        "factorisation": "truncated SVD; x_w = R_w V (= U S), q_c = V_c", "dim": args.dim, "seed": args.seed,
        "singular_values": np.round(S, 4).tolist(),
    }
    params = {k: getattr(args, k) for k in ("rows", "contexts", "window", "dim", "n_train", "n_test", "seed")}
    fixed = max(len(w) for w in words)
    with write_artifact(args.output, "dataset", params=params,
                        attrs={"distance": "dot", "point_type": "float", "type": "dense",
                               "dimension": int(xb.shape[1]), "source": json.dumps(source)}) as f:
        f.create_dataset("train", data=xb)
        f.create_dataset("learn", data=xt)
        f.create_dataset("test", data=xq)
        f.create_dataset("neighbors", data=I)
        f.create_dataset("distances", data=D)
        meta = f.create_group("meta")
        words_arr = np.array(words, dtype=f"S{fixed}")
        meta.create_dataset("train_words", data=words_arr[train_rows])
        meta.create_dataset("learn_words", data=words_arr[learn_rows])
        meta.create_dataset("test_context_words", data=words_arr[test_ctx])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", required=True, help="dataset file to write (HDF5)")
    p.add_argument("--deb", default=os.path.join(os.path.expanduser("~/.cache/vecspread"), DEB_NAME),
                   help="path of the dict-gcide .deb (fetched with apt-get download when missing)")
    p.add_argument("--rows", type=int, default=40000, help="database + learn words (most frequent first)")
    p.add_argument("--contexts", type=int, default=4096, help="context words (columns; queries are drawn from them)")
    p.add_argument("--window", type=int, default=5, help="co-occurrence window (tokens on each side)")
    p.add_argument("--dim", type=int, default=128, help="rank of the factorisation (vector dimension)")
    p.add_argument("--n-train", type=int, default=30000, help="database size; the remaining rows form the learn set")
    p.add_argument("--n-test", type=int, default=1000, help="number of queries")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits")
    args = p.parse_args(argv)
    if not 0 < args.n_train < args.rows:
        p.error("--n-train must be positive and smaller than --rows (the rest is the learn set)")
    if not 0 < args.n_test <= args.contexts:
        p.error("--n-test must lie in [1, --contexts]")
    if not 0 < args.dim <= args.contexts:
        p.error("--dim must lie in [1, --contexts]")
    os.makedirs(os.path.dirname(os.path.abspath(args.deb)), exist_ok=True)
    return args


if __name__ == "__main__":
    sys.exit(main())
