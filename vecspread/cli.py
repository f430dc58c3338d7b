"""The vecspread command line: one thin command per stage (parse, call, report).

No hyper-parameter is declared here: ``train``, ``encode`` and ``search`` get their options from the
methods', codecs' and scanners' declarations (``vecspread.cli_options``). Heavy packages (numpy, torch,
faiss, h5py) are imported inside the commands only, so that shell TAB completion, which re-runs this
program, stays fast.
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer
import typer.core

from vecspread import __version__, naming
from vecspread.cli_edge import (check_dir, check_new_file, console, derived, ensure_dir, prepare, run_main, run_stage,
                                stage, usage, within)
from vecspread.cli_options import codec_options, method_options, scanner_options, with_options
from vecspread.codecs import REGISTRY as CODECS
from vecspread.limits import (ATOMS_MAX_BITS, ATOMS_MAX_DIM, ATOMS_MAX_R2, MAX_BLOCK_SIZE, MAX_K, MAX_SEED,
                              MAX_THREADS)
from vecspread.params import positive_ints
from vecspread.transforms import REGISTRY as METHODS

Method = enum.Enum("Method", {name.replace("-", "_"): name for name in METHODS.names}, type=str)
CodecName = enum.Enum("CodecName", {name: name for name in CODECS.names}, type=str)


Distance = enum.Enum("Distance", {name: name for name in ("euclidean", "angular", "dot")}, type=str)


Output = Annotated[Optional[str], typer.Option("--output", "-o", help="Output HDF5 file (default: named after the input, in the current directory; written to a temporary file, then renamed).")]
Threads = Annotated[Optional[int], typer.Option("--threads", callback=within(ge=1, le=MAX_THREADS), help="Threads for faiss/torch, 1 to 256 (default: the cores this process may use).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]
JsonReport = Annotated[bool, typer.Option("--json", help="Print the whole report as one JSON object on stdout.")]
BlockSize = Annotated[int, typer.Option("--block-size", callback=within(ge=1, le=MAX_BLOCK_SIZE), help="Database vectors per block (at most 2^24): memory is bounded by this, not by the database size.")]
Ranks = Annotated[str, typer.Option("--at", help="Comma-separated ranks k.")]


def _cluster_address(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    if value is None or ctx.resilient_parsing:
        return value
    from vecspread.cluster.connect import check_address

    return check_address(value)


Cluster = Annotated[Optional[str], typer.Option("--cluster", callback=_cluster_address, rich_help_panel="Cluster (Dask)", help="Run on a Dask cluster, split by database row ranges: tcp://HOST:PORT (a running `dask scheduler`; every worker must read the input paths) or local:N (N worker processes here). --threads is then per task (default: local:N, the cores over N; workers, their cores over their task slots). The same results as one process with that many threads. Needs vecspread[cluster].")]
ShardRows = Annotated[Optional[int], typer.Option("--shard-rows", callback=within(ge=1), rich_help_panel="Cluster (Dask)", help="Database rows per cluster task (gt and encode round it up to whole --block-size blocks; a manifest's shards are its own tasks; default: about 4 tasks per worker).")]

def _flag_type(option: Any, ctx: Any) -> Optional[str]:
    """Typer's rich help labels on/off flags "<bool>", as if they took a value: show no type for them."""
    return None if option.is_flag else _typer_display_type(option, ctx)


_typer_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

# rich help (Typer's default) reads [...] as markup: the extra's brackets are escaped there, not in plain help
PLOT_EXTRA = "vecspread[plot]" if os.environ.get("TYPER_USE_RICH", "1").lower() in ("0", "false", "no", "off") \
    else "vecspread\\[plot]"

