"""Sharded codes: a codes manifest and the shard files it lists, read as one codes artifact.

``vecspread encode --cluster ... --shard-files`` writes the codes of each database row range to its own
*shard* file (kind ``shard``: ``/codes`` (rows, code_size) uint8, whose attributes ``start``, ``stop`` and
``components`` say which rows they are and which model groups encoded them) and then, once every shard is
complete, the *manifest*: a codes artifact with the model groups (``/transform``, ``/codec``) and a
``/shards`` group instead of ``/codes``. Its attribute ``table`` (JSON) lists every shard: ``file`` (a
plain file name in the manifest's directory: a manifest never points elsewhere), ``start``, ``stop`` and
``fingerprint``; ``n`` and ``code_size`` give the whole. The table is content: the manifest's
fingerprint covers it.

Opened (:func:`open_manifest`, through ``vecspread.models.open_codes``), every shard is checked at once:
present, of kind ``shard``, with the recorded fingerprint, rows and model groups; each is verified
against its member digest as it is read. A lost shard or a manifest that does not match its shards is
an InputError (one line, exit 2). The manifest is written last, so a run that stops before the end
leaves shard files but no manifest: nothing partial looks whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from vecspread.errors import InputError
from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, Artifact, open_artifact

#: the manifest's group that replaces ``/codes``
SHARDS_GROUP = "shards"


@dataclass(frozen=True)
class ShardRef:
    """One shard of a manifest: rows [start, stop) of the codes, in ``file`` beside the manifest."""

    file: str
    start: int
    stop: int
    fingerprint: str

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def as_record(self) -> dict[str, Any]:
        return {"file": self.file, "start": self.start, "stop": self.stop, "fingerprint": self.fingerprint}


def shard_file_name(manifest: str | os.PathLike, index: int, count: int) -> str:
    """``db.codes.h5`` -> ``db.codes.shard-00003-of-00008.h5`` (a plain name, in the manifest's directory)."""
    base = os.path.basename(os.fspath(manifest))
    stem = base[:-3] if base.endswith(".h5") else base
    return f"{stem}.shard-{index:05d}-of-{count:05d}.h5"


def write_shard_table(f: Any, shards: list[ShardRef], code_size: int) -> None:
    """The manifest's ``/shards`` group, in an artifact being written (``write_artifact``)."""
    check_table(shards, f.filename)
    group = f.create_group(SHARDS_GROUP)
    group.attrs["table"] = json.dumps([s.as_record() for s in shards], sort_keys=True)
    group.attrs["n"] = int(shards[-1].stop if shards else 0)
    group.attrs["code_size"] = int(code_size)


def check_table(shards: list[ShardRef], where: str) -> None:
    """Refuse a table whose rows do not follow each other from 0, or whose files are not plain names."""
    expected = 0
    for s in shards:
        if not _plain_name(s.file):
            raise InputError(f"codes manifest {where}: shard file {s.file!r} is not a plain file name in the manifest's "
                             "directory (a manifest never points elsewhere)")
        if s.start != expected or s.stop <= s.start:
            raise InputError(f"codes manifest {where}: shard {s.file} holds rows [{s.start}, {s.stop}), expected rows "
                             f"from {expected} (table damaged or edited)")
        expected = s.stop


def _plain_name(name: str) -> bool:
    return bool(name) and name == os.path.basename(name) and "\\" not in name and not name.startswith(".") \
        and name not in (".", "..")


@dataclass
class RowRange:
    """Rows [start, stop) of the ``/codes`` of a codes artifact (or manifest), as a codes source for a
    :class:`vecspread.searcher.Searcher`: ``member("codes").shape`` and ``blocks("codes", bs)``, ids
    counted from ``start``."""

    art: Artifact
    start: int
    stop: int

    def member(self, name: str) -> Any:
        full = self.art.member(name)
        return _Shape((self.stop - self.start, int(full.shape[1])))

    def blocks(self, name: str, block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[tuple[int, np.ndarray]]:
        for s, block in self.art.blocks(name, block_size, self.start, self.stop):
            yield s - self.start, block


@dataclass(frozen=True)
class _Shape:
    shape: tuple[int, int]


@dataclass
class ShardedMember:
    """``/codes`` of a manifest as one array: ``shape``, ``dtype``, ``ndim``, and reads by slice or by sorted
    row ids (``codes[a:b]``, ``codes[ids]``) that go to the shards holding them."""

    owner: "ShardedCodes"
    shape: tuple[int, int]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.uint8))

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                return self[np.arange(start, stop, step)]
            parts = [b for _, b in self.owner.blocks("codes", max(1, stop - start), start, stop)]
            return np.concatenate(parts) if parts else np.zeros((0, self.shape[1]), np.uint8)
        ids = np.asarray(key, np.int64)
        if ids.ndim != 1:
            raise TypeError("sharded codes are read by slice or by a 1-d array of row ids")
        out = np.empty((len(ids), self.shape[1]), np.uint8)
        stops = np.array([s.stop for s in self.owner.shards], np.int64)
        which = np.searchsorted(stops, ids, side="right")
        for i in np.unique(which):
            sel = np.flatnonzero(which == i)
            ref = self.owner.shards[int(i)]
            with self.owner.open_shard(ref) as shard:
                local = ids[sel] - ref.start
                order = np.argsort(local, kind="stable")
                out[sel[order]] = shard.member("codes")[np.sort(local)]
        return out


