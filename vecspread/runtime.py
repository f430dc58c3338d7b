"""How a run goes, as opposed to what it computes: threads, device, checkpoints, a time budget.

These are arguments of a run (:class:`RunSettings`, given to ``fit``), never hyper-parameters stored in
a model. Threads are set here and only here: faiss, torch and numpy's BLAS.

On a small shared machine oversubscribed threads make every step several times slower, so the
default is the number of cores this process may actually run on, not the machine's core count.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Iterator

from vecspread.errors import ConfigError
from vecspread.limits import MAX_THREADS
from vecspread.params import Param, ParamSet

#: the run settings a neural method's ``fit`` takes (declared once; the command line offers them)
RUN_PARAMS = ParamSet(
    Param("device", str, "cpu", "Where the network trains: cpu, cuda or auto", choices=("cpu", "cuda", "auto")),
    Param("checkpoint", str, help="Write an HDF5 checkpoint here at every validation"),
    Param("resume", str, help="Continue bit-for-bit from this checkpoint"),
    Param("max_minutes", float, help="Training time budget: training stops at the step that reaches it; the "
          "model the validation rule keeps so far is kept", gt=0),
    panel="Neural training (catalyzer, nphash, wta)",
)


@dataclass(frozen=True)
class RunSettings:
    """``threads`` for torch and faiss (None: as set for the process); ``device`` "cpu", "cuda" or "auto";
    ``checkpoint`` written at every validation; ``resume`` from that file; ``max_minutes`` budget."""

    threads: int | None = None
    device: str = "cpu"
    checkpoint: str | None = None
    resume: str | None = None
    max_minutes: float | None = None


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity / container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_chosen_threads: int | None = None


def checked_threads(threads: int) -> int:
    """``threads`` as an int, or ConfigError past ``limits.MAX_THREADS``."""
    if int(threads) > MAX_THREADS:
        raise ConfigError(f"--threads must be at most {MAX_THREADS}, got {threads}")
    return int(threads)


def set_threads(threads: int | None) -> int:
    """Set faiss (and torch, when imported) to ``threads`` (default: available cores) for the process.

    Called by the command line before numpy is imported, so numpy's BLAS gets the same count. The
    choice is remembered, so torch, imported later by a neural transform, gets it too.
    """
    global _chosen_threads
    n = available_cores() if threads is None or threads <= 0 else checked_threads(threads)
    _chosen_threads = n
    _limit_blas_threads(n)
    _set_faiss_torch(n)
    return n


@contextlib.contextmanager
def threads_within(threads: int | None) -> Iterator[None]:
    """Set torch and faiss to ``threads`` inside the block (None or <= 0: leave them), restore after."""
    import faiss

    if threads is None or threads <= 0:
        yield
        return
    torch = sys.modules.get("torch")
    saved = faiss.omp_get_max_threads(), torch.get_num_threads() if torch is not None else None
    _set_faiss_torch(checked_threads(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(saved[0])
        if saved[1] is not None:
            torch.set_num_threads(saved[1])


def current_threads(threads: int | None = None) -> int:
    """The thread count a run uses: ``threads`` when given, else the process's (the available cores by
    default). Recorded with a trained model: a seeded neural run is bit for bit reproducible only with
    the same thread count (torch's CPU reductions are split per thread)."""
    return int(threads) if threads else (_chosen_threads or available_cores())


def configure_torch() -> None:
    """Give torch, just imported, the thread count chosen for the process (the available cores by default)."""
    import torch

    n = _chosen_threads or available_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _set_faiss_torch(n: int) -> None:
    import faiss

    faiss.omp_set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_blas_threads(n: int) -> None:
    """Give numpy's BLAS ``n`` threads: effective only before numpy is first imported; a user's own
    setting of these variables wins."""
    if "numpy" in sys.modules:
        return
    for var in BLAS_VARIABLES:
        os.environ.setdefault(var, str(n))
