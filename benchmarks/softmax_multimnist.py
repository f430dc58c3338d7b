"""Seed 000's training changes on multiMNIST: accuracy, mean correct angle, norms and table balance.

    python benchmarks/make_multimnist.py -k 3 -o /tmp/mm/multimnist1k.h5
    python benchmarks/softmax_multimnist.py /tmp/mm/multimnist1k.h5 --workdir /tmp/mm [--epochs 20] [--seeds 0]

For each variant (the standard softmax, each of the three changes, all three together) it trains
``vecspread train DATA --method softmax`` (a real CLI process) and measures on the dataset's test images
(disjoint digit images from training) with the stored model: the exact softmax's accuracy, the mean
correct angle (degrees), the representations' norm (mean and std / mean), the class vectors' mean norm,
and the table balance M(P, h) / M* of the unit class vectors (the points a nearest-neighbour index
holds) under random-hyperplane LSH (``--hyperplanes`` bits) and cross-polytope LSH (one hash: 2·dout
buckets), each the mean over 5 seeded draws of the hash (``vecspread.diagnostics.classes``). Prints
one JSON line per run and a markdown table (mean ± std over seeds). ``--curves PNG`` plots the seed's
Figures 2–4 over training from each variant's first seed: the held-out accuracy, mean correct angle,
representation-norm spread and table balance (hyperplane and cross-polytope) that every validation
records in the model (``params["history"]``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "standard": [],
    "bn before softmax": ["--bn-before-softmax"],
    "bn, relu-bn swapped": ["--bn-before-softmax", "--relu-bn-order", "swap"],
    "unit class vectors": ["--unit-class-vectors"],
    "all three": ["--bn-before-softmax", "--relu-bn-order", "swap", "--unit-class-vectors"],
}
DRAWS = 5


def measure(model: str, data: str, hyperplanes: int) -> dict:
    import vecspread
    from vecspread.diagnostics.classes import (cross_polytope_buckets, hyperplane_buckets, mean_correct_angle,
                                               norm_stats, table_balance)
    from vecspread.io.datasets import Dataset

    t = vecspread.load_transform(model)
    with Dataset(data) as ds:
        xq, yq = ds.read("test"), ds.labels("test")
    reps, w = t.apply(xq), t.class_vectors()
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    norms = norm_stats(reps)
    hp = [table_balance(*hyperplane_buckets(unit, hyperplanes, np.random.default_rng(s)))["ratio"] for s in range(DRAWS)]
    cp = [table_balance(*cross_polytope_buckets(unit, 1, np.random.default_rng(s)))["ratio"] for s in range(DRAWS)]
    m_star = {"hyperplane": table_balance(np.zeros(len(w), int), 2**hyperplanes)["M_star"],
              "cross_polytope": table_balance(np.zeros(len(w), int), 2 * w.shape[1])["M_star"]}
    return {"accuracy": float((np.argmax(reps @ w.T, axis=1) == yq).mean()),
            "mean_correct_angle": mean_correct_angle(reps, w, yq), "rep_norm_mean": norms["mean"],
            "rep_norm_spread": norms["relative_std"], "class_norm_mean": float(np.linalg.norm(w, axis=1).mean()),
            "balance_hyperplane": float(np.mean(hp)), "balance_cross_polytope": float(np.mean(cp)), "M_star": m_star}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--hyperplanes", type=int, default=8)
    ap.add_argument("--train-args", default="", help="more `vecspread train` options, e.g. '--dout 32'")
    ap.add_argument("--curves", default=None, help="PNG of the per-epoch measures (first seed of each variant)")
    a = ap.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {}
    histories: dict[str, list[dict]] = {}
    for name, flags in VARIANTS.items():
        for seed in [int(s) for s in a.seeds.split(",")]:
            model = work / f"{Path(a.data).stem}.{name.replace(' ', '_').replace(',', '')}.s{seed}.h5"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vecspread", "-q", "train", a.data, "--method", "softmax",
                            "--epochs", str(a.epochs), "--seed", str(seed), *flags, *a.train_args.split(), "-o",
                            str(model)], check=True)
            row = {"variant": name, "seed": seed, "train_seconds": round(time.perf_counter() - t0, 1),
                   **measure(str(model), a.data, a.hyperplanes)}
            rows.setdefault(name, []).append(row)
            print(json.dumps(row), flush=True)
            if name not in histories:
                histories[name] = history(str(model))
    keys = ["accuracy", "mean_correct_angle", "rep_norm_mean", "rep_norm_spread", "class_norm_mean",
            "balance_hyperplane", "balance_cross_polytope"]
    print("\n| variant | test accuracy | mean correct angle (°) | rep. norm | norm std/mean | class-vector norm | "
          f"balance, hyperplane {a.hyperplanes} bits | balance, cross-polytope |")
    print("|---|" + "---:|" * len(keys))
    for name, runs in rows.items():
        cells = []
        for k in keys:
            v = np.array([r[k] for r in runs])
            cells.append(f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")
    if a.curves:
        plot_curves(histories, a.curves, Path(a.data).stem)


def history(model: str) -> list[dict]:
    """The validations a model recorded during training (one dict per validated epoch)."""
    from vecspread.io.artifacts import open_artifact

    with open_artifact(model, "model") as art:
        return [h for h in art.params.get("history", []) if "mean_correct_angle" in h]


def plot_curves(histories: dict[str, list[dict]], png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("accuracy", "held-out accuracy"), ("mean_correct_angle", "mean correct angle (°)"),
              ("rep_norm_spread", "representation norm std / mean"),
              ("balance_hyperplane", "table balance M/M*, hyperplane"),
              ("balance_cross_polytope", "table balance M/M*, cross-polytope")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (key, label) in zip(axes, panels):
        for name, hist in histories.items():
            pts = [(h["epoch"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: the seed's measures over training", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