app = typer.Typer(
    name="vecspread",
    help="Learned spreading transforms and fixed compact codes for similarity search.\n\n"
    "Stages read and write HDF5 artifacts: import -> gt -> train -> encode -> search -> eval.",
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(name: str, *, options: Any = None, after: str = "", help: Optional[str] = None) -> Any:
    """A stage command: its errors go through the error edge; ``options`` adds the declared options."""
    def decorate(func: Any) -> Any:
        return app.command(name, help=help)(stage(with_options(options, after=after)(func) if options else func))
    return decorate


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


def _listing(registry: Any) -> str:
    return "; ".join(f"{s.name}: {s.summary}" for s in registry)


@command("import")
def import_cmd(
    base: str = typer.Argument(..., help="Database vectors (.fvecs .bvecs .ivecs .fbin .u8bin .i8bin .ibin .npy)."),
    queries: str = typer.Option(..., "--queries", help="Query vectors (same formats)."),
    output: Output = None,
    learn: Optional[str] = typer.Option(None, "--learn", help="Training vectors for fitting models (disjoint from the base)."),
    groundtruth: Optional[str] = typer.Option(None, "--groundtruth", help="Neighbour ids, one row per query (.ivecs .ibin .npy); true distances are recomputed."),
    distance: Distance = typer.Option("euclidean", "--distance", help="Similarity of the dataset: euclidean (L2), angular (cosine) or dot (inner product)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Format of the base, queries and learn files, for names without (or with another) extension: fvecs, bvecs, ivecs, fbin, u8bin, i8bin, ibin, npy."),
    groundtruth_fmt: Optional[str] = typer.Option(None, "--groundtruth-format", help="Format of the --groundtruth file: ivecs, ibin (big-ann-benchmarks ground truth, ids then distances, is recognised) or npy."),
    train_labels: Optional[str] = typer.Option(None, "--train-labels", help="Class of each base vector, in order (a 1-D integer .npy, or .ivecs with d = 1); stored as train_labels."),
    test_labels: Optional[str] = typer.Option(None, "--test-labels", help="Class of each query (same formats); stored as test_labels."),
    learn_labels: Optional[str] = typer.Option(None, "--learn-labels", help="Class of each learn vector (same formats); stored as learn_labels."),
    block_size: BlockSize = 65536,
    as_json: Json = False,
) -> None:
    """Import vector files into a dataset artifact (ann-benchmarks HDF5 layout plus a learn set)."""
    if "-" in (base, queries, learn, groundtruth, train_labels, test_labels, learn_labels):
        usage("import reads vector files by name; '-' (standard input) is only for HDF5 artifacts")
    output = output or derived(naming.imported(base))
    labels = {split: path for split, path in (("train", train_labels), ("test", test_labels), ("learn", learn_labels))
              if path is not None}
    out_path, _ = prepare(output, [base, queries, learn, groundtruth, *labels.values()], as_json=as_json)
    from vecspread.stages.importing import import_dataset

    run_stage("imported", output, as_json, import_dataset, base, out_path, queries=queries, learn=learn,
              groundtruth=groundtruth, distance=distance.value, fmt=fmt, groundtruth_fmt=groundtruth_fmt,
              labels=labels, block_size=block_size)


@command("gt")
def gt_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact (or ann-benchmarks HDF5 file)."),
    output: Output = None, k: int = typer.Option(100, "-k", callback=within(ge=1, le=MAX_K), help="Neighbours per query (at most 100000)."),
    block_size: BlockSize = 65536, threads: Threads = None, as_json: Json = False,
    cluster: Cluster = None, shard_rows: ShardRows = None,
    model: Optional[str] = typer.Option(None, "--model", help="A softmax model (train --method softmax): the ground truth of its class search instead, i.e. for each query's representation the k class vectors of largest inner product (the first is the exact softmax's class)."),
) -> None:
    """Exact k-nearest neighbours of the queries in the database (faiss, block by block)."""
    output = output or derived(naming.groundtruth(dataset))
    check_new_file(model, "--model", what="a model file")
    out_path, (dataset, model) = prepare(output, [dataset, model], threads, as_json)
    from vecspread.stages.groundtruth import compute_groundtruth

    run_stage("ground truth", output, as_json, compute_groundtruth, dataset, out_path, k, block_size=block_size,
              cluster=cluster, shard_rows=shard_rows, threads=threads, model=model)


