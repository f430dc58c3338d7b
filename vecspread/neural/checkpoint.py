"""Training checkpoints: one HDF5 format for every neural method, numeric datasets only (never pickle).

Layout: ``meta`` (JSON as uint8: kind, format, run key, epoch, step, history, best score and epoch,
running sums of a partial epoch), and groups of arrays: ``model`` (state dict), ``optimizer`` (every
per-parameter state tensor: SGD momentum, Adam moments and step counts), ``rng/torch`` (the generator
state), ``best`` (the kept model so far) and, mid-epoch, ``epoch/<name>`` (the epoch's plan: order,
positives, negatives...). A run resumed from it continues bit for bit. The root says
``vecspread_kind = checkpoint`` and carries a fingerprint as artifacts do (``vecspread.io.fingerprints``),
checked in full when the checkpoint is read.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from vecspread.errors import ConfigError, InputError
from vecspread.io.atomic import atomic_output, reserve_space

FORMAT = 2


def write_checkpoint(path: str, meta: Mapping[str, Any], groups: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Write a checkpoint atomically: ``meta`` JSON-serialisable, ``groups`` name -> {dataset -> array}."""
    import h5py

    from vecspread.io import fingerprints

    size = sum(np.asarray(a).nbytes for arrays in groups.values() for a in arrays.values())
    with atomic_output(path) as tmp:
        reserve_space(tmp, path, size)
        with h5py.File(tmp, "w") as f:
            f.attrs["vecspread_kind"] = "checkpoint"
            f["meta"] = json_bytes({**meta, "format": FORMAT})
            for gname, arrays in groups.items():
                g = f.create_group(gname)
                for name, arr in arrays.items():
                    g[name] = np.asarray(arr)
            fingerprints.record(f)


def read_checkpoint(path: str, kind: str) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """(meta, groups) of a file written by :func:`write_checkpoint`; InputError when it is missing,
    unreadable, of another format, or ``meta["kind"]`` is not ``kind``."""
    import h5py

    from vecspread.io.artifacts import differences, mismatch
    from vecspread.io.preflight import preflight
    from vecspread.io.safety import HDF5_ERRORS, check_group

    if not os.path.isfile(path):
        raise InputError(f"checkpoint {path} does not exist (or is not a regular file)")
    if h5py.is_hdf5(path):
        preflight(path, "checkpoint")
    try:
        with h5py.File(path, "r") as f:
            check_group(f, path)
            differ = differences(f)  # a checkpoint is read in full: check all of it
            if differ:
                raise InputError(f"checkpoint {path}: {mismatch(differ)} (modified or damaged after it was "
                                 "written); train again without --resume")
            meta = json.loads(bytes(f["meta"][()]).decode())
            groups = {name: read_group(f[name]) for name in f if name != "meta"}
    except (*HDF5_ERRORS, AttributeError) as e:
        raise InputError(f"{path} is not a readable {kind} checkpoint ({str(e).splitlines()[0][:160]})") from None
    if not isinstance(meta, dict) or not all(isinstance(g, dict) for g in groups.values()):
        raise InputError(f"{path} is not a readable {kind} checkpoint (its meta is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: checkpoint format {meta.get('format')!r} is not this version's ({FORMAT}); "
                         "train again without --resume")
    if meta.get("kind") != kind:
        raise InputError(f"{path} is a {meta.get('kind')!r} checkpoint, not a {kind} one")
    return meta, groups


def check_compatible(saved: Mapping[str, Any], current: Mapping[str, Any], path: str) -> None:
    """ConfigError naming every setting that differs between a checkpoint's run key and this run's."""
    diff = [k for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if diff:
        what = ", ".join(
            "training data" if k == "data" else f"{k} ({saved.get(k)!r} in checkpoint, {current.get(k)!r} now)"
            for k in diff
        )
        raise ConfigError(f"cannot resume from {path}: it was written with other settings: {what}")


def json_bytes(obj: Any) -> np.ndarray:
    """JSON text of ``obj`` as a uint8 array (HDF5-friendly, no object dtype)."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)


def read_group(g: Any) -> dict[str, np.ndarray]:
    """Every dataset below an HDF5 group, by relative name, as numeric numpy arrays (floats finite)."""
    if not hasattr(g, "visititems"):
        raise ValueError(f"{g.name} is not a group")
    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if hasattr(obj, "shape"):
            if obj.dtype.kind not in "biuf":
                raise ValueError(f"{obj.name} has dtype {obj.dtype}, expected numbers")
            out[name] = np.array(obj[()])
            if out[name].dtype.kind == "f" and not np.isfinite(out[name]).all():
                raise ValueError(f"{obj.name} holds NaN or infinite values")

    g.visititems(visit)
    return out
