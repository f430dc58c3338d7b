"""The ``encode`` stage: database -> transform -> codec -> a codes artifact that carries its model."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from vecspread import faiss_messages
from vecspread.codecs import REGISTRY as CODECS
from vecspread.errors import ConfigError, InputError
from vecspread.io.artifacts import DEFAULT_BLOCK_SIZE, Artifact, components_fingerprint, provenance, write_artifact
from vecspread.io.datasets import Dataset
from vecspread.io.safety import reading
from vecspread.io.components import write_component
from vecspread.models import load_codec, open_model
from vecspread.progress import Progress, as_progress
from vecspread.stages.train import codec_training_set


def encode_dataset(
    model: str, dataset: str, output: str, codec_name: str | None, options: dict[str, Any], *,
    block_size: int = DEFAULT_BLOCK_SIZE, progress: Progress | None = None,
) -> dict:
    """Encode the dataset's database (``train``) and write ``/codes`` (n, code_size) uint8 plus the model.

    ``codec_name`` None uses the codec trained with the model (methods such as pq or itq store one).
    """
    progress = as_progress(progress)
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
            codec = CODECS.create(codec_name, options)
            xt = ds.training_set(codec.max_train)[0] if codec.needs_training else np.zeros((0, ds.d), np.float32)
            with faiss_messages.captured() as printed:
                codec.fit(codec_training_set(codec, transform, xt))
            if faiss_messages.summary(printed):
                progress.log(faiss_messages.summary(printed))
        n = ds.size("train")
        t0 = time.perf_counter()
        with write_artifact(
            output, "codes",
            params={"codec": codec_name, **codec.get_config(), "method": model_art.params.get("method"),
                    **({"chain": model_art.params["chain"]} if model_art.params.get("chain") else {})},
            inputs=[provenance(model_art, "model"), provenance(ds.art, "dataset")], expected_bytes=n * codec.code_size + os.path.getsize(model),
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
            with reading(model):  # HDF5 copies the group as stored: damage reading did not meet shows here
                model_art.file.copy(model_art.group("transform"), f, "transform")
            write_component(f.create_group("codec"), codec_name, codec.get_config(), codec.get_arrays())
            f.attrs["components_fingerprint"] = components_fingerprint(f)
    return {"n": n, "codec": codec_name, "bits": codec.code_bits, "code_size": codec.code_size,
            "encode_seconds": round(seconds, 3), "vectors_per_second": round(n / max(seconds, 1e-9))}


def _model_codec(model_art: Artifact, options: dict[str, Any]) -> Any:
    given = sorted(k for k, v in options.items() if v is not None)
    flags = ", ".join("--" + g.replace("_", "-") for g in given)
    if not model_art.has("codec"):
        raise ConfigError(f"model {model_art.path} has no trained codec; choose one with --codec "
                          f"({', '.join(CODECS.names)})" + (f" for {flags}" if given else ""))
    if given:
        raise ConfigError(f"{flags} cannot change the codec trained with the model; drop the option, or pass "
                          "--codec to encode with another codec")
    return load_codec(model_art)
