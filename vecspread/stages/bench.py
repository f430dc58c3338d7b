"""``vecspread bench``: the comparison matrix (methods x bit budgets) through the real stages.

Each cell is train -> encode -> search -> eval on one dataset, exactly as a user would run them, so
the numbers are those of the product. Trained models are reused across cells that share them (e.g.
one catalyzer for "catalyzer-lattice" and "catalyzer-opq" at the same bits), and a cell that a bit
budget does not allow is skipped with the reason. Outputs: ``bench.json`` (every cell), ``bench.md``
(the paper's Table 1 layout per bit budget, and its Table 2 layout: 1-recall@10 of each method
across bit budgets), ``bench.png`` (1-recall@10 versus bits) and ``bench_qps.png`` (queries per second
versus 1-recall@10, the ann-benchmarks view); the figures need matplotlib.

Neural rows train the catalyzer at width 512 for 8 epochs; with ``--budget-minutes`` for the authors'
160-epoch schedule compressed into the epochs that fit the budget (learning-rate decays included), and
NPhash for its default epochs within the budget.

A cell that did not train as the method intends (``--quick``, or a training stopped by
``--budget-minutes``) is marked under-trained in every output. With ``--seeds N`` each seeded method
runs with seeds 0..N-1 and reports the mean and standard deviation of its recalls.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vecspread.codecs.lattice.layout import block_count
from vecspread.errors import ConfigError
from vecspread.io.atomic import write_text
from vecspread.io.datasets import Dataset
from vecspread.plotting import pyplot_or_none, save_png
from vecspread.progress import Progress, as_progress
from vecspread.stages.encode import encode_dataset
from vecspread.stages.evaluate import evaluate
from vecspread.stages.groundtruth import compute_groundtruth
from vecspread.stages.search import search_codes
from vecspread.stages.train import train_model
from vecspread.transforms import METHOD_NAMES

#: lattice output dimension per bit budget (the paper: 24 dimensions at 64 bits, Fig. 5); past 64 bits a
#: product of lattices, 24 dimensions per 64-bit block (96 bits: two 18-d blocks of 48 bits)
LATTICE_DIM = {16: 8, 32: 16, 64: 24, 96: 36, 128: 48, 256: 96, 512: 192}
#: catalyzer input to OPQ: a dimension that bits / 8 divides
CATALYZER_OPQ_DIM = {16: 16, 32: 16, 64: 24, 128: 32}


@dataclass(frozen=True)
class Cell:
    """One method at one bit budget: how to train the model and which codec to encode with."""

    name: str
    bits: int
    method: str
    train: dict[str, Any]
    codec: str | None  # None: the codec trained with the model
    codec_options: dict[str, Any] = field(default_factory=dict)
    learned: bool = False  # trained by SGD: gets --budget-minutes

    @property
    def model_key(self) -> str:
        return self.method + "-" + "-".join(f"{k}{v}" for k, v in sorted(self.train.items()))

    def seeded(self) -> bool:
        """Whether the method takes a seed (runs with other seeds then differ)."""
        from vecspread.transforms import REGISTRY

        return "seed" in REGISTRY[self.method].params

    def with_seed(self, seed: int) -> "Cell":
        return Cell(self.name, self.bits, self.method, {**self.train, "seed": seed}, self.codec,
                    self.codec_options, self.learned)


#: catalyzer schedule lengths: without a budget, 8 epochs; with --budget-minutes, the authors' 160 epochs
#: compressed into the epochs that fit the budget (decays included)
CATALYZER_EPOCHS, CATALYZER_BUDGET_EPOCHS = 8, 160


def make_cell(name: str, bits: int, quick: bool, budgeted: bool = False, d: int | None = None) -> Cell | str:
    """The cell for ``name`` at ``bits``, or a string saying why it cannot run. ``budgeted``: the learned
    rows get --budget-minutes, so the catalyzer's schedule is the paper's 160 epochs, compressed to fit.
    ``d``: the dataset's dimension; OPQ at a budget whose M = bits / 8 does not divide it keeps the
    d - d mod M leading rotated dimensions (faiss "OPQ{M}_{D}", e.g. OPQ12_120 at 96 bits on 128-d SIFT)."""
    if bits <= 0 or bits % 8:
        return f"{bits} bits: not a positive multiple of 8"
    epochs = CATALYZER_BUDGET_EPOCHS if budgeted else CATALYZER_EPOCHS
    neural = {"dint": 128, "epochs": 1, "val_size": 0} if quick else {"dint": 512, "epochs": epochs}
    lattice = {"bits": bits}
    if name in ("lsh", "lsh-thresholds", "itq"):
        return Cell(name, bits, name, {"bits": bits}, None)
    if name in ("pq", "opq", "lsq"):
        if name == "lsq" and bits < 32:
            return "lsq needs at least 4 sub-quantizers (32 bits): faiss aborts below"
        opts = {"bits": bits, **({"train_iters": 2, "encode_ils_iters": 2} if quick and name == "lsq" else {})}
        if quick and name == "opq":
            opts["train_iters"] = 5
        M = bits // 8
        if name == "opq" and d is not None and d % M and d >= M:
            opts["dout"] = d - d % M
        return Cell(name, bits, name, opts, None)
    if name == "pca-sign":
        return Cell(name, bits, "pca", {"dout": bits}, "sign")
    if name in ("pca-lattice", "catalyzer-lattice"):
        if bits not in LATTICE_DIM:
            return f"no lattice dimension chosen for {bits} bits (chosen for {', '.join(map(str, LATTICE_DIM))})"
        dout = LATTICE_DIM[bits]
        product = block_count(dout, bits, None) > 1  # a product of lattice blocks (past 64 bits)
        if name == "pca-lattice":
            # a product lattice: rotate after PCA so that the blocks share the variance (RESULTS.md, issue 17)
            return Cell(name, bits, "pca", {"dout": dout, **({"rotate": True} if product else {})}, "lattice",
                        lattice)
        # a product lattice: start from the rotated PCA map (--pca-path; at 128 bits +3 points of 1-recall@1)
        path = {"pca_path": True} if product and (d is None or dout <= d) else {}
        return Cell(name, bits, "catalyzer", {"dout": dout, **neural, "bits": bits, **path}, "lattice", lattice,
                    learned=True)
    if name == "catalyzer-sign":
        # bits: its validation reports the lattice at the cell's own budget, which also keeps it cheap (a
        # 16-d lattice at 64 bits, r2 512, is slow to encode in faiss)
        return Cell(name, bits, "catalyzer", {"dout": bits, **neural, "val_codec": "sign", "lam": 0.02,
                                              "bits": bits}, "sign", learned=True)
    if name == "catalyzer-opq":
        dout = CATALYZER_OPQ_DIM.get(bits)
        if dout is None:
            return f"no catalyzer dimension chosen for OPQ at {bits} bits"
        opq = {"bits": bits, **({"train_iters": 5} if quick else {})}
        return Cell(name, bits, "catalyzer", {"dout": dout, **neural, **({"bits": 64} if dout <= 40 else {})},
                    "opq", opq, learned=True)
    if name == "nphash":
        return Cell(name, bits, "nphash", {"bits": bits, **({"epochs": 1} if quick else {})}, "sign", learned=True)
    return f"unknown method {name!r}"


BENCH_METHODS = ("lsh", "lsh-thresholds", "itq", "pca-sign", "pca-lattice", "pq", "opq", "lsq",
                 "catalyzer-lattice", "catalyzer-sign", "catalyzer-opq", "nphash")
QUICK_METHODS = ("lsh", "itq", "pca-lattice", "pq", "catalyzer-lattice", "catalyzer-sign")


def run_bench(
    dataset: str, outdir: str, *, methods: list[str], bits: list[int], quick: bool = False,
    budget_minutes: float | None = None, max_train: int | None = None, threads: int | None = None,
    plot: bool = True, seeds: int = 1, progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every (method, bits) cell (``seeds`` times for seeded methods); write bench.json, bench.md
    (and bench.png, bench_qps.png); return the report."""
    progress = as_progress(progress)
    unknown = [m for m in methods if m not in BENCH_METHODS]
    if unknown:
        raise ConfigError(f"unknown bench method(s) {', '.join(unknown)}; choose from {', '.join(BENCH_METHODS)}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "artifacts"
    work.mkdir(exist_ok=True)
    if quick and max_train is None:
        max_train = 5000
    gt = str(work / "gt.h5")
    progress.log(f"ground truth: {gt}")
    compute_groundtruth(dataset, gt, 100, progress=progress)

    rows: list[dict[str, Any]] = []
    trained: dict[str, tuple[str, float]] = {}
    with Dataset(dataset) as ds:
        d = ds.d
    plan = [(m, b, make_cell(m, b, quick, budget_minutes is not None, d)) for b in bits for m in methods]
    for i, (name, b, cell) in enumerate(plan, 1):
        label = f"[{i}/{len(plan)}] {name} @ {b} bits"
        if isinstance(cell, str):
            progress.log(f"{label}: skipped ({cell})")
            rows.append({"method": name, "bits": b, "skipped": cell})
            continue
        if cell.method not in METHOD_NAMES:
            rows.append({"method": name, "bits": b, "skipped": f"method {cell.method} is not available"})
            progress.log(f"{label}: skipped (method {cell.method} not available)")
            continue
        progress.log(label)
        runs = [cell.with_seed(s) for s in range(seeds)] if seeds > 1 and cell.seeded() else [cell]
        try:
            results = [_run_cell(c, dataset, gt, work, trained, budget_minutes, max_train, threads, progress)
                       for c in runs]
        except ConfigError as e:  # a configuration this data does not allow: say so, go on
            rows.append({"method": name, "bits": b, "skipped": str(e)})
            progress.log(f"{label}: skipped ({e})")
            continue
        r = _combine(results, quick, seeds if len(runs) > 1 else None)
        rows.append(r)
        spread = f" (± {r['recall_std']['10']:.3f} over {len(runs)} seeds)" if "recall_std" in r else ""
        note = f"; under-trained: {r['under_trained']}" if r.get("under_trained") else ""
        progress.log(f"{label}: 1-recall@1/10/100 = " + "/".join(f"{r['recall'][k]:.3f}" for k in ("1", "10", "100"))
                     + spread + note)

    report = {
        "dataset": os.path.abspath(dataset), "bits": bits, "methods": methods, "quick": quick,
        "budget_minutes": budget_minutes, "max_train": max_train, "threads": threads, "seeds": seeds,
        "machine": _machine(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "cells": rows,
    }
    write_text(out / "bench.json", json.dumps(report, indent=1, sort_keys=True))
    write_text(out / "bench.md", markdown_tables(report))
    if plot:
        report["plot"] = write_plot(report, out / "bench.png")
        report["plot_qps"] = write_qps_plot(report, out / "bench_qps.png")
    return report


QUICK_NOTE = "--quick (at most 5000 training vectors; neural models: 1 epoch, dint 128; few OPQ/LSQ iterations)"


def _combine(results: list[dict[str, Any]], quick: bool, seeds: int | None) -> dict[str, Any]:
    """One row from the runs of a cell: the first run's record, the mean recalls over seeds (with their
    standard deviation and the per-seed values), and why it is under-trained, if it is."""
    import numpy as np

    row = dict(results[0])
    if seeds:
        for key in ("recall", "k_recall"):
            values = {k: [r[key][k] for r in results] for k in row[key]}
            row[key] = {k: float(np.mean(v)) for k, v in values.items()}
            row[f"{key}_std"] = {k: float(np.std(v, ddof=1)) for k, v in values.items()}
        row["seed_recall10"] = [r["recall"]["10"] for r in results]
        row["seeds"] = seeds
        for key in ("train_seconds", "encode_seconds", "search_ms_per_query"):
            row[key] = float(np.mean([r[key] for r in results]))
    reasons = [QUICK_NOTE] if quick else []
    reasons += sorted({r["stopped"] for r in results if r.get("stopped")})
    if reasons:
        row["under_trained"] = "; ".join(reasons)
    row.pop("stopped", None)
    return row


def _run_cell(cell: Cell, dataset: str, gt: str, work: Path, trained: dict[str, tuple[str, float]],
              budget_minutes: float | None, max_train: int | None, threads: int | None,
              progress: Progress) -> dict[str, Any]:
    key = cell.model_key
    if key not in trained:
        options = dict(cell.train)
        if cell.learned and budget_minutes is not None:
            options["max_minutes"] = budget_minutes
        model = str(work / f"{key}.model.h5")
        summary = train_model(dataset, model, cell.method, options, max_train=max_train, threads=threads,
                              progress=progress)
        trained[key] = (model, summary["train_seconds"])
    model, train_seconds = trained[key]
    stopped = _stopped_early(model, cell) if cell.learned else None
    stem = f"{cell.name}-{cell.bits}"
    codes, res = str(work / f"{stem}.codes.h5"), str(work / f"{stem}.res.h5")
    enc = encode_dataset(model, dataset, codes, cell.codec, cell.codec_options, progress=progress)
    srch = search_codes(codes, dataset, res, 100, threads=threads, progress=progress)
    ev = evaluate(res, gt, [1, 10, 100])
    return {"method": cell.name, "bits": cell.bits, "code_bits": enc["bits"], "recall": ev["recall"],
            "k_recall": ev["k_recall"], "train_seconds": train_seconds, "encode_seconds": enc["encode_seconds"],
            "search_ms_per_query": srch["ms_per_query"], "queries_per_second": srch["queries_per_second"],
            "model": model, "train": {"method": cell.method, **cell.train}, "codec": enc["codec"],
            **({"stopped": stopped} if stopped else {})}


def _stopped_early(model: str, cell: Cell) -> str | None:
    """"stopped by --budget-minutes after E of N epochs" when the model's training did not finish."""
    from vecspread.io.artifacts import open_artifact

    with open_artifact(model, "model") as art:
        params = art.params
    history, epochs = params.get("history") or [], params.get("epochs_run", params.get("epochs"))
    if not history or epochs is None:
        return None
    last = history[-1]
    if last.get("partial") or last.get("epoch", epochs) < epochs:
        return f"stopped by --budget-minutes after {last.get('epoch')} of {epochs} epochs"
    return None  # complete: its whole schedule (spread over fewer epochs when the budget asked it)


def markdown_tables(report: dict[str, Any]) -> str:
    """Table 1 (per bit budget: R@1/10/100, times) and Table 2 (R@10 across bits, binary methods)."""
    cells = report["cells"]
    lines = [f"Dataset `{os.path.basename(report['dataset'])}`, {report['date']}, {report['machine']}.", ""]
    if report.get("seeds", 1) > 1:
        lines += [f"Recalls of seeded methods: mean ± standard deviation over seeds 0..{report['seeds'] - 1}.", ""]
    marks = sorted({c["under_trained"] for c in cells if c.get("under_trained")})
    for b in report["bits"]:
        lines += [f"### {b} bits per vector", "",
                  "| method | R@1 | R@10 | R@100 | code bits | train s | encode s | search ms/query |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for c in (c for c in cells if c["bits"] == b):
            if "skipped" in c:
                lines.append(f"| {c['method']} | – | – | – | – | – | – | skipped: {c['skipped']} |")
            else:
                name = c["method"] + (" " + "†" * (marks.index(c["under_trained"]) + 1) if c.get("under_trained") else "")
                r, sd = c["recall"], c.get("recall_std")
                cols = [f"{r[k]:.3f}" + (f" ± {sd[k]:.3f}" if sd else "") for k in ("1", "10", "100")]
                lines.append(f"| {name} | {' | '.join(cols)} | {c['code_bits']} | "
                             f"{c['train_seconds']:.1f} | {c['encode_seconds']:.2f} | {c['search_ms_per_query']:.3f} |")
        lines.append("")
    for i, mark in enumerate(marks):
        lines += [f"{'†' * (i + 1)} under-trained: {mark}; not the method's result.", ""]
    binary = [m for m in report["methods"]
              if any(c["method"] == m and c.get("codec") == "sign" for c in cells)]
    if binary and len(report["bits"]) > 1:
        lines += ["### 1-recall@10 of binary codes versus bits", "",
                  "| method | " + " | ".join(str(b) for b in report["bits"]) + " |",
                  "|---|" + "---:|" * len(report["bits"])]
        for m in binary:
            vals = []
            for b in report["bits"]:
                c = next((c for c in cells if c["method"] == m and c["bits"] == b), None)
                vals.append("–" if c is None or "skipped" in c else f"{c['recall']['10']:.3f}")
            lines.append(f"| {m} | " + " | ".join(vals) + " |")
        lines.append("")
    return "\n".join(lines)


def _series(report: dict[str, Any], plt: Any) -> Any:
    """(cells, style) of each method with results, by bits: the colour, marker and line both plots give
    it (dashed and hollow when under-trained)."""
    # more methods than the default 10-colour cycle: tab20's 10 dark colours, then its 10 light ones
    colors = plt.get_cmap("tab20").colors
    markers = "osD^v<>pXh*"
    for i, m in enumerate(report["methods"]):
        cells = sorted((c for c in report["cells"] if c["method"] == m and "recall" in c), key=lambda c: c["bits"])
        if cells:
            color = colors[(2 * i) % 20 + (i // 10) % 2]
            under = any(c.get("under_trained") for c in cells)
            yield cells, {"marker": markers[i % len(markers)], "color": color, "linestyle": "--" if under else "-",
                          "mfc": "none" if under else color, "label": m + (" (under-trained)" if under else "")}


def write_plot(report: dict[str, Any], path: Path) -> str | None:
    """1-recall@10 versus bits, one line per method; None (and no file) without matplotlib."""
    plt = pyplot_or_none()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for cells, style in _series(report, plt):
        ax.errorbar([c["bits"] for c in cells], [c["recall"]["10"] for c in cells],
                    yerr=[c.get("recall_std", {}).get("10", 0.0) for c in cells], capsize=3, **style)
    ax.set_xscale("log", base=2)
    ax.set_xticks(report["bits"], [str(b) for b in report["bits"]])
    ax.set_xlabel("bits per vector")
    ax.set_ylabel("1-recall@10")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"{os.path.basename(report['dataset'])}: 1-recall@10 versus code size")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_png(fig, path)


def write_qps_plot(report: dict[str, Any], path: Path) -> str | None:
    """Queries per second (log) versus 1-recall@10, one point per cell labelled with its bits: the
    ann-benchmarks view of the trade-off; None (and no file) without matplotlib."""
    plt = pyplot_or_none()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for cells, style in _series(report, plt):
        x = [c["recall"]["10"] for c in cells]
        y = [c.get("queries_per_second") or 1000.0 / max(c["search_ms_per_query"], 1e-9) for c in cells]
        ax.plot(x, y, **style)
        for c, xi, yi in zip(cells, x, y):
            ax.annotate(str(c["bits"]), (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("1-recall@10")
    ax.set_ylabel("queries per second (exhaustive scan of the codes)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{os.path.basename(report['dataset'])}: speed versus recall (labels: bits)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return save_png(fig, path)


def _machine() -> str:
    from vecspread.runtime import available_cores

    return f"{platform.machine()}, {available_cores()} cores, {platform.python_implementation()} {platform.python_version()}"
