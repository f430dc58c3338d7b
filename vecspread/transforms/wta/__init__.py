"""Winner-take-all autoencoders with lifetime sparsity (Makhzani & Frey, NIPS 2015; seed 002 of
``../shared/papers/notes-sign-alsh-and-wta.txt``): an unsupervised transform whose code feeds any codec.
Its hyper-parameters; what the notes leave open is decided in the transform's module docstring."""

from __future__ import annotations

from typing import Any

from vecspread.errors import ConfigError
from vecspread.limits import MAX_BATCH, MAX_DIM, MAX_HIDDEN_LAYERS
from vecspread.neural import NEURAL_PARAMS
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec


def hidden_widths(value: Any) -> tuple[int, ...]:
    """Hidden widths before the code layer: "" or "none" (none), "512" or "1024,256", or a sequence of ints."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none"):
            return ()
        try:
            widths = [int(t) for t in text.split(",")]
        except ValueError:
            widths = []
    else:
        try:
            items = list(value)
            if not items:
                return ()
            widths = [int(v) for v in items if not isinstance(v, bool) and int(v) == v]
            if len(widths) != len(items):
                widths = []
        except (TypeError, ValueError):
            widths = []
    if not widths or any(not 1 <= w <= MAX_DIM for w in widths) or len(widths) > MAX_HIDDEN_LAYERS:
        raise ConfigError(f"--hidden {value!r}: expected comma-separated widths in 1..{MAX_DIM} (at most "
                          f"{MAX_HIDDEN_LAYERS}), e.g. 1024 or 1024,256, or none")
    return tuple(widths)


_SHARED = NEURAL_PARAMS.with_defaults(epochs=10, batch_size=256, lr=1e-3)
PARAMS = ParamSet(
    Param("dout", int, 64, "Code width: units of the code layer (the transform's output)", ge=1, le=MAX_DIM),
    Param("hidden", tuple, (), "Hidden ReLU layers before the code layer, comma-separated widths (each one sparse "
          "in training too)", convert=hidden_widths, default_text="none"),
    Param("sparsity", float, 5.0, "Lifetime sparsity in percent: in training each unit keeps its largest "
          "activations over the batch (this share of the batch's rows), the rest are zeroed; released at "
          "inference", gt=0, le=100),
    Param("stacked", bool, False, "Greedy layer-wise training: each layer is an autoencoder of the layer below's "
          "output (frozen, sparsity released), the epochs split evenly among the layers", negatable=True),
    *(p for p in _SHARED.replace("batch_size", help="Vectors per step (lifetime sparsity competes over them)",
                                 ge=2, le=MAX_BATCH)
      .replace("lr", help="Learning rate (adam)")
      .replace("val_size", default_text="min(10000, n/10),min(1000, n/100)")
      if p.name not in ("dint", "hidden_layers", "momentum")),
    panel="WTA autoencoder options",
)

SPEC = Spec("wta", "vecspread.transforms.wta.transform:WTATransform", PARAMS,
            "winner-take-all autoencoder with lifetime sparsity; output: its centred code (Makhzani & Frey 2015)",
            codec="sign", run_settings=("device", "checkpoint", "resume", "max_minutes"))
