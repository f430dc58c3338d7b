"""A softmax classifier whose class vectors are searched by nearest neighbour (seed 000, Schmidt & Talwar).

Network, for ``hidden_layers`` blocks of width ``dint`` and a representation of width ``dout``::

    hidden block:          Linear(d, dint) -> BN -> ReLU                    (x hidden_layers)
    representation block:  Linear(d, dout) -> ReLU                          (the standard network)
                           Linear(d, dout) -> BN -> ReLU                    (--bn-before-softmax)
                           Linear(d, dout) -> ReLU -> BN                    (--bn-before-softmax --relu-bn-order swap)
    softmax layer:         logits = r W^T, W (classes, dout)                (no bias)
                           W's rows scaled to unit norm                     (--unit-class-vectors)

The output (``apply``) is the representation r: the query side of the search. The class vectors, the
rows of W (unit rows with ``--unit-class-vectors``), are the database side (:meth:`class_vectors`): the
exact classifier's answer is the class vector of largest inner product with r, so that "which class?"
is a maximum inner product search among the class vectors.

Decisions the seed's captions leave open, taken here:

- **No bias** in the softmax layer, so that the classifier is exactly the inner product search (a bias
  would add a per-class offset no nearest-neighbour index of the class vectors sees).
- **Loss and optimizer**: cross-entropy of the logits; Adam, lr 1e-3, constant, batch 256; every training
  vector once per epoch in a fresh random order from the run's seed; PyTorch's default initialisation.
- **Validation** (every ``val_every`` epochs; the kept epoch is the latest within one standard error of
  the best ``accuracy``): held-out labelled training vectors (``val_size`` 0,Q: Q of them; default
  min(1000, n/100)), never the test queries. Each validation records ``accuracy`` (of the exact
  softmax), ``mean_correct_angle`` (degrees, between a representation and its class vector),
  ``rep_norm_mean``, ``rep_norm_spread`` (std / mean of the representations' norms),
  ``class_norm_mean`` (of the class vectors) and ``balance_hyperplane`` / ``balance_cross_polytope``
  (the table balance M/M* of the unit class vectors, as ``inspect`` reports it): the seed's Figures 2–6
  as curves over training (``vecspread.diagnostics.classes``).
- **Classes**: ``max(label) + 1`` of the training labels (labels are 0-based class ids).

The split, input scale, reproducibility, budget and checkpoints are the shared trainer's
(``vecspread.neural.trainer``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vecspread.errors import ConfigError, InputError
from vecspread.limits import MAX_NETWORK_PARAMS
from vecspread.neural.trainer import AdamBatches
from vecspread.transforms.neural import NeuralTransform
from vecspread.transforms.softmax import SPEC

#: most classes a softmax layer holds
MAX_CLASSES = 1 << 20


class SoftmaxNet(nn.Module):
    """``forward`` (n, d_in) -> (n, dout) representations; ``class_vectors()`` (classes, dout); ``logits``.

    State-dict names: "net.<i>.weight" (the hidden and representation blocks), "classes.weight" (W).
    """

    def __init__(self, d_in: int, dint: int, hidden_layers: int, dout: int, classes: int, bn_before_softmax: bool,
                 swap: bool, unit_class_vectors: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(hidden_layers):
            layers += [nn.Linear(d, dint), nn.BatchNorm1d(dint), nn.ReLU()]
            d = dint
        layers.append(nn.Linear(d, dout))
        if not bn_before_softmax:
            layers.append(nn.ReLU())
        elif swap:
            layers += [nn.ReLU(), nn.BatchNorm1d(dout)]
        else:
            layers += [nn.BatchNorm1d(dout), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.classes = nn.Linear(dout, classes, bias=False)
        self.unit_class_vectors = unit_class_vectors
        self.d_out = dout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def class_vectors(self) -> torch.Tensor:
        w = self.classes.weight
        return F.normalize(w, p=2.0, dim=1, eps=1e-12) if self.unit_class_vectors else w

    def logits(self, rep: torch.Tensor) -> torch.Tensor:
        return rep @ self.class_vectors().T


def parameter_count(d_in: int, dint: int, hidden_layers: int, dout: int, classes: int, bn: bool) -> int:
    widths = [d_in] + [dint] * hidden_layers
    hidden = sum((a + 1) * b + 2 * b for a, b in zip(widths, widths[1:]))
    return hidden + (widths[-1] + 1) * dout + (2 * dout if bn else 0) + dout * classes


class SoftmaxTransform(NeuralTransform):
    """A softmax classifier; ``apply`` maps (n, d_in) float32 to (n, dout) float32 representations,
    :meth:`class_vectors` gives the (classes, dout) float32 class vectors. ``fit(xt, labels=y)`` needs
    one 0-based class per training vector. History records: epoch, lr, loss, train_accuracy and, at
    validations, accuracy, mean_correct_angle, rep_norm_mean, rep_norm_spread, class_norm_mean."""

    spec = SPEC
    default_validation = "training-set"  # held-out labelled vectors only: no database is searched
    #: ``fit`` needs the class of every training vector (``train`` passes the dataset's labels)
    needs_labels = True

    def _check_params(self) -> None:
        if self.relu_bn_order == "swap" and not self.bn_before_softmax:
            raise ConfigError("--relu-bn-order swap moves the batch norm before the softmax layer after the ReLU: "
                              "give --bn-before-softmax too")

    def fit(self, xt: np.ndarray, *, labels: np.ndarray | None = None, progress: Any = None,
            run: Any = None) -> "SoftmaxTransform":
        """Train on (n, d_in) training vectors and their (n,) int labels (0-based classes); returns self."""
        if labels is None:
            raise ConfigError("softmax is supervised: it needs the class of every training vector (a dataset with "
                              "train_labels or learn_labels: `vecspread import ... --train-labels FILE`)")
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != len(xt) or y.dtype.kind not in "iu":
            raise InputError(f"softmax: {y.shape} {y.dtype} labels for {len(xt)} training vectors; give one integer "
                             "class per vector")
        if len(y) and (y.min() < 0 or y.max() >= MAX_CLASSES):
            raise InputError(f"softmax: labels must be classes 0..{MAX_CLASSES - 1}, got {int(y.min())}..{int(y.max())}")
        self.labels_ = y.astype(np.int64)
        self.n_classes_ = int(y.max()) + 1 if len(y) else 0
        try:
            return super().fit(xt, progress=progress, run=run)  # type: ignore[return-value]
        finally:
            del self.labels_

    def build_network(self, d_in: int) -> SoftmaxNet:
        classes = int(self.n_classes_)
        bn = bool(self.bn_before_softmax)
        count = parameter_count(d_in, int(self.dint), int(self.hidden_layers), int(self.dout), classes, bn)
        if count > MAX_NETWORK_PARAMS:
            raise ConfigError(f"a softmax network {d_in} -> {self.dint} x {self.hidden_layers} -> {self.dout} -> "
                              f"{classes} classes has {count:,} weights, more than the {MAX_NETWORK_PARAMS:,} vecspread "
                              "builds: use a smaller --dint or --dout")
        return SoftmaxNet(d_in, int(self.dint), int(self.hidden_layers), int(self.dout), classes, bn,
                          self.relu_bn_order == "swap", bool(self.unit_class_vectors))

    def objective(self, ntr: int, nq: int, report: Any) -> "SoftmaxObjective":
        return SoftmaxObjective(self, ntr)

    def class_vectors(self) -> np.ndarray:
        """(classes, dout) float32: the rows of the softmax layer (unit rows with ``unit_class_vectors``)."""
        with torch.no_grad():
            return self.net_.class_vectors().detach().cpu().numpy().astype(np.float32)

    def classify(self, x: np.ndarray) -> np.ndarray:
        """(n,) int64: the exact softmax's class of each (n, d_in) vector (largest inner product)."""
        return np.argmax(self.apply(x) @ self.class_vectors().T, axis=1).astype(np.int64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "classes": int(self.n_classes_)}

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        try:
            self.n_classes_ = int(config["classes"])
        except (KeyError, TypeError, ValueError):
            raise InputError("softmax: its stored config has no number of classes") from None
        super()._restore(config, weights)


