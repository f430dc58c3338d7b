"""HDF5 artifacts: one file per stage output, each saying what it is and where it came from.

Root attributes on every file vecspread writes:

- ``vecspread_kind``: dataset | groundtruth | model | codes | results
- ``vecspread_version``, ``created_by`` (the command line), ``params`` (JSON)
- ``inputs``: JSON list of ``{"role", "path", "kind", "fingerprint"}``, one per input artifact
- ``fingerprint``: a content hash of the file (its datasets and the attributes that define it), with
  ``member_fingerprints`` (one digest per dataset) and ``fingerprint_scheme``: ``vecspread.io.fingerprints``

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
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from vecspread import __version__
from vecspread.errors import InputError, LineageError
from vecspread.io import fingerprints, safety
from vecspread.io.atomic import abandon, atomic_output, reserve_space, write_failed
from vecspread.io.paths import readable_file, writable_target
from vecspread.io.preflight import preflight

#: "shard": one row range of a sharded codes set, listed by a codes manifest (``vecspread.io.sharded``)
KINDS = ("dataset", "groundtruth", "model", "codes", "results", "shard")
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
    """An open artifact: the h5py file, its kind and its fingerprint.

    Members are read through :meth:`member` (checked by ``vecspread.io.safety``), :meth:`read` and
    :meth:`blocks` (verified against the recorded member digests as they are read, see
    ``vecspread.io.fingerprints``).
    """

    path: str
    file: h5py.File
    kind: str
    fingerprint: str

    @property
    def params(self) -> dict[str, Any]:
        return self._json_attr("params", {})

    @property
    def inputs(self) -> list[dict[str, Any]]:
        value = self._json_attr("inputs", [])
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    def _json_attr(self, key: str, default: Any) -> Any:
        try:
            value = json.loads(self.file.attrs.get(key, json.dumps(default)))
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: its '{key}' attribute is not valid JSON (file damaged or edited)") from None
        return value if isinstance(value, type(default)) else default

    def input(self, role: str) -> dict[str, Any] | None:
        """The provenance record of the input that played ``role`` (e.g. "dataset", "model")."""
        for rec in self.inputs:
            if rec.get("role") == role:
                return rec
        return None

    def has(self, name: str) -> bool:
        return name in self.file

    def member(self, name: str, *, numeric: bool = True) -> h5py.Dataset:
        """The dataset ``name``, safe to read (``vecspread.io.safety``), with its recorded shape and dtype."""
        with safety.reading(self.path):
            ds = safety.member(self.file, name, self.path, numeric=numeric)
        rec = self._recorded(name)
        if rec is not None and (list(ds.shape) != rec.get("shape") or ds.dtype.str != rec.get("dtype")):
            raise InputError(f"{self.path}: '{name}' is {ds.shape} {ds.dtype.str}, not the {tuple(rec.get('shape') or ())} "
                             f"{rec.get('dtype')} it was written as (file modified or damaged)")
        return ds

    def group(self, name: str) -> h5py.Group:
        """The group ``name`` (a model's ``transform`` or ``codec``), checked (``vecspread.io.safety``)."""
        with safety.reading(self.path):
            return safety.subgroup(self.file, name, self.path)

    def read(self, name: str) -> np.ndarray:
        """The whole of ``name`` (an array with a first axis), verified against its recorded digest."""
        blocks = [b for _, b in self.blocks(name)]
        if blocks:
            return np.concatenate(blocks)
        with safety.reading(self.path):
            return self.member(name)[()]

    def blocks(self, name: str, block_size: int = DEFAULT_BLOCK_SIZE, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(start, raw block) of ``name`` in row order; after the last block, the member's recorded digest
        is checked (InputError when it differs, before the caller can finish its output).

        ``start``/``stop``: only rows [start, stop) (a shard of a sharded run, ``vecspread.cluster``),
        in blocks of ``block_size`` counted from ``start``; the digest covers the whole member, so it is
        checked only when the range is all of it.
        """
        ds = self.member(name)
        n = ds.shape[0]
        stop = n if stop is None else min(int(stop), n)
        rec = self._recorded(name) if start == 0 and stop == n else None
        digest = fingerprints.MemberDigest(name, ds) if rec is not None else None
        for begin in range(int(start), stop, block_size):
            with safety.reading(self.path):
                block = ds[begin : min(begin + block_size, stop)]
            if digest is not None:
                digest.update(block)
            yield begin, block
        if digest is not None and rec is not None and digest.hexdigest() != rec.get("digest"):
            raise InputError(f"{self.path}: '{name}' does not match its recorded fingerprint (file modified or "
                             "damaged after it was written)")

    def _recorded(self, name: str) -> dict[str, Any] | None:
        members = self._members
        rec = members.get(name) if members is not None else None
        return rec if isinstance(rec, dict) else None

    @cached_property
    def _members(self) -> dict[str, Any] | None:
        return fingerprints.recorded_members(self.file)

    def verify(self) -> list[str]:
        """What does not match the recorded fingerprints (:func:`differences`). Reads every member."""
        with safety.reading(self.path):
            return differences(self.file)

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
        with safety.reading(f"{role} {path}"):
            return _checked_artifact(f, path, expected, role)
    except BaseException:
        f.close()
        raise


def _checked_artifact(f: h5py.File, path: str, expected: tuple[str, ...], role: str) -> Artifact:
    """The open file as an Artifact once its kind and its attributes' fingerprints are checked."""
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
    fingerprint = str(fp) if fp is not None else fingerprints.compute(f)
    changed = fingerprints.changed_entries(f)  # cheap: attributes only
    if changed:
        raise InputError(f"{role} {path}: {mismatch([describe_entry(e) for e in changed])} "
                         "(file modified or damaged after it was written)")
    return Artifact(path=path, file=f, kind=kind, fingerprint=fingerprint)


def differences(f: h5py.File) -> list[str]:
    """What in ``f`` does not match its recorded fingerprints: member names, attributes ("attribute 'config'
    of /transform"), links, or "fingerprint" when only the record itself differs; [] when all match or
    nothing is recorded. Reads every member."""
    recorded = f.attrs.get("fingerprint")
    members = fingerprints.recorded_members(f)
    if recorded is None:
        return []
    if members is None:  # written before scheme 2
        return [] if str(recorded) == fingerprints.fingerprint_v1(f) else ["fingerprint"]
    found = {name: fingerprints.describe(f[name]) for name in fingerprints.dataset_names(f)}
    bad = [f"member '{safety.text_of(n)}'" for n in sorted(set(found) | set(members)) if found.get(n) != members.get(n)]
    bad += [describe_entry(e) for e in fingerprints.changed_entries(f)]
    structure = fingerprints.structure_digest(fingerprints.structure_entries(f))
    if not bad and fingerprints.combine(structure, found) != str(recorded):
        bad = ["fingerprint"]  # the record itself was edited
    return bad


def mismatch(differ: list[str]) -> str:
    """``differences`` as words: "member 'codes' does not match its recorded fingerprint"."""
    return f"{', '.join(differ)} {'does' if len(differ) == 1 else 'do'} not match its recorded fingerprint"


def describe_entry(entry: str) -> str:
    """A structure entry (``vecspread.io.fingerprints``) in words: ``transform@config`` -> "attribute
    'config' of /transform"."""
    entry = safety.text_of(entry)
    if entry.endswith("->"):
        return f"link /{entry[:-2]}"
    where, _, key = entry.rpartition("@")
    return f"attribute '{key}' of {'/' if where == '/' else '/' + where}"


def _open_h5(path: str, role: str) -> h5py.File:
    path = readable_file(path, role)
    if not h5py.is_hdf5(path):
        raise InputError(
            f"{role} {path}: not an HDF5 file (vector files such as .fvecs go through `vecspread import` first)"
        )
    preflight(path, role)  # a damaged file that would hang or crash HDF5 is refused here
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"{role} {path}: cannot read HDF5 file, it may be truncated or corrupt ({_short(e)})") from None


def _kind_of(f: h5py.File) -> str | None:
    kind = f.attrs.get("vecspread_kind")
    if kind is not None:
        return safety.text_of(kind, 40)
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
        "shard": " (written by `vecspread encode --cluster ... --shard-files`)",
    }
    return hints.get(expected[0], "")


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


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
        for ds_name in fingerprints.dataset_names(group):
            ds = group[ds_name]
            h.update(f"{ds_name}|{ds.dtype.str}|{ds.shape}|".encode())
            if safety.unsafe_reason(ds) is None:
                h.update(np.ascontiguousarray(ds[()]).tobytes())
    return h.hexdigest()


