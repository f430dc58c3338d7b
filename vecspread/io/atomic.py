"""The one way vecspread writes a file: to a partial file beside the target, renamed into place when complete.

A partial file is named ``.NAME.TAG.partial`` beside ``NAME``: obviously partial by name, never taken for
the target by ``make``, and removed by the next writer of the same target once the process that ``TAG``
names no longer runs (``TAG`` is ``PID.MACHINE-NAMESPACE-START``, see :mod:`vecspread.io.owners`: a writer
on another machine or in another container is never taken for dead). On any error (Ctrl-C and SIGTERM
included) the partial file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from vecspread.errors import OutputError
from vecspread.io.owners import is_stale, process_tag

PARTIAL_SUFFIX = ".partial"
#: errno values of a write that failed for lack of room or of a working device
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS}
#: HDF5 files whose writes failed: HDF5 cannot close them (closing retries the writes, and the library is
#: left in a state that crashes the process at exit), so they are kept open until the process ends
ABANDONED: list[Any] = []


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yields the partial path to write; renames it onto ``target`` when the block ends without error.

    ``fsync``: flush the file to disk before the rename, so that a crash cannot leave a renamed but
    empty target.
    """
    from vecspread.io.paths import writable_target

    target = writable_target(target)
    clean_stale_partials(target)
    tmp = partial_path(target)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        writable_target(target)  # again, just before the rename: still not a device, FIFO or directory
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if write_failed(e) and not isinstance(e, OutputError):
            raise OutputError(f"{target}: cannot be written ({reason(e)}); nothing was left behind: free some space "
                              "(or raise the file size limit) and run again") from None
        raise


def write_failed(e: BaseException) -> bool:
    """Whether ``e`` says a write failed for lack of room or a broken device (also as HDF5 reports it)."""
    if isinstance(e, OutputError):
        return True
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return True
    text = str(e)
    return isinstance(e, (OSError, RuntimeError)) and ("file write failed" in text or "No space left" in text)


def reason(e: BaseException) -> str:
    """A short name of a write failure."""
    text = str(e)
    for code in sorted(WRITE_ERRNOS):
        if getattr(e, "errno", None) == code or f"errno = {code}," in text:
            return os.strerror(code).lower()
    return text.splitlines()[0][:120] if text else type(e).__name__


def check_free_space(target: str | os.PathLike, nbytes: int) -> None:
    """OutputError now, before any work, when the target's file system has less than ``nbytes`` free."""
    parent = Path(target).parent if str(Path(target).parent) else Path(".")
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        return
    if free < nbytes:
        raise OutputError(f"{target}: needs about {human_bytes(nbytes)} but {parent} has {human_bytes(free)} free; "
                          "free some space or write elsewhere")


def human_bytes(nbytes: float) -> str:
    """``1234567`` → ``'1.2 MB'`` (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} PB"


#: room reserved beyond a write's expected size: HDF5's own metadata, chunk indexes, attributes
RESERVE_MARGIN = 1 << 20


def reserve_space(tmp: Path, target: str | os.PathLike, nbytes: int) -> None:
    """Before HDF5 writes ``tmp``: OutputError now when ``nbytes`` (plus a margin) cannot be written there.

    HDF5 reports failed writes late (when objects are freed) and can crash the process once a write has
    failed, so the likely failures are provoked first, where Python sees them: the file system's free
    space, and the file size limit (``tmp`` is extended, sparsely, to the size; HDF5 then truncates it).
    """
    nbytes = int(nbytes * 1.05) + RESERVE_MARGIN
    check_free_space(target, nbytes)
    try:
        with open(tmp, "wb") as fh:
            fh.truncate(nbytes)
    except OSError as e:
        if write_failed(e):
            raise OutputError(f"{target}: cannot be written ({reason(e)}: it needs about {human_bytes(nbytes)}); "
                              "nothing was left behind: free some space (or raise the file size limit) and run "
                              "again") from None
        raise


def abandon(f: Any) -> None:
    """Keep an HDF5 file whose writes failed open until the process ends (see ``ABANDONED``)."""
    ABANDONED.append(f)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(target) as tmp:
        tmp.write_text(text)


def partial_path(target: Path, tag: str | None = None) -> Path:
    """Where a file being written to ``target`` lives until it is complete (``tag``: this process's)."""
    return target.with_name(f".{target.name}.{tag or process_tag()}{PARTIAL_SUFFIX}")


def clean_stale_partials(target: Path) -> None:
    """Remove the partial files left beside ``target`` by processes of this machine that no longer run."""
    prefix = f".{target.name}."
    for p in glob.glob(str(target.with_name(f"{glob.escape(prefix)}*{PARTIAL_SUFFIX}"))):
        tag = os.path.basename(p)[len(prefix) : -len(PARTIAL_SUFFIX)]
        if is_stale(tag):
            with contextlib.suppress(OSError):
                os.remove(p)
