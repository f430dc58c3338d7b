"""The ``train`` stage and model loading: a fitted transform stored as JSON config + weights."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

from vecspread.artifacts import (Artifact, Dataset, content_fingerprint, open_artifact, provenance, read_component,
                                 write_artifact, write_component)
from vecspread.errors import ConfigError, InputError
from vecspread.progress import LogProgress, Progress
from vecspread.registry import instantiate
from vecspread.runtime import configure_torch
from vecspread.transforms import METHOD_NAMES, STORED_TYPES, get_transform_class
from vecspread.transforms.base import Transform


def make_transform(method: str, options: dict[str, Any]) -> Transform:
    """Instantiate ``method`` with the options the user set (None = not given).

    An option the method does not take is refused, naming the flag, rather than silently ignored.
    """
    if method not in METHOD_NAMES:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHOD_NAMES)}")
    cls = get_transform_class(method)
    _configure_torch_if_loaded()
    return instantiate(cls, options, f"--method {method}")


def train_model(
    dataset: str, output: str, method: str, options: dict[str, Any], *,
    max_train: int | None = None, sample_seed: int = 0, threads: int | None = None,
    after: str | None = None, progress: Progress | None = None,
) -> dict:
    """Fit ``method`` on the dataset's learn set (or a sample of its database) and write a model artifact.

    ``threads`` is passed on to methods that manage threads themselves (the neural ones). ``after``:
    a model file whose transform is applied to the training vectors first; the model written is then
    the chain of both (:class:`~vecspread.transforms.chain.ChainTransform`).
    """
    progress = progress or LogProgress()
    transform = make_transform(method, options)
    if threads is not None and hasattr(transform, "threads"):
        transform.threads = threads
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
        xt, note = ds.training_set(max_train, seed=sample_seed)
        if prior is not None:
            xt = prior.apply(xt)
            note += f", mapped by {after} to {xt.shape[1]} dimensions"
        t0 = time.perf_counter()
        transform.fit(xt, progress=progress)
        seconds = time.perf_counter() - t0
        # logged after fit so that a refused configuration is one line on stderr, not two
        progress.log(f"fitted {method} in {seconds:.1f}s; training data: {note}")
        stored: Transform = transform
        params: dict[str, Any] = {"method": method, **transform.get_config(), "training_set": note}
        if prior is not None:
            from vecspread.transforms.chain import ChainTransform

            stored = ChainTransform([prior, transform])
            params["chain"] = stored.method_names
            params["d_in"] = stored.d_in
        with write_artifact(output, "model", params=params, inputs=inputs, attrs={"train_seconds": seconds}) as f:
            write_component(f.create_group("transform"), stored.name, stored.get_config(), stored.get_weights())
            codec = stored.fitted_codec()
            if codec is not None:
                write_component(f.create_group("codec"), codec.name, codec.get_config(), codec.get_arrays())
    summary = {"method": method, "d_in": stored.d_in, "d_out": stored.d_out,
               "train_seconds": round(seconds, 3), "training_set": note}
    if prior is not None:
        summary["chain"] = params["chain"]
    return summary


def load_transform(art: Artifact) -> Transform:
    """The fitted transform stored in a model or codes artifact."""
    if "transform" not in art.file:
        raise InputError(f"{art.path}: has no /transform group (not written by `vecspread train`?)")
    type_name, config, weights = read_component(art.file["transform"], art.path)
    if type_name not in STORED_TYPES:
        raise InputError(f"{art.path}: transform type {type_name!r} is unknown to this vecspread version")
    try:
        cls = get_transform_class(type_name)
        _configure_torch_if_loaded()
        return cls.from_state(config, weights)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{art.path}: transform {type_name} cannot be rebuilt from the file ({e})") from None


def _configure_torch_if_loaded() -> None:
    """Neural transforms import torch when loaded: give it the thread count the stage chose."""
    if "torch" in sys.modules:
        configure_torch()


def open_model(path: str) -> tuple[Artifact, Transform]:
    """A model artifact and its transform; a model whose contents no longer match its recorded
    fingerprint (modified or damaged after `train` wrote it) is refused."""
    art = open_artifact(path, "model", role="model")
    try:
        recorded = art.file.attrs.get("fingerprint")
        if recorded is not None and recorded != content_fingerprint(art.file):
            raise InputError(f"model {path}: its contents do not match its recorded fingerprint (modified or damaged "
                             "after `vecspread train` wrote it); train it again")
        return art, load_transform(art)
    except BaseException:
        art.close()
        raise
