"""Seed 000, Figure 7: query time against relative accuracy of the class search, standard vs modified
softmax training, for FALCONN-style LSH (hyperplane and cross-polytope, multi-probe), Annoy, and our codes.

    python benchmarks/softmax_query_time.py DATA.h5 STANDARD.model.h5 MODIFIED.model.h5 [MORE.model.h5 ...]
        [--queries 5000] [--png benchmarks/figures/softmax_query_time.png] [--json out.json]
    python benchmarks/softmax_query_time.py out.json - - --from-json --png ...   # table and plot again

The database of the search is a model's class vectors (``encode --codec flat``: the float32 vectors,
metric dot: the softmax's argmax); the queries are the representations of the dataset's test vectors
the model classifies right (the exact softmax's answer is then the label). **Relative accuracy** =
P[the index's top-1 class is the exact softmax's | the model is right], the seed's measure. Each index
runs through vecspread's scanners (``vecspread.scanners.choose``: the same code ``vecspread search
--lsh ... / --annoy-trees ...`` runs), built once (not timed), then all queries searched in one call on
one thread (faiss, numba and Annoy alike); the time per query excludes the representation network
(the same for every index). Sweeps: LSH probes (``--lsh-probes``) at fixed tables, for several hashes per table (K; each
LSH curve is the lower envelope over K, the setting a user would tune to), Annoy's ``search_k``; our codes (lattice and sign, 64 bits, exhaustive scans of the query batch) and the exact
flat scan (as one batch, and one query per call) are one point each. For each curve, the table gives the time of the cheapest setting that reaches relative
accuracy 0.9 and 0.99 (no interpolation), its candidates per query, and the speed-up of each modified
training over the first model (the standard one).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

LSH_PROBES = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
#: hash functions per table tried for each family (each curve is the lower envelope over them)
LSH_HASHES = {"hyperplane": (8, 11, 14), "crosspolytope": (1, 2)}
ANNOY_SEARCH_K = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)
TARGETS = (0.9, 0.99)


def class_search_inputs(model: str, data: str, nq: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(classes, d) class vectors, (nq, d) representations of right-classified test vectors, accuracy."""
    import vecspread
    from vecspread.io.datasets import Dataset

    t = vecspread.load_transform(model)
    with Dataset(data) as ds:
        xq, labels = ds.read("test"), ds.labels("test")
    reps, w = t.apply(xq), np.ascontiguousarray(t.class_vectors(), np.float32)
    right = np.argmax(reps @ w.T, axis=1) == labels
    return w, np.ascontiguousarray(reps[right][:nq], np.float32), float(right.mean())


def run_index(codec_name: str, codec_options: dict, options: dict, w: np.ndarray, reps: np.ndarray,
              truth: np.ndarray, one_query_per_call: bool = False) -> dict:
    """Build one index over the class vectors, search every query once; relative accuracy and time.
    ``one_query_per_call``: exhaustive scans search the queries one by one (a latency, as an index
    answers them), instead of as one batch (a matrix product)."""
    from vecspread.codecs import REGISTRY as CODECS
    from vecspread.scanners import choose
    from vecspread.scanners.base import ExhaustiveScanner, IndexScanner

    codec = CODECS.create(codec_name, codec_options).fit_class_vectors(w)
    codes = codec.encode(w)
    scanner = choose(codec, options)
    t0 = time.perf_counter()
    if isinstance(scanner, IndexScanner):
        index = scanner.build([codes])
        build = time.perf_counter() - t0
        scanner.search_index(index, reps[:10], 1)  # compiled kernels warm
        t0 = time.perf_counter()
        result = scanner.search_index(index, reps, 1)
    else:
        assert isinstance(scanner, ExhaustiveScanner)
        scanner.warm_up()
        ready = [scanner.ready(codes)]
        build = time.perf_counter() - t0
        scanner.search_ready(reps[:10], ready, 1)
        t0 = time.perf_counter()
        if one_query_per_call:
            parts = [scanner.search_ready(reps[i : i + 1], ready, 1) for i in range(len(reps))]
            result = type(parts[0])(np.vstack([p.D for p in parts]), np.vstack([p.I for p in parts]))
        else:
            result = scanner.search_ready(reps, ready, 1)
    seconds = time.perf_counter() - t0
    return {"relative_accuracy": float((result.I[:, 0] == truth).mean()), "ms_per_query": 1000 * seconds / len(reps),
            "candidates": result.stats.get("mean_candidates"), "build_seconds": build}


def curves(w: np.ndarray, reps: np.ndarray, tables: int, annoy_trees: int) -> dict[str, list[dict]]:
    truth = np.argmax(reps @ w.T, axis=1)
    out: dict[str, list[dict]] = {}
    for family, hashes in LSH_HASHES.items():
        points = []
        for K in hashes:
            buckets = tables * min((2 * w.shape[1]) ** K if family == "crosspolytope" else 2**K, len(w))
            for p in LSH_PROBES:
                if p < tables:
                    continue
                points.append(dict(run_index("flat", {}, {"lsh": family, "lsh_tables": tables, "lsh_hashes": K,
                                                          "lsh_probes": p}, w, reps, truth), setting=f"K {K}, probes {p}"))
                if points[-1]["relative_accuracy"] >= 0.999 or p >= buckets:
                    break  # further probes cost more for nothing
        out[f"LSH {family}"] = envelope(points)
    try:
        import annoy  # noqa: F401
        out[f"Annoy {annoy_trees} trees"] = [dict(run_index("flat", {}, {"annoy_trees": annoy_trees, "annoy_search_k": s},
                                                            w, reps, truth), setting=f"search_k {s}")
                                             for s in ANNOY_SEARCH_K]
    except ImportError:
        print("annoy is not installed: its curve is skipped (pip install annoy)")
    out["flat (exact scan, batch)"] = [dict(run_index("flat", {}, {}, w, reps, truth), setting="exhaustive")]
    out["flat (exact scan, 1 query per call)"] = [dict(run_index("flat", {}, {}, w, reps, truth, True),
                                                       setting="exhaustive")]
    out["lattice 64 bits (scan)"] = [dict(run_index("lattice", {"bits": 64}, {}, w, reps, truth), setting="exhaustive")]
    out["sign 64 bits (scan)"] = [dict(run_index("sign", {}, {}, w, reps, truth), setting="exhaustive")]
    return out