def provenance(art: Artifact, role: str) -> dict[str, Any]:
    """The record that an output stores about one of its inputs (with its member digests when it records
    them, so that a later mismatch can name what changed)."""
    rec: dict[str, Any] = {"role": role, "path": os.path.abspath(art.path), "kind": art.kind,
                           "fingerprint": art.fingerprint}
    members = art._members
    if members:
        rec["members"] = {name: m.get("digest") for name, m in members.items() if isinstance(m, dict)}
    return rec


def check_lineage(child: Artifact, role: str, parent: Artifact, what: str) -> None:
    """Refuse ``child`` unless its ``role`` input has ``parent``'s fingerprint.

    ``what`` names the relationship for the message, e.g. "codes were encoded from".
    """
    rec = child.input(role)
    if rec is None:
        return  # the child records no such input (e.g. a foreign file): nothing to check
    if rec.get("fingerprint") != parent.fingerprint:
        same_file = rec.get("path") and os.path.abspath(str(rec["path"])) == os.path.abspath(parent.path)
        differ = _changed_members(rec, parent)
        what_changed = f"its {', '.join(differ)} changed" if differ else "its contents differ"
        if same_file:
            raise LineageError(
                f"{child.path}: {what} {parent.path} as it was before ({what_changed} since): rebuild the "
                f"{child.kind} from the file as it is now, or restore the {role}"
            )
        raise LineageError(
            f"{child.path}: {what} {rec.get('path')}, not {parent.path} ({what_changed}); "
            f"use the {role} it was made from, or rebuild it from {parent.path}"
        )


