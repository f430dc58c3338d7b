"""Figures of a ``vecspread.diagnostics.inspect`` report (matplotlib, an optional dependency).

- ``uniformity.png`` — Sablayrolles et al. (ICLR 2019) Figure 3: histograms of the distance from each
  query to its 1st and k-th neighbour, input space and transformed space side by side;
- ``epsilon.png`` — their Figure 7: range search with a radius ε, average results per query (log x) against
  the share of queries whose true nearest neighbour is within ε, one curve per space.

matplotlib is imported only when a figure is drawn (install the ``plot`` extra: ``pip install
'vecspread[plot]'``); without it, :func:`write_figures` raises ConfigError and nothing else is affected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vecspread.errors import ConfigError
from vecspread.io.atomic import atomic_output

SPACES = ("input", "transformed")
COLORS = {"d1": "#1f77b4", "dk": "#d62728", "input": "#7f7f7f", "transformed": "#2ca02c"}
#: in epsilon.png, the radius ε is written where each curve first reaches these recalls
EPSILON_LABEL_RECALLS = (0.2, 0.5, 0.8, 0.95)


def write_figures(report: dict[str, Any], outdir: str | os.PathLike) -> list[str]:
    """Write ``uniformity.png`` and ``epsilon.png`` for an inspect report into ``outdir`` (created if needed).

    Each file is drawn to a temporary name and renamed into place. Returns the paths written.
    """
    plt = _pyplot()
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"figures directory {outdir}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in (("uniformity.png", uniformity_figure), ("epsilon.png", epsilon_figure)):
        fig = draw(report)
        try:
            with atomic_output(out / name) as tmp:
                fig.savefig(tmp, dpi=120, format="png")
        finally:
            plt.close(fig)
        paths.append(str(out / name))
    return paths


def uniformity_figure(report: dict[str, Any]) -> Any:
    """Figure 3: one panel per space with the 1st- and k-th-neighbour distance histograms; returns the Figure."""
    plt = _pyplot()
    k = report["k"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, space in zip(axes, SPACES):
        u = report["uniformity"][space]
        d1, dk = np.asarray(u["d1"], np.float64), np.asarray(u["dk"], np.float64)
        finite = np.concatenate([d1, dk])
        finite = finite[np.isfinite(finite)]
        bins = np.histogram_bin_edges(finite, bins=50)
        ax.hist(d1, bins=bins, alpha=0.55, color=COLORS["d1"], label="1st neighbour")
        ax.hist(dk, bins=bins, alpha=0.55, color=COLORS["dk"], label=f"{_ordinal(k)} neighbour")
        dist = report["distance"] if space == "input" else report.get("transformed_distance", "euclidean")
        dim = report["d_in"] if space == "input" else report["d_out"]
        ax.set_title(f"{space} space ({dim}-d, {_distance_label(dist)})\n"
                     f"P[d1(q) > d{k}(q')] = {100 * u['p']:.1f}%", fontsize=10)
        ax.set_xlabel("distance from query to neighbour")
        ax.set_ylabel("queries")
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle(f"distance to the 1st vs {_ordinal(k)} nearest neighbour — {_caption(report)}", fontsize=11)
    fig.tight_layout()
    return fig


def epsilon_figure(report: dict[str, Any]) -> Any:
    """Figure 7: results per query (log x) vs recall of the true nearest neighbour; returns the Figure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for space in SPACES:
        e = report["epsilon"][space]
        res = np.asarray(e["results_per_query"], np.float64)
        rec = np.asarray(e["recall"], np.float64)
        eps = np.asarray(e["radius"], np.float64)
        keep = res > 0  # a log axis cannot show radii that return nothing
        res, rec, eps = res[keep], rec[keep], eps[keep]
        dim = report["d_in"] if space == "input" else report["d_out"]
        ax.plot(res, rec, "o-", ms=3, color=COLORS[space], label=f"{space} space ({dim}-d)")
        # input-space labels to the right of the curve, transformed-space ones to the left: they never collide
        dx, ha = (8, "left") if space == "input" else (-8, "right")
        for level in EPSILON_LABEL_RECALLS:
            hit = np.flatnonzero(rec >= level)
            if hit.size:
                i = int(hit[0])
                ax.annotate(f"ε={eps[i]:.3g}", (res[i], rec[i]), textcoords="offset points", xytext=(dx, -3),
                            ha=ha, fontsize=8, color=COLORS[space])
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("average number of results per query (range search within ε)")
    ax.set_ylabel("share of queries whose true nearest neighbour is within ε")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False, loc="upper left")
    ax.set_title("range search vs nearest-neighbour search\n" + _caption(report), fontsize=10)
    fig.tight_layout()
    return fig


def require_matplotlib() -> None:
    """Raise ConfigError now unless matplotlib can be imported (lets a command fail before long work)."""
    _pyplot()


def _pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or ConfigError saying how to install it."""
    from vecspread.plotting import pyplot_or_none

    plt = pyplot_or_none()
    if plt is None:
        raise ConfigError("figures need matplotlib: install it with pip install 'vecspread[plot]'")
    return plt


def _caption(report: dict[str, Any]) -> str:
    method = report.get("method") or "model"
    name = Path(str(report.get("dataset", ""))).stem
    return (f"{method} {report['d_in']}→{report['d_out']} on {name} "
            f"({report['nq']} queries, {report['n_sample']} vectors)")


def _distance_label(distance: str) -> str:
    return {"euclidean": "L2", "angular": "1 - cos", "dot": "-inner product"}.get(distance, distance)


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
