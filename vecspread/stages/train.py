"""The ``train`` stage: fit a method on the dataset's learn set and write a model artifact."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from vecspread import faiss_messages
from vecspread.errors import ConfigError, InputError
from vecspread.io.artifacts import provenance
from vecspread.io.datasets import Dataset
from vecspread.models import open_model, write_model
from vecspread.progress import Progress, as_progress
from vecspread.runtime import RUN_PARAMS, RunSettings, current_threads


def make_method(method: str, options: dict[str, Any]) -> tuple[Any, Any, RunSettings]:
    """The transform, the codec it trains with (or None) and the run settings of ``train --method``.

    ``options``: the options the user set (None = not given). Each goes to the parts that declare it
    (the transform, its codec, the run); one that none declares is refused, naming the flag.
    """
    from vecspread.codecs import REGISTRY as CODECS
    from vecspread.transforms import REGISTRY, method_params

    spec = REGISTRY[method]
    given = {k: v for k, v in options.items() if v is not None}
    method_params(spec).resolve(given, f"--method {method}")  # every option checked, in the method's name
    transform_spec = REGISTRY[spec.transform] if spec.transform else spec
    transform = transform_spec.load()(**{k: v for k, v in given.items() if k in transform_spec.params})
    run = RunSettings(**RUN_PARAMS.resolve({k: v for k, v in given.items() if k in RUN_PARAMS}, f"--method {method}"))
    codec_name = transform.codec_name() if spec.transform is None else spec.codec
    codec = None
    if codec_name is not None:
        codec_params = CODECS[codec_name].params
        chosen = {k: v for k, v in given.items() if k in codec_params}
        codec = CODECS.load(codec_name)(**(chosen or transform.codec_defaults()))
    return transform, codec, run


def fit_method(method: str, xt: np.ndarray, *, progress: Progress | None = None, labels: np.ndarray | None = None,
               **options: Any) -> tuple[Any, Any]:
    """(transform, codec or None) of ``train --method METHOD`` fitted on (n, d) float32 ``xt`` in memory,
    as :func:`train_model` fits them (the codec on the transformed training vectors). ``labels``: the
    (n,) classes a supervised method (softmax) needs."""
    transform, codec, run = make_method(method, options)
    transform.fit(xt, progress=progress, run=run, **({"labels": labels} if labels is not None else {}))
    if codec is not None:
        codec.fit(codec_training_set(codec, transform, xt))
    return transform, codec


def train_model(
    dataset: str, output: str, method: str, options: dict[str, Any], *,
    max_train: int | None = None, sample_seed: int = 0, threads: int | None = None,
    after: str | None = None, any_distance: bool = False, progress: Progress | None = None,
) -> dict:
    """Fit ``method`` on the dataset's learn set (or a sample of its database) and write a model artifact.

    ``after``: a model file whose transform is applied to the training vectors first; the model written is
    then the chain of both (:class:`~vecspread.transforms.chain.ChainTransform`). A method that trains a
    codec (``Spec.codec``) fits it on the transformed training vectors and stores it with the model.

    The dataset's distance must be one the method (or, with ``after``, the first model of the chain)
    serves (``Spec.distances``): a dot dataset needs a MIPS lift. ``any_distance`` fits it anyway (a
    baseline that ignores the distance).
    """
    progress = as_progress(progress)
    transform, codec, run = make_method(method, options)
    run = RunSettings(**{**run.__dict__, "threads": threads})
    with contextlib.ExitStack() as stack:
        ds = stack.enter_context(Dataset(dataset))
        inputs = [provenance(ds.art, "dataset")]
        prior = None
        if after is not None:
            prior_art, prior = open_model(after)
            stack.enter_context(prior_art)
            if prior.d_in != ds.d:
                raise InputError(f"--after {after} expects {prior.d_in}-dimensional vectors but {dataset} has {ds.d}")
            inputs.append(provenance(prior_art, "after"))
        first = method if prior is None else (prior_art.params.get("chain") or [prior_art.params.get("method")])[0]
        check_distance(ds, method, first, any_distance, progress)
        xt, note = ds.training_set(max_train, seed=sample_seed)
        supervised = {"labels": ds.training_labels(max_train, seed=sample_seed)} if getattr(transform, "needs_labels", False) else {}
        if prior is not None:
            xt = prior.apply(xt)
            note += f", mapped by {after} to {xt.shape[1]} dimensions"
        t0 = time.perf_counter()
        transform.fit(xt, progress=progress, run=run, **supervised)
        if codec is not None:
            codec.check_dimension(transform.d_out)  # a refusal before the (possibly long) codec training
            if codec.needs_training:
                progress.log(f"{method}: training the {codec.name} codec on {len(xt)} vectors")
            with faiss_messages.captured() as printed:
                codec.fit(codec_training_set(codec, transform, xt))
            if faiss_messages.summary(printed):
                progress.log(faiss_messages.summary(printed))
        seconds = time.perf_counter() - t0
        # logged after fit so that a refused configuration is one line on stderr, not two
        progress.log(f"fitted {method} in {seconds:.1f}s; training data: {note}")
        stored = transform
        params: dict[str, Any] = {"method": method, **transform.get_config(), "training_set": note}
        if getattr(transform, "timings_", None):
            params["timings"] = transform.timings_  # provenance: where the training time went
            params["time_totals"] = totals = training_time_totals(transform)
            progress.log(f"{method}: where the time went: " + ", ".join(f"{k} {v:.1f}s" for k, v in totals.items()))
            params["threads"] = current_threads(threads)  # provenance: a seeded run repeats with the same count
        if prior is not None:
            from vecspread.transforms.chain import ChainTransform

            stored = ChainTransform([prior, transform])
            params["chain"] = stored.method_names
            params["d_in"] = stored.d_in
        write_model(output, stored, codec, params=params, inputs=inputs, attrs={"train_seconds": seconds})
    summary = {"method": method, "d_in": stored.d_in, "d_out": stored.d_out,
               "train_seconds": round(seconds, 3), "training_set": note}
    if prior is not None:
        summary["chain"] = params["chain"]
    return summary


def check_distance(ds: Dataset, method: str, first: str | None, any_distance: bool, progress: Progress) -> None:
    """ConfigError when the dataset's distance is one the method (``first``: the chain's first) does not
    serve, unless ``any_distance``; a log line when the distance was assumed or a lift meets non-dot data."""
    from vecspread.transforms import REGISTRY

    log_distance(ds, progress)
    served = REGISTRY[first].distances if first in REGISTRY else ("euclidean", "angular", "dot")
    if ds.distance in served:
        return
    if ds.distance == "dot" and not any_distance:
        lifts = ", ".join(s.name for s in REGISTRY if "dot" in s.distances)
        raise ConfigError(
            f"{ds.path} is an inner-product (dot) dataset, which --method {method} does not serve (it ranks by L2 or "
            f"cosine): use --method {lifts}, or train it --after a lift (`vecspread train DATA -m simple-lsh "
            "--lift-only`); --any-distance trains it anyway, as a baseline")
    progress.log(f"note: --method {first} serves inner products, but {ds.path} is {ds.distance}")


def log_distance(ds: Dataset, progress: Progress) -> None:
    """Say so when the dataset does not record its distance (it is then read as euclidean)."""
    if ds.distance_assumed:
        progress.log(f"note: {ds.path} records no distance attribute: treated as euclidean "
                     "(`vecspread import --distance` sets it)")


def codec_training_set(codec: Any, transform: Any, xt: np.ndarray) -> np.ndarray:
    """What ``codec.fit`` gets: the transformed training vectors for codecs that learn, an empty
    (0, d_out) array for the others (they only record the dimension)."""
    if not codec.needs_training:
        return np.zeros((0, transform.d_out), np.float32)
    return transform.apply(xt)


def training_time_totals(transform: Any) -> dict[str, float]:
    """Seconds of a neural training run by phase: ``prepare`` (e.g. the catalyzer's positives), ``mining``
    (each epoch's plan: hard negatives), ``steps`` and ``validation``, summed over the epochs."""
    rows = getattr(transform, "timings_", None) or []
    return {"prepare": round(float(getattr(transform, "prepare_seconds_", 0.0)), 3),
            "mining": round(sum(r.get("t_mining", 0.0) for r in rows), 3),
            "steps": round(sum(r.get("t_train", 0.0) for r in rows), 3),
            "validation": round(sum(r.get("t_val", 0.0) for r in rows), 3)}
