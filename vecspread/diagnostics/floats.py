"""JSON-able numbers for the diagnostics' reports."""

from __future__ import annotations

import numpy as np


def floats(a: np.ndarray) -> list[float]:
    """A JSON-able list of Python floats; float32 values are written with the 8 digits they carry."""
    a = np.asarray(a).ravel()
    if a.dtype == np.float32:
        return [float(f"{v:.8g}") for v in a.tolist()]
    return a.astype(np.float64).tolist()