@dataclass
class ShardedCodes(Artifact):
    """An open codes manifest: its own file (model groups, shard table) and its shards, read as one
    ``/codes`` (n, code_size) uint8 by :meth:`member`, :meth:`blocks` and :meth:`read`."""

    shards: list[ShardRef] = field(default_factory=list)
    code_size: int = 0

    @property
    def n(self) -> int:
        return self.shards[-1].stop if self.shards else 0

    def has(self, name: str) -> bool:
        return name == "codes" or super().has(name)

    def member(self, name: str, *, numeric: bool = True) -> Any:
        if name == "codes":
            return ShardedMember(self, (self.n, self.code_size))
        return super().member(name, numeric=numeric)

    def blocks(self, name: str, block_size: int = DEFAULT_BLOCK_SIZE, start: int = 0,
               stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(global start, block) of the codes in row order, shard after shard; a shard read in full is
        verified against its digest. Blocks do not cross shard boundaries."""
        if name != "codes":
            yield from super().blocks(name, block_size, start, stop)
            return
        stop = self.n if stop is None else min(int(stop), self.n)
        for ref in self.shards:
            lo, hi = max(start, ref.start), min(stop, ref.stop)
            if lo >= hi:
                continue
            with self.open_shard(ref) as shard:
                for s, block in shard.blocks("codes", block_size, lo - ref.start, hi - ref.start):
                    yield ref.start + s, block

    def read(self, name: str) -> np.ndarray:
        if name != "codes":
            return super().read(name)
        parts = [b for _, b in self.blocks("codes")]
        return np.concatenate(parts) if parts else np.zeros((0, self.code_size), np.uint8)

    def shard_path(self, ref: ShardRef) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), ref.file)

    def open_shard(self, ref: ShardRef) -> Artifact:
        """The shard file of ``ref``, checked against the manifest (InputError when it does not match)."""
        return open_shard(self.shard_path(ref), ref, self.code_size, self.components, self.path)

    @property
    def components(self) -> str:
        return str(self.file.attrs.get("components_fingerprint", ""))

    def verify(self) -> list[str]:
        """What does not match, in the manifest and in every shard (reads every shard in full)."""
        differ = super().verify()
        for ref in self.shards:
            with self.open_shard(ref) as shard:
                differ += [f"shard {ref.file}: {d}" for d in shard.verify()]
        return differ


def is_manifest(art: Artifact) -> bool:
    """Whether a codes artifact is a manifest (``/shards`` instead of ``/codes``)."""
    return SHARDS_GROUP in art.file and "codes" not in art.file


def open_manifest(art: Artifact, *, check_shards: bool = True) -> ShardedCodes:
    """A codes artifact that is a manifest, with every shard checked (present, kind, fingerprint, rows,
    model); ``check_shards`` False leaves each to be checked when it is opened (a cluster task reads one)."""
    group = art.group(SHARDS_GROUP)
    try:
        records = json.loads(group.attrs.get("table", "[]"))
        shards = [ShardRef(str(r["file"]), int(r["start"]), int(r["stop"]), str(r["fingerprint"])) for r in records]
        code_size = int(group.attrs.get("code_size", 0))
        n = int(group.attrs.get("n", 0))
    except (TypeError, ValueError, KeyError):
        raise InputError(f"codes manifest {art.path}: its shard table is not readable (file damaged or edited)") from None
    check_table(shards, art.path)
    if not shards or shards[-1].stop != n or code_size < 1:
        raise InputError(f"codes manifest {art.path}: its shard table does not cover its {n} rows (file damaged or edited)")
    sharded = ShardedCodes(path=art.path, file=art.file, kind=art.kind, fingerprint=art.fingerprint, shards=shards,
                           code_size=code_size)
    if check_shards:
        for ref in shards:
            sharded.open_shard(ref).close()
    return sharded


def open_shard(path: str, ref: ShardRef, code_size: int, components: str, manifest: str) -> Artifact:
    """A shard file, refused (InputError) unless it is the one ``ref`` in ``manifest`` records."""
    where = f"codes manifest {manifest}: shard {ref.file}"
    if not os.path.exists(path):
        raise InputError(f"{where} is missing (lost or moved; the manifest needs every shard beside it): encode again")
    shard = open_artifact(path, "shard", role="shard")
    try:
        if shard.fingerprint != ref.fingerprint:
            raise InputError(f"{where} is not the shard the manifest was written with (its fingerprint differs: "
                             "replaced, or written by another run); encode again")
        if not shard.has("codes"):
            raise InputError(f"{where} has no /codes (file damaged?)")
        codes = shard.member("codes")
        attrs = codes.attrs
        if codes.ndim != 2 or codes.shape != (ref.rows, code_size) or codes.dtype != np.uint8 \
                or int(attrs.get("start", -1)) != ref.start or int(attrs.get("stop", -1)) != ref.stop:
            raise InputError(f"{where} holds {codes.shape} {codes.dtype} codes of rows [{attrs.get('start')}, "
                             f"{attrs.get('stop')}), not the ({ref.rows}, {code_size}) uint8 of rows [{ref.start}, "
                             f"{ref.stop}) the manifest lists")
        if str(attrs.get("components", "")) != components:
            raise InputError(f"{where} was encoded with other model groups than the manifest's; encode again")
        return shard
    except BaseException:
        shard.close()
        raise
