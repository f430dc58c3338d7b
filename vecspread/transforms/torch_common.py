"""Pieces shared by the torch-trained transforms: input checks, device and thread selection, progress
dispatch, batched inference, and HDF5 training checkpoints (numeric datasets only, never pickle).

Written for NPhash; the catalyzer has private equivalents of several of these (``_as_matrix``,
``_resolve_device``, ``_fingerprint``, ``_Reporter``, ``write_checkpoint``...) that could move here.
The checkpoint helpers are generic: any optimizer's state (SGD momentum, Adam moments and step
counts) is stored tensor by tensor, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from vecspread.artifacts import clean_stale_partials, partial_path
from vecspread.errors import ConfigError, InputError

logger = logging.getLogger("vecspread")

#: rows per forward pass at inference
APPLY_BATCH = 65536


# ====================================================================== inputs, devices, threads


def as_matrix(x: np.ndarray, what: str) -> np.ndarray:
    """A C-contiguous (n, d) float32 copy/view of ``x``; InputError when not 2-d, empty or not finite."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{what} must be a non-empty (n, d) matrix, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"{what} must hold real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{what} holds NaN or infinite values")
    return x


def fingerprint(x: np.ndarray) -> list[float]:
    """Cheap identity of a (n, d) training set, so that a checkpoint is not resumed on other data."""
    x64 = x.astype(np.float64, copy=False)
    w = np.arange(1, x.shape[1] + 1, dtype=np.float64)
    return [float(x.shape[0]), float(x.shape[1]), float(x64.sum()), float((x64 @ w) @ np.cos(np.arange(x.shape[0])))]


def resolve_device(device: str) -> torch.device:
    """"cpu", "cuda" or "auto" (cuda when torch sees one) -> torch.device; ConfigError if cuda is absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return torch.device(device)


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Set torch and faiss to ``threads`` inside the block (None or <= 0: leave them), restore after."""
    import faiss

    if threads is None or threads <= 0:
        yield
        return
    saved = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(int(threads))
    faiss.omp_set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        faiss.omp_set_num_threads(saved[1])


# ====================================================================== progress


class Reporter:
    """Dispatch to the caller's progress object (``log`` required, ``start``/``advance`` optional),
    or to the "vecspread" logger when there is none."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def log(self, line: str) -> None:
        if self.progress is not None and hasattr(self.progress, "log"):
            self.progress.log(line)
        else:
            logger.info(line)

    def start(self, total: int, description: str) -> None:
        fn = getattr(self.progress, "start", None)
        if callable(fn):
            fn(total, description)

    def advance(self, n: int) -> None:
        fn = getattr(self.progress, "advance", None)
        if callable(fn) and n > 0:
            fn(n)


# ====================================================================== inference


def forward_batched(module: nn.Module, x: np.ndarray, d_out: int, device: torch.device,
                    batch: int = APPLY_BATCH) -> np.ndarray:
    """``module`` in eval mode on (n, d_in) float32 ``x`` in batches; (n, d_out) float32 numpy.

    The module's train/eval mode is restored afterwards.
    """
    was_training = module.training
    module.eval()
    out = [np.zeros((0, d_out), dtype=np.float32)]
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[s : s + batch], dtype=np.float32)).to(device)
            out.append(module(xb).float().cpu().numpy())
    module.train(was_training)
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def state_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """A module's state dict (parameters and buffers) as CPU numpy copies."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_state_arrays(module: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Inverse of ``state_arrays`` (strict: every name must match)."""
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, strict=True)


# ====================================================================== optimizer state


def optimizer_arrays(opt: torch.optim.Optimizer) -> dict[str, np.ndarray]:
    """Every tensor of the optimizer's per-parameter state as "<param index>/<name>" -> numpy array.

    Hyper-parameters (lr, betas...) are not stored: the resuming run rebuilds the optimizer from the
    same settings (checked through the run key) and only its accumulated state is reloaded.
    """
    out: dict[str, np.ndarray] = {}
    for i, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                out[f"{i}/{name}"] = value.detach().cpu().numpy().copy()
            else:  # plain Python numbers (e.g. a step count in older optimizers)
                out[f"{i}/{name}"] = np.asarray(value)
    return out


