"""Model and codes files as objects: write a fitted transform (and codec); open one and rebuild them.

The classes come from the registries (``vecspread.transforms``, ``vecspread.codecs``), the stored state
from ``vecspread.io.components``; nothing from a file is ever unpickled or executed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.codecs import REGISTRY as CODECS
from vecspread.errors import ConfigError, InputError, LineageError
from vecspread.io.artifacts import Artifact, components_fingerprint, mismatch, open_artifact, write_artifact
from vecspread.io.components import read_component, write_component
from vecspread.io.safety import reading
from vecspread.io.sharded import is_manifest, open_manifest
from vecspread.transforms import STORED_TYPES, transform_class


def write_model(output: str, transform: Any, codec: Any, *, params: dict[str, Any], inputs: list[dict[str, Any]],
                attrs: dict[str, Any] | None = None) -> None:
    """A model artifact: ``/transform`` and, when ``codec`` is given, ``/codec``."""
    weights = transform.get_weights()
    arrays = codec.get_arrays() if codec is not None else {}
    size = sum(np.asarray(a).nbytes for a in [*weights.values(), *arrays.values()])
    with write_artifact(output, "model", params=params, inputs=inputs, attrs=attrs, expected_bytes=size) as f:
        write_component(f.create_group("transform"), transform.name, transform.get_config(), weights)
        if codec is not None:
            write_component(f.create_group("codec"), codec.name, codec.get_config(), arrays)


def open_model(path: str) -> tuple[Artifact, Any]:
    """A model artifact and its transform; a model whose contents no longer match its recorded
    fingerprint (modified or damaged after `train` wrote it) is refused."""
    art = open_artifact(path, "model", role="model")
    try:
        differ = art.verify()
        if differ:
            raise InputError(f"model {path}: {mismatch(differ)} (modified or damaged after `vecspread train` wrote "
                             "it); train it again")
        return art, load_transform(art)
    except BaseException:
        art.close()
        raise


def open_codes(path: str) -> tuple[Artifact, Any, Any]:
    """A codes artifact with its transform and codec rebuilt (no code from the file is executed).

    A codes manifest (``vecspread.io.sharded``) opens as a :class:`~vecspread.io.sharded.ShardedCodes`,
    whose ``/codes`` are its shards', every shard checked first."""
    art = open_artifact(path, "codes", role="codes")
    try:
        if is_manifest(art):  # codes spread over shard files (``encode --cluster ... --shard-files``)
            art = open_manifest(art)
        if not art.has("codes") or not art.has("codec"):
            raise InputError(f"codes {path}: missing /codes or /codec (file damaged?)")
        recorded = art.file.attrs.get("components_fingerprint")
        with reading(path):
            current = components_fingerprint(art.file)
        if recorded is not None and str(recorded) != current:
            raise LineageError(f"codes {path}: its model groups (/transform, /codec) are not the ones the codes were "
                               "encoded with (file modified or damaged); encode again with `vecspread encode`")
        transform = load_transform(art)
        codec = load_codec(art)
        codes = art.member("codes")
        if codes.ndim != 2 or codes.dtype != "uint8" or codes.shape[1] != codec.code_size:
            raise InputError(f"codes {path}: /codes is {codes.shape} {codes.dtype}, expected (n, {codec.code_size}) "
                             "uint8 for its codec (file damaged?)")
        return art, transform, codec
    except BaseException:
        art.close()
        raise


def load_transform(art: Artifact) -> Any:
    """The fitted transform stored in a model or codes artifact."""
    if not art.has("transform"):
        raise InputError(f"{art.path}: has no /transform group (not written by `vecspread train`?)")
    type_name, config, weights = read_component(art.group("transform"), art.path)
    if type_name not in STORED_TYPES:
        raise InputError(f"{art.path}: transform type {type_name!r} is unknown to this vecspread version")
    try:
        return transform_class(type_name).from_state(config, weights)
    except ConfigError as e:  # a stored hyper-parameter out of its bounds (the file was edited)
        raise InputError(f"{art.path}: transform {type_name}: its stored config is refused: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{art.path}: transform {type_name} cannot be rebuilt from the file ({e})") from None


def load_codec(art: Artifact) -> Any:
    """The codec stored in the ``/codec`` group of a model or codes artifact."""
    type_name, config, arrays = read_component(art.group("codec"), art.path)
    if type_name not in CODECS:
        raise InputError(f"{art.path}: codec {type_name!r} is unknown to this vecspread version")
    try:
        return CODECS.load(type_name).from_state(config, arrays)
    except ConfigError as e:
        raise InputError(f"{art.path}: codec {type_name}: its stored config is refused: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{art.path}: codec {type_name} cannot be rebuilt from the file ({e})") from None