def _changed_members(rec: dict[str, Any], parent: Artifact) -> list[str]:
    """The parent's members whose digests differ from those the child recorded (when both are known)."""
    then, now = rec.get("members"), parent._members
    if not isinstance(then, dict) or not now:
        return []
    names = sorted(set(then) | set(now))
    return [f"'{n}'" for n in names if then.get(n) != (now.get(n) or {}).get("digest")]


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
    """Refuse an output that is not a regular file (or absent), whose directory is missing, or that would
    overwrite one of the inputs."""
    out = writable_target(output)
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
    expected_bytes: int = 0,
) -> Iterator[h5py.File]:
    """Create an artifact atomically: yields an h5py.File open on a temporary path.

    On normal exit the provenance attributes and the content fingerprint are written, the file is
    flushed to disk and renamed onto ``output``. On any exception the temporary file is removed and
    ``output`` is left as it was. ``expected_bytes``: about what the stage will write (its arrays), to
    refuse at once when there is no room for it (:func:`vecspread.io.atomic.reserve_space`).
    """
    assert kind in KINDS, kind
    with atomic_output(output) as tmp:
        reserve_space(tmp, output, expected_bytes)
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
            fingerprints.record(f)
            f.close()
        except BaseException as e:
            if write_failed(e):
                abandon(f)  # HDF5 cannot close it: closing retries the failed writes
            else:
                with contextlib.suppress(Exception):
                    f.close()
            raise


def json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)
