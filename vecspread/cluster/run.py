"""Running one task per shard on the cluster: submit, follow the progress, hand each result over as it comes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, Callable, Iterator

from vecspread.cluster.connect import Cluster
from vecspread.cluster.tasks import ShardStats
from vecspread.errors import ClusterError
from vecspread.progress import Progress, as_progress


def run_shards(cluster: Cluster, fn: Callable[..., Any], shards: list[tuple[int, int]], *extra: Any,
               progress: Progress | None = None, label: str = "", shared: Any = None,
               per_shard: list[tuple[Any, ...]] | None = None) -> Iterator[tuple[int, Any]]:
    """``fn(shared, start, stop, *per_shard[i], *extra)`` on the cluster for every shard ``i``; yields
    ``(i, result)`` as each finishes (in any order), advancing ``progress`` by the shard's rows.

    ``shared`` (the job description) and each of ``extra`` (e.g. the queries) are sent to the cluster
    once, not once per task, as tasks that return them (recomputed if the worker holding them dies). A worker that dies mid-task has its task run again elsewhere (Dask's
    ``allowed_failures``); when a shard's workers keep dying, or the scheduler goes away, ClusterError.
    The task's own errors (a changed input, a bad file) come back as they were raised. On any error,
    or Ctrl-C, the shards still running are cancelled.
    """
    import distributed

    progress = as_progress(progress)
    client = cluster.client
    token = uuid.uuid4().hex[:12]
    # the shared inputs go to the cluster once, as tasks of their own (not scattered data): a worker that
    # dies holding them has them recomputed by the scheduler, like any lost result
    scattered = [client.submit(_hold, value, key=f"vecspread-{label}-{token}-input-{j}", pure=False)
                 for j, value in enumerate([shared, *extra])]
    futures = []
    for i, (start, stop) in enumerate(shards):
        args = (*(per_shard[i] if per_shard else ()),)
        futures.append(client.submit(fn, scattered[0], start, stop, *args, *scattered[1:], key=f"vecspread-{label}-{token}-{i}",
                                     pure=False, retries=0))
    index = {f.key: i for i, f in enumerate(futures)}
    progress.start(sum(stop - start for start, stop in shards), label)
    try:
        for future in distributed.as_completed(futures):
            i = index[future.key]
            try:
                result = future.result()
            except distributed.scheduler.KilledWorker:
                tries = _allowed_failures()
                raise ClusterError(f"cluster {cluster.address}: the workers running shard {i} (rows {shards[i][0]} to "
                                   f"{shards[i][1]}) died {tries} time{'s' if tries != 1 else ''} (out of memory? see "
                                   "the worker logs); nothing was written") from None
            except (OSError, distributed.comm.CommClosedError) as e:
                raise ClusterError(f"cluster {cluster.address}: lost the connection to the scheduler ({_short(e)}); "
                                   "nothing was written") from None
            future.release()
            progress.advance(shards[i][1] - shards[i][0])
            yield i, result
    except BaseException:
        client.cancel(futures)
        raise
    progress.finish()


def _hold(value: Any) -> Any:
    """A task whose result is its argument: how the shared inputs of a run live on the cluster."""
    return value


def _allowed_failures() -> int:
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures", 3)) + 1


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:120] if str(e) else type(e).__name__


def summarize(cluster: Cluster, shards: list[tuple[int, int]], stats: list[ShardStats]) -> dict[str, Any]:
    """What a sharded run reports: where it ran, the shards, the busiest worker's task seconds, the peak
    resident memory of each worker process and of this (client) process, in MiB."""
    import resource

    busy: dict[str, float] = defaultdict(float)
    peak: dict[str, int] = defaultdict(int)
    for s in stats:
        busy[s.worker] += s.seconds
        peak[s.worker] = max(peak[s.worker], s.peak_rss)
    return {"address": cluster.address, "workers": cluster.workers, "shards": len(shards),
            "threads_per_task": cluster.threads_per_task,
            "task_seconds": round(sum(s.seconds for s in stats), 3),
            "busiest_worker_seconds": round(max(busy.values(), default=0.0), 3),
            "worker_peak_rss_mib": {w: round(v / 2**20, 1) for w, v in sorted(peak.items())},
            "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
