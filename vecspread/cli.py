"""The vecspread command line: one thin command per stage (parse, call, report).

Heavy packages (numpy, torch, faiss, h5py) are imported inside the commands only, so that shell
TAB completion, which re-runs this program, stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from vecspread import __version__
from vecspread.codecs import CODEC_NAMES
from vecspread.console import Console
from vecspread.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, VecspreadError
from vecspread.transforms import METHOD_NAMES

Method = enum.Enum("Method", {name.replace("-", "_"): name for name in METHOD_NAMES}, type=str)
CodecName = enum.Enum("CodecName", {name: name for name in CODEC_NAMES}, type=str)


class Distance(str, enum.Enum):
    euclidean = "euclidean"
    angular = "angular"
    dot = "dot"


app = typer.Typer(
    name="vecspread",
    help="Learned spreading transforms and fixed compact codes for similarity search.\n\n"
    "Stages read and write HDF5 artifacts: import -> gt -> train -> encode -> search -> eval.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()

OUTPUT_HELP = "Output HDF5 file (written to a temporary file, then renamed)."
BLOCK_HELP = "Database vectors per block: memory is bounded by this, not by the database size."
THREADS_HELP = "Threads for faiss/torch (default: the cores this process may use)."
JSON_HELP = "Print the result as one JSON object on stdout."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vecspread {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr (no progress, no log lines)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr, and tracebacks of internal errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Global options apply to every stage; give them before the stage name."""
    console.configure(quiet=quiet, verbose=verbose)


