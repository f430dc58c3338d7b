"""Content fingerprints of artifacts: what defines a file, hashed, and checked when the file is read.

Scheme 2 (files written since the spine renovation, root attribute ``fingerprint_scheme = 2``):

- every dataset gets a *member digest*: blake2b-128 of ``name|dtype|shape|`` and its bytes in row order
  (string and object datasets: their values, length-prefixed; a member whose bytes live outside the
  file is never read: its digest covers ``name|dtype|shape|`` and that fact). The digests, shapes and
  dtypes are stored as the root attribute ``member_fingerprints`` (JSON);
- a *structure digest* covers every attribute of every group and dataset (the models' ``type`` and JSON
  ``config`` among them), the root's ``vecspread_kind`` and ``distance``, and every link that is not a
  hard link (its name and target);
  Each of these *structure entries* (``transform@config``, ``/@distance``, ``x->soft``) also gets a short
  digest, stored as ``attribute_fingerprints`` (JSON), so that a check names the entry that changed;
- the ``fingerprint`` is blake2b-128 over the scheme, the structure digest and the member digests in
  name order. Provenance (``created_by``, ``params``, ``inputs``, timings) is not content.

A fingerprint detects damage and edits by hand or by tools that do not recompute it; it is not a
signature: whoever rewrites the fingerprints along with the content is not detected.

Files without a scheme attribute were written by earlier versions: their ``fingerprint`` covers the
datasets and ``distance`` only (:func:`fingerprint_v1`). Files vecspread did not write (ann-benchmarks)
have no recorded fingerprint; theirs is computed on open.

When checked (``vecspread.io.artifacts``): the structure entries every time a file is opened (they are
small); a member read in full against its digest as it is read (streamed, no second pass); a member read
in part for its recorded shape and dtype; models (small) in full when opened; ``vecspread verify``
checks everything.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import h5py
import numpy as np

from vecspread.io.safety import text_of, unsafe_reason

SCHEME = 2
#: root attributes that record provenance or the fingerprint itself, not content
NOT_CONTENT = {"fingerprint", "fingerprint_scheme", "member_fingerprints", "attribute_fingerprints",
               "components_fingerprint", "created_by", "params", "inputs", "vecspread_version"}
#: the root attributes :func:`record` writes
RECORD_ATTRS = ("fingerprint", "fingerprint_scheme", "member_fingerprints", "attribute_fingerprints")
#: the root attributes that are content
ROOT_CONTENT = ("vecspread_kind", "distance")
BLOCK_ROWS = 65536


def record(f: h5py.File) -> None:
    """Compute and store the scheme-2 fingerprint of a file being written (members, then the whole)."""
    members = {name: describe(f[name]) for name in dataset_names(f)}
    entries = structure_entries(f)
    f.attrs["fingerprint_scheme"] = SCHEME
    f.attrs["member_fingerprints"] = json.dumps(members, sort_keys=True)
    f.attrs["attribute_fingerprints"] = json.dumps(entry_digests(entries), sort_keys=True)
    f.attrs["fingerprint"] = combine(structure_digest(entries), members)


def compute(f: h5py.File) -> str:
    """The scheme-2 fingerprint of an open file, reading every safe dataset."""
    return combine(structure_digest(structure_entries(f)), {name: describe(f[name]) for name in dataset_names(f)})


def of_file(f: h5py.File) -> str:
    """The fingerprint recomputed by the scheme the file was written with: the earlier one for a file that
    records a fingerprint but no scheme, scheme 2 otherwise (files that record none included)."""
    old = "fingerprint" in f.attrs and f.attrs.get("fingerprint_scheme") is None
    return fingerprint_v1(f) if old else compute(f)


def recorded_members(f: h5py.File) -> dict[str, dict[str, Any]] | None:
    """The member digests a scheme-2 file records (None for other files); unreadable JSON is an empty record."""
    return _recorded_json(f, "member_fingerprints")


def recorded_entries(f: h5py.File) -> dict[str, str] | None:
    """The structure-entry digests a scheme-2 file records (None for other files)."""
    return _recorded_json(f, "attribute_fingerprints")


def _recorded_json(f: h5py.File, key: str) -> dict[str, Any] | None:
    if f.attrs.get("fingerprint_scheme") != SCHEME or key not in f.attrs:
        return None
    try:
        value = json.loads(f.attrs[key])
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def dataset_names(f: h5py.Group) -> list[str]:
    """Every dataset reached through hard links, by full name, sorted."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def describe(ds: h5py.Dataset) -> dict[str, Any]:
    """{"digest", "shape", "dtype"} of one dataset."""
    digest = MemberDigest(ds.name.lstrip("/"), ds)
    reason = unsafe_reason(ds)
    if reason is not None:
        digest.h.update(f"unread:{reason}".encode())
    elif ds.dtype.kind in "biuf" and ds.dtype.fields is None:
        if ds.shape == ():
            digest.update(np.asarray(ds[()]))
        else:
            for start in range(0, ds.shape[0], BLOCK_ROWS):
                digest.update(ds[start : start + BLOCK_ROWS])
    else:
        for value in np.asarray(ds[()], dtype=object).ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode()
            digest.h.update(len(data).to_bytes(8, "little") + data)
    return {"digest": digest.hexdigest(), "shape": list(ds.shape), "dtype": ds.dtype.str}