@command("train", options=method_options, after="method", help="Fit a transform (the 'spreading' map applied "
         "before coding) and write a model artifact.\n\nMethods: " + _listing(METHODS) + ".\n\nA method trained "
         "with a codec stores it in the model (encode then needs no --codec). Options apply to the methods they name.")
def train_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact; its learn set is used when present."),
    output: Output = None,
    method: Method = typer.Option("catalyzer", "--method", "-m", help="Transform to fit: " + ", ".join(METHODS.names) + "."),
    max_train: Optional[int] = typer.Option(None, "--max-train", callback=within(ge=1), help="Fit on at most this many training vectors (a seeded random sample)."),
    after: Optional[str] = typer.Option(None, "--after", help="Model applied first: fit the method on that model's output for the learn set and write both as one chained model (database and queries each go through their own side of every stage), e.g. a catalyzer after a MIPS lift trained with --lift-only."),
    any_distance: bool = typer.Option(False, "--any-distance", help="Fit a method that does not serve the dataset's distance anyway (e.g. a non-MIPS baseline on a dot dataset)."),
    threads: Threads = None, as_json: Json = False, options: dict = {},
) -> None:
    output = output or derived(naming.model(dataset, method.value))
    check_new_file(after, "--after", what="a model file")
    check_new_file(options.get("checkpoint"), "--checkpoint", output)
    check_new_file(options.get("resume"), "--resume")
    out_path, (dataset, _) = prepare(output, [dataset, after], threads, as_json)
    if options.get("resume") is not None and not Path(options["resume"]).is_file():
        usage(f"--resume {options['resume']}: no such checkpoint file")
    if options.get("checkpoint") is not None:
        from vecspread.io.artifacts import check_output_path

        check_output_path(options["checkpoint"], [dataset, out_path])
    from vecspread.stages.train import train_model

    run_stage("trained", output, as_json, train_model, dataset, out_path, method.value, options, max_train=max_train,
              threads=threads, after=after, any_distance=any_distance)


@command("tune", options=method_options, after="method", help="Choose a learned method's hyper-parameters by "
         "cross-validation on the learn set: train every point of the --grid, score it by the validation "
         "1-recall@10 of held-out learn vectors (never the test queries), write the best model.\n\nThe other "
         "options are fixed for every point, e.g. `vecspread tune DATA --method catalyzer --bits 64 --grid "
         "lam=0.005,0.01,0.02,0.05 --grid dout=16,24,32`. Prints the table (markdown; --json: everything).")
def tune_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact; its learn set is used when present."),
    output: Output = None,
    method: Method = typer.Option("catalyzer", "--method", "-m", help="Learned method to tune: " + ", ".join(METHODS.names) + "."),
    grid: List[str] = typer.Option([], "--grid", help="NAME=V1,V2,...: values of one option to try (repeatable: the grid is their product)."),
    max_train: Optional[int] = typer.Option(None, "--max-train", callback=within(ge=1), help="Fit on at most this many training vectors (a seeded random sample)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a PNG of the score against the first --grid option (needs matplotlib: pip install '" + PLOT_EXTRA + "')."),
    threads: Threads = None, as_json: JsonReport = False, options: dict = {},
) -> None:
    output = output or derived(naming.model(dataset, method.value + ".tuned"))
    out_path, (dataset,) = prepare(output, [dataset], threads, as_json)
    from vecspread.stages.tune import parse_grid, tune

    parse_grid(method.value, grid)  # a bad grid is refused before any training
    with console.progress() as progress:
        result = tune(dataset, out_path, method.value, options, grid, max_train=max_train, threads=threads,
                      plot=plot, progress=progress)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, default=str))
        return
    names = list(result["grid"])
    lines = ["| " + " | ".join(names) + " | validation 1-recall@10 | kept epoch | train s |",
             "|" + "---|" * (len(names) + 3)]
    for row in result["points"]:
        star = " *" if row is result["best"] else ""
        lines.append("| " + " | ".join(str(row[n]) for n in names) +
                     f" | {row['val_recall10']:.4f}{star} | {row['kept_epoch']} | {row['train_seconds']} |")
    best = ", ".join(f"{n}={result['best'][n]}" for n in names)
    lines.append(f"\nbest ({result['best']['val_codec']} codes): {best}, written to {output}")
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    typer.echo("\n".join(lines))


