"""The ``encode`` stage: database -> transform -> codec -> a codes artifact that carries its model."""

from __future__ import annotations

import json
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
    block_size: int = DEFAULT_BLOCK_SIZE, cluster: str | None = None, shard_files: bool = False,
    shard_rows: int | None = None, threads: int | None = None, progress: Progress | None = None,
) -> dict:
    """Encode the dataset's database (``train``) and write ``/codes`` (n, code_size) uint8 plus the model.

    ``codec_name`` None uses the codec trained with the model (methods such as pq or itq store one).
    A softmax model's codes are those of its class vectors (:func:`class_vectors`), and the codec is
    fitted on them.
    ``cluster``: encode row ranges on a Dask cluster (``vecspread.cluster``; the same bytes), into one
    codes file or, with ``shard_files``, shard files beside ``output`` and ``output`` their manifest
    (``vecspread.io.sharded``); ``threads`` per task (default: see :func:`vecspread.cluster.connect`).
    """
    progress = as_progress(progress)
    if shard_files and cluster is None:
        raise ConfigError("--shard-files writes the shards of a sharded run: give --cluster too")
    model_art, transform = open_model(model)
    with model_art, Dataset(dataset) as ds:
        if ds.d != transform.d_in:
            raise InputError(
                f"model {model} expects {transform.d_in}-dimensional vectors but {dataset} has {ds.d}; "
                "train a model on this dataset"
            )
        classes = class_vectors(transform)
        if classes is not None and cluster is not None:
            raise ConfigError(f"{model} is a softmax model: its {len(classes)} class vectors are encoded in one process; "
                              "drop --cluster")
        if codec_name is None:
            codec = _model_codec(model_art, options)
            codec_name = codec.name
        else:
            codec = CODECS.create(codec_name, options)
            with faiss_messages.captured() as printed:
                if classes is not None:
                    codec.fit_class_vectors(classes)
                else:
                    xt = ds.training_set(codec.max_train)[0] if codec.needs_training else np.zeros((0, ds.d), np.float32)
                    codec.fit(codec_training_set(codec, transform, xt))
            if faiss_messages.summary(printed):
                progress.log(faiss_messages.summary(printed))
        for line in codec.fit_notes():
            progress.log(line)
        n = ds.size("train") if classes is None else len(classes)
        if classes is not None:
            progress.log(f"{model} is a softmax model: encoding its {n} class vectors (the database of the class "
                         "search), not the dataset's vectors; search answers with classes")
        params = {"codec": codec_name, **codec.get_config(), "method": model_art.params.get("method"),
                  **({"chain": model_art.params["chain"]} if model_art.params.get("chain") else {}),
                  **({"database": "class vectors"} if classes is not None else {})}
        inputs = [provenance(model_art, "model"), provenance(ds.art, "dataset")]

        def write_groups(f: Any) -> None:
            with reading(model):  # HDF5 copies the group as stored: damage reading did not meet shows here
                model_art.file.copy(model_art.group("transform"), f, "transform")
            write_component(f.create_group("codec"), codec_name, codec.get_config(), codec.get_arrays())
            f.attrs["components_fingerprint"] = components_fingerprint(f)

        t0 = time.perf_counter()
        if cluster is not None:
            return _encode_sharded(cluster, model, model_art, ds, codec, codec_name, output, params, inputs,
                                   write_groups, block_size=block_size, shard_files=shard_files,
                                   shard_rows=shard_rows, threads=threads, progress=progress)
        with write_artifact(output, "codes", params=params, inputs=inputs,
                            expected_bytes=n * codec.code_size + os.path.getsize(model)) as f:
            codes = f.create_dataset("codes", shape=(n, codec.code_size), dtype=np.uint8,
                                     chunks=(max(1, min(n, 1 << 16)), codec.code_size))
            progress.start(n, f"encode {codec_name}")
            blocks = ds.blocks("train", block_size) if classes is None else \
                ((s, classes[s : s + block_size]) for s in range(0, n, block_size))
            for start, xb in blocks:
                codes[start : start + len(xb)] = codec.encode(transform.apply(xb) if classes is None else xb)
                progress.advance(len(xb))
            progress.finish()
            seconds = time.perf_counter() - t0
            f.attrs["encode_seconds"] = seconds
            write_groups(f)
    return _summary(n, codec_name, codec, seconds, None)


def is_softmax(transform: Any) -> bool:
    """Whether a transform is a softmax model's representation network (it has class vectors)."""
    return callable(getattr(transform, "class_vectors", None))


def class_vectors(transform: Any) -> np.ndarray | None:
    """The (classes, d_out) float32 class vectors of a softmax model (the database side of its class
    search: ``encode`` indexes them instead of the dataset's vectors); None for other models."""
    return np.ascontiguousarray(transform.class_vectors(), np.float32) if is_softmax(transform) else None


def _summary(n: int, codec_name: str, codec: Any, seconds: float, cluster: dict | None) -> dict:
    return {"n": n, "codec": codec_name, "bits": codec.code_bits, "code_size": codec.code_size,
            "encode_seconds": round(seconds, 3), "vectors_per_second": round(n / max(seconds, 1e-9)),
            **({"cluster": cluster} if cluster is not None else {})}


def _encode_sharded(cluster: str, model: str, model_art: Artifact, ds: Dataset, codec: Any, codec_name: str,
                    output: str, params: dict, inputs: list, write_groups: Any, *, block_size: int,
                    shard_files: bool, shard_rows: int | None, threads: int | None, progress: Progress) -> dict:
    """``encode`` on a Dask cluster: shard files written by the workers, then one codes file assembled
    from them (verified) or their manifest (``shard_files``). Written last, either way."""
    from vecspread.cluster import sharded
    from vecspread.cluster.tasks import EncodeJob
    from vecspread.io.sharded import write_shard_table

    t0 = time.perf_counter()
    n = ds.size("train")
    components = sharded.model_groups_fingerprint(write_groups)
    job = EncodeJob(os.path.abspath(model), model_art.fingerprint, os.path.abspath(ds.path), ds.fingerprint,
                    codec_name, codec.get_config(), codec.get_arrays(), components, n, block_size, None, inputs)
    refs, parts, ran = sharded.encode(cluster, job, output, shard_files=shard_files, shard_rows=shard_rows,
                                      threads=threads, progress=progress)
    try:
        with write_artifact(output, "codes", params=params, inputs=inputs,
                            expected_bytes=(0 if shard_files else n * codec.code_size) + os.path.getsize(model)) as f:
            if parts is not None:
                codes = f.create_dataset("codes", shape=(n, codec.code_size), dtype=np.uint8,
                                         chunks=(max(1, min(n, 1 << 16)), codec.code_size))
                sharded.copy_shards(codes, refs, parts, codec.code_size, components, output, block_size, progress)
            else:
                write_shard_table(f, refs, codec.code_size)
            seconds = time.perf_counter() - t0
            f.attrs["encode_seconds"] = seconds
            f.attrs["cluster"] = json.dumps(ran, sort_keys=True)
            write_groups(f)
            if f.attrs["components_fingerprint"] != components:
                raise AssertionError("the model groups written differ from those the shards record")
    finally:
        sharded.remove_parts(parts)
    summary = _summary(n, codec_name, codec, seconds, ran)
    if shard_files:
        summary["shard_files"] = [r.file for r in refs]
    return summary


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
