"""HDF5 artifacts: one file per stage output, each saying what it is and where it came from.

Root attributes on every file vecspread writes:

- ``vecspread_kind``: dataset | groundtruth | model | codes | results
- ``vecspread_version``, ``created_by`` (the command line), ``params`` (JSON)
- ``inputs``: JSON list of ``{"role", "path", "kind", "fingerprint"}``, one per input artifact
- ``fingerprint``: a content hash of every dataset in the file (computed when the file is closed)

Files are written to a temporary name beside the target and renamed into place only when complete
(:func:`write_artifact`), so an interrupted run never leaves a half-written file under the target name.
ann-benchmarks files (``train``/``test``/``neighbors``/``distances``, attr ``distance``) carry no
vecspread attributes and are accepted as datasets as they are; their fingerprint is computed on open.
"""

from __future__ import annotations

import contextlib
import glob
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

KINDS = ("dataset", "groundtruth", "model", "codes", "results")
DISTANCES = ("euclidean", "angular", "dot")
PARTIAL_SUFFIX = ".partial"
DEFAULT_BLOCK_SIZE = 65536


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class Artifact:
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

    def __enter__(self) -> "Artifact":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in sorted(names):
        ds = f[name]
        h.update(f"{name}|{ds.dtype.str}|{ds.shape}|".encode())
        if ds.shape == () or ds.size == 0:
            if ds.shape == ():
                h.update(np.asarray(ds[()]).tobytes())
            continue
        for start in range(0, ds.shape[0], block_rows):
            h.update(np.ascontiguousarray(ds[start : start + block_rows]).tobytes())
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
        datasets: list[str] = []
        group.visititems(lambda n, obj: datasets.append(n) if isinstance(obj, h5py.Dataset) else None)
        for ds_name in sorted(datasets):
            ds = group[ds_name]
            h.update(f"{ds_name}|{ds.dtype.str}|{ds.shape}|".encode())
            h.update(np.ascontiguousarray(ds[()]).tobytes())
    return h.hexdigest()


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
# Datasets