@command("encode", options=codec_options, after="codec")
def encode_cmd(
    model: str = typer.Argument(..., help="Model artifact from `vecspread train`."),
    dataset: str = typer.Argument(..., help="Dataset whose database (train set) is encoded."),
    output: Output = None,
    codec: Optional[CodecName] = typer.Option(None, "--codec", "-c", help=_listing(CODECS) + ". PQ-family codecs are trained on the transformed learn set and searched with ADC (queries unquantized). Default: the codec trained with the model, if any."),
    block_size: BlockSize = 65536, threads: Threads = None, as_json: Json = False,
    cluster: Cluster = None, shard_rows: ShardRows = None,
    shard_files: bool = typer.Option(False, "--shard-files", rich_help_panel="Cluster (Dask)", help="With --cluster: keep the codes in one shard file per task, beside the output (NAME.shard-00000-of-00008.h5 ...), and write the output as their manifest, which search accepts as a codes file (default: one codes file)."),
    options: dict = {},
) -> None:
    """Transform the database with the model and encode it; the codes file carries the model."""
    output = output or derived(naming.codes(model, codec.value if codec else None))
    if shard_files and cluster is None:
        usage("--shard-files writes the shards of a sharded run: give --cluster too")
    if shard_files and output == "-":
        usage("--shard-files writes shard files beside the output: give -o a file name, not '-'")
    out_path, (model, dataset) = prepare(output, [model, dataset], threads, as_json)
    from vecspread.stages.encode import encode_dataset

    run_stage("encoded", output, as_json, encode_dataset, model, dataset, out_path, codec.value if codec else None,
              options, block_size=block_size, cluster=cluster, shard_files=shard_files, shard_rows=shard_rows,
              threads=threads)


@command("search", options=scanner_options, after="block_size")
def search_cmd(
    codes: str = typer.Argument(..., help="Codes artifact from `vecspread encode`."),
    dataset: str = typer.Argument(..., help="Dataset whose queries (test set) are searched; the one the codes were encoded from."),
    output: Output = None, k: int = typer.Option(100, "-k", callback=within(ge=1, le=MAX_K), help="Results per query (at most 100000)."),
    block_size: Optional[int] = typer.Option(None, "--block-size", callback=within(ge=1, le=MAX_BLOCK_SIZE), help="Codes per scan block (default: 64 MiB of codes, e.g. 8M codes of 64 bits): streamed codes take this much memory."),
    query_batch: Optional[int] = typer.Option(None, "--query-batch", callback=within(ge=1, le=MAX_BLOCK_SIZE), help="Scan the queries this many at a time, as a service answering requests would, and record the latency of each batch (p50/p95/p99; default: all queries at once)."),
    memory_mb: Optional[float] = typer.Option(None, "--memory-mb", callback=within(ge=0), help="Memory the codes' search-ready form may take, in MiB (default: half the available memory); past it the codes are streamed from the file at every batch."),
    threads: Threads = None, as_json: Json = False, cluster: Cluster = None, shard_rows: ShardRows = None,
    options: dict = {},
) -> None:
    """Transform the queries with the stored model and scan the codes with the codec's scanner (Hamming, asymmetric lattice, ADC for PQ-family codes, E2LSH collisions).

    The codes are loaded once in their scanner's search-ready form (lattice points as small integers, scanned by compiled kernels without decoding; PQ codes in a faiss index; binary codes as they are) and the queries answered --query-batch at a time. With --tables L --bits-per-table K [--probes P], binary codes are looked up in L hash tables instead (FALCONN-style); with --lsh hyperplane|crosspolytope (or --annoy-trees T), flat codes are indexed by FALCONN-style LSH tables with multi-probe (or Annoy's trees) and the candidates re-ranked exactly; the results record the mean number of candidates per query. With --cluster, row ranges of the codes (a manifest's shards) are scanned by the workers and their top k merged: the same results.
    """
    output = output or derived(naming.results(codes))
    out_path, (codes, dataset) = prepare(output, [codes, dataset], threads, as_json)
    from vecspread.stages.search import search_codes

    run_stage("searched", output, as_json, search_codes, codes, dataset, out_path, k, block_size=block_size,
              query_batch=query_batch, memory_mb=memory_mb, threads=threads, options=options, cluster=cluster,
              shard_rows=shard_rows)


