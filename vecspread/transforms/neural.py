"""What every neural transform shares: fit through the trainer, inference, the model's state."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from vecspread.errors import ConfigError, InputError
from vecspread.neural import trainer
from vecspread.neural.torch_util import as_matrix, error_reason, forward_batched, load_state_arrays, state_arrays
from vecspread.progress import as_progress
from vecspread.runtime import RunSettings, threads_within
from vecspread.transforms.base import Transform


class NeuralTransform(Transform):
    """An MLP trained by :func:`vecspread.neural.trainer.train`; a subclass supplies the objective.

    Fitted state: ``net_`` (torch module), ``input_scale_``, ``history_`` (one dict per epoch: losses,
    validation recalls), ``timings_`` (per epoch: seconds of mining, steps and validation; provenance,
    not stored in the model's config), ``best_epoch_``, ``d_in_``, ``d_out_``.
    """

    #: default validation split: "training-set" or "held-out" (``vecspread.neural.validation.split_sizes``)
    default_validation: ClassVar[str] = "held-out"

    net_: torch.nn.Module
    input_scale_: float

    # -- what a method supplies ----------------------------------------------------------------------

    def objective(self, ntr: int, nq: int, report: Any) -> trainer.Objective:
        """The objective of one run on ``ntr`` training vectors with ``nq`` validation queries."""
        raise NotImplementedError

    def build_network(self, d_in: int) -> torch.nn.Module:
        """The untrained network (its weights are drawn by the trainer)."""
        raise NotImplementedError

    def resolved(self) -> dict[str, Any]:
        """Hyper-parameters left None and derived at fit (e.g. the catalyzer's lam), as used."""
        return {}

    # -- the shared part -----------------------------------------------------------------------------

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: RunSettings | None = None) -> "NeuralTransform":
        """Train on (n, d_in) training vectors (float32, or any real dtype, converted); returns self.

        ``progress``: an object with ``log(str)`` (and optionally ``start``/``advance``); None logs through
        the "vecspread" logger. ``run``: threads, device, checkpoint, resume, time budget.
        """
        run = run or RunSettings()
        with threads_within(run.threads):
            trainer.train(self, as_matrix(xt, "training set"), run, as_progress(progress))
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, d_in) float32 -> (n, d_out) float32 network outputs (eval mode, batches of 65536 rows)."""
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[0] == 0 and x.shape[1] == self.d_in_:
            return np.zeros((0, self.d_out_), dtype=np.float32)
        x = as_matrix(x, "apply input")
        if x.shape[1] != self.d_in_:
            raise InputError(f"{self.name} was trained on dimension {self.d_in_}, got vectors of dimension {x.shape[1]}")
        return forward_batched(self.net_, x * np.float32(self.input_scale_), self.d_out_, self._device)

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters (derived ones as used) plus ``d_in``, ``d_out``, ``best_epoch`` and the
        per-epoch training ``history``."""
        config = {**super().get_config(), **self.resolved(), "history": list(getattr(self, "history_", [])),
                  "best_epoch": getattr(self, "best_epoch_", None)}
        run = getattr(self, "epochs_run_", None)
        if run is not None and run != self.epochs:  # a time budget spread the schedule over fewer epochs
            config["epochs_run"] = int(run)
        return config

    def get_weights(self) -> dict[str, np.ndarray]:
        """``input_scale`` (1,) float32 and the network state dict ("net.0.weight", ..., batch-norm
        running statistics included) as numpy arrays."""
        return {"input_scale": np.array([self.input_scale_], dtype=np.float32), **state_arrays(self.net_)}

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        """The network on the CPU, from the stored weights."""
        self.history_ = list(config.get("history") or [])
        self.best_epoch_ = config.get("best_epoch")
        self.epochs_run_ = config.get("epochs_run", self.epochs)
        try:
            self.input_scale_ = float(np.asarray(weights["input_scale"]).reshape(-1)[0])
            net = self.build_network(self.d_in_)
            load_state_arrays(net, {k: v for k, v in weights.items() if k != "input_scale"})
        except (KeyError, RuntimeError, ConfigError) as e:
            raise InputError(f"{self.name} weights do not match its config: {error_reason(e)}") from None
        self.net_ = net.eval()
        self._device = torch.device("cpu")
