"""matplotlib for the figures stages write: the file-only backend, an optional import, atomic PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot_or_none() -> Any:
    """matplotlib.pyplot on the Agg backend (never a window, also on headless machines), or None when
    matplotlib is not installed (it is the optional ``vecspread[plot]`` extra)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` as PNG through the atomic writer (no half-written file), then close it."""
    import matplotlib.pyplot as plt

    from vecspread.io.atomic import atomic_output

    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return str(path)
