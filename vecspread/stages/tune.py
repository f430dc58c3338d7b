"""``vecspread tune``: hyper-parameters of a learned method by cross-validation on the learn set.

Every point of the grid (the product of the ``--grid NAME=V1,V2,...`` lists, the other options fixed) is
trained by the ``train`` stage on the dataset's learn set. Its score is the validation 1-recall@10 of the
epoch the trainer kept: held-out learn vectors searched among the training vectors, coded with the
method's validation codec (the catalyzer's lattice at ``--bits``, or sign bits; NPhash's sign bits).
The test queries are never looked at. The best point's model is written; the table (and ``--plot``:
score against the first grid parameter, one line per value of the others) says what each point reached.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vecspread.errors import ConfigError
from vecspread.io.artifacts import open_artifact
from vecspread.progress import Progress, as_progress
from vecspread.stages.train import train_model


def parse_grid(method: str, items: list[str]) -> dict[str, list[Any]]:
    """``["lam=0.01,0.02", "dout=16,24"]`` -> {"lam": [0.01, 0.02], "dout": [16, 24]}, each value checked as
    the method's parameter of that name checks it; ConfigError naming what is wrong."""
    from vecspread.transforms import REGISTRY, method_params

    params = method_params(REGISTRY[method])
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        key = name.strip().lstrip("-").replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--grid {item!r}: expected NAME=V1,V2,... (e.g. --grid lam=0.01,0.02)")
        if key not in params:
            raise ConfigError(f"--grid {item!r}: --method {method} has no option --{key.replace('_', '-')}")
        if key in grid:
            raise ConfigError(f"--grid {key} given twice")
        p = params[key]
        grid[key] = [p.check(_parse(p, v.strip()), f"--method {method}") for v in values.split(",")]
    if not grid:
        raise ConfigError("tune needs at least one --grid NAME=V1,V2,...")
    return grid


def _parse(p: Any, text: str) -> Any:
    if p.convert is not None or p.kind is str:
        return text
    try:
        return int(text) if p.kind is int else float(text) if p.kind is float else text
    except ValueError:
        raise ConfigError(f"--grid {p.name}: {text!r} is not a number") from None


def score_of(model: str) -> tuple[float, str, int | None]:
    """(validation 1-recall@10 of the kept epoch, the codec it is of, the kept epoch) from a model file."""
    with open_artifact(model, "model") as art:
        params = art.params
    history, kept = params.get("history") or [], params.get("best_epoch")
    codec = params.get("val_codec") or "sign"
    rows = [r for r in history if r.get("epoch") == kept and f"{codec}_r10" in r] or \
        [r for r in history if f"{codec}_r10" in r]
    if not rows:
        raise ConfigError(f"{model}: the training recorded no validation recall (is --val-size 0?)")
    return float(rows[-1][f"{codec}_r10"]), codec, kept


def tune(dataset: str, output: str, method: str, options: dict[str, Any], grid_items: list[str], *,
         max_train: int | None = None, threads: int | None = None, plot: str | None = None,
         progress: Progress | None = None) -> dict:
    """Train every grid point, score it on held-out learn vectors, write the best model to ``output``."""
    progress = as_progress(progress)
    grid = parse_grid(method, grid_items)
    fixed = {k: v for k, v in options.items() if v is not None}
    clash = sorted(set(grid) & set(fixed))
    if clash:
        raise ConfigError(f"--{clash[0].replace('_', '-')} is both fixed and in --grid: give it once")
    names = list(grid)
    points = [dict(zip(names, values)) for values in itertools.product(*grid.values())]
    rows: list[dict[str, Any]] = []
    best = None
    with tempfile.TemporaryDirectory(prefix="vecspread-tune-", dir=str(Path(output).resolve().parent)) as tmp:
        for i, point in enumerate(points):
            label = ", ".join(f"{k}={v}" for k, v in point.items())
            progress.log(f"[{i + 1}/{len(points)}] {method} {label}")
            model = str(Path(tmp) / f"point{i}.model.h5")
            t0 = time.perf_counter()
            train_model(dataset, model, method, {**options, **point}, max_train=max_train, threads=threads,
                        progress=progress)
            score, codec, kept = score_of(model)
            row = {**point, "val_recall10": score, "val_codec": codec, "kept_epoch": kept,
                   "train_seconds": round(time.perf_counter() - t0, 1)}
            rows.append(row)
            progress.log(f"[{i + 1}/{len(points)}] {label}: validation {codec} 1-recall@10 {score:.4f}")
            if best is None or score > best[0]:
                best = (score, i, model)
                shutil.copyfile(model, Path(tmp) / "best.model.h5")
        assert best is not None
        shutil.move(str(Path(tmp) / "best.model.h5"), output)
    result = {"method": method, "grid": {k: list(v) for k, v in grid.items()}, "fixed": fixed, "points": rows,
              "best": rows[best[1]], "output": output}
    if plot:
        result["plot"] = _plot(rows, names, plot, method)
    return result


def _plot(rows: list[dict[str, Any]], names: list[str], path: str, method: str) -> str:
    from vecspread.plotting import pyplot_or_none, save_png

    plt = pyplot_or_none()
    if plt is None:
        return "skipped: matplotlib is not installed (pip install 'vecspread[plot]')"
    x_name, others = names[0], names[1:]
    fig, ax = plt.subplots(figsize=(6, 4))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(", ".join(f"{k}={r[k]}" for k in others) or method, []).append(r)
    for label, rs in groups.items():
        rs = sorted(rs, key=lambda r: r[x_name])
        ax.plot([r[x_name] for r in rs], [r["val_recall10"] for r in rs], marker="o", label=label)
    if all(isinstance(r[x_name], (int, float)) and r[x_name] > 0 for r in rows):
        ax.set_xscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel("validation 1-recall@10 (held-out learn vectors)")
    ax.set_title(f"vecspread tune: {method}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