def load_optimizer_arrays(opt: torch.optim.Optimizer, arrays: Mapping[str, np.ndarray]) -> None:
    """Restore what ``optimizer_arrays`` saved into an optimizer built with the same settings."""
    current = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in arrays.items():
        i, _, name = key.partition("/")
        state.setdefault(int(i), {})[name] = torch.from_numpy(np.array(value))
    # load_state_dict moves tensors to each parameter's device and dtype (step counts stay as saved)
    opt.load_state_dict({"state": state, "param_groups": current["param_groups"]})


# ====================================================================== checkpoints


def write_checkpoint(path: str, meta: Mapping[str, Any], groups: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Write a training checkpoint to HDF5 atomically (temp file beside ``path``, then os.replace).

    ``meta``: JSON-serialisable values, stored as one uint8 dataset ``meta`` (no pickled objects);
    ``groups``: group name -> {dataset name -> numeric array}. Names may contain "/" (nested groups).
    """
    import h5py

    clean_stale_partials(Path(path))
    tmp = str(partial_path(Path(path)))  # obviously partial by name; removed by a later run if killed
    try:
        with h5py.File(tmp, "w") as f:
            f["meta"] = json_bytes(dict(meta))
            for gname, arrays in groups.items():
                g = f.create_group(gname)
                for name, arr in arrays.items():
                    g[name] = np.asarray(arr)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_checkpoint(path: str, kind: str) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Read a file written by ``write_checkpoint`` -> (meta, groups); InputError when it is missing,
    unreadable, or ``meta["kind"]`` is not ``kind``."""
    import h5py

    if not os.path.exists(path):
        raise InputError(f"checkpoint {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            meta = json.loads(bytes(f["meta"][()]).decode())
            groups = {name: read_group(f[name]) for name in f if name != "meta"}
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path} is not a readable {kind} checkpoint ({e})") from None
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


#: default validation slice: at most this many database vectors and queries, and at most these
#: shares of the training set (10,000 + 1,000 of debsift200k's 100k learn vectors). Measured on
#: debsift200k (8 epochs, dint 512, test 1-recall@10): catalyzer dout 24 + lattice 0.756 / 0.756
#: (seeds 0 / 1) with 10,000 + 1,000 held out, 0.764 / 0.752 with 5,000 + 500; catalyzer dout 64 +
#: sign 0.343 with 10,000 + 1,000, 0.320 with 5,000 + 500 (seed 0). The differences are within the
#: seed-to-seed spread, so the larger, steadier slice is kept.
VAL_DB, VAL_DB_SHARE = 10000, 10
VAL_Q, VAL_Q_SHARE = 1000, 100


def val_sizes(val_size: int | Sequence[int] | None, n: int) -> tuple[int, int]:
    """(database, queries) held out of ``n`` training vectors for validation.

    None: min(10000, n // 10) and min(1000, n // 100); an int: that many database vectors and a tenth
    as many queries; a pair: (database, queries); 0 (either part): no validation.
    """
    if val_size is None:
        ndb, nq = min(VAL_DB, n // VAL_DB_SHARE), min(VAL_Q, n // VAL_Q_SHARE)
    elif isinstance(val_size, (int, np.integer)):
        ndb, nq = int(val_size), int(val_size) // 10
    else:
        ndb, nq = (int(v) for v in val_size)
    if ndb <= 0 or nq <= 0:
        return 0, 0
    if ndb + nq >= n:
        raise ConfigError(f"val_size ({ndb} + {nq} queries) leaves no training vectors out of {n}")
    return ndb, nq


def json_bytes(obj: Any) -> np.ndarray:
    """JSON text of ``obj`` as a uint8 array (HDF5-friendly, no object dtype)."""
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode(), dtype=np.uint8)


def read_group(g: Any) -> dict[str, np.ndarray]:
    """Every dataset below an HDF5 group, by relative name, as numpy arrays."""
    out: dict[str, np.ndarray] = {}
    g.visititems(lambda name, obj: out.__setitem__(name, np.array(obj[()])) if hasattr(obj, "shape") else None)
    return out
