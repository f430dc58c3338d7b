"""The one way vecspread writes a file: to a partial file beside the target, renamed into place when complete.

A partial file is named ``.NAME.PID.partial`` beside ``NAME``: obviously partial by name, never taken for
the target by ``make``, and removed by the next writer of the same target once the process ``PID`` no
longer runs. On any error (Ctrl-C included) the partial file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path
from typing import Iterator

PARTIAL_SUFFIX = ".partial"


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yields the partial path to write; renames it onto ``target`` when the block ends without error.

    ``fsync``: flush the file to disk before the rename, so that a crash cannot leave a renamed but
    empty target.
    """
    target = Path(target)
    clean_stale_partials(target)
    tmp = partial_path(target)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(target) as tmp:
        tmp.write_text(text)


def partial_path(target: Path) -> Path:
    """Where a file being written to ``target`` lives until it is complete."""
    return target.with_name(f".{target.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def clean_stale_partials(target: Path) -> None:
    """Remove partial files left beside ``target`` by processes that no longer run."""
    for p in glob.glob(str(target.with_name(f".{glob.escape(target.name)}.*{PARTIAL_SUFFIX}"))):
        pid_text = p[: -len(PARTIAL_SUFFIX)].rsplit(".", 1)[-1]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                os.remove(p)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (this one counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
