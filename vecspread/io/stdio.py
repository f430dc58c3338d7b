"""`-` as an artifact path: HDF5 streamed through stdin/stdout via a temporary file.

HDF5 needs a seekable file, so standard input is first copied to a temporary file, and an output
written to `-` goes to a temporary file that is copied to standard output only once it is complete.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import sys
import tempfile
from typing import Iterator

from vecspread.errors import InputError
from vecspread.io.owners import TAG_PATTERN, is_stale, process_tag

STDIO = "-"
_SPOOL_NAME = re.compile(rf"vecspread-std(?:in|out)-(?P<tag>{TAG_PATTERN.pattern})-")
_COPY_BUFFER = 1 << 20


@contextlib.contextmanager
def spooled_stdin() -> Iterator[str]:
    """Copy standard input to a temporary file; yields its path, removed afterwards."""
    if sys.stdin is None or sys.stdin.isatty():
        raise InputError("'-' reads an artifact from standard input, which is a terminal: pipe one in")
    clean_stale_spools()
    fd, path = tempfile.mkstemp(prefix=f"vecspread-stdin-{process_tag()}-", suffix=".h5")
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(sys.stdin.buffer, f, _COPY_BUFFER)
        if os.path.getsize(path) == 0:
            raise InputError("'-': standard input is empty (the stage before it in the pipe failed?)")
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def stdout_artifact() -> Iterator[str]:
    """Yields a temporary path; when the block ends without error, its file is copied to stdout."""
    if sys.stdout.isatty():
        raise InputError("'-o -' writes binary HDF5 to standard output, which is a terminal: pipe it or give a file")
    clean_stale_spools()
    tmpdir = tempfile.mkdtemp(prefix=f"vecspread-stdout-{process_tag()}-")
    path = os.path.join(tmpdir, "artifact.h5")
    try:
        yield path
        sys.stdout.flush()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer, _COPY_BUFFER)
        sys.stdout.buffer.flush()
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def clean_stale_spools() -> None:
    """Remove temporary stdin/stdout files left by vecspread processes that were killed."""
    for p in glob.glob(os.path.join(tempfile.gettempdir(), "vecspread-std*-*-*")):
        m = _SPOOL_NAME.match(os.path.basename(p))
        if m and is_stale(m["tag"]):
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else _remove(p)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