class Dataset:
    """A dataset artifact (ann-benchmarks layout plus optional ``learn``), read in float32 blocks.

    ``train`` is the database (n, d), ``test`` the queries (nq, d), ``learn`` optional training
    vectors, ``neighbors``/``distances`` optional ground truth. Stored dtypes may be uint8 or float32.
    """

    def __init__(self, path: str | os.PathLike, role: str = "dataset"):
        self.art = open_artifact(path, "dataset", role=role)
        self.path = self.art.path
        f = self.art.file
        try:
            for name in ("train", "test"):
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise InputError(f"{role} {self.path}: has no '{name}' set (a dataset needs train and test)")
            d = self._check_matrix("train")
            for name in ("test", "learn"):
                if name in f and self._check_matrix(name) != d:
                    raise InputError(
                        f"{role} {self.path}: '{name}' has dimension {f[name].shape[1]} but train has {d}"
                    )
            distance = f.attrs.get("distance", "euclidean")
            self.distance = distance.decode() if isinstance(distance, bytes) else str(distance)
            if self.distance not in DISTANCES:
                raise InputError(
                    f"{role} {self.path}: distance '{self.distance}' is not supported (use one of {', '.join(DISTANCES)})"
                )
        except BaseException:
            self.art.close()
            raise
        self.d = d

    def _check_matrix(self, name: str) -> int:
        ds = self.art.file[name]
        if ds.ndim != 2:
            raise InputError(f"{self.path}: '{name}' must be a 2-D array, found shape {ds.shape}")
        if ds.shape[0] == 0:
            raise InputError(f"{self.path}: '{name}' is empty (0 vectors)")
        if ds.shape[1] == 0:
            raise InputError(f"{self.path}: '{name}' has dimension 0")
        if not (np.issubdtype(ds.dtype, np.floating) or np.issubdtype(ds.dtype, np.integer)):
            raise InputError(f"{self.path}: '{name}' has dtype {ds.dtype}, expected numbers")
        return int(ds.shape[1])

    @property
    def fingerprint(self) -> str:
        return self.art.fingerprint

    @property
    def file(self) -> h5py.File:
        return self.art.file

    def has(self, name: str) -> bool:
        return name in self.art.file

    def size(self, name: str) -> int:
        return int(self.art.file[name].shape[0])

    def blocks(self, name: str, block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, (bs, d) float32) blocks of set ``name``; refuses NaN/inf values."""
        ds = self.art.file[name]
        for start in range(0, ds.shape[0], block_size):
            yield start, self._as_float(name, start, ds[start : start + block_size])

    def read(self, name: str, limit: int | None = None) -> np.ndarray:
        """The whole set ``name`` (or its first ``limit`` rows) as (n, d) float32."""
        ds = self.art.file[name]
        n = ds.shape[0] if limit is None else min(limit, ds.shape[0])
        return self._as_float(name, 0, ds[:n])

    def read_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (any order, repeats allowed) of set ``name`` as (len(ids), d) float32."""
        ids = np.asarray(ids, dtype=np.int64)
        uniq, inverse = np.unique(ids, return_inverse=True)
        rows = self.art.file[name][uniq] if len(uniq) else np.zeros((0, self.d))
        return self._as_float(name, 0, rows)[inverse]

    def _as_float(self, name: str, start: int, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if np.issubdtype(self.art.file[name].dtype, np.floating):
            bad = ~np.isfinite(x).all(axis=1)
            if bad.any():
                row = start + int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{self.path}: '{name}' row {row} contains NaN or inf ({int(bad.sum())} such rows in this block); "
                    "clean the vectors before import"
                )
        return x

    def training_set(self, limit: int | None, seed: int = 0) -> tuple[np.ndarray, str]:
        """Vectors to fit a model on, (n, d) float32, and a note on where they came from.

        Uses ``learn`` when present; otherwise a random sample of ``train`` (and says so).
        """
        if self.has("learn"):
            n = self.size("learn")
            if limit is None or limit >= n:
                return self.read("learn"), f"learn set ({n} vectors)"
            ids = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
            return self.read_rows("learn", ids), f"{limit} random vectors of the learn set ({n})"
        n = self.size("train")
        if limit is None or limit >= n:
            return self.read("train"), f"no learn set: fitting on the whole database ({n} vectors)"
        ids = np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
        return (
            self.read_rows("train", ids),
            f"no learn set: fitting on {limit} random database vectors of {n}",
        )

    def close(self) -> None:
        self.art.close()

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def partial_path(target: Path) -> Path:
    """Where a file being written to ``target`` lives until complete (obviously partial by name)."""
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
    target = Path(output)
    clean_stale_partials(target)
    tmp = partial_path(target)
    f = h5py.File(tmp, "w")
    try:
        f.attrs["vecspread_kind"] = kind
        f.attrs["vecspread_version"] = __version__
        f.attrs["created_by"] = command_line()
        f.attrs["params"] = json.dumps(params or {}, sort_keys=True, default=_json_default)
        f.attrs["inputs"] = json.dumps(inputs or [], sort_keys=True)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        yield f
        f.flush()
        f.attrs["fingerprint"] = content_fingerprint(f)
        f.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


# ---------------------------------------------------------------------------------------------
# Model groups: a transform and (optionally) a codec stored as JSON config + numeric datasets


def write_component(group: h5py.Group, type_name: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Store a transform or codec: attrs ``type`` and JSON ``config``, one dataset per array."""
    group.attrs["type"] = type_name
    group.attrs["config"] = json.dumps(config, sort_keys=True, default=_json_default)
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"refusing to store non-numeric array {name!r} of dtype {arr.dtype}")
        group.create_dataset(name, data=arr)


def read_component(group: h5py.Group, path: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Load what :func:`write_component` stored, refusing anything but plain numeric datasets.

    Nothing from the file is ever unpickled or executed: object, opaque and string datasets are refused.
    """
    try:
        type_name = str(group.attrs["type"])
        config = json.loads(group.attrs["config"])
    except (KeyError, ValueError) as e:
        raise InputError(f"{path}: /{group.name.strip('/')} has no valid type/config attributes ({_short(e)})") from None
    arrays: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            if obj.dtype.kind not in "biuf":
                raise InputError(
                    f"{path}: {obj.name} has dtype {obj.dtype}; only numeric weights are accepted "
                    "(vecspread never loads pickled or opaque objects)"
                )
            arrays[name] = obj[()]

    group.visititems(visit)
    return type_name, config, arrays