def envelope(points: list[dict]) -> list[dict]:
    """The settings no other setting beats on both time and relative accuracy, by relative accuracy."""
    front = [p for p in points if not any(q["ms_per_query"] < p["ms_per_query"] and
                                          q["relative_accuracy"] >= p["relative_accuracy"] for q in points)]
    return sorted(front, key=lambda p: (p["relative_accuracy"], p["ms_per_query"]))


def cheapest(points: list[dict], target: float) -> dict | None:
    ok = [p for p in points if p["relative_accuracy"] >= target]
    return min(ok, key=lambda p: p["ms_per_query"]) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("baseline", help="the model the others are compared with (the standard training)")
    ap.add_argument("models", nargs="+", help="models with the modified trainings")
    ap.add_argument("--queries", type=int, default=5000)
    ap.add_argument("--tables", type=int, default=10)
    ap.add_argument("--annoy-trees", type=int, default=10)
    ap.add_argument("--png", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--from-json", action="store_true", help="DATA is the --json file of an earlier run: print its "
                    "table and plot it, measuring nothing")
    args = ap.parse_args()

    if args.from_json:
        with open(args.data) as f:
            report(json.load(f), args.png)
        return
    import faiss
    import numba

    faiss.omp_set_num_threads(1)
    numba.set_num_threads(1)
    runs = {}
    for model in (args.baseline, *args.models):
        name = label(model)
        w, reps, acc = class_search_inputs(model, args.data, args.queries)
        print(f"{name}: {model}: accuracy {acc:.4f}, {len(w)} classes, {len(reps)} right-classified queries", flush=True)
        runs[name] = {"accuracy": acc, "model": model, "curves": curves(w, reps, args.tables, args.annoy_trees)}
        for curve, points in runs[name]["curves"].items():
            for p in points:
                print(json.dumps({"training": name, "index": curve, **p}), flush=True)
    results = {"data": args.data, "baseline": label(args.baseline), "runs": runs}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    report(results, args.png)


def label(model: str) -> str:
    """A model's name in tables and plots: its file name without the dataset prefix and ``.h5``."""
    stem = model.rsplit("/", 1)[-1].removesuffix(".h5")
    return stem.split(".", 1)[1] if "." in stem else stem


def report(results: dict, png: str | None) -> None:
    """The markdown table (cheapest setting per target, speed-up over the baseline) and the figure."""
    if "runs" not in results:  # the two-model layout of the first runs
        results = {"baseline": "standard", "runs": {n: results[n] for n in ("standard", "modified")}}
    base, runs = results["baseline"], results["runs"]
    for name, run in runs.items():
        print(f"{name}: {run['model']}: accuracy {run['accuracy']:.4f}")
    others = [n for n in runs if n != base]
    print("\n| index | target | " + " | ".join([f"{base}: ms/query (setting, candidates)"] +
                                               [f"{n}: ms/query (setting, candidates), speed-up" for n in others]) + " |")
    print("|---|---|" + "---|" * (1 + len(others)))
    for curve in runs[base]["curves"]:
        for target in TARGETS:
            cells, base_ms = [], None
            for name in (base, *others):
                points = runs[name]["curves"].get(curve)
                best = cheapest(points, target) if points else None
                if best is None:
                    cells.append("not reached" + (f" (best {max(p['relative_accuracy'] for p in points):.3f})" if points else ""))
                    continue
                cand = "" if best["candidates"] is None else f", {best['candidates']:.0f}"
                cell = f"{best['ms_per_query']:.4f} ({best['setting']}{cand})"
                if name == base:
                    base_ms = best["ms_per_query"]
                elif base_ms is not None:
                    cell += f", {base_ms / best['ms_per_query']:.1f}x"
                cells.append(cell)
            print(f"| {curve} | {target} | " + " | ".join(cells) + " |")
    if png:
        plot(base, runs, png)


def plot(base: str, runs: dict, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c for c in runs[base]["curves"] if len(runs[base]["curves"][c]) > 1]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.2), squeeze=False)
    for ax, curve in zip(axes[0], names):
        for i, (name, run) in enumerate(runs.items()):
            pts = run["curves"].get(curve, [])
            ax.plot([p["relative_accuracy"] for p in pts], [p["ms_per_query"] for p in pts],
                    "o--" if name == base else "s-", color=f"C{i}", label=name, ms=4)
        exact = [run["curves"]["flat (exact scan, 1 query per call)"][0]["ms_per_query"] for run in runs.values()
                 if "flat (exact scan, 1 query per call)" in run["curves"]]
        if exact:
            ax.axhline(float(np.median(exact)), color="grey", ls=":", lw=1, label="exact scan, 1 query per call")
        ax.set_xlabel("relative accuracy")
        ax.set_ylabel("ms per query (1 thread)")
        ax.set_yscale("log")
        ax.set_title(curve)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
