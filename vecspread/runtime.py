"""Thread settings for numpy-free libraries we drive (faiss, torch).

On a small shared machine oversubscribed threads make every step several times slower, so the
default is the number of cores this process may actually run on, not the machine's core count.
"""

from __future__ import annotations

import os
import sys


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_chosen_threads: int | None = None


def set_threads(threads: int | None) -> int:
    """Set faiss (and torch, when already imported) to ``threads`` (default: available cores).

    The choice is remembered so that torch, imported later by a neural transform, gets it too
    (see :func:`configure_torch`).
    """
    global _chosen_threads
    n = available_cores() if threads is None or threads <= 0 else int(threads)
    _chosen_threads = n
    limit_blas_threads(n)
    import faiss

    faiss.omp_set_num_threads(n)
    if "torch" in sys.modules:
        configure_torch(n)
    return n


_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(n: int) -> None:
    """Give numpy's BLAS ``n`` threads: effective only before numpy is first imported (the CLI calls
    this before its heavy imports); a user's own setting of these variables wins."""
    if "numpy" in sys.modules:
        return
    for var in _BLAS_VARIABLES:
        os.environ.setdefault(var, str(n))


def configure_torch(threads: int | None = None) -> None:
    """Set torch's intra-op threads (call after importing torch): ``threads``, else the count chosen
    by :func:`set_threads`, else the available cores."""
    import torch

    n = int(threads) if threads and threads > 0 else (_chosen_threads or available_cores())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