@command("eval")
def eval_cmd(
    results: str = typer.Argument(..., help="Results artifact from `vecspread search`."),
    groundtruth: str = typer.Argument(..., help="Ground truth from `vecspread gt`, or a dataset that carries neighbors/distances."),
    at: Ranks = "1,10,100",
    min_recall: List[str] = typer.Option([], "--min-recall", help="K=V: exit 1 unless 1-recall@K >= V (repeatable); the CI gate."),
    as_json: Json = False,
) -> None:
    """Recall of search results: 1-recall@k (the true nearest neighbour is in the top k) and k-recall@k.

    Ties in true distance never count as misses. Against the class ground truth of a softmax model (gt --model) on a labelled dataset, it also reports the exact softmax's accuracy and the index's relative accuracy (its first class is the softmax's, among the queries the model gets right). Exit code 1 when a --min-recall check fails.
    """
    from vecspread.errors import CheckFailed
    from vecspread.stages.evaluate import evaluate_with_checks, parse_min_recall

    ks, thresholds = positive_ints(at, "--at"), parse_min_recall(min_recall)
    _, (results, groundtruth) = prepare(None, [results, groundtruth])
    result, failures = evaluate_with_checks(results, groundtruth, ks, thresholds)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        console.recall_table(result)
    if failures:
        raise CheckFailed("recall check failed: " + "; ".join(failures))


