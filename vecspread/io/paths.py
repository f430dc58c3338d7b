"""Paths vecspread reads and writes: regular files only, names it can hand to HDF5.

An input that is a FIFO would block forever, a device would be read without end; an output onto a
device node, FIFO or socket would replace it (as root, ``-o /dev/null`` would turn the system's
``/dev/null`` into an HDF5 file). Both are refused with one line. ``-`` (standard input or output) is
handled by ``vecspread.io.stdio`` before paths get here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vecspread.errors import InputError


def readable_file(path: str | os.PathLike, role: str) -> str:
    """``path`` as a string when it names an existing, readable regular file; InputError otherwise."""
    path = valid_name(path, role)
    if path == "":
        raise InputError(f"{role}: empty path")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{role} {path}: no such file") from None
    except OSError as e:
        raise InputError(f"{role} {path}: cannot be read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{role} {path}: is a directory, expected an HDF5 file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{role} {path}: is {_kind(st.st_mode)}, not a regular file; vecspread reads files only "
                         "(pipe HDF5 through '-' instead)")
    if not os.access(path, os.R_OK):
        raise InputError(f"{role} {path}: permission denied (check the file's permissions)")
    return path


def writable_target(path: str | os.PathLike, role: str = "output") -> Path:
    """``path`` as a Path when a file may be written there: its directory exists and it is absent or a
    regular file (never a directory, device, FIFO or socket)."""
    name = valid_name(path, role)
    out = Path(name)
    if out.name == "":
        raise InputError(f"{role} {name}: not a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{role} {name}: directory {parent} does not exist (create it first)")
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return out
    except OSError as e:
        raise InputError(f"{role} {name}: cannot be written ({e.strerror or e})") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(name)
        except OSError:
            return out  # a dangling symbolic link: the rename replaces the link itself
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{role} {name}: is a directory; give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{role} {name}: is {_kind(st.st_mode)}; vecspread writes regular files only "
                         "(use '-' for standard output)")
    return out


def valid_name(path: str | os.PathLike, role: str) -> str:
    """``path`` as text that encodes to UTF-8 (HDF5 takes file names as UTF-8); InputError otherwise."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise InputError(f"{role} {shown}: the file name is not valid UTF-8; rename the file") from None
    return text


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
