"""The ``verify`` stage: every member and attribute of each file against the fingerprints it records.

Stages check what they read as they read it (``vecspread.io.fingerprints``); ``verify`` checks all of a
file at once, for any kind vecspread writes (dataset, groundtruth, model, codes, results, checkpoint),
and also that nothing in it points outside it (``vecspread.io.safety``). A codes manifest is checked with
its shards (each against the manifest, and in full).
"""

from __future__ import annotations

from typing import Any

from vecspread.errors import InputError
from vecspread.io.artifacts import _kind_of, _open_h5, differences
from vecspread.io.safety import HDF5_ERRORS, check_group, text_of
from vecspread.progress import as_progress

#: a file's verdict
OK, FAILED, UNVERIFIED = "ok", "failed", "unverified"


def verify_files(paths: list[str], *, progress: Any = None) -> list[dict[str, Any]]:
    """One record per path: ``{"path", "kind", "status", "problems"}``; ``status`` is "ok" (everything
    matches), "failed" (what differs, or why the file cannot be read, is in ``problems``) or
    "unverified" (a readable file that records no fingerprint, e.g. an ann-benchmarks download)."""
    progress = as_progress(progress)
    progress.start(len(paths), "verify")
    records = []
    for path in paths:
        records.append(verify_file(path))
        progress.advance(1)
    progress.finish()
    return records


def verify_file(path: str) -> dict[str, Any]:
    """:func:`verify_files` for one path."""
    record: dict[str, Any] = {"path": path, "kind": None, "status": FAILED, "problems": []}
    try:
        with _open_h5(path, "file") as f:
            record["kind"] = _kind_of(f)
            check_group(f, path)
            if "fingerprint" not in f.attrs:
                record.update(status=UNVERIFIED, problems=["no fingerprint recorded (not written by vecspread)"])
                return record
            differ = differences(f)
    except InputError as e:
        record["problems"] = [text_of(_without_path(str(e), path), 400)]
        return record
    except HDF5_ERRORS as e:  # h5py on a damaged file
        record["problems"] = [f"cannot be read ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})"]
        return record
    record["problems"] = [text_of(f"{d} does not match its recorded fingerprint") for d in differ]
    if record["kind"] == "codes" and not differ:
        record["problems"] += _shard_problems(path)
    record["status"] = FAILED if record["problems"] else OK
    return record


def _shard_problems(path: str) -> list[str]:
    """A codes manifest's shards (``vecspread.io.sharded``), each checked against the manifest and in full."""
    from vecspread.io.artifacts import open_artifact
    from vecspread.io.sharded import is_manifest, open_manifest

    problems: list[str] = []
    with open_artifact(path, "codes") as art:
        if not is_manifest(art):
            return problems
        try:
            manifest = open_manifest(art, check_shards=False)
        except InputError as e:
            return [text_of(_without_path(str(e), path), 400)]
        for ref in manifest.shards:
            try:
                with manifest.open_shard(ref) as shard:
                    problems += [text_of(f"shard {ref.file}: {d} does not match its recorded fingerprint")
                                 for d in shard.verify()]
            except InputError as e:
                problems.append(text_of(_without_path(str(e), path), 400))
    return problems


def _without_path(message: str, path: str) -> str:
    for prefix in (f"file {path}: ", f"{path}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
