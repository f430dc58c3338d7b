"""The transform interface: x (n, d_in) float32 -> y (n, d_out) float32.

Every method of ``vecspread train --method`` is a Transform subclass registered in
``vecspread.transforms.REGISTRY`` with its hyper-parameters declared in its spec (``vecspread.params``).
Conventions (scikit-learn style):

- ``__init__`` only stores hyper-parameters (keyword arguments, checked against the declarations);
- ``fit(xt)`` learns from (n, d_in) float32 training vectors and returns ``self``; learned state lives in
  attributes ending with ``_``; how the run goes (threads, device, checkpoints, a time budget) is a
  ``vecspread.runtime.RunSettings``, never a hyper-parameter;
- ``apply(x)`` maps (n, d_in) float32 database vectors to (n, d_out) float32; ``apply_query(x)`` maps
  queries (the same unless the method is asymmetric, e.g. MIPS lifts);
- ``get_config()`` returns the JSON-able hyper-parameters plus ``d_in``/``d_out`` (and what fitting
  resolved); ``get_weights()`` returns ``{name: ndarray}`` (stored as HDF5 datasets, never pickled);
  ``from_state(config, weights)`` rebuilds a fitted transform from those two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vecspread.limits import MAX_DIM
from vecspread.params import Configurable

if TYPE_CHECKING:
    from vecspread.runtime import RunSettings

#: keys of a stored config that are not hyper-parameters
FITTED_KEYS = ("d_in", "d_out")


class Transform(Configurable):
    """Base class of all transforms; subclasses set ``spec`` and implement fit/apply/state."""

    kind: ClassVar[str] = "--method"

    d_in_: int
    d_out_: int

    def fit(self, xt: np.ndarray, *, progress: Any = None, run: "RunSettings | None" = None) -> "Transform":
        """Learn from (n, d_in) float32 training vectors; returns self."""
        raise NotImplementedError

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map (n, d_in) float32 database vectors to (n, d_out) float32."""
        raise NotImplementedError

    def apply_query(self, x: np.ndarray) -> np.ndarray:
        """Map (n, d_in) float32 queries to (n, d_out) float32 (same as ``apply`` unless asymmetric)."""
        return self.apply(x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's name for :meth:`apply`: (n, d_in) float32 database vectors -> (n, d_out) float32."""
        return self.apply(x)

    def transform_query(self, x: np.ndarray) -> np.ndarray:
        """:meth:`apply_query`: the map of queries (differs from the database's for asymmetric methods)."""
        return self.apply_query(x)

    def fit_transform(self, xt: np.ndarray, **kwargs: Any) -> np.ndarray:
        """``fit(xt)`` then ``transform(xt)``."""
        return self.fit(xt, **kwargs).apply(xt)

    def codec_name(self) -> str | None:
        """The codec this method trains with (stored in the model; ``encode`` then needs no ``--codec``)."""
        spec = getattr(type(self), "spec", None)
        return spec.codec if spec is not None else None

    def codec_defaults(self) -> dict[str, Any]:
        """Hyper-parameters of that codec when the user gives none of them (e.g. the catalyzer's lattice)."""
        return {}

    @property
    def d_in(self) -> int:
        return self.d_in_

    @property
    def d_out(self) -> int:
        return self.d_out_

    def get_config(self) -> dict[str, Any]:
        """Hyper-parameters plus fitted dimensions, stored as JSON in the model artifact."""
        return {**self.get_params(), "d_in": int(self.d_in_), "d_out": int(self.d_out_)}

    def get_weights(self) -> dict[str, np.ndarray]:
        """Learned arrays, each stored as one HDF5 dataset."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: dict[str, Any], weights: dict[str, np.ndarray]) -> "Transform":
        """Rebuild a fitted transform from ``get_config()`` and ``get_weights()`` output."""
        t = cls(**params_of(cls, config))
        t.d_in_, t.d_out_ = stored_dim(config, "d_in"), stored_dim(config, "d_out")
        t._restore(config, weights)
        return t

    def _restore(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        """Set the learned state from stored weights (and config); ValueError/KeyError when inconsistent."""
        raise NotImplementedError


def stored_dim(config: dict[str, Any], key: str) -> int:
    """``config[key]``, a dimension 1 .. MAX_DIM; ValueError otherwise (the file was not written by us)."""
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
        raise ValueError(f"{key} {value!r} is not a dimension in 1..{MAX_DIM}")
    return value


def params_of(cls: type[Configurable], config: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of ``cls`` found in a stored config (other keys are what fitting resolved)."""
    return {k: config[k] for k in cls.params.names if k in config}
