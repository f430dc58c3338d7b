"""The one neural trainer shared by the catalyzer, NPhash and the WTA autoencoder: the MLP, the epoch loop,
validation, the kept-epoch rule and one checkpoint format with bit-for-bit resume (``trainer``), and the
lifetime-sparsity layer (``sparsity``). A neural method is its loss, its sampler and its defaults (an
``Objective``) on top of it.

This module only declares the hyper-parameters every neural method shares (no torch at import).
"""

from __future__ import annotations

from typing import Any

from vecspread.errors import ConfigError
from vecspread.limits import MAX_BATCH, MAX_DIM, MAX_EPOCHS, MAX_HIDDEN_LAYERS
from vecspread.params import Param, ParamSet, seed_param

PANEL = "Neural training (catalyzer, nphash, wta)"


def val_size(value: Any) -> int | tuple[int, int] | None:
    """The validation split as given: None (the method's default), an int (a held-out database; a tenth
    as many queries), or (database, queries), from text "DB" / "DB,QUERIES" or Python values."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parts = [int(t) for t in value.split(",")]
        except ValueError:
            parts = []
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    if (len(parts) not in (1, 2) or any(isinstance(p, bool) or not isinstance(p, int) and not hasattr(p, "__index__")
                                        for p in parts) or any(int(p) < 0 for p in parts)):
        raise ConfigError(f"--val-size {value!r}: expected DB or DB,QUERIES (non-negative integers)")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


#: shared by every neural method; each sets its own defaults with ``with_defaults``
NEURAL_PARAMS = ParamSet(
    Param("dint", int, 1024, "Hidden width", ge=1, le=MAX_DIM),
    Param("hidden_layers", int, 2, "Hidden Linear-BN-ReLU blocks", ge=1, le=MAX_HIDDEN_LAYERS),
    Param("epochs", int, 8, "Training epochs", ge=1, le=MAX_EPOCHS),
    Param("batch_size", int, 64, "Training vectors per step", ge=2, le=MAX_BATCH),
    Param("lr", float, 0.1, "Learning rate", gt=0),
    Param("momentum", float, 0.9, "SGD momentum", ge=0, lt=1),
    seed_param(0),
    Param("val_every", int, 1, "Validate (and checkpoint) every N epochs", ge=1, le=MAX_EPOCHS),
    Param("val_size", object, None, "Validation split: DB or DB,QUERIES held-out vectors; 0,QUERIES searches "
          "held-out queries in the training set; 0 disables", convert=val_size),
    panel=PANEL,
)

#: lifetime sparsity on the hidden layers of the catalyzer's and NPhash's MLPs (``vecspread.neural.sparsity``)
WTA_SPARSITY = Param(
    "wta_sparsity", float, None, "Winner-take-all lifetime sparsity on the hidden layers in training, in percent: "
    "each hidden unit keeps its largest activations over the batch and the rest are zeroed; released at inference "
    "(batch-norm statistics re-estimated without it after each epoch)", gt=0, le=100, default_text="off",
    panel=PANEL)
