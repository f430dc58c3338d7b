"""Torch pieces of the neural trainer: input checks, the device, batched inference, module and
optimizer state as numpy arrays (for HDF5 models and checkpoints, never pickle).

Importing this module gives torch the process's thread count (``vecspread.runtime``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from vecspread.errors import ConfigError, InputError
from vecspread.runtime import configure_torch

configure_torch()

#: rows per forward pass at inference
APPLY_BATCH = 65536


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


def load_optimizer_arrays(opt: torch.optim.Optimizer, arrays: Mapping[str, Any]) -> None:
    """Restore what ``optimizer_arrays`` saved into an optimizer built with the same settings."""
    current = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for key, value in arrays.items():
        i, _, name = key.partition("/")
        state.setdefault(int(i), {})[name] = torch.from_numpy(np.array(value))
    # load_state_dict moves tensors to each parameter's device and dtype (step counts stay as saved)
    opt.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def error_reason(e: BaseException) -> str:
    """The line of an error that says what is wrong (torch's state-dict errors put it on the second)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):
        return lines[1][:200]
    return (lines[0] if lines else type(e).__name__)[:200]
