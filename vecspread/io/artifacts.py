"""HDF5 artifacts: one file per stage output, each saying what it is and where it came from.

Root attributes on every file vecspread writes:

- ``vecspread_kind``: dataset | groundtruth | model | codes | results
- ``vecspread_version``, ``created_by`` (the command line), ``params`` (JSON)
- ``inputs``: JSON list of ``{"role", "path", "kind", "fingerprint"}``, one per input artifact
- ``fingerprint``: a content hash of every dataset in the file (computed when the file is closed)

Files are written to a partial file beside the target and renamed into place only when complete
(:func:`write_artifact`, through ``vecspread.io.atomic``), so an interrupted run never leaves a
half-written file under the target name.
ann-benchmarks files (``train``/``test``/``neighbors``/``distances``, attr ``distance``) carry no
vecspread attributes and are accepted as datasets as they are; their fingerprint is computed on open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from vecspread import __version__
from vecspread.errors import InputError, LineageError
from vecspread.io.atomic import atomic_output

KINDS = ("dataset", "groundtruth", "model", "codes", "results")
DISTANCES = ("euclidean", "angular", "dot")
DEFAULT_BLOCK_SIZE = 65536


# ---------------------------------------------------------------------------------------------
# Reading


class Closing:
    """``with obj:`` closes it at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Artifact(Closing):
    """An open artifact: the h5py file, its kind and its fingerprint."""

    path: str
    file: h5py.File
    kind: str
    fingerprint: str

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.file.attrs.get("params", "{}"))

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return json.loads(self.file.attrs.get("inputs", "[]"))

    def input(self, role: str) -> dict[str, Any] | None:
        """The provenance record of the input that played ``role`` (e.g. "dataset", "model")."""
        for rec in self.inputs:
            if rec.get("role") == role:
                return rec
        return None

    def close(self) -> None:
        self.file.close()


def open_artifact(path: str | os.PathLike, expect: str | tuple[str, ...], role: str = "input") -> Artifact:
    """Open an HDF5 artifact read-only and check its kind.

    ``expect`` is a kind or a tuple of accepted kinds. A file without ``vecspread_kind`` that has the
    ann-benchmarks layout counts as a dataset. Raises InputError with a one-line message otherwise.
    """
    path = str(path)
    expected = (expect,) if isinstance(expect, str) else tuple(expect)
    f = _open_h5(path, role)
    try:
        kind = _kind_of(f)
        if kind is None and ("train" in f) != ("test" in f):
            have, lack = ("train", "test") if "train" in f else ("test", "train")
            raise InputError(f"{role} {path}: has a '{have}' set but no '{lack}' set "
                             "(a dataset needs both: add it with `vecspread import ... --queries`)")
        if kind not in expected:
            found = kind or "not a vecspread artifact"
            raise InputError(
                f"{role} {path}: expected a {' or '.join(expected)} file, found {found}"
                + _kind_hint(expected)
            )
        fp = f.attrs.get("fingerprint")
        fingerprint = str(fp) if fp is not None else content_fingerprint(f)
        return Artifact(path=path, file=f, kind=kind, fingerprint=fingerprint)
    except BaseException:
        f.close()
        raise


def _open_h5(path: str, role: str) -> h5py.File:
    if path == "":
        raise InputError(f"{role}: empty path")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{role} {path}: no such file")
    if p.is_dir():
        raise InputError(f"{role} {path}: is a directory, expected an HDF5 file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{role} {path}: permission denied (check the file's permissions)")
    if not h5py.is_hdf5(path):
        raise InputError(
            f"{role} {path}: not an HDF5 file (vector files such as .fvecs go through `vecspread import` first)"
        )
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{role} {path}: cannot read HDF5 file, it may be truncated or corrupt ({_short(e)})") from None


def _kind_of(f: h5py.File) -> str | None:
    kind = f.attrs.get("vecspread_kind")
    if kind is not None:
        return str(kind)
    if "train" in f and "test" in f:  # ann-benchmarks layout
        return "dataset"
    return None


def _kind_hint(expected: tuple[str, ...]) -> str:
    hints = {
        "dataset": " (make one with `vecspread import`)",
        "groundtruth": " (make one with `vecspread gt`, or pass a dataset that carries neighbors)",
        "model": " (make one with `vecspread train`)",
        "codes": " (make one with `vecspread encode`)",
        "results": " (make one with `vecspread search`)",
    }
    return hints.get(expected[0], "")


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def content_fingerprint(f: h5py.File, block_rows: int = DEFAULT_BLOCK_SIZE) -> str:
    """A blake2b hash of every dataset in the file (names, dtypes, shapes and bytes), read in blocks.

    The root ``distance`` attribute is hashed too: the same vectors under another metric are another
    dataset (their ground truth differs).
    """
    h = hashlib.blake2b(digest_size=16)
    distance = f.attrs.get("distance")
    if distance is not None:
        h.update(f"distance={distance.decode() if isinstance(distance, bytes) else distance}|".encode())
    _hash_datasets(h, f, block_rows)
    return h.hexdigest()