class MemberDigest:
    """A member digest computed as the member is read, block after block in row order."""

    def __init__(self, name: str, ds: h5py.Dataset) -> None:
        self.h = hashlib.blake2b(digest_size=16)
        self.h.update(f"{name}|{ds.dtype.str}|{tuple(ds.shape)}|".encode())

    def update(self, block: np.ndarray) -> None:
        self.h.update(np.ascontiguousarray(block).tobytes())

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def structure_entries(f: h5py.File) -> dict[str, str]:
    """Name -> text of what defines the file besides its datasets (see the module docstring):
    ``/@KEY`` for the root's content attributes, ``NAME@KEY`` for every other attribute, ``NAME->`` for
    a link that is not a hard link."""
    entries = {f"/@{key}": _attr(f.attrs[key]) for key in ROOT_CONTENT if key in f.attrs}

    def visit(name: str, obj: Any) -> None:
        for key in obj.attrs:
            entries[f"{name}@{key}"] = _attr(obj.attrs[key])

    f.visititems(visit)

    def links(name: str, link: Any) -> None:
        if isinstance(link, h5py.SoftLink):
            entries[f"{name}->"] = f"soft:{link.path}"
        elif isinstance(link, h5py.ExternalLink):
            entries[f"{name}->"] = f"external:{link.filename}:{link.path}"

    f.visititems_links(links)
    return entries


def structure_digest(entries: dict[str, str]) -> str:
    """blake2b-128 of the structure entries, in name order."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(entries):
        h.update(f"{name}={entries[name]}|".encode())
    return h.hexdigest()


def entry_digests(entries: dict[str, str]) -> dict[str, str]:
    """A short digest (blake2b-64) of each structure entry, to name the one that changed."""
    return {name: hashlib.blake2b(f"{name}={text}".encode(), digest_size=8).hexdigest() for name, text in entries.items()}


def changed_entries(f: h5py.File) -> list[str]:
    """The structure entries that differ from those recorded (added, removed or changed), sorted."""
    recorded = recorded_entries(f)
    if recorded is None:
        return []
    found = entry_digests(structure_entries(f))
    return sorted(n for n in set(found) | set(recorded) if found.get(n) != recorded.get(n))


def combine(structure: str, members: dict[str, dict[str, Any]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"scheme={SCHEME}|{structure}|".encode())
    for name in sorted(members):
        h.update(f"{name}={members[name]['digest']}|".encode())
    return h.hexdigest()


def fingerprint_v1(f: h5py.File) -> str:
    """The fingerprint of files written before scheme 2: every dataset (names, dtypes, shapes, bytes) and
    the root ``distance`` attribute."""
    h = hashlib.blake2b(digest_size=16)
    distance = f.attrs.get("distance")
    if distance is not None:
        h.update(f"distance={distance.decode() if isinstance(distance, bytes) else distance}|".encode())
    for name in dataset_names(f):
        ds = f[name]
        h.update(f"{name}|{ds.dtype.str}|{ds.shape}|".encode())
        if unsafe_reason(ds) is not None:
            continue
        if ds.shape == ():
            h.update(np.asarray(ds[()]).tobytes())
            continue
        for start in range(0, ds.shape[0], BLOCK_ROWS):
            h.update(np.ascontiguousarray(ds[start : start + BLOCK_ROWS]).tobytes())
    return h.hexdigest()


def _attr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist(), default=str)
    return text_of(value, limit=1 << 62)
