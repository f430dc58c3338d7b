"""Build a real text-embedding dataset (angular, unit-norm, 96-d, Deep1M-like) from text on this machine.

What it builds: ``textlsa``, an ann-benchmarks HDF5 file plus a learn set, whose vectors are LSA
embeddings (TF-IDF -> truncated SVD -> L2 normalisation) of English paragraphs written by people:

- ``train`` 200,000 x 96 float32 -- the database
- ``test`` 1,000 x 96 float32 -- queries
- ``learn`` 100,000 x 96 float32 -- for fitting models (disjoint from train and test)
- ``neighbors`` 1,000 x 100 int32, ``distances`` 1,000 x 100 float32 -- exact angular ground truth,
  distances = 1 - cos (ann-benchmarks' ``angular`` convention, and what ``vecspread.distances`` reports)
- root attrs ``distance`` = "angular", ``point_type`` = "float", ``type`` = "dense", ``dimension`` = 96,
  ``source`` (JSON provenance)

From what:

1. Man pages: ``/usr/share/man/man[1-8]/*.gz`` (top-level English sections only; the translated
   subdirectories such as ``/usr/share/man/de`` are not read). Symbolic links are followed (some point
   to pages installed elsewhere, e.g. PostgreSQL's or the JDK's); a file whose real path was already read
   is skipped. Roff is stripped crudely: comments (``.\\"``, ``\\"``) and ``.de``/``.ig`` blocks are
   dropped; control lines (starting with ``.`` or ``'``) are dropped except the arguments of the font
   macros (``.B .I .BR .IR .RB .RI .BI .IB .SM .SB``) and of a few mdoc inline macros (``.Nm .Nd .Ar .Fl
   .Xr .Em ...``; mdoc macro names among the arguments are removed); tbl options/format lines after
   ``.TS`` (``allbox;`` ``lbx lb lb``) and ``T{``/``T}`` are removed; escapes (``\\fB``, ``\\f(CW``,
   ``\\(em``, ``\\[..]``, ``\\*(..``, ``\\s-1``, ``\\-`` ...) are removed. Paragraph breaks: ``.PP .P .LP
   .TP .IP .HP .SH .SS .sp`` (mdoc ``.Pp .Lp .Sh .Ss .It .Bl .El``) and blank lines.
2. Python 3.11 standard library docstrings: ``/usr/lib/python3.11/**/*.py``, ``ast.get_docstring`` of the
   module and of every class and (async) function (``ast.walk`` order), split at blank lines. Files that
   do not parse as Python 3.11 (e.g. lib2to3 test data in Python 2) are counted and skipped.
3. Only if 1+2 give too few paragraphs: ``/usr/share/doc/**`` plain-text files (``*.txt``, ``README*``,
   ``changelog*``; ``.gz`` decompressed), split at blank lines. Header paragraphs of ``git log``-style
   ChangeLogs (``commit <sha>`` / ``Author:`` / ``Date:``) are dropped: they differ only in the hash, which
   no vocabulary keeps, so they would survive the exact deduplication as thousands of identical vectors.
   This source is read whole (not stopped once enough paragraphs are in, which would keep only the
   alphabetically first packages); the shuffle below then samples all sources in proportion.

Every paragraph is lower-cased and tokenised as ``[a-z][a-z0-9_]+``; paragraphs with fewer than 8
tokens are dropped; the rest are deduplicated by the SHA-1 of their token sequence (first occurrence
kept; files are read in sorted order, so the result is deterministic).

Split and embedding: the deduplicated paragraphs are shuffled with ``numpy.random.default_rng(seed)``;
positions [0, 1000) are the queries, [1000, 201000) the database, [201000, 301000) the learn
paragraphs. TF-IDF (scikit-learn ``TfidfVectorizer``: sublinear tf, smoothed idf, l2-normalised rows,
vocabulary = tokens in >= 5 and <= 50% of the learn paragraphs, at most the 100,000 most frequent) and
``TruncatedSVD(96, algorithm="randomized", n_iter=5, random_state=0)`` are fitted on the learn paragraphs
only and applied to all; rows are then L2-normalised. Rows whose LSA vector has (near-)zero norm
(<= 1e-6: no token in the vocabulary, or nothing in the 96-d subspace) are dropped; should any fall in
the query/database positions, those sets are topped up from the unused shuffled paragraphs beyond
position 301000 (never from the fitted learn paragraphs), and ``learn`` likewise, so the sizes stay exact
and no paragraph the models were fitted on is a query or in the database.

Ground truth: exact top-100 by inner product of the unit vectors (faiss ``IndexFlatIP``), stored as
``neighbors`` int32 and ``distances`` = 1 - inner product, float32.

Run::

    python benchmarks/make_text_dataset.py --out /work/data/textlsa.h5

Here (2-core box shared with another CPU benchmark; one thread, ``nice -n 19``, OMP/OpenBLAS/MKL
threads = 1) it took about 35 s and under 1 GB of memory: 20 s reading and cleaning the corpus (~20,000
man pages, 668 stdlib modules, ~2,000 /usr/share/doc files), 5 s fitting TF-IDF + SVD, 6 s embedding,
3 s ground truth (``timings_s`` in the file's ``source``). What it found here: man pages give 191,185
distinct paragraphs (90,198 of them from the 16,631 gcloud pages), docstrings 8,933, /usr/share/doc
194,915 more (395,033 in all, of which the first 321,000 shuffled are embedded).
The output is deterministic for a given set of installed files, up to floating-point rounding of the
BLAS in use and its thread count: with ``OMP_NUM_THREADS=1`` two runs here gave identical arrays (with 2
threads, vectors within 2e-4 and some near-tied neighbours swapped).

Known properties (this machine): 1-NN cosine of the queries mean 0.877 (min 0.644, max 1.0); 44 of the
1,000 queries have a database vector at cos > 0.9999 although no two paragraphs have the same tokens:
templated text that differs in one rare word (gcloud's "provide the argument X on the command line",
Debian's "older entries have been removed from this changelog ... apt changelog PKG", glibc's attributes
tables). 5 queries sit in such clusters of >= 100 near-identical database vectors, whose order in the
ground truth rests on distance differences of ~1e-7 (above vecspread's tie tolerance or not).
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import gzip
import hashlib
import json
import os
import platform
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAN_ROOT = Path("/usr/share/man")
MAN_SECTIONS = [f"man{i}" for i in range(1, 9)]
PY_ROOT = Path("/usr/lib/python3.11")
DOC_ROOT = Path("/usr/share/doc")

MIN_TOKENS = 8
TOKEN_RE = re.compile(r"[a-z][a-z0-9_]+")
NEAR_ZERO = 1e-6
#: the header paragraph of a ``git log`` entry (commit id, author, date), as in harfbuzz's ChangeLog
GIT_HEADER_RE = re.compile(r"\s*commit [0-9a-f]{7,40}\b")

# --- roff -------------------------------------------------------------------------------------------

#: man(7) / mdoc(7) requests that start a new paragraph
BREAK_MACROS = frozenset({
    "PP", "P", "LP", "TP", "IP", "HP", "SH", "SS", "sp", "Pp", "Lp", "Sh", "Ss", "It", "Bl", "El"
})
#: man(7) font macros whose arguments are running text
FONT_MACROS = frozenset({
    "B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB"
})
#: mdoc(7) inline macros whose arguments are running text (the names themselves are removed)
MDOC_TEXT_MACROS = frozenset({
    "Nm", "Nd", "Ar", "Fl", "Cm", "Xr", "Em", "Sy", "Li", "Pa", "Va", "Fn", "Fa", "Ev", "Ic", "Dq",
    "Sq", "Qq", "Ql", "Op", "Pq", "Ad", "Dv", "Er", "Ft", "Tn", "Dl", "Cd", "Vt", "Aq", "Bq", "It"
})
MDOC_ALL_NAMES = MDOC_TEXT_MACROS | frozenset({
    "No", "Ns", "Oo", "Oc", "Ta", "Ux", "Bx", "At", "Nx", "Fx", "Ox", "Bsx", "Ms", "Lk", "Mt",
    "Ot", "Brq", "Ec", "Eo", "Pf", "Sx", "Xo", "Xc", "Do", "Dc", "So", "Sc", "Qo", "Qc", "Po",
    "Pc", "Bo", "Bc"
})

ROFF_ESCAPES = [
    (re.compile(r'\\".*$'), ""),  # comment to end of line
    (re.compile(r"\\f(\(..|\[[^\]]*\]|.)"), ""),  # font changes \fB \fR \f(CW \f[B]
    (re.compile(r"\\\*(\(..|\[[^\]]*\]|.)"), ""),  # string interpolation \*(lq \*[x] \*R
    (re.compile(r"\\n[+-]?(\(..|\[[^\]]*\]|.)"), ""),  # number registers
    (re.compile(r"\\s[+-]?(\d+|\(\d\d|\[[^\]]*\])"), ""),  # size changes \s-1 \s0
    (re.compile(r"\\[hvwlLxNZbo]'[^']*'"), " "),  # motions / width / drawing with a quoted argument
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), " "),  # special characters \(em \[aq]
    (re.compile(r"\\-"), "-"),
    (re.compile(r"\\(e|\\)"), " "),  # printable backslash
    (re.compile(r"\\."), " "),  # anything else: \& \| \^ \, \/ \c \% '\ '
]


def strip_escapes(line: str) -> str:
    """A roff text line with its escapes and trailing comment removed."""
    for pattern, repl in ROFF_ESCAPES:
        line = pattern.sub(repl, line)
    return line


def macro_text(name: str, args: str) -> str | None:
    """The running text carried by control line ``.name args``, or None when it carries none."""
    if name in FONT_MACROS:
        return strip_escapes(args).replace('"', " ")
    if name in MDOC_TEXT_MACROS:
        words = strip_escapes(args).replace('"', " ").split()
        return " ".join(w for w in words if w not in MDOC_ALL_NAMES)
    return None


def roff_paragraphs(text: str) -> list[str]:
    """Split a man page (roff source) into plain-text paragraphs, markup crudely stripped."""
    paragraphs: list[str] = []
    current: list[str] = []
    skip_until: str | None = None  # end marker of a .de/.ig block being skipped
    in_tbl_format = False  # between .TS and the end of tbl's options/format lines (the first ending in '.')

    def flush() -> None:
        if current:
            paragraphs.append(" ".join(current))
            current.clear()

    text = re.sub(r"(?<!\\)\\\n", "", text)  # roff line continuation: a backslash ending the line
    for raw in text.splitlines():
        if skip_until is not None:
            if raw.strip() == skip_until:
                skip_until = None
            continue
        if in_tbl_format and raw[:1] not in (".", "'"):
            in_tbl_format = not raw.rstrip().endswith(".")
            continue
        if raw[:1] in (".", "'"):
            body = raw[1:].lstrip()
            parts = body.split(None, 1)
            name = parts[0] if parts else ""
            args = parts[1] if len(parts) > 1 else ""
            if name in ("de", "de1", "am", "ig"):
                end = args.split()[1] if name != "ig" and len(args.split()) > 1 else ""
                if name == "ig" and args.split():
                    end = args.split()[0]
                skip_until = "." + (end or ".")
                continue
            if name == "TS":
                in_tbl_format = True
            if name in BREAK_MACROS:
                flush()
            carried = macro_text(name, args)
            if carried and carried.strip():
                current.append(carried.strip())
            continue
        line = strip_escapes(raw).replace("T{", " ").replace("T}", " ").strip()  # tbl text blocks
        if not line:
            flush()
        else:
            current.append(line)
    flush()
    return paragraphs


# --- sources ---------------------------------------------------------------------------------------


@dataclass
class SourceStats:
    """Counts for one corpus source."""

    files: int = 0
    files_skipped: int = 0
    paragraphs_raw: int = 0
    paragraphs_kept: int = 0  # >= MIN_TOKENS tokens
    paragraphs_new: int = 0  # not a duplicate of an earlier paragraph
    notes: dict[str, int] = field(default_factory=dict)


def tokens_of(text: str) -> list[str]:
    """Lower-cased ``[a-z][a-z0-9_]+`` tokens of a paragraph."""
    return TOKEN_RE.findall(text.lower())


def read_text(path: Path) -> str:
    """A file's text (gzip-decompressed when it ends in .gz), undecodable bytes replaced."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def distinct_texts(paths: Iterable[Path], stats: SourceStats) -> Iterator[tuple[Path, str]]:
    """(path, text) of each file in ``paths`` whose real path was not read before (links to one file are
    read once) and that reads as text; the others are counted in ``stats.files_skipped``."""
    seen: set[str] = set()
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not os.path.isfile(real):
            stats.files_skipped += 1
            continue
        seen.add(real)
        try:
            text = read_text(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            stats.files_skipped += 1
            continue
        stats.files += 1
        yield path, text


def man_files() -> list[Path]:
    """The gzipped man pages of the top-level English sections man1..man8, sorted."""
    files: list[Path] = []
    for section in MAN_SECTIONS:
        d = MAN_ROOT / section
        if d.is_dir():
            files.extend(sorted(p for p in d.iterdir() if p.name.endswith(".gz")))
    return files


def man_paragraphs(stats: SourceStats) -> Iterator[tuple[str, str]]:
    """(origin, paragraph) of every man page, in sorted file order; a file reached twice (links) is read
    once. Origin is ``man_gcloud`` for the Google Cloud CLI's pages (``gcloud*``: most of man1 here),
    ``man`` otherwise."""
    for path, text in distinct_texts(man_files(), stats):
        if path.is_symlink():
            stats.notes["symlinks_followed"] = stats.notes.get("symlinks_followed", 0) + 1
        origin = "man_gcloud" if path.name.startswith("gcloud") else "man"
        if origin == "man_gcloud":
            stats.notes["gcloud_files"] = stats.notes.get("gcloud_files", 0) + 1
        for para in roff_paragraphs(text):
            yield origin, para


def docstring_paragraphs(stats: SourceStats) -> Iterator[tuple[str, str]]:
    """("python_docstrings", paragraph) for the blank-line separated paragraphs of the module, class and
    function docstrings of the stdlib."""
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in sorted(PY_ROOT.rglob("*.py")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences in old test data
                tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            stats.files_skipped += 1
            continue
        stats.files += 1
        for node in ast.walk(tree):
            if isinstance(node, nodes):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    for para in re.split(r"\n[ \t]*\n", doc):
                        yield "python_docstrings", para


def doc_files() -> list[Path]:
    """Plain-text files under /usr/share/doc (*.txt, README*, changelog*, optionally .gz), sorted."""
    out = []
    for p in sorted(DOC_ROOT.rglob("*")):
        name = p.name.lower()
        base = name.removesuffix(".gz")
        if (base.endswith(".txt") or base.startswith(("readme", "changelog"))) and p.is_file():
            out.append(p)
    return out


def doc_paragraphs(stats: SourceStats) -> Iterator[tuple[str, str]]:
    """("share_doc", paragraph) for the blank-line separated paragraphs of the plain-text files under
    /usr/share/doc."""
    for _, text in distinct_texts(doc_files(), stats):
        for para in re.split(r"\n[ \t]*\n", text):
            if GIT_HEADER_RE.match(para):  # "commit <sha>\nAuthor: ...\nDate: ...": metadata, not prose
                stats.notes["git_commit_headers_dropped"] = stats.notes.get("git_commit_headers_dropped", 0) + 1
                continue
            yield "share_doc", para


def collect(sources: Iterable[tuple[str, Callable[[SourceStats], Iterator[tuple[str, str]]]]], need: int,
            log: Callable[[str], None]) -> tuple[list[str], list[str], dict[str, SourceStats]]:
    """Deduplicated paragraphs (space-joined tokens) and their origins, read source by source.

    A source is read only while fewer than ``need`` paragraphs have been collected; the first two are
    always read.
    """
    docs: list[str] = []
    origin: list[str] = []
    seen: set[bytes] = set()
    stats: dict[str, SourceStats] = {}
    for i, (name, reader) in enumerate(sources):
        if i >= 2 and len(docs) >= need:
            break
        t0 = time.perf_counter()
        st = stats[name] = SourceStats()
        for where, para in reader(st):
            st.paragraphs_raw += 1
            toks = tokens_of(para)
            if len(toks) < MIN_TOKENS:
                continue
            st.paragraphs_kept += 1
            text = " ".join(toks)
            key = hashlib.sha1(text.encode()).digest()
            if key in seen:
                continue
            seen.add(key)
            st.paragraphs_new += 1
            docs.append(text)
            origin.append(where)
            st.notes[f"new_{where}"] = st.notes.get(f"new_{where}", 0) + 1
        log(f"{name}: {st.files} files ({st.files_skipped} skipped), {st.paragraphs_raw} paragraphs, "
            f"{st.paragraphs_kept} with >= {MIN_TOKENS} tokens, {st.paragraphs_new} new; total {len(docs)} "
            f"({time.perf_counter() - t0:.0f} s)")
    return docs, origin, stats


# --- embedding -------------------------------------------------------------------------------------


def fit_lsa(learn_docs: list[str], dim: int) -> tuple[object, object]:
    """TF-IDF vectorizer and TruncatedSVD, both fitted on the learn paragraphs only."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer=str.split, lowercase=False, min_df=5, max_df=0.5, max_features=100_000,
                          sublinear_tf=True, smooth_idf=True, use_idf=True, norm="l2", dtype=np.float32)
    X = vec.fit_transform(learn_docs)
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=5, random_state=0)
    svd.fit(X)
    return vec, svd


def embed(vec: object, svd: object, docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 unit rows (zero where the LSA vector is near zero) and the (n,) pre-normalisation
    norms of the LSA vectors."""
    Y = np.asarray(svd.transform(vec.transform(docs)), dtype=np.float64)
    norms = np.linalg.norm(Y, axis=1)
    safe = np.where(norms > NEAR_ZERO, norms, 1.0)
    return (Y / safe[:, None]).astype(np.float32), norms


def assign_splits(fit_pos: slice, valid: np.ndarray, perm: np.ndarray,
                  n_test: int, n_train: int, n_learn: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paragraph ids of test, train and learn: valid rows in shuffled order; the fitted learn paragraphs
    are never used as queries or database, and the sets are topped up from the shuffled rest when rows
    were dropped."""
    fitted = perm[fit_pos]
    others = np.concatenate([perm[: fit_pos.start], perm[fit_pos.stop:]])
    others = others[valid[others]]
    if len(others) < n_test + n_train:
        raise SystemExit(f"only {len(others)} usable paragraphs outside learn; need {n_test + n_train}")
    test, train, rest = others[:n_test], others[n_test: n_test + n_train], others[n_test + n_train:]
    learn = np.concatenate([fitted[valid[fitted]], rest])[:n_learn]
    if len(learn) < n_learn:
        raise SystemExit(f"only {len(learn)} usable learn paragraphs; need {n_learn}")
    return test, train, learn


# --- ground truth and checks -----------------------------------------------------------------------


def ground_truth(xb: np.ndarray, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product (faiss IndexFlatIP): neighbors int32, distances = 1 - ip float32."""
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(xb.shape[1])
    index.add(xb)
    D, I = index.search(xq, k)
    return I.astype(np.int32), (1.0 - D).astype(np.float32)


def sanity(xb: np.ndarray, xq: np.ndarray, I: np.ndarray, D: np.ndarray, docs_q: list[str],
           docs_b: list[str]) -> dict[str, float | int]:
    """1-NN cosine statistics, exact-duplicate queries and a float64 recheck of the stored distances."""
    cos1 = 1.0 - D[:, 0].astype(np.float64)
    tied = D <= D[:, :1] + 1e-5 * np.abs(D[:, :1]) + 1e-6
    exact = np.einsum("ij,ij->i", xq.astype(np.float64), xb[I[:, 0]].astype(np.float64))
    same_text = sum(docs_q[q] == docs_b[I[q, 0]] for q in range(len(docs_q)))
    return {
        "nn1_cos_mean": float(cos1.mean()), "nn1_cos_min": float(cos1.min()), "nn1_cos_max": float(cos1.max()),
        "nn1_cos_median": float(np.median(cos1)),
        "nn100_cos_mean": float(1.0 - D[:, -1].astype(np.float64).mean()),
        "queries_with_duplicate_vector_in_db_cos_gt_0.9999": int((cos1 > 0.9999).sum()),
        "queries_whose_1nn_has_identical_tokens": int(same_text),  # must be 0 after dedup
        # ties as vecspread.metrics counts them (d <= d1 + 1e-5 |d1| + 1e-6)
        "queries_with_tie_at_rank1": int((tied.sum(axis=1) > 1).sum()),
        "queries_all_k_tied_with_1nn": int((tied.sum(axis=1) == D.shape[1]).sum()),
        "max_abs_error_distances_vs_float64": float(np.abs((1.0 - exact) - D[:, 0]).max()),
        "distances_sorted": bool((np.diff(D, axis=1) >= -1e-6).all()),
    }


# --- output ----------------------------------------------------------------------------------------


def write_h5(out: Path, sets: dict[str, np.ndarray], attrs: dict[str, object]) -> None:
    """Write the datasets and root attributes to ``out`` through a temporary file renamed into place."""
    import h5py

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            for name, arr in sets.items():
                f.create_dataset(name, data=arr)
            for key, value in attrs.items():
                f.attrs[key] = value
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--out", "-o", type=Path, required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (numpy default_rng)")
    p.add_argument("--dim", type=int, default=96)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=200_000)
    p.add_argument("--n-learn", type=int, default=100_000)
    p.add_argument("-k", type=int, default=100)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build the dataset; returns the exit status."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    need = args.n_test + args.n_train + args.n_learn
    sources = [("man", man_paragraphs), ("python_docstrings", docstring_paragraphs), ("share_doc", doc_paragraphs)]
    docs, origin, stats = collect(sources, need, log)
    timings["corpus"] = time.perf_counter() - t_start
    if len(docs) < need:
        raise SystemExit(f"only {len(docs)} distinct paragraphs; need {need}")

    perm = np.random.default_rng(args.seed).permutation(len(docs))
    fit_pos = slice(args.n_test + args.n_train, need)
    learn_docs = [docs[i] for i in perm[fit_pos]]
    t0 = time.perf_counter()
    vec, svd = fit_lsa(learn_docs, args.dim)
    timings["fit_tfidf_svd"] = time.perf_counter() - t0
    log(f"fitted TF-IDF ({len(vec.vocabulary_)} terms) and SVD on {len(learn_docs)} learn paragraphs "
        f"(explained variance ratio sum {svd.explained_variance_ratio_.sum():.4f})")

    # embed the fitted paragraphs and a spare margin beyond them (for top-ups), not the whole corpus
    t0 = time.perf_counter()
    spare = min(len(docs), need + 20_000)
    pool = perm[:spare]
    X = np.zeros((len(docs), args.dim), np.float32)
    norms = np.zeros(len(docs))
    X[pool], norms[pool] = embed(vec, svd, [docs[i] for i in pool])
    valid = np.zeros(len(docs), bool)
    valid[pool] = norms[pool] > NEAR_ZERO
    timings["embed"] = time.perf_counter() - t0
    n_drop = int((~valid[pool]).sum())
    log(f"embedded {len(pool)} paragraphs; {n_drop} with near-zero LSA norm dropped")

    perm_pool = perm[:spare]
    test, train, learn = assign_splits(fit_pos, valid, perm_pool, args.n_test, args.n_train, args.n_learn)
    xq, xb, xl = X[test], X[train], X[learn]

    t0 = time.perf_counter()
    I, D = ground_truth(xb, xq, args.k)
    timings["ground_truth"] = time.perf_counter() - t0
    checks = sanity(xb, xq, I, D, [docs[i] for i in test], [docs[i] for i in train])
    log(f"ground truth done; checks {json.dumps(checks)}")

    import sklearn

    pool_norms = norms[pool]
    source = {
        "name": "textlsa",
        "description": "LSA text embeddings (TF-IDF -> truncated SVD to 96 -> L2 normalised) of English paragraphs "
                       "written by people, from the files installed on a Debian 12 machine: man pages "
                       "(/usr/share/man/man1..man8, roff stripped; most of man1 is the Google Cloud CLI's gcloud "
                       "pages, origin man_gcloud), Python 3.11 standard-library docstrings and, to reach the size "
                       "needed, /usr/share/doc plain text (mostly upstream/Debian changelogs); paragraphs "
                       "deduplicated by exact token sequence.",
        "corpus": {
            "man_pages": "/usr/share/man/man[1-8]/*.gz (top-level English sections; translations not read; symlinks "
                         "followed, each real file read once)",
            "python_docstrings": "/usr/lib/python3.11/**/*.py, ast.get_docstring of module/class/function, split at "
                                 "blank lines",
            "share_doc": "/usr/share/doc/** *.txt, README*, changelog* (.gz decompressed), split at blank lines, "
                         "git-log header paragraphs ('commit <sha>', Author, Date) dropped; read only when the first "
                         "two give too few paragraphs (they do: man pages give ~191k distinct paragraphs, the "
                         "stdlib docstrings ~9k)",
            "sources_read": list(stats),
            "per_source": {k: vars(v) for k, v in stats.items()},
            "tokens": "lower-cased, [a-z][a-z0-9_]+", "min_tokens_per_paragraph": MIN_TOKENS,
            "dedup": "sha1 of the space-joined token sequence, first occurrence kept (files in sorted order)",
            "paragraphs_distinct": len(docs),
            "paragraphs_before_dedup": sum(v.paragraphs_kept for v in stats.values()),
            "duplicates_removed": sum(v.paragraphs_kept - v.paragraphs_new for v in stats.values()),
            "roff_breaks": sorted(BREAK_MACROS), "roff_text_macros": sorted(FONT_MACROS | MDOC_TEXT_MACROS),
        },
        "split": {
            "shuffle": f"numpy.random.default_rng({args.seed}).permutation(n_distinct)",
            "test": f"shuffled positions [0, {args.n_test})", "train": f"[{args.n_test}, {args.n_test + args.n_train})",
            "learn": f"[{args.n_test + args.n_train}, {need}) (the paragraphs TF-IDF and SVD were fitted on)",
            "dropped_near_zero_norm": n_drop, "near_zero_threshold": NEAR_ZERO,
            "embedded": len(pool), "dropped_share": n_drop / len(pool),
            "topup": "dropped rows replaced by the next usable shuffled paragraphs beyond the learn block",
            "origin_counts": {name: dict(sorted(Counter(origin[i] for i in ids).items())) for name, ids in
                              (("test", test), ("train", train), ("learn", learn))},
        },
        "tfidf": {"impl": "sklearn TfidfVectorizer", "analyzer": "the tokens above", "sublinear_tf": True,
                  "smooth_idf": True, "norm": "l2", "min_df": 5, "max_df": 0.5, "max_features": 100_000,
                  "fitted_on": "learn", "vocabulary_size": len(vec.vocabulary_)},
        "svd": {"impl": "sklearn TruncatedSVD", "n_components": args.dim, "algorithm": "randomized", "n_iter": 5,
                "random_state": 0, "fitted_on": "learn",
                "explained_variance_ratio_sum": float(svd.explained_variance_ratio_.sum())},
        "normalisation": "L2 per row, float32, after dropping rows with LSA norm <= 1e-6",
        "lsa_norm_quantiles_before_normalisation": {
            q: float(np.quantile(pool_norms, float(q))) for q in ("0", "0.001", "0.01", "0.5", "0.99", "1")},
        "ground_truth": {"impl": "faiss IndexFlatIP (exact), 1 thread", "k": args.k,
                         "neighbors": "int32, ids into train, best first",
                         "distances": "float32, 1 - cos(q, x) (ann-benchmarks 'angular' = scipy cosine distance; "
                                      "vecspread.distances reports the same)"},
        "checks": checks,
        "seed": args.seed,
        "versions": {"python": platform.python_version(), "sklearn": sklearn.__version__, "numpy": np.__version__,
                     "faiss": __import__("faiss").__version__},
        "script": "benchmarks/make_text_dataset.py",
        "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:])),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    source["timings_s"]["total"] = round(time.perf_counter() - t_start, 1)
    write_h5(args.out, {"train": xb, "test": xq, "learn": xl, "neighbors": I, "distances": D},
             {"distance": "angular", "point_type": "float", "type": "dense", "dimension": np.int64(args.dim),
              "source": json.dumps(source)})
    log(f"wrote {args.out}: train {xb.shape}, test {xq.shape}, learn {xl.shape}, neighbors {I.shape}")
    print(json.dumps({"paragraphs_distinct": len(docs), "dropped_near_zero_norm": n_drop,
                      "vocabulary_size": len(vec.vocabulary_),
                      "explained_variance_ratio_sum": source["svd"]["explained_variance_ratio_sum"],
                      "checks": checks, "timings_s": source["timings_s"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
