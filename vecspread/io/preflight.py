"""HDF5 metadata parsed in a throw-away child process first, so that a damaged file cannot hang or crash us.

The HDF5 library trusts the bytes it parses: a flipped bit in an attribute heap or a B-tree can send it
into a loop that never ends or into a segmentation fault, inside C code that Python cannot interrupt.
Before a stage opens an input, :func:`preflight` forks; the child opens the file and walks all of its
metadata (every object, attribute, link, dataset shape, type, layout and chunk index, no vector data)
while the parent waits, up to a time bound. A child that is still busy at the bound, or that dies of a
signal, means a file HDF5 cannot parse: the stage refuses it with one line. A child that finishes (or
raises, which the stage will then report itself) lets the stage open the file as usual.

The fork costs a few milliseconds; on systems without ``fork`` the check is skipped.
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
from typing import Any

from vecspread.errors import InputError

#: the child's time bound: this many seconds, plus one per 100 MB of file (a metadata walk takes milliseconds)
BASE_SECONDS = 10.0
SECONDS_PER_BYTE = 1e-8


def preflight(path: str, role: str) -> None:
    """InputError when HDF5 hangs or crashes parsing the metadata of ``path`` (see the module docstring)."""
    if not hasattr(os, "fork"):
        return
    limit = BASE_SECONDS + SECONDS_PER_BYTE * _size(path)
    done_r, done_w = os.pipe()  # the child's end closes when it exits: the parent wakes at once
    pid = os.fork()
    if pid == 0:  # the child: walk, then leave without running any of the parent's exit handlers
        os.close(done_r)
        code = 0
        try:
            faulthandler.disable()  # a crash here is the verdict, not something to report
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
            walk_metadata(path)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(done_w)
    try:
        status = _wait(pid, done_r, limit)
    finally:
        os.close(done_r)
    if status is None:
        raise InputError(f"{role} {path}: HDF5 did not finish parsing its metadata in {limit:.0f} s: the file "
                         "is damaged")
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise InputError(f"{role} {path}: HDF5 crashes parsing it ({name}): the file is damaged")


def walk_metadata(path: str) -> None:
    """Open ``path`` and touch every piece of its metadata (the child's work)."""
    import h5py

    with h5py.File(path, "r") as f:
        _touch_attrs(f)
        f.visititems_links(lambda name, link: None)

        def visit(name: str, obj: Any) -> None:
            _touch_attrs(obj)
            if isinstance(obj, h5py.Dataset):
                _ = obj.shape, obj.dtype, obj.chunks, obj.is_virtual, obj.external, obj.compression
                obj.id.get_storage_size()
                if obj.chunks is not None and obj.id.get_num_chunks() > 0:
                    obj.id.get_chunk_info(0)

        f.visititems(visit)


def _touch_attrs(obj: Any) -> None:
    for key in obj.attrs:
        obj.attrs[key]


def _wait(pid: int, done: int, limit: float) -> int | None:
    """The child's wait status, or None after killing it at the time bound (or on Ctrl-C, re-raised).
    ``done``: the read end of a pipe whose write end only the child holds."""
    try:
        ready, _, _ = select.select([done], [], [], limit)
        if ready:
            return os.waitpid(pid, 0)[1]
    except BaseException:
        _kill(pid)
        raise
    _kill(pid)
    return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