@command("bench")
def bench_cmd(
    dataset: str = typer.Argument(..., help="Dataset artifact (its learn set fits the models)."),
    outdir: str = typer.Option(..., "--output", "-o", help="Directory for bench.json, bench.md, bench.png and the artifacts."),
    bits: str = typer.Option("16,32,64,128", "--bits", help="Comma-separated bit budgets."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated: lsh, lsh-thresholds, itq, pca-sign, pca-lattice, pq, opq, lsq, catalyzer-lattice, catalyzer-sign, catalyzer-opq, nphash (default: all; with --quick a small set)."),
    budget_minutes: Optional[float] = typer.Option(None, "--budget-minutes", callback=within(ge=0), help="Training time budget per learned model: its whole schedule is fitted into it (the catalyzer: the paper's 160 epochs compressed to the epochs that fit)."),
    quick: bool = typer.Option(False, "--quick", help="CI preset: fit on at most 5000 vectors, 1 short epoch for neural models, few OPQ/LSQ iterations."),
    max_train: Optional[int] = typer.Option(None, "--max-train", callback=within(ge=1), help="Fit every model on at most this many training vectors."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write bench.png and bench_qps.png (needs matplotlib: pip install '" + PLOT_EXTRA + "'; skipped with a note without it)."),
    seeds: int = typer.Option(1, "--seeds", callback=within(ge=1, le=100), help="Run each seeded method with seeds 0..N-1 and report mean ± std."),
    threads: Threads = None, as_json: JsonReport = False,
) -> None:
    """Compare methods across bit budgets through the real stages: one command for the paper's Tables 1-2.

    Each (method, bits) cell runs train, encode, search and eval; models are reused across cells where possible, and a cell a bit budget does not allow is skipped with the reason. Writes bench.json, bench.md (Table 1 layout per bit budget; Table 2 layout: 1-recall@10 of binary codes versus bits) and bench.png.
    """
    _, (dataset,) = prepare(None, [dataset], threads)
    from vecspread.stages.bench import BENCH_METHODS, QUICK_METHODS, run_bench

    bit_list = positive_ints(bits, "--bits", "16,32,64")
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else list(QUICK_METHODS if quick else BENCH_METHODS)
    check_dir(outdir)
    with console.progress() as progress:
        result = run_bench(dataset, outdir, methods=chosen, bits=bit_list, quick=quick, budget_minutes=budget_minutes,
                           max_train=max_train, threads=threads, plot=plot, seeds=seeds, progress=progress)
    if plot and result.get("plot") is None:
        console.log("bench.png not written: matplotlib is not installed (pip install 'vecspread[plot]')")
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        typer.echo(Path(outdir, "bench.md").read_text())


@command("verify")
def verify_cmd(
    files: List[str] = typer.Argument(..., help="Artifacts (any kind vecspread writes) and checkpoints."),
    as_json: Json = False,
) -> None:
    """Check every member and attribute of each file against the fingerprints it records.

    One line per file (ok, failed with what differs, or unverified when it records no fingerprint).
    Exit code 1 when a file fails.
    """
    from vecspread.errors import CheckFailed
    from vecspread.stages.verify import FAILED, verify_files

    if "-" in files:
        usage("verify reads named files, not '-'")
    with console.progress() as progress:
        records = verify_files(files, progress=progress)
    if as_json:
        counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "failed", "unverified")}
        typer.echo(json.dumps({"files": records, **counts}, sort_keys=True))
    else:
        for r in records:
            detail = f": {'; '.join(r['problems'])}" if r["problems"] else ""
            typer.echo(f"{r['status']:<10} {r['kind'] or '-':<12} {r['path']}{detail}")
    failed = [r["path"] for r in records if r["status"] == FAILED]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(records)} files failed verification: {', '.join(failed)}")


@command("atoms")
def atoms_cmd(
    dim: int = typer.Option(..., "--dim", "-d", callback=within(ge=1, le=ATOMS_MAX_DIM), help="Lattice dimension (the model's --dout)."),
    r2: Optional[int] = typer.Option(None, "--r2", callback=within(ge=0, le=ATOMS_MAX_R2), help="Squared radius."),
    bits: Optional[int] = typer.Option(None, "--bits", callback=within(ge=1, le=ATOMS_MAX_BITS), help="Bit budget: choose the largest r^2 whose point count fits."),
    blocks: Optional[int] = typer.Option(None, "--blocks", callback=within(ge=1, le=ATOMS_MAX_DIM), help="A product of this many lattices over blocks of coordinates (default: one up to 64 bits, ceil(bits/64) above), as encode --codec lattice cuts them."),
    list_atoms: bool = typer.Option(False, "--list", help="Also print every atom (one lattice only)."),
    as_json: Json = False,
) -> None:
    """Describe the spherical lattice {z in Z^d : ||z||^2 = r^2}: atoms, exact point count, bits; past 64 bits (or with --blocks), the product of lattices encode --codec lattice uses: blocks, radii, exact points, bits used."""
    from vecspread.codecs.lattice.combinatorics import lattice_report

    info = lattice_report(dim, r2, bits, list_atoms, blocks)
    if as_json:
        blocks_out = [{**b, "n_points": str(b["n_points"])} for b in info.get("blocks", [])]
        typer.echo(json.dumps({**info, "n_points": str(info["n_points"]),
                               **({"blocks": blocks_out} if blocks_out else {})}, sort_keys=True))
    else:
        atoms = info.pop("atoms", [])
        block_rows = info.pop("blocks", [])
        if block_rows:
            info["blocks"] = " + ".join(f"{b['dim']}-d r2 {b['r2']} ({b['bits']} bits)" for b in block_rows)
            info["block n_points"] = ", ".join(str(b["n_points"]) for b in block_rows)
        console.summary("lattice", info, stdout=True)
        for a in atoms:
            typer.echo(" ".join(str(v) for v in a))


