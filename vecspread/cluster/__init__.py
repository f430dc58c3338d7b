"""Stages on a Dask cluster: ``gt``, ``encode`` and ``search`` split by database row ranges.

``--cluster ADDRESS`` is ``tcp://HOST:PORT`` (a running ``dask scheduler``) or ``local:N`` (a
``distributed.LocalCluster`` of N worker processes on this machine) (:mod:`.connect`). The client plans
the row ranges (:mod:`.plan`), submits one task per range (:mod:`.run`) and merges what comes back;
each task (:mod:`.tasks`) opens the input files itself, by path, and reads only its own rows: no vector
passes through the scheduler or the client. What comes back is small: a shard's top-k lists (gt,
search) or its shard file's name and fingerprint (encode). Results are identical to one process: the
row ranges follow the one-process blocks, and top-k lists merge by (distance, id) as the scan loop
does.

Dask is an optional dependency: ``pip install 'vecspread[cluster]'``.
"""

from vecspread.cluster.connect import Cluster, check_address, connect

__all__ = ["Cluster", "check_address", "connect"]