def stage(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body, turning user errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _resources
        try:
            with contextlib.ExitStack() as _resources:
                return func(*args, **kwargs)
        except VecspreadError as e:
            console.error(str(e))
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console.error("interrupted (no output was written)")
            raise typer.Exit(130) from None
        except OSError as e:
            console.error(f"{e.strerror or e} ({e.filename})" if getattr(e, "filename", None) else str(e))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except MemoryError:
            console.error("out of memory: use a smaller --block-size")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except Exception as e:
            if console.verbose:
                raise
            console.error(f"internal error: {type(e).__name__}: {e} (a bug in vecspread: rerun with --verbose "
                          "for the traceback and report it)")
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


_resources: contextlib.ExitStack | None = None


def _prepare(
    output: Optional[str], inputs: list[Optional[str]], threads: Optional[int] = None, as_json: bool = False
) -> tuple[Optional[str], list[Optional[str]]]:
    """Check the output path, set threads, and resolve `-` (stdin/stdout) to temporary files.

    Returns the paths the stage should really use: (output, inputs) in the same order.
    """
    from vecspread.runtime import set_threads

    set_threads(threads)  # first: numpy's BLAS reads its thread count when numpy is imported
    from vecspread.artifacts import check_output_path
    from vecspread.stdio import STDIO, spooled_stdin, stdout_artifact

    assert _resources is not None, "_prepare runs inside a @stage command"
    if sum(i == STDIO for i in inputs) > 1:
        raise_usage("only one input can be '-' (standard input)")
    if output == STDIO and as_json:
        raise_usage("-o - and --json would both write to standard output: drop one")
    if output is not None and output != STDIO:
        check_output_path(output, [i for i in inputs if i and i != STDIO])
    resolved = [_resources.enter_context(spooled_stdin()) if i == STDIO else i for i in inputs]
    if output == STDIO:
        output = _resources.enter_context(stdout_artifact())
    return output, resolved


def _report(summary: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        console.summary(title, summary)


# ------------------------------------------------------------------------------------------------


@app.command("import")
@stage
def import_cmd(
    base: str = typer.Argument(..., help="Database vectors (.fvecs .bvecs .ivecs .fbin .u8bin .i8bin .ibin .npy)."),
    queries: str = typer.Option(..., "--queries", help="Query vectors (same formats)."),
    output: str = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    learn: Optional[str] = typer.Option(None, "--learn", help="Training vectors for fitting models (disjoint from the base)."),
    groundtruth: Optional[str] = typer.Option(None, "--groundtruth", help="Neighbour ids, one row per query (.ivecs .ibin .npy); true distances are recomputed."),
    distance: Distance = typer.Option(Distance.euclidean, "--distance", help="Similarity of the dataset: euclidean (L2), angular (cosine) or dot (inner product)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Override the format given by the file extensions (e.g. fvecs)."),
    block_size: int = typer.Option(65536, "--block-size", min=1, help=BLOCK_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import vector files into a dataset artifact (ann-benchmarks HDF5 layout plus a learn set)."""
    if "-" in (base, queries, learn, groundtruth):
        raise_usage("import reads vector files by name; '-' (standard input) is only for HDF5 artifacts")
    out_path, _ = _prepare(output, [base, queries, learn, groundtruth], as_json=as_json)
    from vecspread.importing import import_dataset

    with console.progress() as progress:
        summary = import_dataset(base, out_path, queries=queries, learn=learn, groundtruth=groundtruth,
                                 distance=distance.value, fmt=fmt, block_size=block_size, progress=progress)
    _report({"output": output, **summary}, as_json, "imported")


@app.command("gt")
@stage
def gt_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact (or ann-benchmarks HDF5 file)."),
    output: str = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    k: int = typer.Option(100, "-k", help="Neighbours per query."),
    block_size: int = typer.Option(65536, "--block-size", min=1, help=BLOCK_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Exact k-nearest neighbours of the queries in the database (faiss, block by block)."""
    out_path, (dataset,) = _prepare(output, [dataset], threads, as_json)
    from vecspread.groundtruth import compute_groundtruth

    with console.progress() as progress:
        summary = compute_groundtruth(dataset, out_path, k, block_size=block_size, progress=progress)
    _report({"output": output, **summary}, as_json, "ground truth")


CAT = "Catalyzer options"
MIPS = "MIPS options (sign-alsh, l2-alsh, simple-lsh)"
TABLES = "Hash-table lookup (sign codes)"
NPH = "NPhash options"


@app.command("train")
@stage
def train_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact; its learn set is used when present."),
    output: str = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    method: Method = typer.Option(..., "--method", "-m", help="Transform to fit: " + ", ".join(METHOD_NAMES) + "."),
    dout: Optional[int] = typer.Option(None, "--dout", help="Output dimension (pca, rotation: default the input's; catalyzer: 24)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed: rotation, catalyzer, nphash (default 0); lsh, lsh-thresholds (default 5, as faiss IndexLSH); itq (initial rotation, default 123, as faiss); sign-alsh, simple-lsh, l2-alsh (default 0)."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Code size in bits. lsh, lsh-thresholds, itq: one sign bit per projected dimension (multiple of 8). pq, opq, lsq: M = bits/8 sub-quantizers of 8 bits (pq/opq: M must divide the dimension). catalyzer: lattice budget for validation and end-to-end training (default 64). nphash: code length (default 64). sign-alsh, simple-lsh: signed random projections (default 64); l2-alsh: bits of its E2LSH codec."),
    norm_terms: Optional[int] = typer.Option(None, "--norm-terms", help="sign-alsh, l2-alsh: number of appended norm powers m (default 2 / 3).", rich_help_panel=MIPS),
    max_norm: Optional[float] = typer.Option(None, "--max-norm", help="sign-alsh, l2-alsh: largest database norm after scaling, the papers' U, in (0, 1) (default 0.75 / 0.83).", rich_help_panel=MIPS),
    bucket_width: Optional[float] = typer.Option(None, "--r", help="l2-alsh: E2LSH bucket width r (default 2.5).", rich_help_panel=MIPS),
    hash_bits: Optional[int] = typer.Option(None, "--hash-bits", help="l2-alsh: bits stored per E2LSH hash, 1-8; bits/hash_bits hashes (default 4).", rich_help_panel=MIPS),
    train_iters: Optional[int] = typer.Option(None, "--train-iters", min=1, help="Training iterations: opq (faiss OPQMatrix.niter, default 50), lsq (LocalSearchQuantizer.train_iters, default 25)."),
    encode_ils_iters: Optional[int] = typer.Option(None, "--encode-ils-iters", min=1, help="lsq: local-search rounds per encoding (faiss default 16); encoding time grows linearly."),
    max_train: Optional[int] = typer.Option(None, "--max-train", min=1, help="Fit on at most this many training vectors (a seeded random sample)."),
    after: Optional[str] = typer.Option(None, "--after", help="Model applied first: fit the method on that model's output for the learn set and write both as one chained model (database and queries each go through their own side of every stage), e.g. a catalyzer after a MIPS lift trained with --lift-only."),
    lift_only: Optional[bool] = typer.Option(None, "--lift-only", help="sign-alsh, simple-lsh: output the lifted vectors P(x) / Q(q) without the random projection (no codec), to train another method --after it.", rich_help_panel=MIPS),
    dint: Optional[int] = typer.Option(None, "--dint", help="Hidden width (default: 1024).", rich_help_panel=CAT),
    hidden_layers: Optional[int] = typer.Option(None, "--hidden-layers", help="Hidden Linear-BN-ReLU blocks (default: 2).", rich_help_panel=CAT),
    bn_order: Optional[str] = typer.Option(None, "--bn-order", help="bn-relu or relu-bn (default: bn-relu).", rich_help_panel=CAT),
    lam: Optional[float] = typer.Option(None, "--lam", help="KoLeo weight (default: per dout, paper App. A: 16: 0.05, 24: 0.02, 32: 0.01, 40: 0.005).", rich_help_panel=CAT),
    kpos: Optional[int] = typer.Option(None, "--kpos", help="Positives drawn among the kpos input-space neighbours (default: 10).", rich_help_panel=CAT),
    kneg: Optional[int] = typer.Option(None, "--kneg", help="Negative = kneg-th neighbour in the output space (default: 50).", rich_help_panel=CAT),
    self_positive: Optional[bool] = typer.Option(None, "--self-positive/--no-self-positive", help="Count each vector among its own positives: draw from itself and its kpos-1 nearest others, as a k-NN of the learn set in itself does (default: off, the kpos nearest others).", rich_help_panel=CAT),
    bn_stats: Optional[str] = typer.Option(None, "--bn-stats", help="Batch-norm statistics per step: joint (one pass over anchors, positives and negatives together) or per-role (three passes) (default: joint).", rich_help_panel=CAT),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs (default: 8; the paper: 160).", rich_help_panel=CAT),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Triplets per SGD step (default: 64).", rich_help_panel=CAT),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate; rescales --lr-schedule (default: 0.1).", rich_help_panel=CAT),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="SGD momentum (default: 0.9).", rich_help_panel=CAT),
    lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule", help="Comma-separated step values spread evenly over the epochs (default: 0.1,0.1,0.05,0.01).", rich_help_panel=CAT),
    quantizer_train: Optional[str] = typer.Option(None, "--quantizer-train", help="'lattice': end-to-end training through the lattice (straight-through) (default: off).", rich_help_panel=CAT),
    r2: Optional[int] = typer.Option(None, "--r2", help="Lattice squared radius (instead of --bits).", rich_help_panel=CAT),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validate (and checkpoint) every N epochs (default: 1).", rich_help_panel=CAT),
    val_size: Optional[str] = typer.Option(None, "--val-size", help="Validation split: DB or DB,QUERIES held-out vectors; catalyzer: 0,QUERIES searches held-out queries in the training set; 0 disables (default: catalyzer 0,min(1000, n/100); nphash min(10000, n/10),min(1000, n/100)).", rich_help_panel=CAT),
    val_codec: Optional[str] = typer.Option(None, "--val-codec", help="Codec whose validation 1-recall@10 picks the kept epoch, the latest within one standard error of the best: lattice or sign (default: lattice).", rich_help_panel=CAT),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto (default: cpu).", rich_help_panel=CAT),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Write an HDF5 checkpoint here at every validation.", rich_help_panel=CAT),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue bit-for-bit from this checkpoint.", rich_help_panel=CAT),
    beta: Optional[float] = typer.Option(None, "--beta", help="Slope of the relaxed sign tanh(beta u/|u|) (default: sqrt(bits)).", rich_help_panel=NPH),
    k_proxies: Optional[int] = typer.Option(None, "--k", help="True nearest proxies per query in the KL loss (default: 100).", rich_help_panel=NPH),
    proxies: Optional[int] = typer.Option(None, "--proxies", help="Training vectors drawn at random as reference points for every batch (default: 10000).", rich_help_panel=NPH),
    tau_in: Optional[float] = typer.Option(None, "--tau-in", help="Temperature of the input cosine softmax (default: 0.03).", rich_help_panel=NPH),
    tau_out: Optional[float] = typer.Option(None, "--tau-out", help="Temperature of the relaxed Hamming softmax (default: 0.03).", rich_help_panel=NPH),
    kl: Optional[str] = typer.Option(None, "--kl", help="pq: KL(p||q), the paper's; qp: KL(q||p) (default: pq).", rich_help_panel=NPH),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam or sgd (default: adam, lr 1e-3).", rich_help_panel=NPH),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0, help="Training time budget (catalyzer: stops after the epoch that would overrun it; nphash: at the step that reaches it); the best model so far is kept.", rich_help_panel=CAT),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Fit a transform (the 'spreading' map applied before coding) and write a model artifact.

    Methods: identity (y = x); pca (centre, project on the --dout leading components); rotation (random orthogonal projection to --dout dimensions; with sign codes this is LSH, as faiss IndexLSH(d, dout)); catalyzer (the MLP of "Spreading vectors for similarity search", triplet rank loss + KoLeo, trained on the learn set; defaults are the paper's); nphash (Idelson's neural proxy hashing: an MLP to --bits relaxed sign bits trained with a KL loss over each query's true nearest proxies; its neural options are shared with the catalyzer: --dint, --hidden-layers, --epochs, --batch-size, --lr, --val-*, --device, --checkpoint, --resume).

    Baselines built on faiss, each with its codec (encode needs no --codec): lsh (IndexLSH(d, bits)), lsh-thresholds (IndexLSH with trained median thresholds), itq (ITQ{bits},LSH), pq (IndexPQ(d, bits/8, 8)), opq (OPQ{M},PQ{M}), lsq (IndexLocalSearchQuantizer(d, bits/8, 8)).

    Maximum inner product search (datasets with distance dot), asymmetric: the database and the queries get different lifts, recorded in the model: sign-alsh (Shrivastava & Li, + signed random projections), l2-alsh (+ E2LSH hashes, codec l2lsh), simple-lsh (Neyshabur & Srebro, + signed random projections).
    """
    if after == "-":
        raise_usage("--after needs a model file, not '-'")
    out_path, (dataset, _) = _prepare(output, [dataset, after], threads, as_json)
    for path in (checkpoint, resume):
        if path == "-":
            raise_usage("--checkpoint and --resume need real files, not '-'")
    from vecspread.modeling import train_model

    if resume is not None and not Path(resume).is_file():
        raise_usage(f"--resume {resume}: no such checkpoint file")
    if checkpoint is not None:
        from vecspread.artifacts import check_output_path

        if output != "-" and Path(checkpoint).resolve() == Path(output).resolve():
            raise_usage("--checkpoint and -o must be different files")
        check_output_path(checkpoint, [dataset, out_path])
    options = {
        "dout": dout, "seed": seed, "dint": dint, "hidden_layers": hidden_layers, "bn_order": bn_order, "lam": lam,
        "kpos": kpos, "kneg": kneg, "self_positive": self_positive, "bn_stats": bn_stats, "epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum,
        "lr_schedule": _parse_floats(lr_schedule, "--lr-schedule"), "quantizer_train": quantizer_train,
        "norm_terms": norm_terms, "max_norm": max_norm, "r": bucket_width, "hash_bits": hash_bits,
        "bits": bits, "train_iters": train_iters, "encode_ils_iters": encode_ils_iters, "r2": r2, "val_every": val_every, "val_size": _parse_val_size(val_size),
        "val_codec": val_codec, "device": device, "checkpoint": checkpoint, "resume": resume,
        "beta": beta, "k": k_proxies, "proxies": proxies, "tau_in": tau_in, "tau_out": tau_out, "kl": kl,
        "optimizer": optimizer, "max_minutes": max_minutes, "lift_only": lift_only,
    }
    with console.progress() as progress:
        summary = train_model(dataset, out_path, method.value, options, max_train=max_train, threads=threads,
                              after=after, progress=progress)
    _report({"output": output, **summary}, as_json, "trained")


@app.command("encode")
@stage
def encode_cmd(
    model: str = typer.Argument(..., help="Model artifact from `vecspread train`."),
    dataset: str = typer.Argument(..., help="Dataset whose database (train set) is encoded."),
    output: str = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    codec: Optional[CodecName] = typer.Option(None, "--codec", "-c", help="sign: one bit per output dimension (Hamming search); lattice: spherical integer lattice; pq: product quantizer (faiss IndexPQ(d, bits/8, 8)); opq: OPQ rotation + PQ (faiss OPQ{M},PQ{M}); lsq: local search quantizer (faiss IndexLocalSearchQuantizer); l2lsh: E2LSH integer bucket ids, ranked by colliding hashes. PQ-family codecs are trained on the transformed learn set and searched with ADC (queries unquantized). Default: the codec trained with the model, if any."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Bit budget: lattice picks the largest r^2 whose point count fits; sign checks it equals the model's --dout; pq/opq/lsq: M = bits/8 sub-quantizers."),
    train_iters: Optional[int] = typer.Option(None, "--train-iters", min=1, help="opq/lsq training iterations (faiss defaults 50/25)."),
    encode_ils_iters: Optional[int] = typer.Option(None, "--encode-ils-iters", min=1, help="lsq: local-search rounds per encoding (faiss default 16)."),
    hash_bits: Optional[int] = typer.Option(None, "--hash-bits", help="l2lsh: bits stored per E2LSH hash (default 4)."),
    bucket_width: Optional[float] = typer.Option(None, "--r", help="l2lsh: E2LSH bucket width (default 2.5)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="l2lsh: projection seed (default 0)."),
    r2: Optional[int] = typer.Option(None, "--r2", help="Lattice squared radius (instead of --bits)."),
    block_size: int = typer.Option(65536, "--block-size", min=1, help=BLOCK_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Transform the database with the model and encode it; the codes file carries the model."""
    if codec is not None and codec.value == "lattice" and (bits is None) == (r2 is None):
        raise_usage("--codec lattice needs exactly one of --bits or --r2 (e.g. --bits 64)")
    if bits is not None and r2 is not None:
        raise_usage("--bits and --r2 conflict: give one")
    out_path, (model, dataset) = _prepare(output, [model, dataset], threads, as_json)
    from vecspread.encoding import encode_dataset

    options = {"bits": bits, "r2": r2, "train_iters": train_iters, "encode_ils_iters": encode_ils_iters,
               "hash_bits": hash_bits, "r": bucket_width, "seed": seed}
    with console.progress() as progress:
        summary = encode_dataset(model, dataset, out_path, codec.value if codec else None, options,
                                 block_size=block_size, progress=progress)
    _report({"output": output, **summary}, as_json, "encoded")


@app.command("search")
@stage
def search_cmd(
    codes: str = typer.Argument(..., help="Codes artifact from `vecspread encode`."),
    dataset: str = typer.Argument(..., help="Dataset whose queries (test set) are searched; the one the codes were encoded from."),
    output: str = typer.Option(..., "--output", "-o", help=OUTPUT_HELP),
    k: int = typer.Option(100, "-k", help="Results per query."),
    block_size: int = typer.Option(65536, "--block-size", min=1, help="Codes per block: memory is bounded by this."),
    tables: Optional[int] = typer.Option(None, "--tables", min=1, help="Hash-table lookup instead of a full scan (sign codes): L tables; only the candidates are ranked.", rich_help_panel=TABLES),
    bits_per_table: Optional[int] = typer.Option(None, "--bits-per-table", min=1, max=62, help="K code bits keying each table (with --tables).", rich_help_panel=TABLES),
    probes: int = typer.Option(0, "--probes", min=0, help="Extra buckets probed per table, nearest keys first (multi-probe).", rich_help_panel=TABLES),
    table_layout: str = typer.Option("random", "--table-layout", help="random: K random bit positions per table; slices: consecutive bits (as faiss IndexBinaryMultiHash).", rich_help_panel=TABLES),
    table_seed: int = typer.Option(0, "--table-seed", help="Seed of the random bit positions.", rich_help_panel=TABLES),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Transform the queries with the stored model and scan the codes (Hamming, asymmetric lattice, or ADC for PQ-family codes).

    With --tables L --bits-per-table K [--probes P], binary codes are looked up in L hash tables instead (FALCONN-style); the results record the mean number of candidates per query.
    """
    lookup = None
    if (tables is None) != (bits_per_table is None):
        raise_usage("--tables and --bits-per-table go together (e.g. --tables 8 --bits-per-table 16)")
    if tables is None and (probes or table_layout != "random" or table_seed):
        raise_usage("--probes, --table-layout and --table-seed need --tables and --bits-per-table")
    if table_layout not in ("random", "slices"):
        raise_usage(f"--table-layout {table_layout!r}: use random or slices")
    if tables is not None:
        from vecspread.searching import TableLookup

        lookup = TableLookup(tables, bits_per_table, probes, table_layout, table_seed)
    out_path, (codes, dataset) = _prepare(output, [codes, dataset], threads, as_json)
    from vecspread.searching import search_codes

    with console.progress() as progress:
        summary = search_codes(codes, dataset, out_path, k, block_size=block_size, threads=threads, tables=lookup,
                               progress=progress)
    _report({"output": output, **summary}, as_json, "searched")


@app.command("eval")
@stage
def eval_cmd(
    results: str = typer.Argument(..., help="Results artifact from `vecspread search`."),
    groundtruth: str = typer.Argument(..., help="Ground truth from `vecspread gt`, or a dataset that carries neighbors/distances."),
    at: str = typer.Option("1,10,100", "--at", help="Comma-separated ranks k."),
    min_recall: List[str] = typer.Option([], "--min-recall", help="K=V: exit 1 unless 1-recall@K >= V (repeatable); the CI gate."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Recall of search results: 1-recall@k (the true nearest neighbour is in the top k) and k-recall@k.

    Ties in true distance never count as misses. Exit code 1 when a --min-recall check fails.
    """
    from vecspread.errors import CheckFailed
    from vecspread.evaluation import evaluate, parse_min_recall

    ks = _parse_ranks(at)
    thresholds = parse_min_recall(min_recall)
    _, (results, groundtruth) = _prepare(None, [results, groundtruth])
    report = evaluate(results, groundtruth, sorted(set(ks) | set(thresholds)))
    report["recall"] = {key: v for key, v in report["recall"].items() if int(key) in ks or int(key) in thresholds}
    failures = [f"1-recall@{k} = {report['recall'][str(k)]:.4f} < {v}" for k, v in sorted(thresholds.items())
                if report["recall"][str(k)] < v]
    report["checks"] = {f"{k}": {"min": v, "ok": report["recall"][str(k)] >= v} for k, v in thresholds.items()}
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        console.recall_table(report)
    if failures:
        raise CheckFailed("recall check failed: " + "; ".join(failures))


@app.command("bench")
@stage
def bench_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact (its learn set fits the models)."),
    outdir: str = typer.Option(..., "--output", "-o", help="Directory for bench.json, bench.md, bench.png and the artifacts."),
    bits: str = typer.Option("16,32,64,128", "--bits", help="Comma-separated bit budgets."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated: lsh, lsh-thresholds, itq, pca-sign, pca-lattice, pq, opq, lsq, catalyzer-lattice, catalyzer-sign, catalyzer-opq, nphash (default: all; with --quick a small set)."),
    budget_minutes: Optional[float] = typer.Option(None, "--budget-minutes", min=0, help="Training time budget per learned model (catalyzer: stops after the epoch that would overrun it; nphash: at the step that reaches it)."),
    quick: bool = typer.Option(False, "--quick", help="CI preset: fit on at most 5000 vectors, 1 short epoch for neural models, few OPQ/LSQ iterations."),
    max_train: Optional[int] = typer.Option(None, "--max-train", min=1, help="Fit every model on at most this many training vectors."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write bench.png (needs matplotlib: pip install 'vecspread[plot]'; skipped with a note without it)."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as one JSON object on stdout."),
) -> None:
    """Compare methods across bit budgets through the real stages: one command for the paper's Tables 1-2.

    Each (method, bits) cell runs train, encode, search and eval; models are reused across cells where possible, and a cell a bit budget does not allow is skipped with the reason. Writes bench.json, bench.md (Table 1 layout per bit budget; Table 2 layout: 1-recall@10 of binary codes versus bits) and bench.png.
    """
    _, (dataset,) = _prepare(None, [dataset], threads)
    from vecspread.bench import BENCH_METHODS, QUICK_METHODS, run_bench

    bit_list = _parse_ranks(bits, "--bits")
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else list(QUICK_METHODS if quick else BENCH_METHODS)
    if Path(outdir).exists() and not Path(outdir).is_dir():
        raise_usage(f"--output {outdir}: exists and is not a directory")
    with console.progress() as progress:
        report = run_bench(dataset, outdir, methods=chosen, bits=bit_list, quick=quick, budget_minutes=budget_minutes,
                           max_train=max_train, threads=threads, plot=plot, progress=progress)
    if plot and report.get("plot") is None:
        console.log("bench.png not written: matplotlib is not installed (pip install 'vecspread[plot]')")
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        typer.echo(Path(outdir, "bench.md").read_text())


@app.command("atoms")
@stage
def atoms_cmd(
    dim: int = typer.Option(..., "--dim", "-d", help="Lattice dimension (the model's --dout)."),
    r2: Optional[int] = typer.Option(None, "--r2", help="Squared radius."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Bit budget: choose the largest r^2 whose point count fits."),
    list_atoms: bool = typer.Option(False, "--list", help="Also print every atom."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Describe the spherical lattice {z in Z^d : ||z||^2 = r^2}: atoms, exact point count, bits."""
    if (r2 is None) == (bits is None):
        raise_usage("give exactly one of --r2 or --bits")
    from vecspread.codecs import lattice

    if dim <= 0:
        raise_usage(f"--dim must be positive, got {dim}")
    chosen = r2 if r2 is not None else lattice.r2_for_bits(dim, bits)
    info = lattice.describe(dim, chosen)
    info = {**info, "n_points": int(info["n_points"])}
    if bits is not None:
        info["bits_budget"] = bits
    atoms = [list(a) for a in lattice.atoms(dim, chosen)] if list_atoms else None
    if as_json:
        out = {**info, "n_points": str(info["n_points"])}
        if atoms is not None:
            out["atoms"] = atoms
        typer.echo(json.dumps(out, sort_keys=True))
    else:
        console.summary("lattice", info, stdout=True)
        if atoms is not None:
            for a in atoms:
                typer.echo(" ".join(str(v) for v in a))


@app.command("inspect")
@stage
def inspect_cmd(
    artifact: str = typer.Argument(..., help="Model (vecspread train) or codes (vecspread encode) artifact."),
    dataset: str = typer.Argument(..., help="Dataset: its first --nq queries and a sample of its database are used."),
    nq: int = typer.Option(1000, "--nq", min=2, help="Queries: the first NQ of the test set."),
    sample: int = typer.Option(200000, "--sample", min=0, help="Database vectors sampled (seeded) for the statistics; 0 = all."),
    k: int = typer.Option(100, "-k", min=1, help="Uniformity compares the 1st with the k-th neighbour distance (paper: 100)."),
    radii: int = typer.Option(40, "--radii", min=2, max=255, help="Radii in the epsilon-search sweep."),
    at: str = typer.Option("1,10,100", "--at", help="Ranks for id-based vs tie-aware recall (codes artifacts)."),
    tol: float = typer.Option(1e-3, "--tol", min=0, help="Tie tolerance of the tie-aware recall (ann-benchmarks: 1e-3)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the database sample."),
    figures: Optional[str] = typer.Option(None, "--figures", help="Directory for uniformity.png and epsilon.png (needs the plot extra: pip install 'vecspread[plot]')."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the full report (JSON: histograms, curves, code statistics) here."),
    block_size: int = typer.Option(65536, "--block-size", min=1, help=BLOCK_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as one JSON object on stdout."),
) -> None:
    """Explain why a code works: uniformity (1st vs k-th neighbour distance), epsilon-search vs k-NN, angle to the true neighbour, table balance and code usage, id-based vs tie-aware recall."""
    out_path, (artifact, dataset) = _prepare(output, [artifact, dataset], threads, as_json)
    from vecspread.diagnostics import inspect, summarize

    if figures:
        from vecspread.plots import require_matplotlib

        require_matplotlib()  # fail before the long work
        Path(figures).mkdir(parents=True, exist_ok=True)
    with console.progress() as progress:
        report = inspect(artifact, dataset, nq=nq, sample=sample or None, k=k, n_radii=radii,
                         recall_at=_parse_ranks(at), tol=tol, seed=seed, block_size=block_size, progress=progress)
    if figures:
        from vecspread.plots import write_figures

        report["figures"] = [str(p) for p in write_figures(report, figures)]
    if out_path:
        _write_text_atomically(out_path, json.dumps(report, sort_keys=True, default=str))
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True, default=str))
    else:
        console.summary("inspect", summarize(report), stdout=True)


@app.command("demo")
@stage
def demo_cmd(
    workdir: Optional[str] = typer.Option(None, "--workdir", help="Keep the artifacts here (default: a temporary directory)."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the whole pipeline on the small real SIFT dataset shipped with vecspread and print recalls."""
    _prepare(None, [], threads)
    from vecspread.demo import run_demo

    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    with console.progress() as progress:
        rows = run_demo(workdir, progress=progress)
    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
    else:
        console.demo_table(rows)


# ------------------------------------------------------------------------------------------------


def _write_text_atomically(path: str, text: str) -> None:
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def raise_usage(message: str) -> None:
    from vecspread.errors import ConfigError

    raise ConfigError(message)


def _parse_floats(text: Optional[str], flag: str) -> Optional[tuple[float, ...]]:
    if text is None:
        return None
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        values = ()
    if not values or any(v <= 0 for v in values):
        raise_usage(f"{flag} {text!r}: expected comma-separated positive numbers, e.g. 0.1,0.1,0.05,0.01")
    return values


def _parse_val_size(text: Optional[str]) -> Optional[Any]:
    if text is None:
        return None
    try:
        parts = [int(t) for t in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or any(p < 0 for p in parts):
        raise_usage(f"--val-size {text!r}: expected DB or DB,QUERIES (non-negative integers)")
    return parts[0] if len(parts) == 1 else parts


def _parse_ranks(text: str, flag: str = "--at") -> list[int]:
    from vecspread.errors import ConfigError

    try:
        ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        ks = []
    if not ks or any(k <= 0 for k in ks):
        raise ConfigError(f"{flag} {text!r}: expected comma-separated positive integers, e.g. 1,10,100")
    return ks


def main() -> None:
    """Console-script entry point: usage errors, like every other error, are one line and exit code 2."""
    from typer._click import exceptions as click_exceptions

    try:
        code = app(prog_name="vecspread", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as e:
        e.show()  # `vecspread` alone, or a stage without arguments: the help text
        code = EXIT_BAD_INPUT
    except click_exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        console.error(e.format_message() + hint)
        code = EXIT_BAD_INPUT
    except click_exceptions.ClickException as e:
        console.error(e.format_message())
        code = EXIT_BAD_INPUT
    except typer.Exit as e:
        code = e.exit_code
    except BrokenPipeError:  # e.g. `vecspread eval ... --json | head -c 10`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