@command("inspect")
def inspect_cmd(
    artifact: str = typer.Argument(..., help="Model (vecspread train) or codes (vecspread encode) artifact."),
    dataset: str = typer.Argument(..., help="Dataset: its first --nq queries and a sample of its database are used."),
    nq: int = typer.Option(1000, "--nq", callback=within(ge=2), help="Queries: the first NQ of the test set."),
    sample: int = typer.Option(200000, "--sample", callback=within(ge=0), help="Database vectors sampled (seeded) for the statistics; 0 = all."),
    k: int = typer.Option(100, "-k", callback=within(ge=1, le=MAX_K), help="Uniformity compares the 1st with the k-th neighbour distance (paper: 100)."),
    radii: int = typer.Option(40, "--radii", callback=within(ge=2, le=255), help="Radii in the epsilon-search sweep."),
    at: str = typer.Option("1,10,100", "--at", help="Ranks for id-based vs tie-aware recall (codes artifacts)."),
    tol: float = typer.Option(1e-3, "--tol", callback=within(ge=0), help="Tie tolerance of the tie-aware recall (ann-benchmarks: 1e-3)."),
    seed: int = typer.Option(0, "--seed", callback=within(ge=0, le=MAX_SEED), help="Seed of the database sample."),
    figures: Optional[str] = typer.Option(None, "--figures", help="Directory for uniformity.png and epsilon.png (needs the plot extra: pip install '" + PLOT_EXTRA + "')."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the full report (JSON: histograms, curves, code statistics) here."),
    block_size: BlockSize = 65536, threads: Threads = None,
    as_json: JsonReport = False,
) -> None:
    """Explain why a code works: uniformity (1st vs k-th neighbour distance), epsilon-search vs k-NN, angle to the true neighbour, table balance and code usage, id-based vs tie-aware recall."""
    out_path, (artifact, dataset) = prepare(output, [artifact, dataset], threads, as_json)
    from vecspread.diagnostics.report import summarize
    from vecspread.stages.inspect import inspect_artifact

    check_dir(figures)
    with console.progress() as progress:
        result = inspect_artifact(artifact, dataset, figures=figures, output=out_path, nq=nq, sample=sample or None,
                                  k=k, n_radii=radii, recall_at=positive_ints(at, "--at"), tol=tol, seed=seed,
                                  block_size=block_size, progress=progress)
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True, default=str))
    else:
        console.summary("inspect", summarize(result), stdout=True)


@command("demo")
def demo_cmd(
    workdir: Optional[str] = typer.Option(None, "--workdir", help="Keep the artifacts here (default: a temporary directory)."),
    full: bool = typer.Option(False, "--full", help="Also ITQ, PQ and OPQ, and the catalyzer at the paper's width with 4x the epochs (about 7 minutes on 2 cores instead of 1)."),
    threads: Threads = None, as_json: Json = False,
) -> None:
    """Run the whole pipeline on the small real SIFT dataset shipped with vecspread and print recalls (about a minute on 2 cores)."""
    prepare(None, [], threads)
    from vecspread.stages.demo import run_demo

    ensure_dir(workdir)
    with console.progress() as progress:
        rows = run_demo(workdir, progress=progress, full=full)
    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
    else:
        console.demo_table(rows)


def main() -> None:
    """Console-script entry point."""
    run_main(app)


if __name__ == "__main__":
    main()
