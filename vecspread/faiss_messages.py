"""What faiss prints on stderr from C++ (k-means' "WARNING clustering N points to K centroids: please
provide at least ... training points", once per sub-quantizer) caught and summed up in one line.

faiss writes with ``fprintf(stderr, ...)``, below Python: :func:`captured` points file descriptor 2 at a
temporary file for the duration of a call and gives back the lines; :func:`summary` turns 30 identical
warnings into "faiss: 30 warnings like: ...".
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """Inside the block, what is written on file descriptor 2 goes to a list (filled when the block
    ends). Python's own ``sys.stderr`` is flushed first, so nothing of it is lost or reordered."""
    lines: list[str] = []
    fd = 2  # what C's stderr writes to, whatever Python's sys.stderr is
    try:
        os.fstat(fd)
    except OSError:  # no file descriptor 2 at all: nothing to catch
        yield lines
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            # a progress bar redrawn meanwhile (terminal control characters) is not faiss's
            lines.extend(line for line in tmp.read().decode(errors="replace").splitlines()
                         if line.strip() and "\x1b" not in line and "\r" not in line)


def summary(lines: list[str]) -> str | None:
    """One line for what faiss printed, or None when it printed nothing."""
    if not lines:
        return None
    first = lines[0].strip()
    if len(lines) == 1:
        return f"faiss: {first}"
    same = sum(1 for line in lines if line.split(":")[0] == first.split(":")[0])
    return f"faiss: {len(lines)} messages ({same} like: {first})"
