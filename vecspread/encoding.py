"""The ``encode`` stage: database -> transform -> codec -> a codes artifact that carries its model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vecspread.artifacts import (DEFAULT_BLOCK_SIZE, Artifact, Dataset, components_fingerprint, open_artifact,
                                 provenance, read_component, write_artifact, write_component)
from vecspread.codecs import CODEC_NAMES, get_codec_class
from vecspread.codecs.base import Codec
from vecspread.errors import ConfigError, InputError, LineageError
from vecspread.modeling import load_transform, open_model
from vecspread.progress import LogProgress, Progress
from vecspread.registry import instantiate
from vecspread.transforms.base import Transform


def make_codec(name: str, options: dict[str, Any]) -> Codec:
    """Instantiate codec ``name`` with the options the user set (None = not given)."""
    if name not in CODEC_NAMES:
        raise ConfigError(f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}")
    return instantiate(get_codec_class(name), options, f"--codec {name}")


def encode_dataset(
    model: str, dataset: str, output: str, codec_name: str | None, options: dict[str, Any], *,
    block_size: int = DEFAULT_BLOCK_SIZE, progress: Progress | None = None,
) -> dict:
    """Encode the dataset's database (``train``) and write ``/codes`` (n, code_size) uint8 plus the model.

    ``codec_name`` None uses the codec trained with the model (methods such as pq or itq store one).
    """
    progress = progress or LogProgress()
    model_art, transform = open_model(model)
    with model_art, Dataset(dataset) as ds:
        if ds.d != transform.d_in:
            raise InputError(
                f"model {model} expects {transform.d_in}-dimensional vectors but {dataset} has {ds.d}; "
                "train a model on this dataset"
            )
        if codec_name is None:
            codec = _model_codec(model_art, options)
            codec_name = codec.name
        else:
            codec = make_codec(codec_name, options)
            codec.fit(_codec_training_set(codec, transform, ds))
        n = ds.size("train")
        t0 = time.perf_counter()
        with write_artifact(
            output, "codes",
            params={"codec": codec_name, **codec.get_config(), "method": model_art.params.get("method"),
                    **({"chain": model_art.params["chain"]} if model_art.params.get("chain") else {})},
            inputs=[provenance(model_art, "model"), provenance(ds.art, "dataset")],
        ) as f:
            codes = f.create_dataset("codes", shape=(n, codec.code_size), dtype=np.uint8,
                                     chunks=(max(1, min(n, 1 << 16)), codec.code_size))
            progress.start(n, f"encode {codec_name}")
            for start, xb in ds.blocks("train", block_size):
                codes[start : start + len(xb)] = codec.encode(transform.apply(xb))
                progress.advance(len(xb))
            progress.finish()
            seconds = time.perf_counter() - t0
            f.attrs["encode_seconds"] = seconds
            model_art.file.copy(model_art.file["transform"], f, "transform")
            write_component(f.create_group("codec"), codec_name, codec.get_config(), codec.get_arrays())
            f.attrs["components_fingerprint"] = components_fingerprint(f)
    return {"n": n, "codec": codec_name, "bits": codec.bits, "code_size": codec.code_size,
            "encode_seconds": round(seconds, 3), "vectors_per_second": round(n / max(seconds, 1e-9))}


def _model_codec(model_art: Artifact, options: dict[str, Any]) -> Codec:
    if "codec" not in model_art.file:
        raise ConfigError(
            f"model {model_art.path} has no trained codec; choose one with --codec ({', '.join(CODEC_NAMES)})"
        )
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ConfigError(
            f"{', '.join('--' + g.replace('_', '-') for g in given)} cannot change the codec trained with the model; "
            "drop the option, or pass --codec to encode with another codec"
        )
    return load_codec(model_art)


def load_codec(art: Artifact) -> Codec:
    """The codec stored in the ``/codec`` group of a model or codes artifact."""
    type_name, config, arrays = read_component(art.file["codec"], art.path)
    if type_name not in CODEC_NAMES:
        raise InputError(f"{art.path}: codec {type_name!r} is unknown to this vecspread version")
    try:
        return get_codec_class(type_name).from_state(config, arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{art.path}: codec {type_name} cannot be rebuilt from the file ({e})") from None


def _codec_training_set(codec: Codec, transform: Transform, ds: Dataset) -> np.ndarray:
    """Transformed training vectors for codecs that learn; an empty (0, d_out) array for the others."""
    if not codec.needs_training:
        return np.zeros((0, transform.d_out), np.float32)
    xt, _ = ds.training_set(codec.max_train)
    return transform.apply(xt)


def open_codes(path: str) -> tuple[Artifact, Transform, Codec]:
    """A codes artifact with its transform and codec rebuilt (no code from the file is executed)."""
    art = open_artifact(path, "codes", role="codes")
    try:
        if "codes" not in art.file or "codec" not in art.file:
            raise InputError(f"codes {path}: missing /codes or /codec (file damaged?)")
        recorded = art.file.attrs.get("components_fingerprint")
        if recorded is not None and recorded != components_fingerprint(art.file):
            raise LineageError(f"codes {path}: its model groups (/transform, /codec) are not the ones the codes were "
                               "encoded with (file modified or damaged); encode again with `vecspread encode`")
        transform = load_transform(art)
        codec = load_codec(art)
        if art.file["codes"].shape[1] != codec.code_size:
            raise InputError(f"codes {path}: code size {art.file['codes'].shape[1]} != codec's {codec.code_size}")
        return art, transform, codec
    except BaseException:
        art.close()
        raise
