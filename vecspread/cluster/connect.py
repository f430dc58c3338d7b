"""Connecting to the cluster a stage runs on: a running Dask scheduler, or a LocalCluster started here."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterator

from vecspread.errors import ConfigError, InputError
from vecspread.progress import Progress, as_progress
from vecspread.runtime import BLAS_VARIABLES, available_cores

#: ``local:N``: N worker processes on this machine
LOCAL = re.compile(r"local:(\d+)")
#: a Dask scheduler's address: ``tcp://host:port`` (or tls://)
REMOTE = re.compile(r"(tcp|tls)://[^\s/:]+(:\d+)?")
MAX_LOCAL_WORKERS = 256
#: seconds to wait for a scheduler to answer, and for a first worker
CONNECT_TIMEOUT = 10

ADDRESS_HELP = "tcp://HOST:PORT (a running `dask scheduler`) or local:N (N worker processes here)"


def check_address(address: str) -> str:
    """``address`` as given, or ConfigError when it is neither ``local:N`` nor a scheduler address."""
    m = LOCAL.fullmatch(address)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise ConfigError(f"--cluster {address}: local:N takes 1 to {MAX_LOCAL_WORKERS} workers")
        return address
    if REMOTE.fullmatch(address):
        return address
    raise ConfigError(f"--cluster {address!r}: expected {ADDRESS_HELP}")


@dataclass
class Cluster:
    """A connected Dask client: ``workers`` at connection, ``threads_per_task`` for faiss/torch/numba in
    each task (None: the worker decides, from its cores and its task slots), ``dashboard`` its address
    when the scheduler serves one."""

    client: Any
    address: str
    workers: int
    threads_per_task: int | None
    dashboard: str | None

    def describe(self) -> str:
        where = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return f"cluster {self.address}: {where}" + (f", dashboard {self.dashboard}" if self.dashboard else "")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError("--cluster needs Dask: pip install 'vecspread[cluster]' (dask and distributed)") from None
    return distributed


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401  (what the dashboard's pages are drawn with)
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def connect(address: str, progress: Progress | None = None, threads: int | None = None) -> Iterator[Cluster]:
    """The cluster at ``address`` (:func:`check_address`) for the duration of the block; a local one is
    started and stopped here. Says where it runs (and its dashboard) on the progress log.

    ``threads``: faiss/torch/numba threads of each task (default: for ``local:N``, this machine's cores
    over N; on a scheduler's workers, each worker's cores over its task slots). faiss's PQ-family
    encoders (and OPQ training) can settle float near-ties differently with another thread count, so
    the codes are byte-identical to a one-process run that used as many threads as each task.
    """
    progress = as_progress(progress)
    check_address(address)
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        m = LOCAL.fullmatch(address)
        if m:
            n = int(m.group(1))
            threads = threads or max(1, available_cores() // n)
            local = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.CRITICAL, env={v: str(threads) for v in BLAS_VARIABLES}))
            client = stack.enter_context(distributed.Client(local))
        else:
            try:
                client = stack.enter_context(distributed.Client(address, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as e:
                raise InputError(f"--cluster {address}: no Dask scheduler answered within {CONNECT_TIMEOUT} s "
                                 f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__}); start one with "
                                 "`dask scheduler` and its workers with `dask worker ADDRESS`") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            raise InputError(f"--cluster {address}: the scheduler has no worker after {CONNECT_TIMEOUT} s; start one "
                             f"with `dask worker {address}`") from None
        info = client.scheduler_info()
        services = info.get("services", {}) or {}
        dashboard = client.dashboard_link if "dashboard" in services else None
        if dashboard and not _has_bokeh():
            dashboard += " (its pages need bokeh: pip install bokeh)"
        cluster = Cluster(client, address, len(info.get("workers", {})), threads, dashboard)
        progress.log(cluster.describe())
        yield cluster