def components_fingerprint(f: h5py.File, names: tuple[str, ...] = ("transform", "codec")) -> str:
    """A blake2b hash of the model groups (their type/config attributes and weights) present in ``f``.

    A codes file records it for the groups it copies, so that a file whose model was swapped or
    damaged afterwards is refused instead of searched with the wrong transform.
    """
    h = hashlib.blake2b(digest_size=16)
    for name in names:
        if name not in f:
            continue
        group = f[name]
        h.update(f"{name}|{group.attrs.get('type')}|{group.attrs.get('config')}|".encode())
        _hash_datasets(h, group)
    return h.hexdigest()


def _hash_datasets(h: Any, group: h5py.Group, block_rows: int = DEFAULT_BLOCK_SIZE) -> None:
    """Feed every dataset below ``group`` (name, dtype, shape, bytes; sorted by name) to the hash ``h``."""
    names: list[str] = []
    group.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in sorted(names):
        ds = group[name]
        h.update(f"{name}|{ds.dtype.str}|{ds.shape}|".encode())
        if ds.shape == ():
            h.update(np.asarray(ds[()]).tobytes())
            continue
        for start in range(0, ds.shape[0], block_rows):
            h.update(np.ascontiguousarray(ds[start : start + block_rows]).tobytes())


def provenance(art: Artifact, role: str) -> dict[str, Any]:
    """The record that an output stores about one of its inputs."""
    return {"role": role, "path": os.path.abspath(art.path), "kind": art.kind, "fingerprint": art.fingerprint}


def check_lineage(child: Artifact, role: str, parent: Artifact, what: str) -> None:
    """Refuse ``child`` unless its ``role`` input has ``parent``'s fingerprint.

    ``what`` names the relationship for the message, e.g. "codes were encoded from".
    """
    rec = child.input(role)
    if rec is None:
        return  # the child records no such input (e.g. a foreign file): nothing to check
    if rec.get("fingerprint") != parent.fingerprint:
        raise LineageError(
            f"{child.path}: {what} {rec.get('path')}, not {parent.path} (contents differ); "
            f"use the {role} it was made from, or rebuild it from {parent.path}"
        )


# ---------------------------------------------------------------------------------------------
# Writing


def command_line() -> str:
    """The command line of this process, shell-quoted, for ``created_by``."""
    argv = list(sys.argv)
    if argv:
        # `python -m vecspread` shows argv[0] as .../vecspread/__main__.py
        argv[0] = "vecspread" if argv[0].endswith("__main__.py") else os.path.basename(argv[0])
    return " ".join(shlex.quote(a) for a in argv)


def check_output_path(output: str | os.PathLike, inputs: list[str | os.PathLike]) -> Path:
    """Refuse an output whose directory is missing or that would overwrite one of the inputs."""
    out = Path(output)
    if out.name == "":
        raise InputError(f"output {output}: not a file name")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output {output}: directory {parent} does not exist (create it first)")
    if out.is_dir():
        raise InputError(f"output {output}: is a directory; give a file name")
    for inp in inputs:
        if inp is None:
            continue
        try:
            same = out.exists() and Path(inp).exists() and os.path.samefile(out, inp)
        except OSError:
            same = False
        if same or out.resolve() == Path(inp).resolve():
            raise InputError(f"output {output}: is also an input; write to another file")
    return out


@contextlib.contextmanager
def write_artifact(
    output: str | os.PathLike,
    kind: str,
    params: dict[str, Any] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    attrs: dict[str, Any] | None = None,
) -> Iterator[h5py.File]:
    """Create an artifact atomically: yields an h5py.File open on a temporary path.

    On normal exit the provenance attributes and the content fingerprint are written, the file is
    flushed to disk and renamed onto ``output``. On any exception the temporary file is removed and
    ``output`` is left as it was.
    """
    assert kind in KINDS, kind
    with atomic_output(output) as tmp:
        f = h5py.File(tmp, "w")
        try:
            f.attrs["vecspread_kind"] = kind
            f.attrs["vecspread_version"] = __version__
            f.attrs["created_by"] = command_line()
            f.attrs["params"] = json.dumps(params or {}, sort_keys=True, default=json_default)
            f.attrs["inputs"] = json.dumps(inputs or [], sort_keys=True)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            yield f
            f.flush()
            f.attrs["fingerprint"] = content_fingerprint(f)
            f.close()
        except BaseException:
            with contextlib.suppress(Exception):
                f.close()
            raise


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
