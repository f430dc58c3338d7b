"""What an input file must not do: make vecspread read outside it, or claim more work than it holds.

HDF5 lets a file point elsewhere: a dataset's bytes may be "external storage" (raw data in any other
file), a link may be an external link (an object of another file), a virtual dataset maps regions of
other files, and a soft link may lead to either. vecspread follows none of them: a member it uses is
checked here first, and refused with one line naming the file, the member and the reason. Members a
stage does not use are left alone (they are never read).

The sizes a member claims are checked against what the file really stores before any work is sized
on them: a chunked dataset can claim 10^12 rows and hold none (unwritten chunks read as zeros).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import h5py
import numpy as np

from vecspread.errors import InputError
from vecspread.io.atomic import human_bytes
from vecspread.limits import MAX_DIM, MAX_ROWS

#: a member may claim at most this many times the bytes the file stores for it (compression of real
#: vectors is far below 10x), plus MIN_CLAIM bytes for tiny members
MAX_CLAIM_RATIO = 64
MIN_CLAIM = 1 << 20
#: soft links followed at most this deep (a loop of soft links is refused)
MAX_SOFT_DEPTH = 8


#: what h5py raises on a damaged file (a flipped bit in a B-tree, a truncated heap, ...)
HDF5_ERRORS = (RuntimeError, OSError, ValueError, KeyError, TypeError, IndexError, SystemError)


@contextlib.contextmanager
def reading(path: str) -> Iterator[None]:
    """h5py calls on ``path`` inside the block: its errors on a damaged file become one InputError."""
    try:
        yield
    except InputError:
        raise
    except HDF5_ERRORS as e:
        text = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise InputError(f"{path}: cannot be read, the file is damaged ({text})") from None


def text_of(value: Any, limit: int = 200) -> str:
    """An attribute value as printable text: bytes decoded with replacement, characters that cannot be
    encoded (lone surrogates from damaged bytes) escaped, at most ``limit`` characters."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")[:limit]


def subgroup(group: h5py.Group, name: str, path: str) -> h5py.Group:
    """The group ``name`` of ``group``, reached without leaving the file, with everything below it checked
    (:func:`check_group`)."""
    obj = _follow(group, name, path)
    if not isinstance(obj, h5py.Group):
        raise InputError(f"{path}: '{name}' is not a group")
    check_group(obj, path)
    return obj


def member(group: h5py.Group, name: str, path: str, *, numeric: bool = True) -> h5py.Dataset:
    """The dataset ``name`` of ``group`` when it is safe to read; InputError otherwise.

    Safe: reached through hard links (or soft links to such) inside this file, its bytes stored in this
    file (no external storage, not virtual), numbers when ``numeric``, and no bigger than what the file
    stores for it (see the module docstring).
    """
    obj = _follow(group, name, path)
    if not isinstance(obj, h5py.Dataset):
        raise InputError(f"{path}: '{name}' is a group, not a dataset")
    check_dataset(obj, path, numeric=numeric)
    return obj


def check_dataset(ds: h5py.Dataset, path: str, *, numeric: bool = True) -> None:
    """Refuse a dataset whose bytes live outside the file, that is not numeric (when asked), or whose
    claimed size is not backed by the file."""
    name = text_of(ds.name.lstrip("/"))
    if ds.is_virtual:
        raise InputError(f"{path}: '{name}' is a virtual dataset (its data live in other files); vecspread reads "
                         "only the files it is given: store the data in this file")
    if ds.external:
        others = ", ".join(sorted({str(e[0]) for e in ds.external}))
        raise InputError(f"{path}: '{name}' keeps its bytes in another file ({others}: HDF5 external storage); "
                         "vecspread reads only the files it is given: store the data in this file")
    if numeric and (ds.dtype.kind not in "biuf" or ds.dtype.fields is not None):
        raise InputError(f"{path}: '{name}' has dtype {ds.dtype}, expected numbers")
    claimed, stored = _claim(ds)
    if claimed > MAX_CLAIM_RATIO * stored + MIN_CLAIM:
        raise InputError(f"{path}: '{name}' claims {ds.shape} ({human_bytes(claimed)}) but the file stores "
                         f"{human_bytes(stored)} of it: the file is damaged or not what it says")


def _claim(ds: h5py.Dataset) -> tuple[int, int]:
    """(bytes the dataset's shape claims, bytes the file stores for it)."""
    claimed = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize if ds.shape else ds.dtype.itemsize
    return claimed, int(ds.id.get_storage_size())


def check_matrix(ds: h5py.Dataset, path: str) -> tuple[int, int]:
    """(rows, dim) of a 2-D numeric dataset within the stated limits; InputError otherwise."""
    name = text_of(ds.name.lstrip("/"))
    if ds.ndim != 2:
        raise InputError(f"{path}: '{name}' must be a 2-D array, found shape {ds.shape}")
    n, d = (int(v) for v in ds.shape)
    if n > MAX_ROWS or d > MAX_DIM:
        raise InputError(f"{path}: '{name}' has shape {ds.shape}; vecspread takes at most {MAX_ROWS} rows of at most "
                         f"{MAX_DIM} dimensions")
    return n, d


def check_group(group: h5py.Group, path: str) -> None:
    """Every link below ``group`` stays in the file and every dataset below it is safe to read (numeric)."""
    problems: list[str] = []

    def visit(name: str, link: Any) -> None:
        if isinstance(link, h5py.ExternalLink):
            problems.append(text_of(f"'{group.name.strip('/')}/{name}' is an external link to {link.filename}:{link.path}"))
        elif isinstance(link, h5py.SoftLink):
            problems.append(text_of(f"'{group.name.strip('/')}/{name}' is a soft link (to {link.path})"))

    group.visititems_links(visit)
    if problems:
        raise InputError(f"{path}: {problems[0]}; vecspread reads only what the file itself holds")
    group.visititems(lambda name, obj: check_dataset(obj, path, numeric=False) if isinstance(obj, h5py.Dataset) else None)


def unsafe_reason(ds: h5py.Dataset) -> str | None:
    """Why a dataset must not be read (for the fingerprint, which never reads such members), or None."""
    if ds.is_virtual:
        return "virtual"
    if ds.external:
        return "external"
    claimed, stored = _claim(ds)
    if claimed > MAX_CLAIM_RATIO * stored + MIN_CLAIM:
        return "claims more than the file stores"
    return None


def _follow(group: h5py.Group, name: str, path: str) -> Any:
    """The object ``name`` names in ``group``, walked one path component at a time so that no external
    link is crossed; soft links are followed when they lead inside the file."""
    node: Any = group
    parts = [p for p in name.split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        try:
            link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        except (KeyError, ValueError, RuntimeError, OSError):
            link = None
        if link is None:
            raise InputError(f"{path}: has no '{name}'" + (" (a soft link leads nowhere)" if hops else ""))
        if isinstance(link, h5py.ExternalLink):
            raise InputError(f"{path}: '{name}' leads to an external link ({link.filename}:{link.path}); vecspread reads "
                             "only the files it is given")
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > MAX_SOFT_DEPTH:
                raise InputError(f"{path}: '{name}' is a loop of soft links")
            target = [p for p in link.path.split("/") if p]
            node = node.file if link.path.startswith("/") else node
            parts = target + parts
            continue
        try:
            node = node[part]
        except (KeyError, ValueError, RuntimeError, OSError) as e:
            raise InputError(f"{path}: '{name}' cannot be read ({str(e).splitlines()[0][:120]})") from None
    return node