class SoftmaxObjective(AdamBatches):
    """Cross-entropy over mini-batches of the training vectors, validated by held-out accuracy."""

    kept_key = "accuracy"
    kept_label = "validation accuracy"
    kept_short = "acc"

    def __init__(self, t: SoftmaxTransform, ntr: int) -> None:
        self.t, self.ntr = t, ntr
        self.y_all = t.labels_
        self.y_train = torch.from_numpy(t.labels_[t.split_["train"]])

    def describe(self) -> str:
        t = self.t
        changes = [name for name, on in (("bn before softmax", t.bn_before_softmax),
                                         ("relu-bn swapped", t.relu_bn_order == "swap"),
                                         ("unit class vectors", t.unit_class_vectors)) if on]
        return (f"{t.n_classes_} classes, {t.hidden_layers}x{t.dint} hidden, representation {t.dout}, "
                f"{', '.join(changes) or 'standard softmax'}, adam lr {t.lr:g}, batch {t.batch_size}")

    def prepare(self, x_train: np.ndarray, xs: np.ndarray, device: torch.device) -> str:
        note = super().prepare(x_train, xs, device)
        self.y = self.y_train.to(device)
        return note

    def begin_epoch(self, epoch: int, net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
        return {"order": torch.randperm(self.ntr, generator=gen)}

    def step(self, net: nn.Module, plan: dict[str, torch.Tensor], b: int,
             gen: torch.Generator) -> tuple[torch.Tensor, int, dict[str, float]]:
        idx = self.batch(plan, b)
        logits = net.logits(net(self.xs[idx]))
        y = self.y[idx]
        loss = F.cross_entropy(logits, y)
        correct = float((logits.argmax(dim=1) == y).float().mean())
        return loss, int(idx.shape[0]), {"train_accuracy": correct}

    def make_validator(self, xq: np.ndarray, query_ids: np.ndarray) -> "ClassValidator":
        return ClassValidator(self.t, xq, self.y_all[query_ids])


class ClassValidator:
    """Held-out (nq, d_in) scaled vectors and their classes: accuracy of the exact softmax and the seed's
    measures of the representations (see the module docstring)."""

    def __init__(self, t: SoftmaxTransform, xq: np.ndarray, yq: np.ndarray) -> None:
        self.t, self.xq, self.yq = t, np.ascontiguousarray(xq, np.float32), np.asarray(yq, np.int64)
        self.nq = len(self.xq)

    def run(self, forward: Any) -> dict[str, float]:
        from vecspread.diagnostics.classes import class_balance, class_measures

        w = self.t.class_vectors()
        m = class_measures(forward(self.xq), w, self.yq)
        hyperplane, cross_polytope = class_balance(w).values()
        return {"accuracy": m["accuracy"], "mean_correct_angle": m["mean_correct_angle"],
                "rep_norm_mean": m["representation_norm"]["mean"],
                "rep_norm_spread": m["representation_norm"]["relative_std"],
                "class_norm_mean": m["class_vector_norm"]["mean"],
                "balance_hyperplane": hyperplane["ratio"], "balance_cross_polytope": cross_polytope["ratio"]}
