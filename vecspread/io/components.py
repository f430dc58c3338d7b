"""Model groups in files: a transform or a codec stored as JSON config + numeric datasets.

A model artifact holds ``/transform`` and, for methods that train one, ``/codec``; a codes artifact
holds copies of both. Each group has attributes ``type`` and ``config`` (JSON) and one dataset per
array. Nothing from a file is ever unpickled or executed. (Rebuilding the classes from them is
``vecspread.models``.)
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from vecspread.errors import InputError
from vecspread.io.artifacts import json_default
from vecspread.io.safety import check_group, reading


def write_component(group: h5py.Group, type_name: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Store a transform or codec: attrs ``type`` and JSON ``config``, one dataset per array."""
    group.attrs["type"] = type_name
    group.attrs["config"] = json.dumps(config, sort_keys=True, default=json_default)
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"refusing to store non-numeric array {name!r} of dtype {arr.dtype}")
        group.create_dataset(name, data=arr)


def read_component(group: h5py.Group, path: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Load what :func:`write_component` stored, refusing anything but plain numeric datasets.

    Nothing from the file is ever unpickled or executed: object, opaque and string datasets are refused,
    and so are links and storage that lead outside the file (``vecspread.io.safety``). Weights must be
    finite.
    """
    with reading(path):
        return _read_component(group, path)


def _read_component(group: h5py.Group, path: str) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    check_group(group, path)
    try:
        type_name = str(group.attrs["type"])
        config = json.loads(group.attrs["config"])
    except (KeyError, ValueError, TypeError) as e:
        raise InputError(f"{path}: /{group.name.strip('/')} has no valid type/config attributes ({_short(e)})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: /{group.name.strip('/')} config is not a JSON object (file damaged or edited)")
    arrays: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            if obj.dtype.kind not in "biuf":
                raise InputError(
                    f"{path}: {obj.name} has dtype {obj.dtype}; only numeric weights are accepted "
                    "(vecspread never loads pickled or opaque objects)"
                )
            value = obj[()]
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise InputError(f"{path}: {obj.name} holds NaN or infinite weights (file damaged or edited)")
            arrays[name] = value

    group.visititems(visit)
    return type_name, config, arrays


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
