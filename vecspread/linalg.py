"""Small numpy linear-algebra helpers shared by the transforms, the networks and the diagnostics."""

from __future__ import annotations

import numpy as np


def random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed (uniformly random) (d, d) float64 orthogonal matrix: the QR factor of a Gaussian
    matrix drawn from ``rng``, its columns' signs fixed by R's diagonal."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))
